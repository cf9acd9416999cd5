//! `obfnet-core`: the edge side of obfnet, `no_std` + `alloc`.
//!
//! obfnet trains small *obfuscation networks* (ObfNets) in front of a frozen server model and
//! ships them to IoT devices. A device runs an ObfNet on its raw sensor data and sends only the
//! obfuscated result to the server. This crate holds what both sides must agree on, with no
//! engine and a tiny dependency list (`sha2`, `thiserror`, `rand_core`), so it compiles for microcontrollers:
//!
//! * the **bundle format** ([`Bundle`], format versions [`MIN_FORMAT_VERSION`] to
//!   [`FORMAT_VERSION`]): one file carrying K trained nets, a line-oriented text [`Manifest`]
//!   and a [`safetensors`] weights section, sealed with a sha256 integrity trailer; version 2
//!   adds per-output-channel int8 weights ([`Bundle::quantize_int8`]). The full byte-level
//!   description lives in `FORMAT.md` next to this crate's `Cargo.toml`;
//! * the **edge runtime** ([`runtime::Runtime`]): validates a bundle, picks one of its nets per
//!   sample with a caller-supplied random source, runs it in `f32` or int8 (dense and conv2d
//!   layers, ReLU), and encodes the result for the wire ([`runtime::Wire`]: `f32`, or `u8` in the
//!   raw sensor range so that an obfuscated sample looks like a raw one);
//! * the typed [`Error`] every decoder reports instead of panicking.
//!
//! Everything else in the workspace depends on this crate; it depends on nothing in it.
//!
//! # Features
//!
//! * `std` (default): implements `std::error::Error` for [`Error`] through `thiserror/std`,
//!   enables `sha2/std`, and adds [`runtime::OsRandom`] (the OS's cryptographic generator,
//!   through `getrandom`). Without it the crate is `#![no_std]` and needs only `alloc`; its
//!   dependencies are then `sha2`, `thiserror` and `rand_core` (and what they pull in), nothing else.
//!
//! # Examples
//!
//! Build a one-net bundle, serialise it and load it back with full validation:
//!
//! ```
//! use obfnet_core::{
//!     Activation, Bundle, DType, LayerSpec, LayerWeights, Manifest, NetSpec, Normalisation,
//!     TensorSpec, FORMAT_VERSION,
//! };
//!
//! let manifest = Manifest {
//!     format_version: FORMAT_VERSION,
//!     created_by: "obfnet-0.1.0".into(),
//!     dataset: "toy".into(),
//!     input: TensorSpec { shape: vec![1, 4, 4], dtype: DType::F32 },
//!     normalisation: Normalisation::MNIST,
//!     output: TensorSpec { shape: vec![1, 4, 4], dtype: DType::F32 },
//!     weights: DType::F32,
//!     output_noise: None,
//!     server_model_sha256: obfnet_core::sha256(b"the frozen server model"),
//!     nets: vec![NetSpec {
//!         name: "tiny-0".into(),
//!         arch: "obfnet2".into(),
//!         seed: 1000,
//!         layers: vec![
//!             LayerSpec::Dense { inputs: 16, outputs: 8, act: Activation::Relu },
//!             LayerSpec::Dense { inputs: 8, outputs: 16, act: Activation::None },
//!         ],
//!         sha256: [0; 32], // filled in by Bundle::new
//!     }],
//! };
//! let weights = vec![vec![
//!     LayerWeights { weight: vec![0.01; 8 * 16], bias: vec![0.0; 8] },
//!     LayerWeights { weight: vec![-0.02; 16 * 8], bias: vec![0.5; 16] },
//! ]];
//! let bundle = Bundle::new(manifest, weights)?;
//!
//! let bytes = bundle.to_bytes()?;
//! let loaded = Bundle::from_bytes(&bytes)?;
//! assert_eq!(loaded, bundle);
//! loaded.expect_server_model(&obfnet_core::sha256(b"the frozen server model"))?;
//!
//! let (weight, bias) = loaded.layer_weights(0, 1).ok_or("no such layer")?;
//! assert_eq!((weight.len(), bias.len()), (128, 16));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

mod bundle;
mod error;
mod manifest;
pub mod noise;
mod quant;
pub mod rng;
pub mod runtime;
pub mod safetensors;

pub use bundle::{
    Bundle, LayerParams, LayerWeights, bias_tensor_name, weight_scale_tensor_name, weight_tensor_name,
};
pub use error::{Error, Result};
pub use manifest::{Activation, LayerSpec, Manifest, NetSpec, Normalisation};
pub use noise::OutputNoise;

/// The newest bundle format version this crate reads and writes (2: adds int8 weights; 3: adds
/// output noise drawn on the device, [`OutputNoise`]).
pub const FORMAT_VERSION: u32 = 3;

/// The oldest bundle format version this crate reads (1: `F32` weights only). Writers emit the
/// oldest version able to express a bundle ([`Manifest::oldest_version`]).
pub const MIN_FORMAT_VERSION: u32 = 1;

/// The 8 bytes every bundle starts with.
pub const MAGIC: [u8; 8] = *b"OBFNBNDL";

/// Largest manifest section accepted, in bytes (1 MiB).
pub const MAX_MANIFEST_LEN: usize = 1 << 20;

/// Largest value accepted for any single dimension (shape entry, layer width, kernel, ...).
pub const MAX_DIM: usize = 1 << 20;

/// Largest element count of any shape or layer activation, and of the parameters of a bundle.
pub const MAX_ELEMENTS: usize = 1 << 28;

/// Largest rank of the manifest's input and output shapes.
pub const MAX_RANK: usize = 8;

/// Largest number of nets in one bundle.
pub const MAX_NETS: usize = 1024;

/// Largest number of layers in one net.
pub const MAX_LAYERS: usize = 1024;

/// Longest text token (name, arch, dataset, created-by) in a manifest, in bytes.
pub const MAX_TOKEN_LEN: usize = 128;

/// Element type of a tensor.
///
/// # Examples
///
/// ```
/// use obfnet_core::DType;
/// assert_eq!(DType::F32.size_bytes(), 4);
/// assert_eq!(DType::I8.to_string(), "I8");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    /// IEEE-754 binary32, little-endian.
    F32,
    /// Signed 8-bit integer.
    I8,
}

impl DType {
    /// Bytes per element.
    pub const fn size_bytes(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::I8 => 1,
        }
    }

    /// The name safetensors uses (`"F32"`, `"I8"`).
    pub const fn safetensors_name(self) -> &'static str {
        match self {
            DType::F32 => "F32",
            DType::I8 => "I8",
        }
    }

    /// The name the manifest uses (`"f32"`, `"i8"`).
    pub const fn manifest_name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::I8 => "i8",
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.safetensors_name())
    }
}

/// Shape and element type of one sample (no batch dimension).
///
/// # Examples
///
/// ```
/// use obfnet_core::{DType, TensorSpec};
/// let mnist = TensorSpec { shape: vec![1, 28, 28], dtype: DType::F32 };
/// assert_eq!(mnist.numel(), 784);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct TensorSpec {
    /// Per-sample shape, outermost dimension first.
    pub shape: Vec<usize>,
    /// Element type.
    pub dtype: DType,
}

impl TensorSpec {
    /// Number of elements (product of the shape; saturates instead of overflowing).
    pub fn numel(&self) -> usize {
        numel_saturating(&self.shape)
    }
}

/// A dense, row-major (C order) tensor with owned data.
///
/// # Examples
///
/// ```
/// use obfnet_core::{DType, Tensor, TensorData};
/// let t = Tensor { shape: vec![2, 2], data: TensorData::F32(vec![1.0, 2.0, 3.0, 4.0]) };
/// assert_eq!(t.dtype(), DType::F32);
/// assert_eq!(t.numel(), 4);
/// assert_eq!(t.as_f32(), Some(&[1.0, 2.0, 3.0, 4.0][..]));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// Shape, outermost dimension first.
    pub shape: Vec<usize>,
    /// Elements in row-major order; `data.len()` should equal the product of `shape`.
    pub data: TensorData,
}

/// The element buffer of a [`Tensor`].
#[derive(Clone, Debug, PartialEq)]
pub enum TensorData {
    /// 32-bit floats.
    F32(Vec<f32>),
    /// Signed bytes (quantised weights).
    I8(Vec<i8>),
}

impl Tensor {
    /// The element type.
    pub fn dtype(&self) -> DType {
        match self.data {
            TensorData::F32(_) => DType::F32,
            TensorData::I8(_) => DType::I8,
        }
    }

    /// Number of elements actually held (the buffer length, not the shape product).
    pub fn numel(&self) -> usize {
        match &self.data {
            TensorData::F32(v) => v.len(),
            TensorData::I8(v) => v.len(),
        }
    }

    /// The elements, if the tensor is `F32`.
    pub fn as_f32(&self) -> Option<&[f32]> {
        match &self.data {
            TensorData::F32(v) => Some(v),
            TensorData::I8(_) => None,
        }
    }

    /// The elements, if the tensor is `I8`.
    pub fn as_i8(&self) -> Option<&[i8]> {
        match &self.data {
            TensorData::I8(v) => Some(v),
            TensorData::F32(_) => None,
        }
    }

    /// Feeds the little-endian bytes of the elements to `sink`, in chunks.
    pub(crate) fn for_each_le_chunk(&self, mut sink: impl FnMut(&[u8])) {
        match &self.data {
            TensorData::F32(v) => {
                let mut buf = [0u8; 1024];
                for chunk in v.chunks(buf.len() / 4) {
                    let mut n = 0;
                    for (dst, x) in buf.chunks_exact_mut(4).zip(chunk) {
                        dst.copy_from_slice(&x.to_le_bytes());
                        n += 4;
                    }
                    sink(buf.get(..n).unwrap_or_default());
                }
            }
            TensorData::I8(v) => {
                let mut buf = [0u8; 1024];
                for chunk in v.chunks(buf.len()) {
                    for (dst, x) in buf.iter_mut().zip(chunk) {
                        *dst = x.to_le_bytes()[0];
                    }
                    sink(buf.get(..chunk.len()).unwrap_or_default());
                }
            }
        }
    }
}

/// Product of `shape`, or `None` on overflow. The empty shape (a scalar) has one element.
pub(crate) fn numel_checked(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// Product of `shape`, saturating at `usize::MAX`.
pub(crate) fn numel_saturating(shape: &[usize]) -> usize {
    shape.iter().fold(1usize, |acc, &d| acc.saturating_mul(d))
}

/// SHA-256 of `bytes`.
///
/// # Examples
///
/// ```
/// let d = obfnet_core::sha256(b"abc");
/// assert_eq!(
///     obfnet_core::hex(&d),
///     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
/// );
/// ```
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

/// Lower-case hexadecimal encoding of `bytes`.
///
/// # Examples
///
/// ```
/// assert_eq!(obfnet_core::hex(&[0x00, 0xab, 0x7f]), "00ab7f");
/// ```
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

/// Parses exactly 64 hexadecimal digits (either case) into 32 bytes.
///
/// # Examples
///
/// ```
/// let d = obfnet_core::sha256(b"x");
/// assert_eq!(obfnet_core::parse_hex32(&obfnet_core::hex(&d)), Some(d));
/// assert_eq!(obfnet_core::parse_hex32("abc"), None);
/// ```
pub fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (dst, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let hi = nibble(*pair.first()?)?;
        let lo = nibble(*pair.get(1)?)?;
        *dst = (hi << 4) | lo;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn hex_round_trip() {
        let d = sha256(b"obfnet");
        let h = hex(&d);
        assert_eq!(h.len(), 64);
        assert_eq!(parse_hex32(&h), Some(d));
        assert_eq!(parse_hex32(&h.to_uppercase()), Some(d));
        assert_eq!(parse_hex32(&h[..63]), None);
        let mut bad = h.clone();
        bad.replace_range(10..11, "g");
        assert_eq!(parse_hex32(&bad), None);
        // Multi-byte characters must not cause a panic.
        assert_eq!(parse_hex32(&"é".repeat(32)), None);
    }

    #[test]
    fn le_chunks_cover_all_bytes() {
        let t = Tensor {
            shape: vec![700],
            data: TensorData::F32((0..700).map(|i| i as f32).collect()),
        };
        let mut bytes = Vec::new();
        t.for_each_le_chunk(|c| bytes.extend_from_slice(c));
        let expect: Vec<u8> = (0..700).flat_map(|i| (i as f32).to_le_bytes()).collect();
        assert_eq!(bytes, expect);

        let t = Tensor {
            shape: vec![2000],
            data: TensorData::I8((0..2000).map(|i| (i % 256) as u8 as i8).collect()),
        };
        let mut bytes = Vec::new();
        t.for_each_le_chunk(|c| bytes.extend_from_slice(c));
        assert_eq!(bytes, (0..2000).map(|i| (i % 256) as u8).collect::<Vec<u8>>());
    }

    #[test]
    fn numel_helpers() {
        assert_eq!(numel_checked(&[]), Some(1));
        assert_eq!(numel_checked(&[2, 3, 4]), Some(24));
        assert_eq!(numel_checked(&[usize::MAX, 2]), None);
        assert_eq!(numel_saturating(&[usize::MAX, 2]), usize::MAX);
    }
}
