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

    /// A WAV file is malformed or in a format the reader does not take.
    #[error("{}: {source}", path.display())]
    Wav {
        /// The file (`<memory>` for in-memory bytes).
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: WavError,
    },

    /// A WAV file's sample rate differs from the one the features are computed for.
    #[error("{}: sample rate {found} Hz, expected {expected} Hz (resampling is not implemented)", path.display())]
    SampleRate {
        /// The file.
        path: PathBuf,
        /// Its sample rate.
        found: u32,
        /// The rate the MFCC configuration is for.
        expected: u32,
    },

    /// A file name in an FSDD directory does not follow `{digit}_{speaker}_{take}.wav`.
    #[error("{}: not an FSDD recording name (expected {{digit}}_{{speaker}}_{{take}}.wav)", path.display())]
    FsddName {
        /// The file.
        path: PathBuf,
    },

    /// An FSDD directory holds fewer recordings than a usable dataset needs.
    #[error("{}: found {found} FSDD recordings, need at least {expected} ({hint})", dir.display())]
    FsddIncomplete {
        /// The `recordings` directory.
        dir: PathBuf,
        /// Recordings found.
        found: usize,
        /// Recordings needed.
        expected: usize,
        /// What to do about it.
        hint: String,
    },

    /// A feature-extraction setting is out of range.
    #[error("invalid MFCC configuration: {field}: {reason}")]
    Config {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },

    /// A user dataset (`folder:` / `npz:`) is unusable; see [`DatasetProblem`](crate::DatasetProblem).
    #[error("{}: {problem}", path.display())]
    Dataset {
        /// The file or directory involved.
        path: PathBuf,
        /// What is wrong.
        problem: crate::user::DatasetProblem,
    },

    /// No dataset of this name is registered.
    #[error("unknown dataset {name:?}; known: {}", known.join(", "))]
    UnknownDataset {
        /// The name asked for.
        name: String,
        /// The registered names.
        known: Vec<&'static str>,
    },
}

/// What is wrong with a WAV file (inside [`Error::Wav`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WavError {
    /// The file does not start with `RIFF`.
    #[error("not a RIFF file")]
    NotRiff,
    /// The RIFF form type is not `WAVE`.
    #[error("RIFF form type is not WAVE")]
    NotWave,
    /// The bytes end inside a header or chunk.
    #[error("truncated {what}")]
    Truncated {
        /// Which part.
        what: &'static str,
    },
    /// A `data` chunk comes before any `fmt ` chunk.
    #[error("data chunk before the fmt chunk")]
    DataBeforeFmt,
    /// There is no `data` chunk.
    #[error("no data chunk")]
    NoData,
    /// The samples are not integer PCM.
    #[error("format tag {format_tag} is not PCM (1)")]
    NotPcm {
        /// The format tag found.
        format_tag: u16,
    },
    /// More than one channel.
    #[error("{channels} channels; only mono is supported")]
    NotMono {
        /// Channels found.
        channels: u16,
    },
    /// Not 16 bits per sample.
    #[error("{bits} bits per sample; only 16 is supported")]
    Not16Bit {
        /// Bits found.
        bits: u16,
    },
    /// The sample rate is zero.
    #[error("sample rate is 0")]
    ZeroSampleRate,
    /// The data chunk holds half a sample.
    #[error("data chunk of {len} bytes is not a whole number of 16-bit samples")]
    OddDataLength {
        /// Its length.
        len: usize,
    },
    /// Too many samples to encode in a RIFF file.
    #[error("too many samples for a RIFF file")]
    TooLong,
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
