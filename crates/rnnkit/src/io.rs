//! Safetensors files: reading tensors with their metadata, writing them atomically, and
//! saving/loading a recurrent stack under PyTorch's parameter names.

use crate::config::RnnConfig;
use crate::error::{Error, Result};
use crate::params::RnnParams;
use crate::recurrent::Rnn;
use ndarray::{ArrayD, IxDyn};
use safetensors::{Dtype, SafeTensors};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

/// The tensors of a safetensors file, by dtype, with its string metadata: what
/// `safetensors.torch.save_file` writes and `load_file` reads.
///
/// ```
/// use ndarray::ArrayD;
/// use rnnkit::io::TensorFile;
///
/// # fn main() -> rnnkit::Result<()> {
/// let mut file = TensorFile::default();
/// file.f32.insert("rnn.weight_ih_l0".into(), ArrayD::zeros(vec![32, 4]));
/// file.metadata.insert("note".into(), "any strings".into());
/// let path = std::env::temp_dir().join(format!("rnnkit-doc-tf-{}.safetensors", std::process::id()));
/// file.write(&path)?; // atomically: a crash leaves the old file or the new one
///
/// let back = TensorFile::read(&path)?;
/// assert_eq!(back.f32["rnn.weight_ih_l0"].shape(), &[32, 4]);
/// assert_eq!(back.metadata["note"], "any strings");
/// # std::fs::remove_file(&path).ok();
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Default)]
pub struct TensorFile {
    /// f32 tensors by name.
    pub f32: BTreeMap<String, ArrayD<f32>>,
    /// i64 tensors by name.
    pub i64: BTreeMap<String, ArrayD<i64>>,
    /// The `__metadata__` strings.
    pub metadata: HashMap<String, String>,
}

fn format_err(path: &Path, msg: impl Into<String>) -> Error {
    Error::Corrupt {
        path: path.display().to_string(),
        msg: msg.into(),
    }
}

/// The metadata key under which [`TensorFile::to_bytes`] records each tensor's CRC-32 (a JSON
/// object, tensor name to 8 hex digits) and [`TensorFile::from_bytes`] checks them.
pub const CHECKSUMS_KEY: &str = "rnnkit_crc32";

/// The CRC-32 of a tensor's bytes as 8 hex digits.
fn checksum(bytes: &[u8]) -> String {
    format!("{:08x}", crc32fast::hash(bytes))
}

/// Checks each tensor's bytes against the checksums recorded under [`CHECKSUMS_KEY`]: every
/// tensor must have one and match it, and every recorded one must have its tensor.
fn verify_checksums(st: &SafeTensors, recorded: &str, path: &Path) -> Result<()> {
    let sums: BTreeMap<String, String> = serde_json::from_str(recorded).map_err(|e| {
        format_err(
            path,
            format!("metadata `{CHECKSUMS_KEY}` is not valid JSON: {e}"),
        )
    })?;
    let mut names = std::collections::BTreeSet::new();
    for (name, view) in st.tensors() {
        let want = sums.get(&name).ok_or_else(|| {
            format_err(
                path,
                format!("tensor `{name}` has no recorded checksum: the file was altered"),
            )
        })?;
        let got = checksum(view.data());
        if &got != want {
            return Err(format_err(
                path,
                format!(
                    "tensor `{name}` is damaged: its bytes' CRC-32 is {got}, the file recorded \
                     {want} (restore the file from a copy, or resume from another checkpoint)"
                ),
            ));
        }
        names.insert(name);
    }
    if let Some(gone) = sums.keys().find(|n| !names.contains(*n)) {
        return Err(format_err(
            path,
            format!("tensor `{gone}` is recorded in the checksums but missing from the file"),
        ));
    }
    Ok(())
}

impl TensorFile {
    /// Reads a safetensors file holding f32 and i64 tensors (i32 is read as i64; other dtypes are
    /// an error naming the tensor), checking the checksums rnnkit records (see
    /// [`from_bytes`](Self::from_bytes)).
    ///
    /// # Errors
    /// [`Error::Read`] when the file cannot be read, [`Error::Corrupt`] when it is not a
    /// well-formed safetensors file or a checksum does not match.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| Error::read(path, source))?;
        Self::from_bytes(&bytes, path)
    }

    /// Parses safetensors bytes; `path` only names the source in errors. Files written by
    /// rnnkit carry a CRC-32 of every tensor under [`CHECKSUMS_KEY`], checked here, so flipped
    /// bytes are found; files from other tools (PyTorch's `save_file`) have none and are read
    /// as they are. The checksums are not part of the returned [`metadata`](Self::metadata).
    ///
    /// ```
    /// use ndarray::ArrayD;
    /// use rnnkit::io::TensorFile;
    /// let mut file = TensorFile::default();
    /// file.f32.insert("w".into(), ArrayD::from_elem(vec![4], 1.5f32));
    /// let mut bytes = file.to_bytes()?;
    /// let last = bytes.len() - 1;
    /// bytes[last] ^= 0x40; // one flipped bit in the tensor's data
    /// let err = TensorFile::from_bytes(&bytes, "w.safetensors".as_ref()).unwrap_err();
    /// assert!(err.to_string().contains("tensor `w` is damaged"), "{err}");
    /// # Ok::<(), rnnkit::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Corrupt`] naming the file and what is wrong with it.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| format_err(path, format!("not a valid safetensors file: {e}")))?;
        let (_, meta) = SafeTensors::read_metadata(bytes)
            .map_err(|e| format_err(path, format!("bad safetensors header: {e}")))?;
        let mut metadata = meta.metadata().clone().unwrap_or_default();
        if let Some(recorded) = metadata.remove(CHECKSUMS_KEY) {
            verify_checksums(&st, &recorded, path)?;
        }
        let mut out = TensorFile {
            metadata,
            ..Default::default()
        };
        for (name, view) in st.tensors() {
            let shape = IxDyn(view.shape());
            let data = view.data();
            match view.dtype() {
                Dtype::F32 => {
                    let v = data
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
                        .collect();
                    out.f32
                        .insert(name, ArrayD::from_shape_vec(shape, v).expect("sized"));
                }
                Dtype::I32 => {
                    // Accepted for integer tensors written by other tools; kept as i64.
                    let v = data
                        .chunks_exact(4)
                        .map(|b| i32::from_le_bytes(b.try_into().expect("4 bytes")) as i64)
                        .collect();
                    out.i64
                        .insert(name, ArrayD::from_shape_vec(shape, v).expect("sized"));
                }
                Dtype::I64 => {
                    let v = data
                        .chunks_exact(8)
                        .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
                        .collect();
                    out.i64
                        .insert(name, ArrayD::from_shape_vec(shape, v).expect("sized"));
                }
                other => {
                    return Err(format_err(
                        path,
                        format!(
                            "tensor `{name}` has dtype {other:?}; only F32 and I64 (or I32) are supported"
                        ),
                    ));
                }
            }
        }
        Ok(out)
    }

    /// Serializes to safetensors bytes, with each tensor's CRC-32 in the metadata (see
    /// [`from_bytes`](Self::from_bytes)).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut raw: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
        for (n, a) in &self.f32 {
            let b = a.iter().flat_map(|v| v.to_le_bytes()).collect();
            raw.push((n.clone(), Dtype::F32, a.shape().to_vec(), b));
        }
        for (n, a) in &self.i64 {
            let b = a.iter().flat_map(|v| v.to_le_bytes()).collect();
            raw.push((n.clone(), Dtype::I64, a.shape().to_vec(), b));
        }
        let views: Vec<(String, safetensors::tensor::TensorView)> = raw
            .iter()
            .map(|(n, d, s, b)| {
                let v = safetensors::tensor::TensorView::new(*d, s.clone(), b)
                    .expect("byte length matches shape");
                (n.clone(), v)
            })
            .collect();
        let sums: BTreeMap<&str, String> = raw
            .iter()
            .map(|(n, _, _, b)| (n.as_str(), checksum(b)))
            .collect();
        let mut meta = self.metadata.clone();
        meta.insert(
            CHECKSUMS_KEY.into(),
            serde_json::to_string(&sums).expect("a map of strings encodes"),
        );
        safetensors::serialize(views, Some(meta)).map_err(|e| Error::Format {
            path: "<memory>".into(),
            msg: e.to_string(),
        })
    }

    /// The first f32 tensor holding a NaN or an infinity, with how many such values it holds.
    ///
    /// ```
    /// use ndarray::ArrayD;
    /// let mut file = rnnkit::io::TensorFile::default();
    /// file.f32.insert("ok".into(), ArrayD::zeros(vec![3]));
    /// assert_eq!(file.first_non_finite(), None);
    /// file.f32.insert("bad".into(), ArrayD::from_elem(vec![3], f32::NAN));
    /// assert_eq!(file.first_non_finite(), Some(("bad", 3)));
    /// ```
    pub fn first_non_finite(&self) -> Option<(&str, usize)> {
        first_non_finite(&self.f32)
    }

    /// An [`Error::Corrupt`] naming `path` when any f32 tensor is not finite: weights with a
    /// NaN or an infinity in them cannot be trained on or used.
    pub fn ensure_finite(&self, path: &Path) -> Result<()> {
        match self.first_non_finite() {
            None => Ok(()),
            Some((name, n)) => Err(format_err(
                path,
                format!(
                    "tensor `{name}` holds {n} non-finite value(s) (NaN or infinity); these \
                     weights cannot be used (resume from or evaluate another checkpoint)"
                ),
            )),
        }
    }

    /// Writes the file atomically: a temporary file beside it, fsync, rename. A crash leaves
    /// either the old file or the new one, never a torn one.
    pub fn write(&self, path: &Path) -> Result<()> {
        write_atomic(path, &self.to_bytes()?)
    }
}

/// The first tensor of `tensors` holding a NaN or an infinity, with how many it holds.
pub fn first_non_finite(tensors: &BTreeMap<String, ArrayD<f32>>) -> Option<(&str, usize)> {
    tensors.iter().find_map(|(name, t)| {
        let n = t.iter().filter(|v| !v.is_finite()).count();
        (n > 0).then_some((name.as_str(), n))
    })
}

/// Writes `bytes` to `path` via a temporary file, fsync and rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| format_err(path, "not a file path"))?;
    // Unique per process and call, so concurrent saves of one path never share a temp file.
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(
        ".{}.tmp{}-{n}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    // Make the rename itself durable.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The metadata strings that describe a stack (the keys of a verification case file).
pub fn config_metadata(cfg: &RnnConfig) -> HashMap<String, String> {
    HashMap::from([
        ("cell".into(), cfg.cell.as_str().into()),
        ("input_size".into(), cfg.input_size.to_string()),
        ("hidden_size".into(), cfg.hidden_size.to_string()),
        ("num_layers".into(), cfg.num_layers.to_string()),
        ("proj_size".into(), cfg.proj_size.to_string()),
        ("bidirectional".into(), cfg.bidirectional.to_string()),
        ("bias".into(), cfg.bias.to_string()),
        ("dropout".into(), cfg.dropout.to_string()),
    ])
}

/// Reads a stack's config back from metadata written by [`config_metadata`] (or a case file).
pub fn config_from_metadata(meta: &HashMap<String, String>, path: &Path) -> Result<RnnConfig> {
    let get = |key: &str| {
        meta.get(key)
            .ok_or_else(|| format_err(path, format!("metadata key `{key}` is missing")))
    };
    let num = |key: &str| -> Result<usize> {
        let v = get(key)?;
        v.trim().parse().map_err(|_| {
            format_err(
                path,
                format!("metadata `{key}` = {v:?} is not a non-negative integer"),
            )
        })
    };
    let flag = |key: &str, default: bool| -> Result<bool> {
        match meta.get(key).map(|s| s.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if v == "true" || v == "1" => Ok(true),
            Some(v) if v == "false" || v == "0" => Ok(false),
            Some(v) => Err(format_err(
                path,
                format!("metadata `{key}` = {v:?} is not true/false"),
            )),
        }
    };
    let cell = get("cell")?
        .trim()
        .parse()
        .map_err(|e: Error| format_err(path, e.to_string()))?;
    let cfg = RnnConfig {
        cell,
        input_size: num("input_size")?,
        hidden_size: num("hidden_size")?,
        num_layers: if meta.contains_key("num_layers") {
            num("num_layers")?
        } else {
            1
        },
        proj_size: if meta.contains_key("proj_size") {
            num("proj_size")?
        } else {
            0
        },
        bidirectional: flag("bidirectional", false)?,
        bias: flag("bias", true)?,
        dropout: match meta.get("dropout") {
            Some(v) => v.trim().parse().map_err(|_| {
                format_err(path, format!("metadata `dropout` = {v:?} is not a number"))
            })?,
            None => 0.0,
        },
    };
    cfg.validate()
        .map_err(|e| format_err(path, e.to_string()))?;
    Ok(cfg)
}

impl Rnn {
    /// Saves the parameters as safetensors with PyTorch's names (`weight_ih_l0`, …) and the
    /// config in the metadata, atomically.
    ///
    /// ```
    /// use rnnkit::{CellKind, Init, Rnn, RnnConfig};
    /// let dir = std::env::temp_dir().join(format!("rnnkit-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// let path = dir.join("lstm.safetensors");
    /// let rnn = Rnn::new(RnnConfig::new(CellKind::Lstm, 3, 4), &Init::default(), 1).unwrap();
    /// rnn.save(&path).unwrap();
    /// let back = Rnn::load(&path).unwrap();
    /// assert_eq!(back.params(), rnn.params());
    /// ```
    pub fn save(&self, path: &Path) -> Result<()> {
        self.params().check(self.config())?;
        let file = TensorFile {
            f32: self.params().to_named_arrays(self.config()),
            i64: BTreeMap::new(),
            metadata: config_metadata(self.config()),
        };
        file.write(path)
    }

    /// Loads a stack saved by [`Rnn::save`] (or any file with the config metadata keys and
    /// PyTorch-named tensors). A missing, extra or misshapen tensor is an error naming it.
    pub fn load(path: &Path) -> Result<Rnn> {
        let file = TensorFile::read(path)?;
        file.ensure_finite(path)?;
        let cfg = config_from_metadata(&file.metadata, path)?;
        let params = RnnParams::from_named(&cfg, &file.f32, "")
            .map_err(|e| format_err(path, e.to_string()))?;
        Rnn::from_params(cfg, params)
    }
}
