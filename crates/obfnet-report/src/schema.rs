//! Versioned JSON artifacts: every file this crate writes and reads back (`report.json` of the
//! privacy report, `compare.json`, a run's `report.json` and `config.json`) is one serde type
//! with a `schema_version` field, shared by writer and reader.
//!
//! Readers go through [`read_versioned`]: a file without the field is version 1 (files written
//! before versions were recorded); a version this build does not know is refused with
//! [`SchemaError::UnknownVersion`], never half-read.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A JSON artifact with a schema version.
pub trait Versioned: Serialize + DeserializeOwned {
    /// What the file is, for messages (`"privacy report"`).
    const KIND: &'static str;
    /// The version this build writes (and the newest it reads).
    const VERSION: u32;
}

/// The default of `schema_version` fields: files that predate the field are version 1.
pub fn version_one() -> u32 {
    1
}

/// Why a versioned file could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    /// The file could not be read.
    #[error("reading {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not JSON of the expected shape.
    #[error("{} is not a valid {kind} (schema version {version}): {source}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What it should be.
        kind: &'static str,
        /// The version it claims.
        version: u32,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// The file was written by a newer (or unknown) schema.
    #[error(
        "{} is a {kind} of schema version {found}; this obfnet reads versions 1 to {supported}: \
         use the obfnet that wrote it, or regenerate the file",
        path.display()
    )]
    UnknownVersion {
        /// The file.
        path: PathBuf,
        /// What it is.
        kind: &'static str,
        /// The version in the file.
        found: u64,
        /// The newest version this build reads.
        supported: u32,
    },
}

/// Parses `bytes` (the contents of `path`) as a `T`, checking its `schema_version` first.
///
/// # Errors
/// [`SchemaError::UnknownVersion`] for a version above `T::VERSION` (or 0, or not a number),
/// [`SchemaError::Parse`] for anything else that does not fit `T`.
pub fn parse_versioned<T: Versioned>(bytes: &[u8], path: &Path) -> Result<T, SchemaError> {
    let parse = |version: u32, source| SchemaError::Parse {
        path: path.to_path_buf(),
        kind: T::KIND,
        version,
        source,
    };
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| parse(1, e))?;
    let found = match value.get("schema_version") {
        None => 1,
        Some(v) => v.as_u64().unwrap_or(0),
    };
    let version = u32::try_from(found)
        .ok()
        .filter(|v| (1..=T::VERSION).contains(v))
        .ok_or_else(|| SchemaError::UnknownVersion {
            path: path.to_path_buf(),
            kind: T::KIND,
            found,
            supported: T::VERSION,
        })?;
    serde_json::from_value(value).map_err(|e| parse(version, e))
}

/// Reads `path` as a `T` (see [`parse_versioned`]).
///
/// # Errors
/// [`SchemaError`].
pub fn read_versioned<T: Versioned>(path: &Path) -> Result<T, SchemaError> {
    let bytes = std::fs::read(path).map_err(|source| SchemaError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_versioned(&bytes, path)
}

/// Writes `value` as pretty JSON to `path` atomically ([`obfnet_data::write_atomic`]).
///
/// # Errors
/// Serialisation or I/O.
pub fn write_json(path: &Path, value: &impl Serialize) -> anyhow::Result<()> {
    let bytes = serde_json::to_vec_pretty(value)?;
    obfnet_data::write_atomic(path, &bytes)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Demo {
        #[serde(default = "version_one")]
        schema_version: u32,
        x: u8,
    }

    impl Versioned for Demo {
        const KIND: &'static str = "demo";
        const VERSION: u32 = 2;
    }

    #[test]
    fn missing_version_is_one_and_unknown_versions_are_refused() {
        let p = Path::new("demo.json");
        let d: Demo = parse_versioned(br#"{"x": 3}"#, p).expect("v1");
        assert_eq!(
            d,
            Demo {
                schema_version: 1,
                x: 3
            }
        );
        let d: Demo = parse_versioned(br#"{"schema_version": 2, "x": 4}"#, p).expect("v2");
        assert_eq!(d.x, 4);
        for bad in [
            r#"{"schema_version": 3, "x": 4}"#,
            r#"{"schema_version": 0, "x": 4}"#,
            r#"{"schema_version": "2", "x": 4}"#,
        ] {
            let e = parse_versioned::<Demo>(bad.as_bytes(), p).expect_err(bad);
            assert!(
                matches!(e, SchemaError::UnknownVersion { supported: 2, .. }),
                "{e}"
            );
            assert!(e.to_string().contains("reads versions 1 to 2"), "{e}");
        }
        let e = parse_versioned::<Demo>(br#"{"x": "no"}"#, p).expect_err("shape");
        assert!(matches!(e, SchemaError::Parse { .. }), "{e}");
    }
}
