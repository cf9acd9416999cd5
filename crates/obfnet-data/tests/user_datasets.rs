//! `folder:` and `npz:` user datasets, with fixtures written here (PNG via the `png` crate,
//! `.npz` via `ndarray-npy`'s writer): good datasets load with the right shapes, labels and
//! values; every kind of bad dataset is a typed error.

use std::fs::File;
use std::path::Path;

use ndarray::{Array1, ArrayD, IxDyn};
use ndarray_npy::NpzWriter;
use obfnet_data::{DatasetProblem, DatasetSource, Error, load_folder, load_npz};

fn write_png(path: &Path, w: u32, h: u32, color: png::ColorType, depth: png::BitDepth, data: &[u8]) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let mut enc = png::Encoder::new(File::create(path).expect("create"), w, h);
    enc.set_color(color);
    enc.set_depth(depth);
    let mut wr = enc.write_header().expect("header");
    wr.write_image_data(data).expect("data");
}

fn grey(path: &Path, w: u32, h: u32, v: u8) {
    let data: Vec<u8> = (0..w * h).map(|i| v.wrapping_add(i as u8)).collect();
    write_png(path, w, h, png::ColorType::Grayscale, png::BitDepth::Eight, &data);
}

fn problem_of(r: obfnet_data::Result<obfnet_data::UserDataset>) -> DatasetProblem {
    match r {
        Err(Error::Dataset { problem, .. }) => problem,
        other => panic!("expected a dataset error, got {other:?}"),
    }
}

#[test]
fn folder_grey_loads_classes_labels_and_pixels() {
    let d = tempfile::tempdir().expect("tmp");
    let root = d.path().join("shapes");
    grey(&root.join("train/circle/a.png"), 5, 4, 0);
    grey(&root.join("train/circle/b.PNG"), 5, 4, 10);
    grey(&root.join("train/square/c.png"), 5, 4, 20);
    grey(&root.join("test/square/d.png"), 5, 4, 30);
    std::fs::write(root.join("train/circle/notes.txt"), "ignored").expect("write");
    let ds = DatasetSource::parse(&format!("folder:{}", root.display()))
        .expect("a folder spec")
        .load()
        .expect("load");
    assert_eq!(ds.name, "shapes");
    assert_eq!(ds.class_names, ["circle", "square"]);
    assert_eq!(ds.sample_shape(), [1, 4, 5]);
    assert_eq!(ds.train.labels, [0, 0, 1]);
    assert_eq!(ds.test.labels, [1]);
    assert_eq!(ds.train.get(2).expect("sample")[..3], [20, 21, 22]);
    let img = ds.to_image_dataset();
    assert_eq!((img.train.rows, img.train.cols, img.classes), (4, 5, 2));
    assert_eq!(img.test.image(0)[0], 30);
}

#[test]
fn folder_rgb_is_channel_first() {
    let d = tempfile::tempdir().expect("tmp");
    // 2×1 RGB image: pixel 0 = (1, 2, 3), pixel 1 = (4, 5, 6)
    for split in ["train", "test"] {
        write_png(
            &d.path().join(format!("{split}/k/x.png")),
            2,
            1,
            png::ColorType::Rgb,
            png::BitDepth::Eight,
            &[1, 2, 3, 4, 5, 6],
        );
    }
    let ds = load_folder(d.path()).expect("load");
    assert_eq!(ds.sample_shape(), [3, 1, 2]);
    assert_eq!(ds.train.data, [1, 4, 2, 5, 3, 6]);
    let img = ds.to_image_dataset();
    assert_eq!((img.train.rows, img.train.cols), (3, 2));
}

#[test]
fn folder_errors_are_typed() {
    // missing test split
    let d = tempfile::tempdir().expect("tmp");
    grey(&d.path().join("train/a/x.png"), 3, 3, 0);
    assert!(matches!(
        problem_of(load_folder(d.path())),
        DatasetProblem::MissingSplit { .. }
    ));

    // mixed sizes
    grey(&d.path().join("train/a/y.png"), 4, 3, 0);
    grey(&d.path().join("test/a/z.png"), 3, 3, 0);
    match problem_of(load_folder(d.path())) {
        DatasetProblem::MixedSizes { expected, found } => {
            assert_eq!((expected, found), (vec![1, 3, 3], vec![1, 3, 4]));
        }
        p => panic!("{p:?}"),
    }

    // grey and RGB mixed
    let d = tempfile::tempdir().expect("tmp");
    grey(&d.path().join("train/a/x.png"), 2, 1, 0);
    write_png(
        &d.path().join("test/a/y.png"),
        2,
        1,
        png::ColorType::Rgb,
        png::BitDepth::Eight,
        &[0; 6],
    );
    assert!(matches!(
        problem_of(load_folder(d.path())),
        DatasetProblem::MixedSizes { .. }
    ));

    // unreadable file
    let d = tempfile::tempdir().expect("tmp");
    grey(&d.path().join("train/a/x.png"), 2, 2, 0);
    std::fs::create_dir_all(d.path().join("test/a")).expect("mkdir");
    std::fs::write(d.path().join("test/a/broken.png"), b"\x89PNG but not really").expect("write");
    let err = load_folder(d.path()).expect_err("broken");
    assert!(err.to_string().contains("broken.png"), "{err}");
    assert!(matches!(problem_of(Err(err)), DatasetProblem::Unreadable { .. }));

    // 16-bit PNG
    let d = tempfile::tempdir().expect("tmp");
    write_png(
        &d.path().join("train/a/x.png"),
        2,
        2,
        png::ColorType::Grayscale,
        png::BitDepth::Sixteen,
        &[0; 8],
    );
    grey(&d.path().join("test/a/y.png"), 2, 2, 0);
    assert!(matches!(
        problem_of(load_folder(d.path())),
        DatasetProblem::UnsupportedPng { .. }
    ));

    // a test class that has no training folder
    let d = tempfile::tempdir().expect("tmp");
    grey(&d.path().join("train/a/x.png"), 2, 2, 0);
    grey(&d.path().join("test/b/y.png"), 2, 2, 0);
    assert!(matches!(
        problem_of(load_folder(d.path())),
        DatasetProblem::UnknownTestClass { .. }
    ));

    // no class folders / empty split
    let d = tempfile::tempdir().expect("tmp");
    std::fs::create_dir_all(d.path().join("train")).expect("mkdir");
    std::fs::create_dir_all(d.path().join("test")).expect("mkdir");
    assert!(matches!(
        problem_of(load_folder(d.path())),
        DatasetProblem::NoClasses
    ));
    std::fs::create_dir_all(d.path().join("train/a")).expect("mkdir");
    assert!(matches!(
        problem_of(load_folder(d.path())),
        DatasetProblem::EmptySplit { split: "train" }
    ));
}

struct Npz {
    x_train: ArrayD<u8>,
    y_train: Option<Array1<i64>>,
    x_test: ArrayD<u8>,
    y_test: Array1<i64>,
}

fn sensor(n: usize, shape: &[usize], seed: u8) -> ArrayD<u8> {
    let mut dims = vec![n];
    dims.extend_from_slice(shape);
    let len: usize = dims.iter().product();
    ArrayD::from_shape_vec(
        IxDyn(&dims),
        (0..len)
            .map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed))
            .collect(),
    )
    .expect("shape")
}

fn write_npz(path: &Path, a: &Npz, compressed: bool) {
    let f = File::create(path).expect("create");
    let mut w = if compressed {
        NpzWriter::new_compressed(f)
    } else {
        NpzWriter::new(f)
    };
    w.add_array("x_train", &a.x_train).expect("x_train");
    if let Some(y) = &a.y_train {
        w.add_array("y_train", y).expect("y_train");
    }
    w.add_array("x_test", &a.x_test).expect("x_test");
    w.add_array("y_test", &a.y_test).expect("y_test");
    w.finish().expect("finish");
}

fn good() -> Npz {
    Npz {
        x_train: sensor(4, &[128], 1),
        y_train: Some(Array1::from(vec![0, 2, 1, 2])),
        x_test: sensor(2, &[128], 9),
        y_test: Array1::from(vec![1, 0]),
    }
}

#[test]
fn npz_one_dimensional_and_image_samples_load() {
    let d = tempfile::tempdir().expect("tmp");
    let p = d.path().join("sensors.npz");
    write_npz(&p, &good(), false);
    let ds = DatasetSource::parse(&format!("npz:{}", p.display()))
        .expect("npz spec")
        .load()
        .expect("load");
    assert_eq!(ds.name, "sensors");
    assert_eq!(ds.sample_shape(), [128]);
    assert_eq!(ds.classes(), 3);
    assert_eq!(ds.train.labels, [0, 2, 1, 2]);
    assert_eq!(
        ds.test.get(1).expect("sample"),
        &good().x_test.as_slice().expect("contiguous")[128..]
    );
    let img = ds.to_image_dataset();
    assert_eq!((img.train.rows, img.train.cols), (1, 128));

    // compressed, [N, 3, 4, 4] images, uint8 labels
    let p = d.path().join("rgb.npz");
    let f = File::create(&p).expect("create");
    let mut w = NpzWriter::new_compressed(f);
    w.add_array("x_train", &sensor(3, &[3, 4, 4], 0)).expect("w");
    w.add_array("y_train", &Array1::from(vec![0u8, 1, 1])).expect("w");
    w.add_array("x_test", &sensor(1, &[3, 4, 4], 5)).expect("w");
    w.add_array("y_test", &Array1::from(vec![1u8])).expect("w");
    w.finish().expect("finish");
    let ds = load_npz(&p).expect("load");
    assert_eq!(ds.sample_shape(), [3, 4, 4]);
    assert_eq!(ds.train.data.len(), 3 * 48);
    assert_eq!(ds.test.labels, [1]);
}

#[test]
fn npz_errors_are_typed() {
    let d = tempfile::tempdir().expect("tmp");
    let p = d.path().join("bad.npz");

    let mut a = good();
    a.y_train = None;
    write_npz(&p, &a, false);
    assert!(matches!(
        problem_of(load_npz(&p)),
        DatasetProblem::MissingSplit { .. }
    ));

    let mut a = good();
    a.y_test = Array1::from(vec![3, 0]); // class 3 never seen in training (classes 0..=2)
    write_npz(&p, &a, true);
    match problem_of(load_npz(&p)) {
        DatasetProblem::LabelOutOfRange {
            split,
            index,
            label,
            classes,
        } => {
            assert_eq!((split, index, label, classes), ("test", 0, 3, 3));
        }
        other => panic!("{other:?}"),
    }

    let mut a = good();
    a.y_train = Some(Array1::from(vec![0, -1, 1, 2]));
    write_npz(&p, &a, false);
    assert!(matches!(
        problem_of(load_npz(&p)),
        DatasetProblem::LabelOutOfRange { label: -1, .. }
    ));

    let mut a = good();
    a.y_train = Some(Array1::from(vec![0, 1]));
    write_npz(&p, &a, false);
    assert!(matches!(
        problem_of(load_npz(&p)),
        DatasetProblem::CountMismatch { split: "train", .. }
    ));

    let mut a = good();
    a.x_test = sensor(2, &[64], 0);
    write_npz(&p, &a, false);
    assert!(matches!(
        problem_of(load_npz(&p)),
        DatasetProblem::MixedSizes { .. }
    ));

    // float samples
    let f = File::create(&p).expect("create");
    let mut w = NpzWriter::new(f);
    w.add_array("x_train", &ArrayD::<f32>::zeros(IxDyn(&[2, 3])))
        .expect("w");
    w.add_array("y_train", &Array1::from(vec![0i64, 1])).expect("w");
    w.add_array("x_test", &ArrayD::<f32>::zeros(IxDyn(&[1, 3])))
        .expect("w");
    w.add_array("y_test", &Array1::from(vec![0i64])).expect("w");
    w.finish().expect("finish");
    match problem_of(load_npz(&p)) {
        DatasetProblem::BadArray { array, detail } => {
            assert_eq!(array, "x_train");
            assert!(detail.contains("uint8"), "{detail}");
        }
        other => panic!("{other:?}"),
    }

    std::fs::write(&p, b"PK but not a zip").expect("write");
    assert!(matches!(
        problem_of(load_npz(&p)),
        DatasetProblem::Unreadable { .. }
    ));
    assert!(matches!(
        load_npz(&d.path().join("absent.npz")),
        Err(Error::Io { .. })
    ));
}

#[test]
fn specs_parse() {
    assert_eq!(DatasetSource::parse("mnist"), None);
    assert_eq!(
        DatasetSource::parse("npz:/a/b.npz"),
        Some(DatasetSource::Npz("/a/b.npz".into()))
    );
    assert_eq!(
        DatasetSource::parse("folder:imgs"),
        Some(DatasetSource::Folder("imgs".into()))
    );
}
