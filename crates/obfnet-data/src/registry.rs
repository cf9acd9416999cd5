//! Every dataset obfnet knows, behind one trait.
//!
//! A dataset is a reader that turns the files in `<data_dir>/<name>/` into an [`ImageDataset`]
//! of `rows × cols` `u8` samples with labels. Everything downstream — training, the bundle
//! format, the edge runtime, the `u8` wire, the attacks — only sees that, so adding a sensor is
//! adding a [`DatasetReader`] (and a line in [`datasets`]), not copying the pipeline.

use std::path::Path;

use crate::dataset::ImageDataset;
use crate::error::{Error, Result};
use crate::fsdd::{FSDD_ATTRIBUTION, FsddData, load_fsdd};
use crate::mfcc::MfccConfig;

/// What one `u8` sample value means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Modality {
    /// A grey-level image, 0 = black.
    Image,
    /// An MFCC map coded by [`crate::MfccQuantiser`] (rows = coefficients, columns = frames).
    Mfcc,
}

/// A dataset obfnet can train and evaluate on.
pub trait DatasetReader: std::fmt::Debug + Send + Sync {
    /// The id used on the command line (`--dataset`), as the data subdirectory, and in bundles.
    fn name(&self) -> &'static str;
    /// A human title.
    fn title(&self) -> &'static str;
    /// `(rows, cols)` of every sample.
    fn sample_shape(&self) -> (usize, usize);
    /// Number of classes.
    fn classes(&self) -> usize {
        10
    }
    /// Class names, index = label.
    fn class_names(&self) -> &'static [&'static str];
    /// What the sample values mean.
    fn modality(&self) -> Modality;
    /// The licence / attribution line to show with results, if the licence asks for one.
    fn attribution(&self) -> Option<&'static str> {
        None
    }
    /// Reads both splits from `dir` (normally `<data_dir>/<name>`). Never downloads.
    ///
    /// # Errors
    /// [`Error::Missing`] (telling the user to run `obfnet fetch --dataset <name>`) or the
    /// reader's format errors.
    fn load(&self, dir: &Path) -> Result<ImageDataset>;
}

const DIGITS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
const FASHION: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// A 28 × 28 grey-image dataset in MNIST's four-IDX-file layout (MNIST, Fashion-MNIST).
#[derive(Debug)]
pub struct IdxImages {
    name: &'static str,
    title: &'static str,
    class_names: &'static [&'static str],
}

/// MNIST handwritten digits.
pub const MNIST: IdxImages = IdxImages {
    name: "mnist",
    title: "MNIST handwritten digits",
    class_names: &DIGITS,
};

/// Fashion-MNIST (Zalando), the same layout as MNIST with clothing classes.
pub const FASHION_MNIST: IdxImages = IdxImages {
    name: "fashion-mnist",
    title: "Fashion-MNIST (Zalando Research, MIT licence)",
    class_names: &FASHION,
};

impl DatasetReader for IdxImages {
    fn name(&self) -> &'static str {
        self.name
    }
    fn title(&self) -> &'static str {
        self.title
    }
    fn sample_shape(&self) -> (usize, usize) {
        (28, 28)
    }
    fn class_names(&self) -> &'static [&'static str] {
        self.class_names
    }
    fn modality(&self) -> Modality {
        Modality::Image
    }
    fn load(&self, dir: &Path) -> Result<ImageDataset> {
        ImageDataset::load_mnist_dir(self.name, dir).map_err(|e| match e {
            Error::Missing { path, .. } => Error::Missing {
                hint: format!(
                    "dataset `{}` is not in {}; run `obfnet fetch --dataset {}`",
                    self.name,
                    dir.display(),
                    self.name
                ),
                path,
            },
            other => other,
        })
    }
}

/// FSDD spoken digits as MFCC maps (see [`crate::fsdd`] and [`crate::mfcc`]).
#[derive(Debug)]
pub struct FsddMfcc {
    /// The feature settings.
    pub config: MfccConfig,
}

/// FSDD with the default features ([`MfccConfig::FSDD`]).
pub const FSDD: FsddMfcc = FsddMfcc {
    config: MfccConfig::FSDD,
};

impl FsddMfcc {
    /// Reads FSDD with everything needed to go back to audio (clip list, quantiser).
    ///
    /// # Errors
    /// As [`load_fsdd`].
    pub fn load_full(&self, dir: &Path) -> Result<FsddData> {
        load_fsdd(dir, &self.config)
    }
}

impl DatasetReader for FsddMfcc {
    fn name(&self) -> &'static str {
        "fsdd"
    }
    fn title(&self) -> &'static str {
        "Free Spoken Digit Dataset (raw WAV → MFCC)"
    }
    fn sample_shape(&self) -> (usize, usize) {
        (self.config.n_mfcc, self.config.frames)
    }
    fn class_names(&self) -> &'static [&'static str] {
        &DIGITS
    }
    fn modality(&self) -> Modality {
        Modality::Mfcc
    }
    fn attribution(&self) -> Option<&'static str> {
        Some(FSDD_ATTRIBUTION)
    }
    fn load(&self, dir: &Path) -> Result<ImageDataset> {
        Ok(self.load_full(dir)?.dataset)
    }
}

/// Every registered dataset.
pub fn datasets() -> [&'static dyn DatasetReader; 3] {
    [&MNIST, &FASHION_MNIST, &FSDD]
}

/// The names of every registered dataset.
pub fn dataset_names() -> Vec<&'static str> {
    datasets().iter().map(|d| d.name()).collect()
}

/// The dataset called `name`.
///
/// # Errors
/// [`Error::UnknownDataset`] listing the known names.
pub fn dataset(name: &str) -> Result<&'static dyn DatasetReader> {
    datasets()
        .into_iter()
        .find(|d| d.name() == name)
        .ok_or_else(|| Error::UnknownDataset {
            name: name.to_owned(),
            known: dataset_names(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup() {
        assert_eq!(dataset("fsdd").expect("fsdd").sample_shape(), (20, 64));
        assert_eq!(
            dataset("fashion-mnist").expect("fm").class_names()[9],
            "Ankle boot"
        );
        assert_eq!(dataset("mnist").expect("mnist").modality(), Modality::Image);
        let err = dataset("asl").expect_err("unknown");
        assert!(err.to_string().contains("mnist, fashion-mnist, fsdd"), "{err}");
        for d in datasets() {
            assert_eq!(d.class_names().len(), d.classes());
        }
    }

    #[test]
    fn missing_idx_dir_names_the_dataset_in_the_hint() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = FASHION_MNIST.load(dir.path()).expect_err("missing");
        assert!(
            err.to_string().contains("obfnet fetch --dataset fashion-mnist"),
            "{err}"
        );
    }
}
