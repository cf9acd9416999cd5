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

mod real_fashion {
    use std::path::PathBuf;

    use obfnet_data::{DatasetReader, Error, FASHION_MNIST};

    /// Real Fashion-MNIST from `<data dir>/fashion-mnist` (Debian's gzipped IDX files): sizes and
    /// the first test labels. Skips when absent unless `OBFNET_REQUIRE_DATA=1`.
    #[test]
    fn real_fashion_mnist() {
        let dir = std::env::var_os("OBFNET_DATA_DIR")
            .map_or_else(
                || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data"),
                PathBuf::from,
            )
            .join("fashion-mnist");
        let ds = match FASHION_MNIST.load(&dir) {
            Ok(ds) => ds,
            Err(err @ Error::Missing { .. })
                if std::env::var("OBFNET_REQUIRE_DATA").as_deref() != Ok("1") =>
            {
                eprintln!("skipping real_fashion_mnist: {err}");
                return;
            }
            Err(err) => panic!("loading Fashion-MNIST from {}: {err}", dir.display()),
        };
        assert_eq!((ds.train.len(), ds.test.len()), (60_000, 10_000));
        assert_eq!((ds.test.rows, ds.test.cols), (28, 28));
        assert_eq!(ds.test.labels[..5], [9, 2, 1, 1, 6]);
        assert_eq!(ds.name, "fashion-mnist");
    }
}

mod real_fsdd {
    use std::path::PathBuf;

    use obfnet_data::{DatasetReader, Error, FSDD};

    fn data_dir() -> PathBuf {
        std::env::var_os("OBFNET_DATA_DIR").map_or_else(
            || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data"),
            PathBuf::from,
        )
    }

    fn require_data() -> bool {
        std::env::var("OBFNET_REQUIRE_DATA").is_ok_and(|v| v == "1")
    }

    /// The real FSDD from `<data dir>/fsdd`: 3,000 clips, the official 2,700 / 300 split, the
    /// MFCC maps' shape and code statistics. Skips when absent unless `OBFNET_REQUIRE_DATA=1`.
    #[test]
    fn real_fsdd() {
        let dir = data_dir().join("fsdd");
        let data = match FSDD.load_full(&dir) {
            Ok(d) => d,
            Err(err @ Error::Missing { .. }) if !require_data() => {
                eprintln!("skipping real_fsdd: {err} (set OBFNET_REQUIRE_DATA=1 to make this fail)");
                return;
            }
            Err(err) => panic!("loading FSDD from {}: {err}", dir.display()),
        };
        let ds = &data.dataset;
        assert_eq!((ds.train.len(), ds.test.len()), (2700, 300));
        assert_eq!((ds.test.rows, ds.test.cols), FSDD.sample_shape());
        assert!(data.test_clips.iter().all(|c| c.take < 5));
        assert!(data.train_clips.iter().all(|c| c.take >= 5));
        let mut hist = [0usize; 10];
        for &l in &ds.test.labels {
            hist[usize::from(l)] += 1;
        }
        assert_eq!(hist, [30; 10]);
        // codes are centred: the mean code over the training split is near 128
        let mean = ds.train.pixels.iter().map(|&p| f64::from(p)).sum::<f64>() / ds.train.pixels.len() as f64;
        assert!((120.0..136.0).contains(&mean), "mean code {mean}");
        assert!(data.train_clipped < 0.01, "clipped {}", data.train_clipped);
        eprintln!(
            "fsdd: clipped train {:.4}% test {:.4}%, truncated clips {}, mean code {mean:.1}",
            data.train_clipped * 100.0,
            data.test_clipped * 100.0,
            data.truncated_clips
        );
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
