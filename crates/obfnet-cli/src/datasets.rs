//! `--data-dir` / `--dataset` and `obfnet fetch` (the fetchers live in `obfnet_data::fetch`).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use obfnet_data::fetch::Fetched;
use obfnet_report::setup::DataSource;
use serde_json::json;

use crate::emit;

#[derive(Debug, Args, Clone)]
pub(crate) struct DataArgs {
    /// Data directory (each dataset lives in <dir>/<dataset>).
    #[arg(long, env = "OBFNET_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// Dataset: mnist, fashion-mnist (28×28 images), fsdd (spoken digits as 20×64 MFCC maps), or
    /// your own: folder:PATH (PATH/train/<class>/*.png and PATH/test/<class>/*.png, 8-bit grey
    /// or RGB, one size) or npz:PATH (x_train, y_train, x_test, y_test; uint8 samples of any
    /// shape).
    #[arg(long, default_value = "mnist", value_parser = parse_dataset)]
    pub dataset: String,
}

impl DataArgs {
    pub(crate) fn source(&self) -> DataSource {
        DataSource {
            data_dir: self.data_dir.clone(),
            dataset: self.dataset.clone(),
        }
    }
}

/// clap value parser for `--dataset`: a registered name, or `folder:PATH` / `npz:PATH`.
pub(crate) fn parse_dataset(s: &str) -> std::result::Result<String, String> {
    if obfnet_data::DatasetSource::parse(s).is_some() {
        return Ok(s.to_owned());
    }
    obfnet_data::dataset(s)
        .map(|d| d.name().to_owned())
        .map_err(|e| e.to_string())
}

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

/// `obfnet fetch`.
pub(crate) fn cmd_fetch(a: &FetchArgs, json: bool) -> Result<()> {
    let src = a.data.source();
    let r = src.reader()?;
    let outcome = src.fetch(a.from.as_deref(), &mut |m| eprintln!("[obfnet] {m}"))?;
    let dir = src.dir()?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_dataset_is_a_clear_error() {
        let e = parse_dataset("asl").expect_err("unknown");
        assert!(e.contains("mnist, fashion-mnist, fsdd"), "{e}");
        assert_eq!(parse_dataset("fsdd").as_deref(), Ok("fsdd"));
        assert_eq!(parse_dataset("npz:my.npz").as_deref(), Ok("npz:my.npz"));
    }
}
