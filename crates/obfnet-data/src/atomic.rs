//! The one atomic file write of the workspace: every artifact (bundles, weights configs,
//! reports, pictures, datasets' side files) goes through [`write_atomic`].

use std::io::Write as _;
use std::path::Path;

use crate::{Error, Result};

/// Writes `bytes` to `path` so that a crash never leaves a half-written file there: a
/// [`tempfile::NamedTempFile`] in the target directory is written, `sync_all`ed, renamed over
/// `path`, and then (on unix) the directory itself is synced so the rename is durable.
///
/// # Errors
/// [`Error::Io`] naming `path` (or its directory) when any step fails; the temporary file is
/// removed then.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |source: std::io::Error| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".obfnet-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(io)?;
    tmp.write_all(bytes).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    #[cfg(unix)]
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_replaces_and_leaves_no_temporary() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|source| Error::Io {
            path: "tempdir".into(),
            source,
        })?;
        let p = dir.path().join("a.json");
        write_atomic(&p, b"one")?;
        write_atomic(&p, b"two")?;
        assert_eq!(std::fs::read(&p).ok().as_deref(), Some(&b"two"[..]));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.json")]);
        // a missing directory is an error naming the file, not a panic
        let bad = dir.path().join("no/such/dir/x");
        assert!(matches!(write_atomic(&bad, b"x"), Err(Error::Io { .. })));
        Ok(())
    }
}
