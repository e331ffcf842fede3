//! Each model as a graph: the shared front (embedding or features, lengths, states), the
//! stack ([`super::stack`]), and the model's own head.

use super::graph::{Attr, Dim, Elem, GraphBuilder};
use super::stack::{SeqValues, StackIn, StackOut, wire_stack};
use super::{OnnxModel, OnnxOptions, ToOnnx, model_proto};
use crate::error::{Error, Result};
use crate::models::{
    AttentionPool, Decoder, Forecaster, LanguageModel, Pooling, SequenceClassifier, SequenceTagger,
};
use crate::module;
use crate::nn::Linear;
use crate::recurrent::Rnn;
use ndarray::{ArrayView2, Ix2};

/// A graph with its inputs declared and the stack wired.
struct Body {
    g: GraphBuilder,
    seq: SeqValues,
    stack: StackOut,
}

/// Declares `input` (token ids through `embedding`, or features), `lengths`, `h0` and `c0`,
/// and wires the stack over them.
fn front(
    name: &str,
    rnn: &Rnn,
    embedding: Option<ArrayView2<f32>>,
    options: &OnnxOptions,
) -> Result<Body> {
    let cfg = rnn.config();
    let mut g = GraphBuilder::new(name, "");
    let (input, x) = match embedding {
        Some(w) => {
            let input = g.input("input", Elem::I64, &[Dim::Named("T"), Dim::Named("B")]);
            let w = g.initializer_f32("embedding.weight", w);
            let x = g.node("Gather", &[&w, &input], vec![("axis", Attr::Int(0))]);
            (input, x)
        }
        None => {
            let dims = [Dim::Named("T"), Dim::Named("B"), Dim::Fixed(cfg.input_size)];
            let input = g.input("input", Elem::F32, &dims);
            (input.clone(), input)
        }
    };
    let lengths = options
        .lengths
        .then(|| g.input("lengths", Elem::I64, &[Dim::Named("B")]));
    let states = cfg.num_layers * if cfg.bidirectional { 2 } else { 1 };
    let h0 = g.input("h0", Elem::F32, &state_dims(states, cfg.h_out()));
    let c0 = cfg
        .cell
        .has_cell_state()
        .then(|| g.input("c0", Elem::F32, &state_dims(states, cfg.hidden_size)));
    let seq = SeqValues::new(&mut g, &input, lengths.as_deref());
    let input = StackIn {
        x: &x,
        h0: &h0,
        c0: c0.as_deref(),
        seq: &seq,
    };
    let stack = wire_stack(&mut g, rnn, "rnn.", input, options)?;
    Ok(Body { g, seq, stack })
}

fn state_dims(states: usize, width: usize) -> [Dim; 3] {
    [Dim::Fixed(states), Dim::Named("B"), Dim::Fixed(width)]
}

impl Body {
    /// Declares the model's output and the final states, and wraps the graph.
    fn finish(
        mut self,
        rnn: &Rnn,
        output: &str,
        name: &str,
        dims: &[Dim],
        doc: &str,
    ) -> Result<OnnxModel> {
        let cfg = rnn.config();
        let states = cfg.num_layers * if cfg.bidirectional { 2 } else { 1 };
        self.g.output(output, name, Elem::F32, dims);
        let h_n = self.stack.h_n.clone();
        self.g
            .output(&h_n, "h_n", Elem::F32, &state_dims(states, cfg.h_out()));
        if let Some(c_n) = self.stack.c_n.clone() {
            self.g
                .output(&c_n, "c_n", Elem::F32, &state_dims(states, cfg.hidden_size));
        }
        let mut model = model_proto(self.g.finish(), doc)?;
        model.set_metadata("rnnkit.cell", cfg.cell.as_str());
        model.set_metadata("rnnkit.num_layers", &cfg.num_layers.to_string());
        model.set_metadata("rnnkit.hidden_size", &cfg.hidden_size.to_string());
        model.set_metadata("rnnkit.proj_size", &cfg.proj_size.to_string());
        model.set_metadata("rnnkit.bidirectional", &cfg.bidirectional.to_string());
        Ok(model)
    }

    /// `x·Wᵀ + b` over the last axis of `x` (any rank), the weights under `prefix`.
    fn linear(&mut self, layer: &Linear, prefix: &str, x: &str) -> String {
        let w = self
            .g
            .initializer_f32(&format!("{prefix}weight"), layer.weight.view());
        let wt = self
            .g
            .node("Transpose", &[&w], vec![("perm", Attr::Ints(vec![1, 0]))]);
        let y = self.g.node("MatMul", &[x, &wt], vec![]);
        match &layer.bias {
            Some(b) => {
                let b = self.g.initializer_f32(&format!("{prefix}bias"), b.view());
                self.g.node("Add", &[&y, &b], vec![])
            }
            None => y,
        }
    }

    /// Zeroes `y` `[T, B, ·]` at padded steps, or fills them with `fill` (`-inf` for a
    /// maximum); unchanged without lengths.
    fn masked(&mut self, y: &str, fill: f32) -> String {
        match self.seq.mask.clone() {
            Some(mask) => {
                let fill = self.g.scalar_f32("fill", fill);
                self.g.node("Where", &[&mask, y, &fill], vec![])
            }
            None => y.to_string(),
        }
    }

    /// The top layer's final states `[D, B, P]` as `[B, D·P]`: `Last` pooling.
    fn last(&mut self) -> String {
        let top = self.stack.top_h.clone();
        let bt = self.g.node(
            "Transpose",
            &[&top],
            vec![("perm", Attr::Ints(vec![1, 0, 2]))],
        );
        let shape = self.g.ints("shape", &[0, -1]);
        self.g.node("Reshape", &[&bt, &shape], vec![])
    }

    /// Pools the stack's outputs `[T, B, F]` over valid steps to `[B, F]`.
    fn pool(&mut self, pooling: Pooling, attention: Option<&AttentionPool>) -> Result<String> {
        let y = self.stack.y.clone();
        Ok(match pooling {
            Pooling::Last => self.last(),
            Pooling::Mean => {
                let y = self.masked(&y, 0.0);
                let axes = self.g.ints("axes", &[0]);
                let sum = self
                    .g
                    .node("ReduceSum", &[&y, &axes], vec![("keepdims", Attr::Int(0))]);
                let count = match self.seq.lengths.clone() {
                    Some(l) => self.g.node("Cast", &[&l], vec![("to", Attr::Int(1))]),
                    None => {
                        let shape = self.g.node("Shape", &[&y], vec![]);
                        let zero = self.g.const_i64("zero", &[], &[0]);
                        let t =
                            self.g
                                .node("Gather", &[&shape, &zero], vec![("axis", Attr::Int(0))]);
                        self.g.node("Cast", &[&t], vec![("to", Attr::Int(1))])
                    }
                };
                let axes = self.g.ints("axes", &[-1]);
                let count = self.g.node("Unsqueeze", &[&count, &axes], vec![]);
                self.g.node("Div", &[&sum, &count], vec![])
            }
            Pooling::Max => {
                let y = self.masked(&y, f32::NEG_INFINITY);
                self.g.node(
                    "ReduceMax",
                    &[&y],
                    vec![("axes", Attr::Ints(vec![0])), ("keepdims", Attr::Int(0))],
                )
            }
            Pooling::Attention => {
                let attention = attention.ok_or_else(|| {
                    Error::Params("attention pooling without its parameters".into())
                })?;
                let named = module::named_tensors(attention, "");
                let proj = linear_from(&named, "proj.")?;
                let score = linear_from(&named, "score.")?;
                let z = self.linear(&proj, "attention.proj.", &y);
                let u = self.g.node("Tanh", &[&z], vec![]);
                let e = self.linear(&score, "attention.score.", &u); // [T, B, 1]
                let e = self.masked(&e, f32::NEG_INFINITY);
                let alpha = self.g.node("Softmax", &[&e], vec![("axis", Attr::Int(0))]);
                let weighted = self.g.node("Mul", &[&alpha, &y], vec![]);
                let axes = self.g.ints("axes", &[0]);
                self.g.node(
                    "ReduceSum",
                    &[&weighted, &axes],
                    vec![("keepdims", Attr::Int(0))],
                )
            }
        })
    }
}

/// A [`Linear`] back out of named tensors (`{prefix}weight`, optional `{prefix}bias`).
fn linear_from(
    named: &std::collections::BTreeMap<String, ndarray::ArrayD<f32>>,
    prefix: &str,
) -> Result<Linear> {
    let get = |n: &str| named.get(&format!("{prefix}{n}"));
    let weight = get("weight")
        .ok_or_else(|| Error::Params(format!("no {prefix}weight in the model")))?
        .clone()
        .into_dimensionality::<Ix2>()
        .map_err(|e| Error::Params(format!("{prefix}weight: {e}")))?;
    let bias = get("bias")
        .map(|b| {
            b.clone()
                .into_dimensionality()
                .map_err(|e| Error::Params(format!("{prefix}bias: {e}")))
        })
        .transpose()?;
    Ok(Linear { weight, bias })
}

const T_B: [Dim; 2] = [Dim::Named("T"), Dim::Named("B")];

impl ToOnnx for Rnn {
    /// The bare stack: features `[T, B, I]` to `output` `[T, B, D·P]`.
    fn to_onnx(&self, options: &OnnxOptions) -> Result<OnnxModel> {
        let body = front("rnnkit_rnn", self, None, options)?;
        let y = body.stack.y.clone();
        let width = self.config().output_size();
        let dims = [T_B[0], T_B[1], Dim::Fixed(width)];
        body.finish(self, &y, "output", &dims, "rnnkit recurrent stack")
    }
}

impl ToOnnx for LanguageModel {
    /// Token ids `[T, B]` to next-token `logits` `[T, B, V]`.
    fn to_onnx(&self, options: &OnnxOptions) -> Result<OnnxModel> {
        let rnn = self.rnn();
        let mut body = front(
            "rnnkit_language_model",
            rnn,
            Some(self.embedding().weight.view()),
            options,
        )?;
        let y = body.stack.y.clone();
        let logits = match self.decoder() {
            Decoder::Untied(linear) => body.linear(linear, "decoder.", &y),
            Decoder::Tied { bias } => {
                // The embedding matrix, stored once, read by the Gather and the decoder.
                let wt = body.g.node(
                    "Transpose",
                    &["embedding.weight"],
                    vec![("perm", Attr::Ints(vec![1, 0]))],
                );
                let z = body.g.node("MatMul", &[&y, &wt], vec![]);
                match bias {
                    Some(b) => {
                        let b = body.g.initializer_f32("decoder.bias", b.view());
                        body.g.node("Add", &[&z, &b], vec![])
                    }
                    None => z,
                }
            }
        };
        let dims = [T_B[0], T_B[1], Dim::Fixed(self.vocab_size())];
        body.finish(rnn, &logits, "logits", &dims, "rnnkit language model")
    }
}

impl ToOnnx for SequenceClassifier {
    /// Token ids `[T, B]` or features `[T, B, I]` to class `logits` `[B, C]`.
    fn to_onnx(&self, options: &OnnxOptions) -> Result<OnnxModel> {
        let rnn = self.rnn();
        let embedding = self.encoder().embedding().map(|e| e.weight.view());
        let mut body = front("rnnkit_classifier", rnn, embedding, options)?;
        let pooled = body.pool(self.pooling(), self.attention())?;
        let logits = body.linear(self.head(), "head.", &pooled);
        let dims = [Dim::Named("B"), Dim::Fixed(self.num_classes())];
        body.finish(rnn, &logits, "logits", &dims, "rnnkit sequence classifier")
    }
}

impl ToOnnx for SequenceTagger {
    /// Token ids `[T, B]` or features `[T, B, I]` to per-step tag `logits` `[T, B, C]`.
    fn to_onnx(&self, options: &OnnxOptions) -> Result<OnnxModel> {
        let rnn = self.rnn();
        let embedding = self.encoder().embedding().map(|e| e.weight.view());
        let mut body = front("rnnkit_tagger", rnn, embedding, options)?;
        let y = body.stack.y.clone();
        let logits = body.linear(self.head(), "head.", &y);
        let dims = [T_B[0], T_B[1], Dim::Fixed(self.num_tags())];
        body.finish(rnn, &logits, "logits", &dims, "rnnkit sequence tagger")
    }
}

impl ToOnnx for Forecaster {
    /// A window of features `[T, B, I]` to `forecast` `[B, horizon, targets]` (in the
    /// training scaler's units).
    fn to_onnx(&self, options: &OnnxOptions) -> Result<OnnxModel> {
        let rnn = self.rnn();
        let mut body = front("rnnkit_forecaster", rnn, None, options)?;
        let last = body.last();
        let flat = body.linear(self.head(), "head.", &last);
        let shape = body
            .g
            .ints("shape", &[0, self.horizon() as i64, self.targets() as i64]);
        let forecast = body.g.node("Reshape", &[&flat, &shape], vec![]);
        let dims = [
            Dim::Named("B"),
            Dim::Fixed(self.horizon()),
            Dim::Fixed(self.targets()),
        ];
        body.finish(rnn, &forecast, "forecast", &dims, "rnnkit forecaster")
    }
}
