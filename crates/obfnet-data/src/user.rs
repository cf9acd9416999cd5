//! User datasets: `folder:PATH` (torchvision ImageFolder layout, 8-bit PNG) and `npz:PATH`
//! (NumPy `.npz` with `x_train`, `y_train`, `x_test`, `y_test`).
//!
//! Samples keep their own shape (`C × H × W` for images, anything for `.npz`, e.g. `[128]`
//! sensor windows) as `u8`. Loading is all-or-nothing: every file is checked before a
//! [`UserDataset`] is returned, and any problem is an [`Error::Dataset`] naming the file and a
//! [`DatasetProblem`] — never a panic, never half a dataset.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use crate::dataset::{ImageDataset, LabeledImages};
use crate::error::{Error, Result};

/// Largest dataset (all samples of both splits, in bytes) a user dataset may hold in memory.
pub const MAX_USER_DATASET_BYTES: u64 = 4 << 30;

/// Largest number of classes (labels are stored as `u8`).
pub const MAX_USER_CLASSES: usize = 256;

/// Where a user dataset comes from, parsed from a `--dataset` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatasetSource {
    /// `folder:PATH`: `PATH/train/<class>/*.png` and `PATH/test/<class>/*.png`.
    Folder(PathBuf),
    /// `npz:PATH`: a NumPy `.npz` archive.
    Npz(PathBuf),
}

impl DatasetSource {
    /// Parses `folder:PATH` or `npz:PATH`; `None` for anything else (e.g. a registered
    /// dataset name such as `mnist`).
    pub fn parse(spec: &str) -> Option<DatasetSource> {
        if let Some(p) = spec.strip_prefix("folder:") {
            Some(DatasetSource::Folder(PathBuf::from(p)))
        } else {
            spec.strip_prefix("npz:")
                .map(|p| DatasetSource::Npz(PathBuf::from(p)))
        }
    }

    /// The path.
    pub fn path(&self) -> &Path {
        match self {
            DatasetSource::Folder(p) | DatasetSource::Npz(p) => p,
        }
    }

    /// Loads the dataset.
    ///
    /// # Errors
    /// [`Error::Dataset`], [`Error::Io`].
    pub fn load(&self) -> Result<UserDataset> {
        match self {
            DatasetSource::Folder(p) => load_folder(p),
            DatasetSource::Npz(p) => load_npz(p),
        }
    }
}

/// What is wrong with a user dataset (inside [`Error::Dataset`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DatasetProblem {
    /// A split (`train`/`test` directory, or `x_*`/`y_*` array) is absent.
    #[error("missing {what}")]
    MissingSplit {
        /// What was looked for.
        what: String,
    },
    /// A split holds no samples.
    #[error("the {split} split holds no samples")]
    EmptySplit {
        /// `train` or `test`.
        split: &'static str,
    },
    /// The training split has no class subfolders.
    #[error("no class subfolders (expected train/<class>/*.png)")]
    NoClasses,
    /// The test split has a class folder the training split lacks.
    #[error("test class {class:?} has no training folder (training classes: {known:?})")]
    UnknownTestClass {
        /// The class.
        class: String,
        /// The training classes.
        known: Vec<String>,
    },
    /// More classes than labels can hold.
    #[error("{found} classes (at most {MAX_USER_CLASSES})")]
    TooManyClasses {
        /// Classes found.
        found: usize,
    },
    /// A sample's shape differs from the first sample's.
    #[error(
        "sample shape {found:?} differs from {expected:?} (every sample must have the same size and channels)"
    )]
    MixedSizes {
        /// The first sample's shape.
        expected: Vec<usize>,
        /// This sample's shape.
        found: Vec<usize>,
    },
    /// A PNG that is not 8-bit grey or 8-bit RGB.
    #[error("unsupported PNG: {detail} (only 8-bit greyscale or 8-bit RGB are read)")]
    UnsupportedPng {
        /// Colour type and bit depth found.
        detail: String,
    },
    /// A file could not be decoded.
    #[error("unreadable: {detail}")]
    Unreadable {
        /// The decoder's message.
        detail: String,
    },
    /// An array has the wrong element type or rank.
    #[error("array {array}: {detail}")]
    BadArray {
        /// `x_train`, …
        array: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// Sample and label counts differ.
    #[error("{split}: {samples} samples but {labels} labels")]
    CountMismatch {
        /// `train` or `test`.
        split: &'static str,
        /// Samples.
        samples: usize,
        /// Labels.
        labels: usize,
    },
    /// A label is negative or not below the class count.
    #[error("{split}: label {label} of sample {index} is out of range (classes: {classes})")]
    LabelOutOfRange {
        /// `train` or `test`.
        split: &'static str,
        /// Sample index.
        index: usize,
        /// The label.
        label: i64,
        /// Number of classes.
        classes: usize,
    },
    /// The dataset is larger than [`MAX_USER_DATASET_BYTES`].
    #[error("{bytes} bytes of samples, more than the limit of {MAX_USER_DATASET_BYTES}")]
    TooLarge {
        /// Bytes needed.
        bytes: u64,
    },
}

/// One split: `len()` samples of `shape`, row-major, sample after sample.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Samples {
    /// The per-sample shape (`[C, H, W]`, `[L]`, …).
    pub shape: Vec<usize>,
    /// All values.
    pub data: Vec<u8>,
    /// One label per sample.
    pub labels: Vec<u8>,
}

impl Samples {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Values per sample.
    pub fn sample_len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Sample `i`, or `None` out of range.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let n = self.sample_len();
        self.data
            .get(i.checked_mul(n)?..i.checked_mul(n)?.checked_add(n)?)
    }
}

/// A user dataset: both splits, the classes and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserDataset {
    /// A short name (the folder or file stem).
    pub name: String,
    /// Where it was read from.
    pub source: DatasetSource,
    /// Class names, index = label (folder names; `"0"`, `"1"`, … for `.npz`).
    pub class_names: Vec<String>,
    /// Training split.
    pub train: Samples,
    /// Test split.
    pub test: Samples,
}

impl UserDataset {
    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.class_names.len()
    }

    /// The per-sample shape (the same in both splits).
    pub fn sample_shape(&self) -> &[usize] {
        &self.train.shape
    }

    /// The dataset as `rows × cols` samples for the parts of obfnet that take 2-D samples:
    /// `[H, W]` → `H × W`; `[C, H, W]` → `(C·H) × W` (channel planes stacked); `[L]` → `1 × L`;
    /// higher ranks → `(product of all but the last) × last`. The values are not moved, only
    /// the shape is reinterpreted.
    pub fn to_image_dataset(&self) -> ImageDataset {
        let (rows, cols) = rows_cols(&self.train.shape);
        let split = |s: &Samples| LabeledImages {
            rows,
            cols,
            pixels: s.data.clone(),
            labels: s.labels.clone(),
        };
        ImageDataset {
            name: self.name.clone(),
            train: split(&self.train),
            test: split(&self.test),
            classes: self.classes(),
        }
    }
}

fn rows_cols(shape: &[usize]) -> (usize, usize) {
    match shape {
        [] => (1, 1),
        [l] => (1, *l),
        [rest @ .., last] => (rest.iter().product(), *last),
    }
}

fn problem(path: &Path, problem: DatasetProblem) -> Error {
    Error::Dataset {
        path: path.to_owned(),
        problem,
    }
}

fn dataset_name(path: &Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| !s.is_empty())
        .unwrap_or("user")
        .to_owned()
}

// ---------------------------------------------------------------------------------------------
// folder:PATH

/// Reads an ImageFolder tree: `root/train/<class>/*.png` and `root/test/<class>/*.png`; classes
/// are the training folder names in sorted order (as torchvision does), samples `C × H × W`
/// (C = 1 for grey, 3 for RGB). Files without a `.png` extension and hidden entries are skipped.
///
/// # Errors
/// [`Error::Dataset`] (missing split, no classes, a test class without training folder, mixed
/// sizes or channel counts, a PNG that is not 8-bit grey/RGB, an unreadable file, an empty
/// split), [`Error::Io`].
pub fn load_folder(root: &Path) -> Result<UserDataset> {
    let train_dir = root.join("train");
    let test_dir = root.join("test");
    for (dir, what) in [(&train_dir, "train/ directory"), (&test_dir, "test/ directory")] {
        if !dir.is_dir() {
            return Err(problem(dir, DatasetProblem::MissingSplit { what: what.into() }));
        }
    }
    let classes = class_dirs(&train_dir)?;
    if classes.is_empty() {
        return Err(problem(&train_dir, DatasetProblem::NoClasses));
    }
    if classes.len() > MAX_USER_CLASSES {
        return Err(problem(
            &train_dir,
            DatasetProblem::TooManyClasses { found: classes.len() },
        ));
    }
    for c in class_dirs(&test_dir)? {
        if !classes.contains(&c) {
            return Err(problem(
                &test_dir.join(&c),
                DatasetProblem::UnknownTestClass {
                    class: c,
                    known: classes.clone(),
                },
            ));
        }
    }
    let mut shape: Option<Vec<usize>> = None;
    let mut total = 0u64;
    let train = read_folder_split(&train_dir, "train", &classes, &mut shape, &mut total)?;
    let test = read_folder_split(&test_dir, "test", &classes, &mut shape, &mut total)?;
    Ok(UserDataset {
        name: dataset_name(root),
        source: DatasetSource::Folder(root.to_owned()),
        class_names: classes,
        train,
        test,
    })
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}

fn visible_entries(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io(dir))? {
        let e = e.map_err(io(dir))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') {
            out.push((name, e.path()));
        }
    }
    out.sort();
    Ok(out)
}

fn class_dirs(dir: &Path) -> Result<Vec<String>> {
    Ok(visible_entries(dir)?
        .into_iter()
        .filter(|(_, p)| p.is_dir())
        .map(|(n, _)| n)
        .collect())
}

fn read_folder_split(
    dir: &Path,
    split: &'static str,
    classes: &[String],
    shape: &mut Option<Vec<usize>>,
    total: &mut u64,
) -> Result<Samples> {
    let mut data = Vec::new();
    let mut labels = Vec::new();
    for (label, class) in classes.iter().enumerate() {
        let cdir = dir.join(class);
        if !cdir.is_dir() {
            continue; // a class may be absent from the test split
        }
        for (name, path) in visible_entries(&cdir)? {
            let is_png = Path::new(&name)
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("png"));
            if !is_png || !path.is_file() {
                continue;
            }
            let (s, chw) = read_png_chw(&path)?;
            match shape {
                None => *shape = Some(s),
                Some(expected) if *expected != s => {
                    return Err(problem(
                        &path,
                        DatasetProblem::MixedSizes {
                            expected: expected.clone(),
                            found: s,
                        },
                    ));
                }
                Some(_) => {}
            }
            *total += chw.len() as u64;
            if *total > MAX_USER_DATASET_BYTES {
                return Err(problem(dir, DatasetProblem::TooLarge { bytes: *total }));
            }
            data.extend_from_slice(&chw);
            labels.push(label as u8);
        }
    }
    if labels.is_empty() {
        return Err(problem(dir, DatasetProblem::EmptySplit { split }));
    }
    Ok(Samples {
        shape: shape.clone().unwrap_or_default(),
        data,
        labels,
    })
}

/// Decodes an 8-bit grey or RGB PNG into channel-first `[C, H, W]`.
fn read_png_chw(path: &Path) -> Result<(Vec<usize>, Vec<u8>)> {
    let unreadable = |e: &dyn std::fmt::Display| {
        problem(
            path,
            DatasetProblem::Unreadable {
                detail: e.to_string(),
            },
        )
    };
    let file = File::open(path).map_err(io(path))?;
    let decoder = png::Decoder::new(BufReader::new(file));
    let mut reader = decoder.read_info().map_err(|e| unreadable(&e))?;
    let (color, depth) = reader.output_color_type();
    let channels = match (color, depth) {
        (png::ColorType::Grayscale, png::BitDepth::Eight) => 1,
        (png::ColorType::Rgb, png::BitDepth::Eight) => 3,
        _ => {
            return Err(problem(
                path,
                DatasetProblem::UnsupportedPng {
                    detail: format!("{color:?}, {depth:?} bits"),
                },
            ));
        }
    };
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| unreadable(&"image too large"))?;
    if size as u64 > MAX_USER_DATASET_BYTES {
        return Err(problem(path, DatasetProblem::TooLarge { bytes: size as u64 }));
    }
    let mut buf = vec![0u8; size];
    let info = reader.next_frame(&mut buf).map_err(|e| unreadable(&e))?;
    let (w, h) = (info.width as usize, info.height as usize);
    let mut chw = vec![0u8; channels * h * w];
    for y in 0..h {
        let row = buf
            .get(y * info.line_size..y * info.line_size + w * channels)
            .ok_or_else(|| unreadable(&"short PNG row"))?;
        for x in 0..w {
            for c in 0..channels {
                chw[(c * h + y) * w + x] = row[x * channels + c];
            }
        }
    }
    Ok((vec![channels, h, w], chw))
}

// ---------------------------------------------------------------------------------------------
// npz:PATH

/// Reads a NumPy `.npz` (plain or compressed, as `np.savez` / `np.savez_compressed` write)
/// with `x_train`, `y_train`, `x_test`, `y_test`: `x_*` uint8 of shape `[N, ...]` (any per-sample
/// shape, the same in both splits), `y_*` integer labels of shape `[N]` (uint8, int32 or int64).
/// Classes: `0 ..= max(y_train)`; a test label outside that range is an error.
///
/// # Errors
/// [`Error::Dataset`] (missing array, wrong dtype or rank, count mismatch, label out of range,
/// different sample shapes, empty split, unreadable archive), [`Error::Io`].
pub fn load_npz(path: &Path) -> Result<UserDataset> {
    use ndarray::ArrayD;
    use ndarray_npy::{NpzReader, ReadNpyError, ReadNpzError};

    let file = File::open(path).map_err(io(path))?;
    let mut npz = NpzReader::new(BufReader::new(file)).map_err(|e| {
        problem(
            path,
            DatasetProblem::Unreadable {
                detail: e.to_string(),
            },
        )
    })?;
    let names = npz.names().map_err(|e| {
        problem(
            path,
            DatasetProblem::Unreadable {
                detail: e.to_string(),
            },
        )
    })?;
    for want in ["x_train", "y_train", "x_test", "y_test"] {
        if !names.iter().any(|n| n == want) {
            return Err(problem(
                path,
                DatasetProblem::MissingSplit {
                    what: format!("array {want} (the archive holds {names:?})"),
                },
            ));
        }
    }
    let array_err = |array: &'static str, e: ReadNpzError| {
        let detail = match &e {
            ReadNpzError::Npy(ReadNpyError::WrongDescriptor(d)) => format!("element type {d:?}"),
            _ => e.to_string(),
        };
        problem(path, DatasetProblem::BadArray { array, detail })
    };
    let mut read_x = |array: &'static str| -> Result<ArrayD<u8>> {
        npz.by_name::<ndarray::OwnedRepr<u8>, ndarray::IxDyn>(array)
            .map_err(|e| match e {
                ReadNpzError::Npy(ReadNpyError::WrongDescriptor(d)) => problem(
                    path,
                    DatasetProblem::BadArray {
                        array,
                        detail: format!("element type {d:?}, expected uint8 (|u1)"),
                    },
                ),
                other => array_err(array, other),
            })
    };
    let x_train = read_x("x_train")?;
    let x_test = read_x("x_test")?;
    let y_train = read_labels(&mut npz, path, "y_train")?;
    let y_test = read_labels(&mut npz, path, "y_test")?;

    let split = |x: ArrayD<u8>,
                 y: Vec<i64>,
                 xs: &'static str,
                 split: &'static str|
     -> Result<(Vec<usize>, Vec<u8>, Vec<i64>)> {
        let shape = x.shape().to_vec();
        let Some((&n, sample)) = shape.split_first() else {
            return Err(problem(
                path,
                DatasetProblem::BadArray {
                    array: xs,
                    detail: "a scalar; expected [N, ...]".into(),
                },
            ));
        };
        if n == 0 || sample.iter().product::<usize>() == 0 {
            return Err(problem(path, DatasetProblem::EmptySplit { split }));
        }
        if y.len() != n {
            return Err(problem(
                path,
                DatasetProblem::CountMismatch {
                    split,
                    samples: n,
                    labels: y.len(),
                },
            ));
        }
        // standard (row-major) order regardless of how NumPy stored it
        let data: Vec<u8> = x.as_standard_layout().iter().copied().collect();
        Ok((sample.to_vec(), data, y))
    };
    let (s_train, d_train, y_train) = split(x_train, y_train, "x_train", "train")?;
    let (s_test, d_test, y_test) = split(x_test, y_test, "x_test", "test")?;
    if s_train != s_test {
        return Err(problem(
            path,
            DatasetProblem::MixedSizes {
                expected: s_train,
                found: s_test,
            },
        ));
    }
    let max = y_train.iter().copied().max().unwrap_or(0);
    let classes = usize::try_from(max.saturating_add(1)).unwrap_or(0).max(1);
    let check = |y: &[i64], split: &'static str, limit: usize| -> Result<Vec<u8>> {
        y.iter()
            .enumerate()
            .map(|(index, &label)| {
                if label < 0 || label as u64 >= limit as u64 || label as u64 >= MAX_USER_CLASSES as u64 {
                    Err(problem(
                        path,
                        DatasetProblem::LabelOutOfRange {
                            split,
                            index,
                            label,
                            classes: limit.min(MAX_USER_CLASSES),
                        },
                    ))
                } else {
                    Ok(label as u8)
                }
            })
            .collect()
    };
    let l_train = check(&y_train, "train", MAX_USER_CLASSES)?;
    let l_test = check(&y_test, "test", classes)?;
    Ok(UserDataset {
        name: dataset_name(path),
        source: DatasetSource::Npz(path.to_owned()),
        class_names: (0..classes).map(|c| c.to_string()).collect(),
        train: Samples {
            shape: s_train.clone(),
            data: d_train,
            labels: l_train,
        },
        test: Samples {
            shape: s_train,
            data: d_test,
            labels: l_test,
        },
    })
}

fn read_labels<R: std::io::Read + std::io::Seek>(
    npz: &mut ndarray_npy::NpzReader<R>,
    path: &Path,
    array: &'static str,
) -> Result<Vec<i64>> {
    use ndarray::{ArrayD, IxDyn, OwnedRepr};
    use ndarray_npy::{ReadNpyError, ReadNpzError};
    fn flat<T: Copy + Into<i64>>(a: &ArrayD<T>) -> Option<Vec<i64>> {
        (a.ndim() == 1).then(|| a.iter().map(|&v| v.into()).collect())
    }
    let wrong = |e: &ReadNpzError| matches!(e, ReadNpzError::Npy(ReadNpyError::WrongDescriptor(_)));
    let rank_err = || {
        problem(
            path,
            DatasetProblem::BadArray {
                array,
                detail: "labels must be a 1-D array [N]".into(),
            },
        )
    };
    let other = |e: ReadNpzError| {
        problem(
            path,
            DatasetProblem::BadArray {
                array,
                detail: e.to_string(),
            },
        )
    };
    match npz.by_name::<OwnedRepr<u8>, IxDyn>(array) {
        Ok(a) => return flat(&a).ok_or_else(rank_err),
        Err(e) if !wrong(&e) => return Err(other(e)),
        Err(_) => {}
    }
    match npz.by_name::<OwnedRepr<i64>, IxDyn>(array) {
        Ok(a) => return flat(&a).ok_or_else(rank_err),
        Err(e) if !wrong(&e) => return Err(other(e)),
        Err(_) => {}
    }
    match npz.by_name::<OwnedRepr<i32>, IxDyn>(array) {
        Ok(a) => flat(&a).ok_or_else(rank_err),
        Err(e) if !wrong(&e) => Err(other(e)),
        Err(e) => Err(problem(
            path,
            DatasetProblem::BadArray {
                array,
                detail: format!("{e}; labels must be uint8, int32 or int64"),
            },
        )),
    }
}
