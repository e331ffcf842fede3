//! A small builder over the ONNX protobuf types: fresh value names, initializers from
//! `ndarray` arrays, nodes with typed attributes, graph inputs and outputs with symbolic
//! dimensions. Everything the exporters write goes through it, so they read as a list of
//! operators.

use super::onnx_pb::{
    AttributeProto, GraphProto, NodeProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto,
    attribute_proto::AttributeType,
    tensor_proto::DataType,
    tensor_shape_proto::{Dimension, dimension::Value as DimValue},
    type_proto::{Tensor as TensorType, Value as TypeValue},
};
use ndarray::{ArrayView, Dimension as NdDimension};

/// A dimension of a graph input or output: a fixed size or a named, free one (`T`, `B`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dim {
    /// A fixed size.
    Fixed(usize),
    /// A free size, by name; inputs that share a name must agree.
    Named(&'static str),
}

/// An attribute value of a node.
pub(crate) enum Attr {
    Int(i64),
    String(&'static str),
    Ints(Vec<i64>),
    Strings(Vec<&'static str>),
    Graph(Box<GraphProto>),
}

/// The element types the exporters use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Elem {
    F32,
    I64,
    Bool,
}

impl Elem {
    fn data_type(self) -> i32 {
        (match self {
            Elem::F32 => DataType::Float,
            Elem::I64 => DataType::Int64,
            Elem::Bool => DataType::Bool,
        }) as i32
    }
}

/// A graph under construction. Value names are unique within it: [`GraphBuilder::fresh`]
/// numbers them, and a subgraph (a `Scan` body) gets its own prefix so its names never clash
/// with the outer graph's, which ONNX forbids.
pub(crate) struct GraphBuilder {
    graph: GraphProto,
    prefix: String,
    counter: usize,
}

impl GraphBuilder {
    /// An empty graph called `name`, its fresh names starting with `prefix`.
    pub(crate) fn new(name: &str, prefix: &str) -> Self {
        GraphBuilder {
            graph: GraphProto {
                name: name.to_string(),
                ..Default::default()
            },
            prefix: prefix.to_string(),
            counter: 0,
        }
    }

    /// A new value name that says what it holds: `{prefix}{what}_{n}`.
    pub(crate) fn fresh(&mut self, what: &str) -> String {
        self.counter += 1;
        format!("{}{what}_{}", self.prefix, self.counter)
    }

    /// A constant f32 tensor named `name` (a parameter keeps its PyTorch name).
    pub(crate) fn initializer_f32<D: NdDimension>(
        &mut self,
        name: &str,
        value: ArrayView<f32, D>,
    ) -> String {
        let raw: Vec<u8> = value.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.push_initializer(name, Elem::F32, value.shape(), raw)
    }

    /// A constant i64 tensor of shape `dims` (`[]` for a scalar), under a fresh name.
    pub(crate) fn const_i64(&mut self, what: &str, dims: &[usize], values: &[i64]) -> String {
        debug_assert_eq!(dims.iter().product::<usize>(), values.len());
        let name = self.fresh(what);
        let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.push_initializer(&name, Elem::I64, dims, raw)
    }

    /// A 1-D i64 constant, the usual shape of axes, starts and target shapes.
    pub(crate) fn ints(&mut self, what: &str, values: &[i64]) -> String {
        self.const_i64(what, &[values.len()], values)
    }

    /// A scalar f32 constant.
    pub(crate) fn scalar_f32(&mut self, what: &str, value: f32) -> String {
        let name = self.fresh(what);
        self.push_initializer(&name, Elem::F32, &[], value.to_le_bytes().to_vec())
    }

    fn push_initializer(&mut self, name: &str, elem: Elem, dims: &[usize], raw: Vec<u8>) -> String {
        self.graph.initializer.push(TensorProto {
            name: name.to_string(),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: elem.data_type(),
            raw_data: raw,
            ..Default::default()
        });
        name.to_string()
    }

    /// Adds a node of `op` reading `inputs` (`""` for an omitted optional input) and writing
    /// `outputs` fresh values named after `what`; returns their names.
    pub(crate) fn node_n(
        &mut self,
        op: &str,
        inputs: &[&str],
        outputs: usize,
        attrs: Vec<(&str, Attr)>,
    ) -> Vec<String> {
        let what = op.to_ascii_lowercase();
        let outs: Vec<String> = (0..outputs).map(|_| self.fresh(&what)).collect();
        self.node_into(op, inputs, &outs, attrs);
        outs
    }

    /// [`GraphBuilder::node_n`] with one output.
    pub(crate) fn node(&mut self, op: &str, inputs: &[&str], attrs: Vec<(&str, Attr)>) -> String {
        self.node_n(op, inputs, 1, attrs).remove(0)
    }

    /// Adds a node writing the given output names (`""` for an unused optional output).
    pub(crate) fn node_into(
        &mut self,
        op: &str,
        inputs: &[&str],
        outputs: &[String],
        attrs: Vec<(&str, Attr)>,
    ) {
        let name = self.fresh(&format!("{op}_node"));
        self.graph.node.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.to_vec(),
            name,
            op_type: op.to_string(),
            attribute: attrs.into_iter().map(|(n, a)| attribute(n, a)).collect(),
            ..Default::default()
        });
    }

    /// Declares a graph input.
    pub(crate) fn input(&mut self, name: &str, elem: Elem, dims: &[Dim]) -> String {
        self.graph.input.push(value_info(name, elem, dims));
        name.to_string()
    }

    /// Declares `value` a graph output called `name` (an `Identity` node renames it).
    pub(crate) fn output(&mut self, value: &str, name: &str, elem: Elem, dims: &[Dim]) {
        if value != name {
            self.node_into("Identity", &[value], &[name.to_string()], vec![]);
        }
        self.graph.output.push(value_info(name, elem, dims));
    }

    /// Declares a subgraph output without a shape (a `Scan` body's; the runtime infers it).
    pub(crate) fn output_untyped(&mut self, value: &str, name: &str, elem: Elem) {
        if value != name {
            self.node_into("Identity", &[value], &[name.to_string()], vec![]);
        }
        self.graph.output.push(ValueInfoProto {
            name: name.to_string(),
            r#type: Some(tensor_type(elem, None)),
            ..Default::default()
        });
    }

    /// Declares a subgraph input of a known rank (shape left free).
    pub(crate) fn input_untyped(&mut self, name: &str, elem: Elem) -> String {
        self.graph.input.push(ValueInfoProto {
            name: name.to_string(),
            r#type: Some(tensor_type(elem, None)),
            ..Default::default()
        });
        name.to_string()
    }

    /// The finished graph.
    pub(crate) fn finish(self) -> GraphProto {
        self.graph
    }
}

fn attribute(name: &str, value: Attr) -> AttributeProto {
    let mut a = AttributeProto {
        name: name.to_string(),
        ..Default::default()
    };
    let kind = match value {
        Attr::Int(i) => {
            a.i = i;
            AttributeType::Int
        }
        Attr::String(v) => {
            a.s = v.as_bytes().to_vec();
            AttributeType::String
        }
        Attr::Ints(v) => {
            a.ints = v;
            AttributeType::Ints
        }
        Attr::Strings(v) => {
            a.strings = v.iter().map(|s| s.as_bytes().to_vec()).collect();
            AttributeType::Strings
        }
        Attr::Graph(g) => {
            a.g = Some(*g);
            AttributeType::Graph
        }
    };
    a.r#type = kind as i32;
    a
}

fn tensor_type(elem: Elem, dims: Option<&[Dim]>) -> TypeProto {
    let shape = dims.map(|dims| TensorShapeProto {
        dim: dims
            .iter()
            .map(|d| Dimension {
                value: Some(match *d {
                    Dim::Fixed(n) => DimValue::DimValue(n as i64),
                    Dim::Named(s) => DimValue::DimParam(s.to_string()),
                }),
                ..Default::default()
            })
            .collect(),
    });
    TypeProto {
        value: Some(TypeValue::TensorType(TensorType {
            elem_type: elem.data_type(),
            shape,
        })),
        ..Default::default()
    }
}

fn value_info(name: &str, elem: Elem, dims: &[Dim]) -> ValueInfoProto {
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(tensor_type(elem, Some(dims))),
        ..Default::default()
    }
}
