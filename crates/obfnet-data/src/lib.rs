//! Dataset readers for obfnet.
//!
//! obfnet trains small obfuscation networks in front of a frozen classifier; this crate is
//! where their training and evaluation data comes from. It reads the IDX format of MNIST and
//! Fashion-MNIST (plain or gzip, size-capped, every header field and length checked) into
//! [`LabeledImages`] / [`ImageDataset`], which `obfnet-nn`, `obfnet-privacy` and the `obfnet`
//! binary consume.
//!
//! It **never downloads**: a missing file is an [`Error::Missing`] telling the user to run
//! `obfnet fetch`, the binary's verb that obtains the files (into `<data_dir>/mnist/`).
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

mod dataset;
mod error;
mod idx;

pub use dataset::{ImageDataset, LabeledImages, MNIST_CLASSES, MNIST_FILE_NAMES, read_split};
pub use error::{Error, Result};
pub use idx::{
    MAX_FILE_BYTES, MAX_SIDE, MEMORY_PATH, encode_idx_images, encode_idx_labels, parse_idx_images,
    parse_idx_labels,
};
