//! Integration tests of the cryptographic baselines: both protocols on tiny nets against the
//! plaintext integer net, counters against the analytic counts, parameter validation, and (with
//! MNIST present) training the square net on real data.

mod fixtures {
    use obfnet_data::LabeledImages;
    use obfnet_nn::SplitMix64;

    /// `n` random 28×28 images with random labels (the arithmetic, not the accuracy, is tested).
    pub fn images(n: usize, seed: u64) -> LabeledImages {
        let mut r = SplitMix64::new(seed);
        LabeledImages {
            rows: 28,
            cols: 28,
            pixels: (0..n * 784).map(|_| r.below(256) as u8).collect(),
            labels: (0..n).map(|_| r.below(10) as u8).collect(),
        }
    }

    pub fn real_mnist() -> Option<obfnet_data::ImageDataset> {
        let dir = std::env::var_os("OBFNET_DATA_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data"))
            .join("mnist");
        match obfnet_data::ImageDataset::load_mnist_dir("mnist", &dir) {
            Ok(ds) => Some(ds),
            Err(e) if std::env::var("OBFNET_REQUIRE_DATA").as_deref() != Ok("1") => {
                eprintln!("skipping: MNIST not available ({e}); run `obfnet fetch`");
                None
            }
            Err(e) => panic!("OBFNET_REQUIRE_DATA=1 but MNIST is missing: {e}"),
        }
    }
}

mod mpc {
    use obfnet_crypto::Error;
    use obfnet_crypto::model::IntNet;
    use obfnet_crypto::mpc::{
        HEADER_BYTES, Material, MpcConfig, material_elements, message_elements, run_mpc,
    };

    use crate::fixtures::images;

    #[test]
    fn loopback_tcp_equals_plaintext_and_counts_match_the_analytic_count() {
        let net = IntNet::random(2, 15, 8, 11);
        let data = images(7, 5);
        let cfg = MpcConfig {
            batch: 3,
            dealer_seed: Some(1),
            ..MpcConfig::default()
        };
        let r = run_mpc(&cfg, &net, &data, 7).expect("2PC run");
        assert_eq!(r.images, 7);
        assert_eq!(r.batches, 3);
        assert_eq!(r.mismatches, 0, "2PC logits must equal the plaintext integer net");
        // Analytic byte and message counts: batches of 3, 3, 1.
        let (mut client, mut server, mut offline) = (0u64, 0u64, 0u64);
        for b in [3usize, 3, 1] {
            let (c, s) = message_elements(&net, b);
            client += c.iter().map(|&e| HEADER_BYTES + 8 * e as u64).sum::<u64>();
            server += s.iter().map(|&e| HEADER_BYTES + 8 * e as u64).sum::<u64>();
            offline += 8 * material_elements(&net, b) as u64;
        }
        assert_eq!(r.client_sent, client);
        assert_eq!(r.server_sent, server);
        assert_eq!(r.client_messages, 3 * 3);
        assert_eq!(r.server_messages, 3 * 4);
        assert_eq!(r.offline_client_bytes, offline);
        assert_eq!(r.offline_server_bytes, offline);
    }

    #[test]
    fn single_image_mode_equals_plaintext() {
        let net = IntNet::random(5, 15, 8, 3);
        let data = images(2, 9);
        let cfg = MpcConfig {
            batch: 1,
            ..MpcConfig::default()
        };
        let r = run_mpc(&cfg, &net, &data, 2).expect("2PC run");
        assert_eq!(r.mismatches, 0);
        assert_eq!(r.round_trips_per_batch, 4);
    }

    #[test]
    fn rejects_nets_that_overflow_the_ring_and_bad_configs() {
        // 16-bit weights and inputs of 255 levels: the worst case exceeds 64 bits.
        let net = IntNet::random(5, 255, 16, 1);
        assert!(net.worst_case_bits() > 64.0);
        let err = run_mpc(&MpcConfig::default(), &net, &images(1, 1), 1).expect_err("must overflow");
        assert!(matches!(err, Error::Overflow { .. }), "{err}");
        let small = IntNet::random(1, 15, 8, 1);
        let bad = MpcConfig {
            batch: 0,
            ..MpcConfig::default()
        };
        assert!(matches!(
            run_mpc(&bad, &small, &images(1, 1), 1),
            Err(Error::Parameter { name: "batch", .. })
        ));
    }

    #[test]
    fn material_of_the_wrong_size_is_refused() {
        let net = IntNet::random(1, 15, 8, 1);
        let bytes = vec![0u8; 8 * material_elements(&net, 2)];
        assert!(Material::from_bytes(&bytes, &net, 2).is_ok());
        assert!(matches!(
            Material::from_bytes(&bytes[..bytes.len() - 8], &net, 2),
            Err(Error::Protocol(_))
        ));
    }

    #[test]
    fn channel_refuses_a_message_of_the_wrong_size() {
        use obfnet_crypto::mpc::Channel;
        use std::net::{TcpListener, TcpStream};
        use std::time::Duration;
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        let t = std::thread::spawn(move || {
            let (s, _) = l.accept().expect("accept");
            let mut ch = Channel::new(s, Duration::from_secs(5)).expect("channel");
            ch.recv(1, 4)
        });
        let mut ch = Channel::new(TcpStream::connect(addr).expect("connect"), Duration::from_secs(5))
            .expect("channel");
        ch.send(1, &[1, 2, 3]).expect("send");
        let got = t.join().expect("join");
        assert!(matches!(got, Err(Error::Protocol(_))));
    }
}

mod he {
    use obfnet_crypto::Error;
    use obfnet_crypto::he::{HeConfig, run_he};
    use obfnet_crypto::model::IntNet;

    use crate::fixtures::images;

    /// A net small enough for a 30-bit plaintext modulus.
    fn tiny() -> IntNet {
        IntNet::random(1, 3, 3, 4)
    }

    #[test]
    fn encrypted_result_equals_the_plaintext_integer_net() {
        let net = tiny();
        let data = images(5, 2);
        let r = run_he(&HeConfig::default(), &net, &data, 5, &mut |_| {}).expect("HE run");
        assert_eq!(r.images, 5);
        assert_eq!(r.batches, 1);
        assert_eq!(
            r.mismatches, 0,
            "decrypted logits must equal the plaintext integer net"
        );
        assert_eq!(r.security_bits, 128);
        assert_eq!(r.cts_up_per_batch, 729);
        assert_eq!(r.cts_down_per_batch, 10);
        assert!(r.bytes_up > 729 * 8192, "a ciphertext is bigger than n bytes");
    }

    #[test]
    fn parameters_are_validated() {
        let net = tiny();
        // The 218-bit modulus with n = 4096 is far above the 128-bit bound (109 bits).
        let weak = HeConfig {
            degree: 4096,
            ..HeConfig::default()
        };
        assert!(matches!(
            weak.validate(&net),
            Err(Error::Parameter { name: "moduli", .. })
        ));
        let not_pow2 = HeConfig {
            degree: 3000,
            ..HeConfig::default()
        };
        assert!(matches!(
            not_pow2.validate(&net),
            Err(Error::Parameter { name: "degree", .. })
        ));
        let small_t = HeConfig {
            plaintext_bits: Some(20),
            ..HeConfig::default()
        };
        assert!(matches!(small_t.validate(&net), Err(Error::Overflow { .. })));
        let big = IntNet::random(5, 255, 16, 1);
        assert!(matches!(
            HeConfig::default().validate(&big),
            Err(Error::Overflow { .. })
        ));
    }
}

mod training {
    use obfnet_crypto::model::{SquareNetConfig, train_square_net};

    use crate::fixtures::real_mnist;

    /// One epoch on the 60,000 real training images (≈3 s): the integer net must clear 95% on
    /// 2,000 real test images and stay within 1 point of the float net (measured: 97.6% on the
    /// full test set after this epoch).
    #[test]
    fn square_net_trains_and_quantises_on_real_mnist() {
        let Some(ds) = real_mnist() else { return };
        let mut test = ds.test.clone();
        test.pixels.truncate(2000 * 784);
        test.labels.truncate(2000);
        let cfg = SquareNetConfig {
            epochs: 1,
            ..SquareNetConfig::default()
        };
        let (net, report) = train_square_net(&cfg, &ds.train, &test, &mut |_, _| {}).expect("train");
        assert!(report.int_accuracy > 0.95, "{report:?}");
        assert!(
            (report.int_accuracy - report.float_accuracy).abs() < 0.01,
            "{report:?}"
        );
        assert!(net.worst_case_bits() <= 60.0, "{report:?}");
    }
}
