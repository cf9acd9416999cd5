//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong while reading a dataset.
///
/// Every variant that concerns a file carries its `path`; the path-free parsers
/// ([`parse_idx_images`](crate::parse_idx_images), [`parse_idx_labels`](crate::parse_idx_labels))
/// use the placeholder [`MEMORY_PATH`](crate::MEMORY_PATH) (`<memory>`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A dataset file is not there (neither plain nor `.gz`).
    #[error("dataset file not found: {} ({hint})", path.display())]
    Missing {
        /// The plain (non-`.gz`) path that was looked for.
        path: PathBuf,
        /// What to do about it.
        hint: String,
    },

    /// Reading a file failed.
    #[error("cannot read {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// Gzip decompression failed (corrupt or not really gzip).
    #[error("cannot decompress gzip data of {}", path.display())]
    Decompress {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The file, or its decompressed content, is larger than the reader accepts.
    #[error("{} is larger than the limit of {limit} bytes (after decompression)", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit in bytes.
        limit: u64,
    },

    /// The file ends before its IDX header does.
    #[error("{}: truncated IDX header: need {expected} bytes, found {found}", path.display())]
    TruncatedHeader {
        /// The file.
        path: PathBuf,
        /// Header bytes needed.
        expected: usize,
        /// Bytes present.
        found: usize,
    },

    /// The first two bytes are not the IDX magic `00 00`.
    #[error("{}: not an IDX file: magic bytes are {:02x} {:02x}, expected 00 00", path.display(), found[0], found[1])]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// The two bytes found.
        found: [u8; 2],
    },

    /// The IDX data-type byte is not `0x08` (unsigned byte).
    #[error("{}: unsupported IDX data type 0x{dtype:02x} (only 0x08 = u8 is supported)", path.display())]
    UnsupportedDtype {
        /// The file.
        path: PathBuf,
        /// The data-type byte found.
        dtype: u8,
    },

    /// The number of dimensions is not the one this kind of file has.
    #[error("{}: IDX file has {found} dimensions, expected {expected}", path.display())]
    WrongDimCount {
        /// The file.
        path: PathBuf,
        /// Dimensions expected (3 for images, 1 for labels).
        expected: u8,
        /// Dimensions declared in the header.
        found: u8,
    },

    /// A dimension is zero.
    #[error("{}: IDX dimension {axis} is zero", path.display())]
    ZeroDim {
        /// The file.
        path: PathBuf,
        /// Which dimension (0-based).
        axis: usize,
    },

    /// A dimension is larger than the reader accepts.
    #[error("{}: IDX dimension {axis} is {value}, larger than the limit {max}", path.display())]
    DimTooLarge {
        /// The file.
        path: PathBuf,
        /// Which dimension (0-based).
        axis: usize,
        /// Its value.
        value: u32,
        /// The limit.
        max: u32,
    },

    /// The product of the dimensions overflows `usize`.
    #[error("{}: IDX dimensions {dims:?} overflow the addressable size", path.display())]
    SizeOverflow {
        /// The file.
        path: PathBuf,
        /// The dimensions declared.
        dims: Vec<u32>,
    },

    /// Fewer data bytes than the dimensions promise.
    #[error("{}: truncated IDX data: expected {expected} bytes, found {found}", path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Data bytes promised by the header.
        expected: usize,
        /// Data bytes present.
        found: usize,
    },

    /// More data bytes than the dimensions promise.
    #[error("{}: {} trailing bytes after IDX data: expected {expected} bytes, found {found}", path.display(), found.saturating_sub(*expected))]
    TrailingBytes {
        /// The file.
        path: PathBuf,
        /// Data bytes promised by the header.
        expected: usize,
        /// Data bytes present (always more than `expected`).
        found: usize,
    },

    /// A label is not a valid class index.
    #[error("{}: label {label} at index {index} is out of range (classes: {classes})", path.display())]
    LabelOutOfRange {
        /// The labels file.
        path: PathBuf,
        /// Which sample.
        index: usize,
        /// The label found.
        label: u8,
        /// The number of classes (labels must be `< classes`).
        classes: usize,
    },

    /// The images and labels files hold different numbers of samples.
    #[error("{} holds {images} images but {} holds {labels} labels", images_path.display(), labels_path.display())]
    CountMismatch {
        /// The images file.
        images_path: PathBuf,
        /// The labels file.
        labels_path: PathBuf,
        /// Number of images.
        images: usize,
        /// Number of labels.
        labels: usize,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
