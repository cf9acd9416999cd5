//! The crate's single error type.

use alloc::string::String;
use alloc::vec::Vec;

use crate::{DType, hex};

/// Result alias used throughout `obfnet-core`.
pub type Result<T> = core::result::Result<T, Error>;

/// Everything that can go wrong while building, encoding or decoding a bundle.
///
/// Every decoder in this crate reports malformed input through one of these variants and never
/// panics. The variants carry structured fields so that callers (a server, a CLI, a device
/// firmware) can tell "this file is cut short" from "this file was built for another model".
///
/// # Examples
///
/// ```
/// use obfnet_core::{Bundle, Error};
///
/// let err = Bundle::from_bytes(b"NOTABNDL").unwrap_err();
/// assert!(matches!(err, Error::BadMagic { .. }));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input does not start with the bundle magic `OBFNBNDL`.
    #[error("not an obfnet bundle: the file starts with {found:02x?}, expected the magic \"OBFNBNDL\"")]
    BadMagic {
        /// The first (up to 8) bytes that were found instead.
        found: Vec<u8>,
    },

    /// The container or the manifest declares a format version this reader does not know.
    #[error("unsupported bundle format version {found}; this reader supports versions {oldest} to {newest}")]
    UnsupportedVersion {
        /// The version found in the input.
        found: u32,
        /// The oldest version this reader implements ([`crate::MIN_FORMAT_VERSION`]).
        oldest: u32,
        /// The newest version this reader implements ([`crate::FORMAT_VERSION`]).
        newest: u32,
    },

    /// The container's version and the manifest's `obfnet-bundle` line disagree.
    #[error("the container declares format version {container} but its manifest says {manifest}")]
    VersionMismatch {
        /// Version in the binary container header.
        container: u32,
        /// Version in the manifest's first line.
        manifest: u32,
    },

    /// A quantisation scale is not a positive finite number.
    #[error("tensor `{tensor}` element {index} is not a positive finite scale")]
    InvalidScale {
        /// Tensor name.
        tensor: String,
        /// Index of the first offending element.
        index: usize,
    },

    /// An input or output buffer handed to the runtime has the wrong length.
    #[error("{what} holds {found} values, the bundle's nets need {expected}")]
    BufferLength {
        /// Which buffer ("input", "output").
        what: &'static str,
        /// Values the nets need.
        expected: usize,
        /// Values given.
        found: usize,
    },

    /// A net index outside the bundle.
    #[error("net {index} does not exist: the bundle holds {k} nets")]
    NoSuchNet {
        /// The requested index.
        index: usize,
        /// Nets in the bundle.
        k: usize,
    },

    /// The random source failed to produce bytes (e.g. the OS generator is unavailable).
    #[error("the random source failed: {reason}")]
    Randomness {
        /// What the source reported.
        reason: String,
    },

    /// The input ends before a length or section it declares.
    #[error("input is truncated: {needed} bytes are needed but only {available} are present")]
    Truncated {
        /// Bytes the input would need to hold the declared structure.
        needed: usize,
        /// Bytes actually present.
        available: usize,
    },

    /// Running a bundle would need more memory than the runtime's budget allows.
    #[error(
        "memory budget exceeded: the bundle needs {needed} bytes ({weights} of weights, {scratch} of scratch buffers) but the budget is {budget} bytes"
    )]
    MemoryBudget {
        /// Total bytes needed (weights + scratch).
        needed: u64,
        /// Bytes of weights in run-time layout.
        weights: u64,
        /// Bytes of the per-thread scratch buffers (sized by the widest layer).
        scratch: u64,
        /// The budget.
        budget: u64,
    },

    /// A declared length or count exceeds a hard limit of the format.
    #[error("{what} is too large: {found} exceeds the limit of {limit}")]
    TooLarge {
        /// What was too large (e.g. "manifest length").
        what: &'static str,
        /// The value found.
        found: u64,
        /// The largest value accepted.
        limit: u64,
    },

    /// Bytes follow the integrity trailer.
    #[error("trailing bytes: the bundle should end after {expected} bytes but the input has {found}")]
    TrailingBytes {
        /// Length of the bundle as declared by its sections.
        expected: usize,
        /// Length of the input.
        found: usize,
    },

    /// The sha256 trailer does not match the bundle's contents (corruption or tampering).
    ///
    /// This is an integrity check, not authentication: anyone can recompute the trailer.
    #[error(
        "integrity check failed: trailer says sha256 {}, contents hash to {}",
        hex(expected),
        hex(found)
    )]
    IntegrityMismatch {
        /// The digest stored in the trailer.
        expected: [u8; 32],
        /// The digest of the bytes before the trailer.
        found: [u8; 32],
    },

    /// The manifest section is not valid UTF-8.
    #[error("manifest is not valid UTF-8 (valid up to byte {valid_up_to})")]
    ManifestNotUtf8 {
        /// Length of the valid UTF-8 prefix.
        valid_up_to: usize,
    },

    /// A syntax or value error on one line of the manifest text.
    #[error("manifest line {line}: {reason}")]
    Manifest {
        /// 1-based line number.
        line: usize,
        /// What is wrong with the line.
        reason: String,
    },

    /// A manifest field holds a value the format cannot represent or does not allow.
    #[error("invalid manifest field `{field}`: {reason}")]
    InvalidField {
        /// The field, e.g. `dataset` or `net 1 name`.
        field: String,
        /// Why the value was rejected.
        reason: &'static str,
    },

    /// The input normalisation is not usable (non-finite, or non-positive scale/std).
    #[error("invalid normalisation: {reason}")]
    InvalidNormalisation {
        /// Why the parameters were rejected.
        reason: &'static str,
    },

    /// A layer's hyper-parameters are out of range.
    #[error("net {net} layer {layer}: {reason}")]
    InvalidLayer {
        /// Net index.
        net: usize,
        /// Layer index within the net.
        layer: usize,
        /// Why the layer was rejected.
        reason: &'static str,
    },

    /// A layer's input size does not match what the previous layer (or the input) produces.
    #[error("net {net} layer {layer} takes {found} inputs but receives {expected}")]
    LayerChain {
        /// Net index.
        net: usize,
        /// Layer index within the net.
        layer: usize,
        /// Number of values arriving at the layer.
        expected: usize,
        /// The layer's declared input size.
        found: usize,
    },

    /// A net's last layer does not produce the manifest's output shape.
    #[error("net {net} produces {found} values but the manifest's output shape holds {expected}")]
    NetOutput {
        /// Net index.
        net: usize,
        /// Number of elements of the manifest's output shape.
        expected: usize,
        /// Output size of the net's last layer.
        found: usize,
    },

    /// The safetensors JSON header is malformed.
    #[error("safetensors header, byte {offset}: {reason}")]
    SafetensorsHeader {
        /// Byte offset inside the JSON header.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },

    /// One tensor entry of a safetensors header is malformed or inconsistent.
    #[error("safetensors tensor `{tensor}`: {reason}")]
    SafetensorsEntry {
        /// Tensor name.
        tensor: String,
        /// What is wrong.
        reason: &'static str,
    },

    /// A safetensors entry uses a dtype this crate does not support.
    #[error("tensor `{tensor}` has unsupported dtype `{dtype}` (supported: F32, I8)")]
    UnsupportedDType {
        /// Tensor name.
        tensor: String,
        /// The dtype string found.
        dtype: String,
    },

    /// The same tensor name appears twice.
    #[error("tensor `{tensor}` appears more than once")]
    DuplicateTensor {
        /// Tensor name.
        tensor: String,
    },

    /// A tensor name cannot be written (reserved or empty).
    #[error("tensor name `{tensor}` cannot be used: {reason}")]
    InvalidTensorName {
        /// Tensor name.
        tensor: String,
        /// Why it was rejected.
        reason: &'static str,
    },

    /// The safetensors data section holds bytes that no tensor covers.
    #[error("safetensors data section is {len} bytes but its tensors cover only {covered}")]
    UncoveredData {
        /// Bytes covered by tensors.
        covered: usize,
        /// Length of the data section.
        len: usize,
    },

    /// A safetensors entry's byte range does not match its shape and dtype.
    #[error("tensor `{tensor}` spans {found} bytes but its shape and dtype need {expected}")]
    TensorByteLength {
        /// Tensor name.
        tensor: String,
        /// Bytes implied by shape and dtype.
        expected: usize,
        /// Bytes in its `data_offsets` range.
        found: usize,
    },

    /// A tensor's element buffer does not match its shape.
    #[error("tensor `{tensor}` has {found} elements but its shape needs {expected}")]
    ElementCount {
        /// Tensor name.
        tensor: String,
        /// Elements implied by the shape.
        expected: usize,
        /// Elements supplied.
        found: usize,
    },

    /// A tensor the manifest implies is absent.
    #[error("tensor `{tensor}` required by the manifest is missing")]
    MissingTensor {
        /// Tensor name.
        tensor: String,
    },

    /// A tensor is present that the manifest does not describe.
    #[error("tensor `{tensor}` is not described by the manifest")]
    UnexpectedTensor {
        /// Tensor name.
        tensor: String,
    },

    /// A tensor's shape differs from the one the manifest implies.
    #[error("tensor `{tensor}` has shape {found:?}, the manifest implies {expected:?}")]
    ShapeMismatch {
        /// Tensor name.
        tensor: String,
        /// Shape implied by the manifest.
        expected: Vec<usize>,
        /// Shape found.
        found: Vec<usize>,
    },

    /// A tensor's dtype differs from the one the manifest implies.
    #[error("tensor `{tensor}` has dtype {found}, the manifest implies {expected}")]
    DTypeMismatch {
        /// Tensor name.
        tensor: String,
        /// Dtype implied by the manifest.
        expected: DType,
        /// Dtype found.
        found: DType,
    },

    /// A floating-point parameter is NaN or infinite.
    #[error("tensor `{tensor}` element {index} is not finite")]
    NonFinite {
        /// Tensor name.
        tensor: String,
        /// Index of the first offending element.
        index: usize,
    },

    /// A net's parameters do not hash to the sha256 recorded in the manifest.
    #[error("the weights of net {net} do not match the sha256 recorded in the manifest")]
    DigestMismatch {
        /// Net index.
        net: usize,
    },

    /// The bundle was trained against a different server model.
    #[error(
        "bundle was built for server model sha256 {}, expected {}",
        hex(found),
        hex(expected)
    )]
    ServerModelMismatch {
        /// The server model digest the caller expected.
        expected: [u8; 32],
        /// The server model digest recorded in the bundle.
        found: [u8; 32],
    },

    /// [`crate::Bundle::new`] got weights for a different number of nets than the manifest lists.
    #[error("weights were given for {found} nets but the manifest lists {expected}")]
    NetCount {
        /// Nets in the manifest.
        expected: usize,
        /// Nets in the weights.
        found: usize,
    },

    /// [`crate::Bundle::new`] got weights for a different number of layers than a net has.
    #[error("net {net}: weights were given for {found} layers but the manifest lists {expected}")]
    LayerCount {
        /// Net index.
        net: usize,
        /// Layers in the manifest.
        expected: usize,
        /// Layers in the weights.
        found: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn messages_name_the_problem() {
        let e = Error::UnsupportedVersion {
            found: 7,
            oldest: 1,
            newest: 2,
        };
        assert_eq!(
            e.to_string(),
            "unsupported bundle format version 7; this reader supports versions 1 to 2"
        );
        let e = Error::ShapeMismatch {
            tensor: "net0.layer0.weight".into(),
            expected: alloc::vec![2, 3],
            found: alloc::vec![3, 2],
        };
        assert!(e.to_string().contains("[3, 2]"));
        let e = Error::ServerModelMismatch {
            expected: [0; 32],
            found: [0xab; 32],
        };
        assert!(e.to_string().contains("abababab"));
    }
}
