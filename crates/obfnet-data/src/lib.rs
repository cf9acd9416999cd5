//! Dataset readers for obfnet.
//!
//! obfnet trains small obfuscation networks in front of a frozen classifier; this crate is
//! where their training and evaluation data comes from. Every dataset sits behind one trait,
//! [`DatasetReader`] (registry: [`datasets`], [`dataset`]), and yields an [`ImageDataset`] of
//! `rows × cols` `u8` samples, which `obfnet-nn`, `obfnet-privacy` and the `obfnet` binary
//! consume without knowing where it came from:
//!
//! - `mnist`, `fashion-mnist`: the IDX format (plain or gzip, size-capped, every header field
//!   and length checked), 28 × 28 images;
//! - `fsdd`: the Free Spoken Digit Dataset read from its raw WAV files ([`read_wav`]), turned
//!   into 20 × 64 MFCC maps ([`mfcc`]) coded as `u8` ([`MfccQuantiser`]), with the official
//!   split; [`Mfcc::resynthesise`] turns a map back into audio.
//!
//! The readers **never download**: a missing file is an [`Error::Missing`] telling the user to
//! run `obfnet fetch --dataset <name>`, which calls [`fetch::fetch_dataset`] — the one place
//! that obtains files (into `<data_dir>/<name>/`), next to the registry so that adding a dataset
//! is one place. [`write_atomic`] is the workspace's one atomic file write.
//!
//! All errors are one typed [`Error`] naming the file involved; nothing here panics on bad
//! input.
//!
//! # Example
//!
//! Build a tiny IDX pair in memory and parse it back:
//!
//! ```
//! use obfnet_data::{encode_idx_images, encode_idx_labels, parse_idx_images, parse_idx_labels};
//!
//! # fn main() -> obfnet_data::Result<()> {
//! // two 2x3 images, image-major then row-major
//! let pixels: Vec<u8> = (0..12).collect();
//! let (n, rows, cols, parsed) = parse_idx_images(&encode_idx_images(2, 3, &pixels))?;
//! assert_eq!((n, rows, cols), (2, 2, 3));
//! assert_eq!(parsed, pixels);
//!
//! let labels = parse_idx_labels(&encode_idx_labels(&[7, 2]))?;
//! assert_eq!(labels, [7, 2]);
//!
//! // a damaged file is a typed error, not a panic
//! let bad = &encode_idx_labels(&[7, 2])[..9];
//! assert!(matches!(
//!     parse_idx_labels(bad),
//!     Err(obfnet_data::Error::Truncated { expected: 2, found: 1, .. })
//! ));
//! # Ok(())
//! # }
//! ```
//!
//! Reading a real dataset directory (after `obfnet fetch`):
//!
//! ```no_run
//! # fn main() -> obfnet_data::Result<()> {
//! let mnist = obfnet_data::ImageDataset::load_mnist_dir("mnist", "data/mnist".as_ref())?;
//! assert_eq!(mnist.test.image(0).len(), 28 * 28);
//! # Ok(())
//! # }
//! ```

mod atomic;
mod dataset;
mod error;
pub mod fetch;
pub mod fsdd;
mod idx;
pub mod mfcc;
mod registry;
mod user;
mod wav;

pub use atomic::write_atomic;
pub use dataset::{ImageDataset, LabeledImages, MNIST_CLASSES, MNIST_FILE_NAMES, read_split};
pub use error::{Error, Result, WavError};
pub use fsdd::{FSDD_ATTRIBUTION, FsddClip, FsddData, load_fsdd};
pub use idx::{
    MAX_FILE_BYTES, MAX_SIDE, MEMORY_PATH, encode_idx_images, encode_idx_labels, parse_idx_images,
    parse_idx_labels,
};
pub use mfcc::{Mfcc, MfccConfig, MfccQuantiser};
pub use registry::{
    DatasetReader, FASHION_MNIST, FSDD, FsddMfcc, IdxImages, MNIST, Modality, dataset, dataset_names,
    datasets,
};
pub use user::{
    DatasetProblem, DatasetSource, MAX_USER_CLASSES, MAX_USER_DATASET_BYTES, Samples, UserDataset,
    load_folder, load_npz,
};
pub use wav::{MAX_WAV_BYTES, Wav, parse_wav, read_wav};
