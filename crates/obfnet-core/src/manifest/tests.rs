//! Tests of the manifest types, validation and text form.

use super::*;
use alloc::vec;

fn example() -> Manifest {
    Manifest {
        format_version: 1,
        created_by: "obfnet-0.1.0".into(),
        dataset: "mnist".into(),
        input: TensorSpec {
            shape: vec![1, 28, 28],
            dtype: DType::F32,
        },
        normalisation: Normalisation {
            scale: 0.003921569,
            mean: 0.1307,
            std: 0.3081,
        },
        output: TensorSpec {
            shape: vec![1, 28, 28],
            dtype: DType::F32,
        },
        weights: DType::F32,
        output_noise: None,
        server_model_sha256: [0x11; 32],
        nets: vec![
            NetSpec {
                name: "obfnet2-0".into(),
                arch: "obfnet2".into(),
                seed: 1000,
                layers: vec![
                    LayerSpec::Dense {
                        inputs: 784,
                        outputs: 1000,
                        act: Activation::Relu,
                    },
                    LayerSpec::Dense {
                        inputs: 1000,
                        outputs: 784,
                        act: Activation::Relu,
                    },
                ],
                sha256: [0x22; 32],
            },
            NetSpec {
                name: "conv-1".into(),
                arch: "conv".into(),
                seed: 1001,
                layers: vec![
                    LayerSpec::Conv2d {
                        in_channels: 1,
                        out_channels: 4,
                        kernel: 5,
                        stride: 2,
                        padding: 2,
                        in_height: 28,
                        in_width: 28,
                        act: Activation::Relu,
                    },
                    LayerSpec::Dense {
                        inputs: 784,
                        outputs: 784,
                        act: Activation::Relu,
                    },
                ],
                sha256: [0x33; 32],
            },
        ],
    }
}

const EXAMPLE_TEXT: &str = "obfnet-bundle 1
created-by obfnet-0.1.0
dataset mnist
input shape=1,28,28 dtype=f32
normalise scale=0.003921569 mean=0.1307 std=0.3081
output shape=1,28,28 dtype=f32
server-model sha256=1111111111111111111111111111111111111111111111111111111111111111
nets 2
net index=0 name=obfnet2-0 arch=obfnet2 seed=1000 layers=2 sha256=2222222222222222222222222222222222222222222222222222222222222222
layer net=0 index=0 kind=dense in=784 out=1000 act=relu
layer net=0 index=1 kind=dense in=1000 out=784 act=relu
net index=1 name=conv-1 arch=conv seed=1001 layers=2 sha256=3333333333333333333333333333333333333333333333333333333333333333
layer net=1 index=0 kind=conv2d in_ch=1 out_ch=4 kernel=5 stride=2 pad=2 in_h=28 in_w=28 act=relu
layer net=1 index=1 kind=dense in=784 out=784 act=relu
end
";

#[test]
fn text_matches_the_documented_example() {
    assert_eq!(example().to_text(), EXAMPLE_TEXT);
    assert_eq!(Manifest::parse(EXAMPLE_TEXT).unwrap(), example());
}

#[test]
fn mnist_scale_prints_as_documented() {
    assert_eq!(Normalisation::MNIST.scale.to_string(), "0.003921569");
}

#[test]
fn key_order_within_a_record_is_free() {
    let text = EXAMPLE_TEXT.replace(
        "kind=dense in=784 out=1000 act=relu",
        "act=relu out=1000 kind=dense in=784",
    );
    assert_eq!(Manifest::parse(&text).unwrap(), example());
}

fn line_error(text: &str) -> (usize, String) {
    match Manifest::parse(text) {
        Err(Error::Manifest { line, reason }) => (line, reason),
        other => panic!("expected a manifest line error, got {other:?}"),
    }
}

#[test]
fn syntax_errors_point_at_the_line() {
    let cases: &[(&str, &str, usize, &str)] = &[
        ("dataset mnist\n", "dataset  mnist\n", 3, "exactly one space"),
        ("dataset mnist\n", "dataset mnist \n", 3, "exactly one space"),
        ("dataset mnist\n", "dataset mnist\r\n", 3, "not allowed"),
        ("dataset mnist\n", "datasets mnist\n", 3, "unknown record kind"),
        ("dataset mnist\n", "dataset mnist extra\n", 3, "exactly one value"),
        (
            "dataset mnist\n",
            "",
            3,
            "expected a `dataset` record, found `input`",
        ),
        ("nets 2\n", "nets 3\n", 15, "expected a `net` record, found `end`"),
        ("nets 2\n", "nets 0\n", 8, "between 1 and 1024"),
        ("nets 2\n", "nets 02\n", 8, "not a valid unsigned integer"),
        ("nets 2\n", "nets +2\n", 8, "not a valid unsigned integer"),
        ("seed=1000", "seed=1000 seed=1000", 9, "duplicate key `seed`"),
        ("seed=1000", "seed=-1", 9, "not a valid unsigned integer"),
        (" seed=1000", "", 9, "missing key `seed`"),
        ("seed=1000", "seed=1000 colour=red", 9, "unknown key `colour`"),
        ("seed=1000", "seed", 9, "key=value"),
        ("seed=1000", "seed=", 9, "empty value"),
        ("net index=1", "net index=0", 12, "expected net index 1"),
        (
            "layer net=0 index=1",
            "layer net=0 index=0",
            11,
            "expected layer index 1",
        ),
        (
            "layer net=1 index=0",
            "layer net=0 index=0",
            13,
            "expected a layer of net 1",
        ),
        ("kind=conv2d", "kind=conv3d", 13, "unknown layer kind"),
        (
            "in=784 out=1000 act=relu",
            "in=784 out=1000 act=tanh",
            10,
            "unknown activation",
        ),
        ("in=784 out=1000", "in=784 out=1048577", 10, "between 1 and 1<<20"),
        ("in=784 out=1000", "in=784 out=0", 10, "between 1 and 1<<20"),
        (
            "in=784 out=1000",
            "in=784 out=1000.0",
            10,
            "not a valid unsigned integer",
        ),
        ("std=0.3081", "std=nan", 5, "not a finite number"),
        ("std=0.3081", "std=inf", 5, "not a finite number"),
        ("std=0.3081", "std=0.3o81", 5, "not a finite number"),
        (
            "input shape=1,28,28",
            "input shape=1,,28",
            4,
            "not a valid unsigned integer",
        ),
        (
            "input shape=1,28,28",
            "input shape=1,1,1,1,1,1,1,1,784",
            4,
            "at most 8",
        ),
        ("dtype=f32\nnormalise", "dtype=f16\nnormalise", 4, "unknown dtype"),
        ("sha256=1111", "sha256=x111", 7, "64 hexadecimal digits"),
        ("name=obfnet2-0", "name=obfnet2\u{e9}", 9, "not allowed"),
        ("end\n", "end now\n", 15, "takes no values"),
        ("end\n", "end\nextra\n", 16, "after the `end` record"),
        ("end\n", "end", 15, "must end with"),
        ("end\n", "end\n\n", 16, "after the `end` record"),
    ];
    for &(from, to, line, needle) in cases {
        let text = EXAMPLE_TEXT.replacen(from, to, 1);
        assert_ne!(text, EXAMPLE_TEXT, "case {from:?} did not apply");
        let (got_line, reason) = line_error(&text);
        assert!(
            got_line == line && reason.contains(needle),
            "case {from:?} -> {to:?}: got line {got_line}: {reason}"
        );
    }
}

#[test]
fn early_end_of_text_is_reported() {
    let cut = EXAMPLE_TEXT.find("layer net=1 index=1").unwrap();
    let (line, reason) = line_error(&EXAMPLE_TEXT[..cut]);
    assert_eq!(line, 14);
    assert!(reason.contains("unexpected end of manifest"), "{reason}");
    let (line, _) = line_error("");
    assert_eq!(line, 1);
}

#[test]
fn version_mismatch_is_typed() {
    for v in ["0", "4", "4294967295"] {
        let text = EXAMPLE_TEXT.replacen("obfnet-bundle 1", &format!("obfnet-bundle {v}"), 1);
        assert_eq!(
            Manifest::parse(&text),
            Err(Error::UnsupportedVersion {
                found: v.parse().unwrap(),
                oldest: 1,
                newest: 3
            })
        );
    }
}

#[test]
fn version_2_carries_the_weights_record() {
    let mut m = example();
    m.format_version = 2;
    m.weights = DType::I8;
    let text = m.to_text();
    assert!(text.contains("output shape=1,28,28 dtype=f32\nweights dtype=i8\nserver-model"));
    assert_eq!(Manifest::parse(&text).unwrap(), m);
    assert_eq!(m.oldest_version(), 2);

    // Version 2 may also describe f32 weights; version 1 has no weights record at all.
    m.weights = DType::F32;
    assert_eq!(Manifest::parse(&m.to_text()).unwrap(), m);
    assert_eq!(m.oldest_version(), 1);
    let v2_without = EXAMPLE_TEXT.replacen("obfnet-bundle 1", "obfnet-bundle 2", 1);
    let (line, reason) = line_error(&v2_without);
    assert_eq!(line, 7);
    assert!(reason.contains("expected a `weights` record"), "{reason}");
    let v1_with = EXAMPLE_TEXT.replacen("server-model", "weights dtype=f32\nserver-model", 1);
    let (line, reason) = line_error(&v1_with);
    assert_eq!(line, 7);
    assert!(reason.contains("expected a `server-model` record"), "{reason}");

    // int8 weights cannot be written as version 1.
    let mut m = example();
    m.weights = DType::I8;
    assert!(matches!(m.validate(), Err(Error::InvalidField { .. })));

    // Nor can the clip activation; version 2 carries it.
    let mut m = example();
    if let LayerSpec::Dense { act, .. } = &mut m.nets[0].layers[1] {
        *act = Activation::Clip;
    }
    assert!(matches!(m.validate(), Err(Error::InvalidField { .. })));
    assert_eq!(m.oldest_version(), 2);
    m.format_version = 2;
    let text = m.to_text();
    assert!(text.contains("in=1000 out=784 act=clip"));
    assert_eq!(Manifest::parse(&text).unwrap(), m);
    let v1 = EXAMPLE_TEXT.replacen("in=1000 out=784 act=relu", "in=1000 out=784 act=clip", 1);
    assert!(matches!(Manifest::parse(&v1), Err(Error::InvalidField { .. })));
}

#[test]
fn semantic_errors_are_typed() {
    let text = EXAMPLE_TEXT.replacen("std=0.3081", "std=0", 1);
    assert!(matches!(
        Manifest::parse(&text),
        Err(Error::InvalidNormalisation { .. })
    ));

    let text = EXAMPLE_TEXT.replacen("in=1000 out=784", "in=999 out=784", 1);
    assert_eq!(
        Manifest::parse(&text),
        Err(Error::LayerChain {
            net: 0,
            layer: 1,
            expected: 1000,
            found: 999
        })
    );

    let text = EXAMPLE_TEXT.replacen("in=1000 out=784", "in=1000 out=783", 1);
    assert_eq!(
        Manifest::parse(&text),
        Err(Error::NetOutput {
            net: 0,
            expected: 784,
            found: 783
        })
    );

    // conv output is 4*14*14 = 784; with stride 1 it would be 4*28*28.
    let text = EXAMPLE_TEXT.replacen("stride=2", "stride=1", 1);
    assert_eq!(
        Manifest::parse(&text),
        Err(Error::LayerChain {
            net: 1,
            layer: 1,
            expected: 3136,
            found: 784
        })
    );

    let text = EXAMPLE_TEXT.replacen("in_ch=1 ", "in_ch=2 ", 1);
    assert_eq!(
        Manifest::parse(&text),
        Err(Error::LayerChain {
            net: 1,
            layer: 0,
            expected: 784,
            found: 1568
        })
    );

    let text = EXAMPLE_TEXT.replacen("kernel=5 stride=2 pad=2", "kernel=40 stride=2 pad=2", 1);
    assert!(matches!(
        Manifest::parse(&text),
        Err(Error::InvalidLayer { net: 1, layer: 0, .. })
    ));
}

#[test]
fn absurd_sizes_are_rejected() {
    // 1<<20 x 1<<20 parameters in one dense layer.
    let mut m = example();
    m.input.shape = vec![1 << 20];
    m.output.shape = vec![1 << 20];
    m.nets.truncate(1);
    m.nets[0].layers = vec![LayerSpec::Dense {
        inputs: 1 << 20,
        outputs: 1 << 20,
        act: Activation::None,
    }];
    assert!(matches!(m.validate(), Err(Error::InvalidLayer { .. })));
    assert!(matches!(
        Manifest::parse(&m.to_text()),
        Err(Error::InvalidLayer { .. })
    ));

    // Many nets whose total exceeds the limit although each is fine.
    let mut m = example();
    m.input.shape = vec![4096];
    m.output.shape = vec![4096];
    let net = NetSpec {
        name: "big".into(),
        arch: "dense".into(),
        seed: 0,
        layers: vec![LayerSpec::Dense {
            inputs: 4096,
            outputs: 4096,
            act: Activation::None,
        }],
        sha256: [0; 32],
    };
    m.nets = vec![net; 17];
    assert!(matches!(
        m.validate(),
        Err(Error::TooLarge {
            what: "total parameter count",
            ..
        })
    ));

    let mut m = example();
    m.input.shape = vec![1 << 20, 1 << 20];
    assert!(matches!(m.validate(), Err(Error::InvalidField { .. })));
}

#[test]
fn unwritable_tokens_are_rejected_on_validate() {
    let mut m = example();
    m.nets[1].name = "has space".into();
    assert_eq!(
        m.validate(),
        Err(Error::InvalidField {
            field: "net 1 name".into(),
            reason: "must be printable ASCII without spaces"
        })
    );
    let mut m = example();
    m.dataset = String::new();
    assert!(matches!(m.validate(), Err(Error::InvalidField { .. })));
    let mut m = example();
    m.created_by = "x".repeat(129);
    assert!(matches!(m.validate(), Err(Error::InvalidField { .. })));
    let mut m = example();
    m.format_version = 4;
    assert!(matches!(
        m.validate(),
        Err(Error::UnsupportedVersion {
            found: 4,
            oldest: 1,
            newest: 3
        })
    ));
}

#[test]
fn sizes_never_panic() {
    let l = LayerSpec::Conv2d {
        in_channels: usize::MAX,
        out_channels: usize::MAX,
        kernel: usize::MAX,
        stride: 0,
        padding: usize::MAX,
        in_height: usize::MAX,
        in_width: 0,
        act: Activation::None,
    };
    let _ = (
        l.input_len(),
        l.output_len(),
        l.macs(),
        l.weight_shape(),
        l.param_count_u64(),
    );
    assert!(l.validate(0, 0).is_err());
    let l = LayerSpec::Dense {
        inputs: usize::MAX,
        outputs: usize::MAX,
        act: Activation::None,
    };
    assert_eq!(l.macs(), u64::MAX);
}

#[test]
fn normalisation_round_trips() {
    let n = Normalisation::MNIST;
    for raw in [0u8, 1, 77, 128, 255] {
        assert!((n.invert(n.apply(raw)) - f32::from(raw)).abs() < 1e-3);
    }
    assert!(n.validate().is_ok());
    assert!(Normalisation { scale: 0.0, ..n }.validate().is_err());
    assert!(Normalisation { mean: f32::NAN, ..n }.validate().is_err());
    assert!(Normalisation { std: -1.0, ..n }.validate().is_err());
}

#[test]
fn float_display_round_trips() {
    for x in [0.1307f32, 0.3081, 1.0 / 255.0, 1e-30, 3.4e38, -0.0, 123456.79] {
        assert_eq!(x.to_string().parse::<f32>().unwrap().to_bits(), x.to_bits());
    }
}
