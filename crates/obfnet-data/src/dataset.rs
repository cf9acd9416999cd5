//! Labelled image sets and the MNIST-style directory loader.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::idx::{MAX_FILE_BYTES, images_from_bytes, labels_from_bytes, read_file_capped};

/// Number of classes of the 10-class datasets this crate reads (MNIST, Fashion-MNIST).
pub const MNIST_CLASSES: usize = 10;

/// The four raw IDX file names of an MNIST-style directory, in the order
/// train images, train labels, test images, test labels. Each may also be present as `<name>.gz`.
pub const MNIST_FILE_NAMES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// n images of rows x cols u8 pixels (row-major, image-major) with their labels.
///
/// Values built by this crate always satisfy `pixels.len() == labels.len() * rows * cols`;
/// the fields are public, so code that builds one by hand must keep that invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabeledImages {
    /// Image height in pixels.
    pub rows: usize,
    /// Image width in pixels.
    pub cols: usize,
    /// All pixels, image after image, each row-major.
    pub pixels: Vec<u8>,
    /// One class label per image.
    pub labels: Vec<u8>,
}

impl LabeledImages {
    /// Number of samples (the number of labels).
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// `rows * cols`.
    pub fn pixels_per_image(&self) -> usize {
        self.rows.saturating_mul(self.cols)
    }

    /// The pixels of image `i`, or `None` if `i` is out of range.
    pub fn get_image(&self, i: usize) -> Option<&[u8]> {
        if i >= self.len() {
            return None;
        }
        let ppi = self.pixels_per_image();
        let start = i.checked_mul(ppi)?;
        self.pixels.get(start..start.checked_add(ppi)?)
    }

    /// The pixels of image `i` (`rows * cols` bytes, row-major).
    ///
    /// # Panics
    /// If `i >= self.len()`, like slice indexing (use [`get_image`](Self::get_image) to get an
    /// `Option` instead).
    pub fn image(&self, i: usize) -> &[u8] {
        match self.get_image(i) {
            Some(img) => img,
            None => panic!("image index {i} out of range for {} images", self.len()),
        }
    }

    /// The first `min(n, self.len())` samples.
    pub fn take(&self, n: usize) -> LabeledImages {
        let m = n.min(self.len());
        let px = m.saturating_mul(self.pixels_per_image()).min(self.pixels.len());
        LabeledImages {
            rows: self.rows,
            cols: self.cols,
            pixels: self.pixels[..px].to_vec(),
            labels: self.labels[..m].to_vec(),
        }
    }
}

/// Reads an images file and a labels file (each plain or gzip) of a 10-class dataset.
///
/// Checks both files' headers and lengths, that they hold the same number of samples, and that
/// every label is `< 10` ([`MNIST_CLASSES`]).
///
/// # Errors
/// I/O, format, [`Error::CountMismatch`] or [`Error::LabelOutOfRange`], each naming the file.
pub fn read_split(images: &Path, labels: &Path) -> Result<LabeledImages> {
    let (n, rows, cols, pixels) = images_from_bytes(&read_file_capped(images, MAX_FILE_BYTES)?, images)?;
    let label_values = labels_from_bytes(&read_file_capped(labels, MAX_FILE_BYTES)?, labels)?;
    if label_values.len() != n {
        return Err(Error::CountMismatch {
            images_path: images.to_path_buf(),
            labels_path: labels.to_path_buf(),
            images: n,
            labels: label_values.len(),
        });
    }
    check_labels(&label_values, MNIST_CLASSES, labels)?;
    Ok(LabeledImages {
        rows,
        cols,
        pixels,
        labels: label_values,
    })
}

/// Fails on the first label `>= classes`.
fn check_labels(labels: &[u8], classes: usize, path: &Path) -> Result<()> {
    match labels
        .iter()
        .enumerate()
        .find(|&(_, &l)| usize::from(l) >= classes)
    {
        Some((index, &label)) => Err(Error::LabelOutOfRange {
            path: path.to_path_buf(),
            index,
            label,
            classes,
        }),
        None => Ok(()),
    }
}

/// A train/test dataset as found in a directory of IDX files.
#[derive(Clone, Debug)]
pub struct ImageDataset {
    /// A short name, e.g. `mnist`.
    pub name: String,
    /// The training split.
    pub train: LabeledImages,
    /// The test split.
    pub test: LabeledImages,
    /// Number of classes.
    pub classes: usize,
}

impl ImageDataset {
    /// Reads `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`,
    /// `t10k-labels-idx1-ubyte` from `dir`, each optionally with `.gz` (the plain file wins
    /// when both exist). Never downloads.
    ///
    /// # Errors
    /// [`Error::Missing`] for an absent file, whose message tells the user to run
    /// `obfnet fetch`; otherwise as [`read_split`].
    pub fn load_mnist_dir(name: &str, dir: &Path) -> Result<ImageDataset> {
        // Locate all four before reading any, so a missing file is reported at once.
        let [train_x, train_y, test_x, test_y] = MNIST_FILE_NAMES.map(|file| locate(name, dir, file));
        let (train_x, train_y, test_x, test_y) = (train_x?, train_y?, test_x?, test_y?);
        let train = read_split(&train_x, &train_y)?;
        let test = read_split(&test_x, &test_y)?;
        Ok(ImageDataset {
            name: name.to_owned(),
            train,
            test,
            classes: MNIST_CLASSES,
        })
    }
}

/// `dir/file` if it exists, else `dir/file.gz` if that exists, else [`Error::Missing`].
fn locate(name: &str, dir: &Path, file: &str) -> Result<PathBuf> {
    let plain = dir.join(file);
    if plain.is_file() {
        return Ok(plain);
    }
    let gz = dir.join(format!("{file}.gz"));
    if gz.is_file() {
        return Ok(gz);
    }
    Err(Error::Missing {
        hint: format!(
            "dataset `{name}` is not in {}; run `obfnet fetch` to download it there, \
             or put the four IDX files (plain or .gz) in that directory",
            dir.display()
        ),
        path: plain,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{encode_idx_images, encode_idx_labels};
    use std::io::Write;

    fn sample(n: u8) -> LabeledImages {
        LabeledImages {
            rows: 2,
            cols: 2,
            pixels: (0..4 * n).collect(),
            labels: (0..n).map(|i| i % 10).collect(),
        }
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, bytes).expect("write fixture");
        path
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).expect("write to Vec");
        enc.finish().expect("finish gzip")
    }

    /// Writes an MNIST-style directory; `gz` picks which of the four files are gzipped.
    fn write_dir(dir: &Path, train: &LabeledImages, test: &LabeledImages, gz: [bool; 4]) {
        let files = [
            encode_idx_images(train.rows, train.cols, &train.pixels),
            encode_idx_labels(&train.labels),
            encode_idx_images(test.rows, test.cols, &test.pixels),
            encode_idx_labels(&test.labels),
        ];
        for ((name, bytes), gz) in MNIST_FILE_NAMES.iter().zip(files).zip(gz) {
            if gz {
                write(dir, &format!("{name}.gz"), &gzip(&bytes));
            } else {
                write(dir, name, &bytes);
            }
        }
    }

    #[test]
    fn accessors() {
        let s = sample(3);
        assert_eq!(s.len(), 3);
        assert!(!s.is_empty());
        assert_eq!(s.pixels_per_image(), 4);
        assert_eq!(s.image(1), &[4, 5, 6, 7]);
        assert_eq!(s.get_image(3), None);
        let t = s.take(2);
        assert_eq!(t.len(), 2);
        assert_eq!(t.pixels, (0..8).collect::<Vec<u8>>());
        assert_eq!(s.take(99), s);
        assert!(s.take(0).is_empty());
    }

    #[test]
    #[should_panic(expected = "out of range")]
    fn image_out_of_range_panics() {
        let _ = sample(1).image(1);
    }

    #[test]
    fn read_split_plain_and_gz() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = sample(5);
        let x = write(dir.path(), "x", &encode_idx_images(2, 2, &s.pixels));
        let y = write(dir.path(), "y.gz", &gzip(&encode_idx_labels(&s.labels)));
        assert_eq!(read_split(&x, &y).expect("read"), s);
        // gzip detected by magic, without the suffix
        let xz = write(dir.path(), "xz", &gzip(&encode_idx_images(2, 2, &s.pixels)));
        assert_eq!(read_split(&xz, &y).expect("read"), s);
    }

    #[test]
    fn label_out_of_range() {
        let dir = tempfile::tempdir().expect("tempdir");
        let x = write(dir.path(), "x", &encode_idx_images(1, 1, &[0, 0, 0]));
        let y = write(dir.path(), "y", &encode_idx_labels(&[9, 0, 10]));
        let err = read_split(&x, &y).expect_err("label 10");
        assert!(
            matches!(&err, Error::LabelOutOfRange { index: 2, label: 10, classes: 10, path } if *path == y),
            "{err:?}"
        );
    }

    #[test]
    fn count_mismatch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let x = write(dir.path(), "x", &encode_idx_images(1, 1, &[0, 0, 0]));
        let y = write(dir.path(), "y", &encode_idx_labels(&[1, 2]));
        let err = read_split(&x, &y).expect_err("3 vs 2");
        assert!(
            matches!(
                err,
                Error::CountMismatch {
                    images: 3,
                    labels: 2,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn format_errors_name_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut bytes = encode_idx_images(1, 1, &[0, 0]);
        bytes.pop();
        let x = write(dir.path(), "cut-images", &bytes);
        let y = write(dir.path(), "y", &encode_idx_labels(&[1, 2]));
        let err = read_split(&x, &y).expect_err("truncated");
        assert!(
            matches!(&err, Error::Truncated { path, expected: 2, found: 1 } if *path == x),
            "{err:?}"
        );
        assert!(err.to_string().contains("cut-images"), "{err}");
    }

    #[test]
    fn load_dir_plain_and_mixed_gz() {
        let (train, test) = (sample(6), sample(3));
        for gz in [[false; 4], [true; 4], [true, false, false, true]] {
            let dir = tempfile::tempdir().expect("tempdir");
            write_dir(dir.path(), &train, &test, gz);
            let ds = ImageDataset::load_mnist_dir("tiny", dir.path()).expect("load");
            assert_eq!((ds.name.as_str(), ds.classes), ("tiny", 10));
            assert_eq!((&ds.train, &ds.test), (&train, &test), "gz = {gz:?}");
        }
    }

    #[test]
    fn missing_file_says_run_fetch() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_dir(dir.path(), &sample(2), &sample(2), [false; 4]);
        std::fs::remove_file(dir.path().join("t10k-labels-idx1-ubyte")).expect("rm");
        let err = ImageDataset::load_mnist_dir("mnist", dir.path()).expect_err("missing");
        assert!(
            matches!(&err, Error::Missing { path, .. } if path.ends_with("t10k-labels-idx1-ubyte")),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("obfnet fetch"), "{msg}");
        assert!(msg.contains("t10k-labels-idx1-ubyte"), "{msg}");
    }

    #[test]
    fn empty_dir_reports_first_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = ImageDataset::load_mnist_dir("mnist", dir.path()).expect_err("missing");
        assert!(
            matches!(&err, Error::Missing { path, .. } if path.ends_with("train-images-idx3-ubyte")),
            "{err:?}"
        );
    }
}
