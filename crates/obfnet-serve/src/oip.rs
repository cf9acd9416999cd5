//! Protocol-neutral parts of the Open Inference Protocol: which inputs and outputs the model has,
//! and the checks every request passes before any compute (REST, gRPC and MQTT share them).

use crate::backend::ModelSpec;
use crate::error::InvalidKind;
use crate::{Error, Result};

/// Name of the model's single input tensor.
pub const INPUT_NAME: &str = "input";
/// Name of the predicted-class output (INT64, shape `[n]`).
pub const LABEL_OUTPUT: &str = "label";
/// Name of the class-probabilities output (FP32, shape `[n, classes]`); off when scores are off.
pub const PROBS_OUTPUT: &str = "probabilities";
/// The model version this server serves.
pub const MODEL_VERSION: &str = "1";
/// Protocol extensions announced in the server metadata.
pub const EXTENSIONS: [&str; 1] = ["binary_tensor_data"];

/// The input datatypes the model accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputType {
    /// Values already in the model's normalised input space (what an f32 obfuscator emits).
    Fp32,
    /// Bytes 0..=255: raw pixels, or an edge device's u8-encoded obfuscated output; normalised
    /// on the server with the model's normalisation.
    Uint8,
}

impl InputType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            InputType::Fp32 => 4,
            InputType::Uint8 => 1,
        }
    }

    /// The protocol's datatype string.
    pub fn as_str(self) -> &'static str {
        match self {
            InputType::Fp32 => "FP32",
            InputType::Uint8 => "UINT8",
        }
    }
}

/// Values of one input as they came off the wire (not yet checked for finiteness).
#[derive(Clone, Debug, PartialEq)]
pub enum InputValues {
    /// FP32 values.
    F32(Vec<f32>),
    /// UINT8 values.
    U8(Vec<u8>),
}

/// The checked header of the request's input: datatype and number of images.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InputHeader {
    /// Datatype.
    pub dtype: InputType,
    /// Images in the request.
    pub n: usize,
}

impl InputHeader {
    /// Elements the data must hold.
    pub fn numel(&self, spec: &ModelSpec) -> usize {
        self.n * spec.input_dim()
    }

    /// Bytes the raw (binary) data must hold.
    pub fn byte_size(&self, spec: &ModelSpec) -> usize {
        self.numel(spec) * self.dtype.size()
    }
}

fn invalid(kind: InvalidKind, detail: impl Into<String>) -> Error {
    Error::invalid(kind, detail)
}

/// Checks the one input's name, datatype and shape against the model; returns the datatype and
/// the number of images.
///
/// Accepted shapes (`d = rows·cols`, `n ≥ 1` images): `[d]`, `[rows, cols]` (one image),
/// `[n, d]`, `[n, rows, cols]`, `[n, 1, rows, cols]`.
pub fn check_input_header(
    spec: &ModelSpec,
    max_rows: usize,
    name: &str,
    datatype: &str,
    shape: &[i64],
) -> Result<InputHeader> {
    if name != INPUT_NAME {
        return Err(invalid(
            InvalidKind::Input,
            format!(
                "unknown input {:?}; the model has one input named {INPUT_NAME:?}",
                truncate(name)
            ),
        ));
    }
    let dtype = match datatype {
        "FP32" => InputType::Fp32,
        "UINT8" => InputType::Uint8,
        other => {
            return Err(invalid(
                InvalidKind::Datatype,
                format!(
                    "input {INPUT_NAME:?} has datatype {:?}; use FP32 (normalised values) or UINT8 (0..255)",
                    truncate(other)
                ),
            ));
        }
    };
    let (rows, cols, d) = (spec.rows as i64, spec.cols as i64, spec.input_dim() as i64);
    let bad_shape = || {
        invalid(
            InvalidKind::Shape,
            format!(
                "input shape {shape:?} is not one of [{d}], [{rows},{cols}], [n,{d}], [n,{rows},{cols}], [n,1,{rows},{cols}] with n >= 1"
            ),
        )
    };
    if shape.len() > 8 {
        return Err(invalid(
            InvalidKind::Shape,
            format!("input has {} dimensions", shape.len()),
        ));
    }
    let n = match shape {
        [x] if *x == d => 1,
        [r, c] if *r == rows && *c == cols => 1,
        [n, x] if *x == d => *n,
        [n, r, c] if *r == rows && *c == cols => *n,
        [n, 1, r, c] if *r == rows && *c == cols => *n,
        _ => return Err(bad_shape()),
    };
    if n < 1 {
        return Err(bad_shape());
    }
    if n as u64 > max_rows as u64 {
        return Err(invalid(
            InvalidKind::Shape,
            format!("{n} images in one request; the limit is {max_rows}"),
        ));
    }
    Ok(InputHeader { dtype, n: n as usize })
}

/// Decodes little-endian raw bytes (binary extension, gRPC `raw_input_contents`, MQTT).
pub fn decode_raw(header: &InputHeader, spec: &ModelSpec, bytes: &[u8]) -> Result<InputValues> {
    let want = header.byte_size(spec);
    if bytes.len() != want {
        return Err(invalid(
            InvalidKind::Shape,
            format!(
                "input {INPUT_NAME:?} holds {} bytes; {} {} values need {want}",
                bytes.len(),
                header.numel(spec),
                header.dtype.as_str()
            ),
        ));
    }
    Ok(match header.dtype {
        InputType::Uint8 => InputValues::U8(bytes.to_vec()),
        InputType::Fp32 => InputValues::F32(
            bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ),
    })
}

/// Checks the element count, finiteness and range, and maps the values into the model's input
/// space (UINT8 through the model's normalisation; FP32 as is).
pub fn to_model_input(header: &InputHeader, spec: &ModelSpec, values: InputValues) -> Result<Vec<f32>> {
    let want = header.numel(spec);
    let got = match &values {
        InputValues::F32(v) => v.len(),
        InputValues::U8(v) => v.len(),
    };
    if got != want {
        return Err(invalid(
            InvalidKind::Shape,
            format!("input {INPUT_NAME:?} holds {got} values; its shape needs {want}"),
        ));
    }
    match values {
        InputValues::U8(v) => Ok(v.iter().map(|&b| spec.normalisation.apply(b)).collect()),
        InputValues::F32(v) => {
            if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                return Err(invalid(
                    InvalidKind::Value,
                    format!("input {INPUT_NAME:?} holds a NaN or infinite value (first at element {i})"),
                ));
            }
            Ok(v)
        }
    }
}

/// UINT8 values that arrived as wider integers (JSON numbers, gRPC `uint_contents`).
pub fn u8_from_wide(values: impl IntoIterator<Item = u64>) -> Result<Vec<u8>> {
    values
        .into_iter()
        .map(|v| {
            u8::try_from(v).map_err(|_| {
                invalid(
                    InvalidKind::Value,
                    format!("UINT8 input holds {v}, outside 0..=255"),
                )
            })
        })
        .collect()
}

/// One requested output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputKind {
    /// The predicted class.
    Label,
    /// Class probabilities.
    Probabilities,
}

impl OutputKind {
    /// Output name.
    pub fn name(self) -> &'static str {
        match self {
            OutputKind::Label => LABEL_OUTPUT,
            OutputKind::Probabilities => PROBS_OUTPUT,
        }
    }

    /// Datatype string.
    pub fn datatype(self) -> &'static str {
        match self {
            OutputKind::Label => "INT64",
            OutputKind::Probabilities => "FP32",
        }
    }
}

/// Resolves a requested output name.
pub fn output_kind(name: &str, scores: bool) -> Result<OutputKind> {
    match name {
        LABEL_OUTPUT => Ok(OutputKind::Label),
        PROBS_OUTPUT if scores => Ok(OutputKind::Probabilities),
        PROBS_OUTPUT => Err(invalid(
            InvalidKind::Output,
            format!("output {PROBS_OUTPUT:?} is turned off on this server; ask for {LABEL_OUTPUT:?}"),
        )),
        other => Err(invalid(
            InvalidKind::Output,
            format!(
                "unknown output {:?}; the model has {LABEL_OUTPUT:?}{}",
                truncate(other),
                if scores {
                    format!(" and {PROBS_OUTPUT:?}")
                } else {
                    String::new()
                }
            ),
        )),
    }
}

/// The outputs a request gets when it names none.
pub fn default_outputs(scores: bool) -> Vec<OutputKind> {
    if scores {
        vec![OutputKind::Label, OutputKind::Probabilities]
    } else {
        vec![OutputKind::Label]
    }
}

/// Rejects the same output asked for twice.
pub fn check_unique(outputs: &[OutputKind]) -> Result<()> {
    for (i, o) in outputs.iter().enumerate() {
        if outputs[..i].contains(o) {
            return Err(invalid(
                InvalidKind::Output,
                format!("output {:?} requested twice", o.name()),
            ));
        }
    }
    Ok(())
}

/// What the model computed for one request.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    /// Images.
    pub n: usize,
    /// Classes per image.
    pub classes: usize,
    /// Predicted class per image.
    pub labels: Vec<i64>,
    /// Softmax probabilities, `n × classes`, row-major.
    pub probabilities: Vec<f32>,
}

impl Prediction {
    /// Softmax and argmax of `n × classes` logits.
    pub fn from_logits(logits: &[f32], n: usize, classes: usize) -> Prediction {
        let mut labels = Vec::with_capacity(n);
        let mut probabilities = Vec::with_capacity(n * classes);
        for row in logits.chunks_exact(classes.max(1)).take(n) {
            let mut best = 0;
            let mut max = f32::NEG_INFINITY;
            for (i, &v) in row.iter().enumerate() {
                if v > max {
                    max = v;
                    best = i;
                }
            }
            let exps: Vec<f32> = row.iter().map(|&v| (v - max).exp()).collect();
            let sum: f32 = exps.iter().sum();
            probabilities.extend(exps.iter().map(|e| e / sum));
            labels.push(best as i64);
        }
        Prediction {
            n,
            classes,
            labels,
            probabilities,
        }
    }

    /// The protocol shape of an output.
    pub fn shape(&self, kind: OutputKind) -> Vec<i64> {
        match kind {
            OutputKind::Label => vec![self.n as i64],
            OutputKind::Probabilities => vec![self.n as i64, self.classes as i64],
        }
    }

    /// An output as little-endian bytes.
    pub fn raw(&self, kind: OutputKind) -> Vec<u8> {
        match kind {
            OutputKind::Label => self.labels.iter().flat_map(|v| v.to_le_bytes()).collect(),
            OutputKind::Probabilities => self.probabilities.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }
}

/// Echoes client-chosen strings (names) into error messages without letting them grow the reply.
pub(crate) fn truncate(s: &str) -> String {
    const MAX: usize = 64;
    if s.len() <= MAX {
        s.to_string()
    } else {
        let mut end = MAX;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    }
}
