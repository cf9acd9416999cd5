//! `obfnet compare` end to end on the tiny fixture: every row present, every privacy cell
//! labelled by kind, 2PC run over loopback TCP and checked against the plaintext net (HE is
//! covered by obfnet-crypto's tests; here it is switched off to keep CI time small).

use crate::{json_of, obfnet, write_fixture};

#[test]
fn compare_writes_one_labelled_table() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    write_fixture(&data, 300, 100);
    let data_arg = data.to_str().expect("utf-8 path");
    let model = tmp.path().join("server");
    let bundle = tmp.path().join("nets.obfb");
    let int8 = tmp.path().join("nets-int8.obfb");
    let out_dir = tmp.path().join("compare");
    obfnet()
        .args(["train-model", "--epochs", "2", "--data-dir", data_arg])
        .arg("--out")
        .arg(&model)
        .assert()
        .success();
    obfnet()
        .args([
            "train-obf",
            "--arch",
            "obfnet2",
            "-k",
            "2",
            "--epochs",
            "1",
            "--data-dir",
            data_arg,
        ])
        .arg("--model")
        .arg(&model)
        .arg("--out")
        .arg(&bundle)
        .assert()
        .success();
    obfnet()
        .arg("quantize")
        .arg(&bundle)
        .arg("--out")
        .arg(&int8)
        .assert()
        .success();

    let out = obfnet()
        .args([
            "compare",
            "--json",
            "--he-images",
            "0",
            "--mpc-images",
            "20",
            "--mpc-batch",
            "8",
            "--mpc-single-images",
            "2",
            "--data-dir",
            data_arg,
        ])
        .arg("--model")
        .arg(&model)
        .arg("--obfnet2")
        .arg(&bundle)
        .arg("--obfnet2-int8")
        .arg(&int8)
        .arg("--out")
        .arg(&out_dir)
        .assert()
        .success();
    let v = json_of(&out.get_output().stdout);
    let rows = v["rows"].as_array().expect("rows");
    let names: Vec<&str> = rows.iter().filter_map(|r| r["name"].as_str()).collect();
    for want in [
        "raw",
        "ObfNet2 (f32)",
        "ObfNet2 (int8)",
        "ObfNet2 (u8 output)",
        "2PC single image",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    assert!(names.iter().any(|n| n.starts_with("local DP noise")));
    assert!(names.iter().any(|n| n.starts_with("random projection")));
    assert!(names.iter().any(|n| n.starts_with("2PC batched")));
    for r in rows {
        let kind = r["privacy"]["kind"].as_str().expect("kind");
        assert!(!kind.is_empty());
    }
    // Without --privacy-report the empirical cells say so instead of inventing a number.
    let obf2 = rows.iter().find(|r| r["name"] == "ObfNet2 (f32)").expect("row");
    assert_eq!(obf2["privacy"]["kind"], "not measured");
    assert_eq!(obf2["bytes_sent"].as_f64(), Some(784.0 * 4.0));
    let u8row = rows
        .iter()
        .find(|r| r["name"] == "ObfNet2 (u8 output)")
        .expect("row");
    assert_eq!(u8row["bytes_sent"].as_f64(), Some(784.0));
    let mpc = &v["mpc_batched"];
    assert_eq!(mpc["mismatches"], 0);
    assert_eq!(mpc["images"], 20);
    assert_eq!(mpc["batches"], 3);
    for f in ["compare.md", "compare.html", "compare.json", "cryptonet.json"] {
        assert!(out_dir.join(f).is_file(), "{f} not written");
    }

    // A missing model is a clear error, not a panic.
    let out = obfnet()
        .args(["compare", "--he-images", "0", "--data-dir", data_arg, "--model"])
        .arg(tmp.path().join("nope"))
        .arg("--out")
        .arg(&out_dir)
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&out.get_output().stderr);
    assert!(err.contains("server model") && !err.contains("panicked"), "{err}");
}
