//! Integration tests for obfnet-data (one binary, modules inside).

mod real_data {
    use std::path::PathBuf;

    use obfnet_data::{Error, ImageDataset};

    /// `$OBFNET_DATA_DIR` or `<workspace>/data`.
    fn data_dir() -> PathBuf {
        std::env::var_os("OBFNET_DATA_DIR").map_or_else(
            || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data"),
            PathBuf::from,
        )
    }

    fn require_data() -> bool {
        std::env::var("OBFNET_REQUIRE_DATA").is_ok_and(|v| v == "1")
    }

    /// Loads the real MNIST from `<data dir>/mnist`. Skips (passes with a note) when the files
    /// are absent, unless `OBFNET_REQUIRE_DATA=1`.
    #[test]
    fn real_mnist() {
        let dir = data_dir().join("mnist");
        let ds = match ImageDataset::load_mnist_dir("mnist", &dir) {
            Ok(ds) => ds,
            Err(err @ Error::Missing { .. }) if !require_data() => {
                eprintln!("skipping real_mnist: {err} (set OBFNET_REQUIRE_DATA=1 to make this fail)");
                return;
            }
            Err(err) => panic!("loading MNIST from {}: {err}", dir.display()),
        };
        assert_eq!(ds.classes, 10);
        assert_eq!(ds.train.len(), 60_000);
        assert_eq!(ds.test.len(), 10_000);
        for split in [&ds.train, &ds.test] {
            assert_eq!((split.rows, split.cols), (28, 28));
            assert_eq!(split.pixels.len(), split.len() * 28 * 28);
            assert!(split.labels.iter().all(|&l| l < 10));
        }
        assert_eq!(ds.test.labels[..5], [7, 2, 1, 0, 4]);
        assert_eq!(ds.train.labels[..5], [5, 0, 4, 1, 9]);

        let mut hist = [0usize; 10];
        for &l in &ds.test.labels {
            hist[usize::from(l)] += 1;
        }
        assert!(
            hist.iter().all(|&c| (800..=1200).contains(&c)),
            "implausible test label histogram {hist:?}"
        );
        // a digit is mostly background with some ink
        let first = ds.test.image(0);
        let ink = first.iter().filter(|&&p| p > 128).count();
        assert!((50..400).contains(&ink), "ink pixels in test[0]: {ink}");
    }
}

mod generated {
    use std::io::Write;

    use obfnet_data::{
        Error, ImageDataset, MNIST_FILE_NAMES, encode_idx_images, encode_idx_labels, read_split,
    };

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).expect("write to Vec");
        enc.finish().expect("finish gzip")
    }

    /// A 28x28 MNIST-shaped directory of gzipped files loads through the public API.
    #[test]
    fn mnist_shaped_gz_dir() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (n_train, n_test) = (20usize, 10usize);
        let px = |n: usize| -> Vec<u8> { (0..n * 784).map(|i| (i % 251) as u8).collect() };
        let lab = |n: usize| -> Vec<u8> { (0..n).map(|i| (i % 10) as u8).collect() };
        let files = [
            encode_idx_images(28, 28, &px(n_train)),
            encode_idx_labels(&lab(n_train)),
            encode_idx_images(28, 28, &px(n_test)),
            encode_idx_labels(&lab(n_test)),
        ];
        for (name, bytes) in MNIST_FILE_NAMES.iter().zip(&files) {
            std::fs::write(dir.path().join(format!("{name}.gz")), gzip(bytes)).expect("write");
        }
        let ds = ImageDataset::load_mnist_dir("fake", dir.path()).expect("load");
        assert_eq!((ds.train.len(), ds.test.len()), (n_train, n_test));
        assert_eq!(ds.test.image(9), &px(n_test)[9 * 784..]);
        assert_eq!(ds.train.take(3).labels, [0, 1, 2]);
    }

    #[test]
    fn unreadable_path_is_io_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let labels = dir.path().join("labels");
        std::fs::write(&labels, encode_idx_labels(&[1])).expect("write");
        let err = read_split(&dir.path().join("nope"), &labels).expect_err("no images");
        assert!(matches!(err, Error::Io { .. }), "{err:?}");
    }
}
