//! obfnet's jobs as a library, each callable and testable without the binary: typed config
//! structs in, typed results and versioned artifacts out. The `obfnet` binary only parses
//! arguments into these configs, calls the jobs, and prints.
//!
//! - [`privacy`]: `obfnet attack` and `obfnet report` — bundle discovery (given, cached,
//!   trained), resume, the goal policy ([`goal`]), Markdown and HTML rendering; the report's
//!   `report.json` is [`privacy::ReportFile`].
//! - [`compare`]: `obfnet compare` — the cost of privacy, one table; `compare.json` is
//!   [`compare::CompareFile`]; privacy cells come from a [`privacy::ReportFile`] through the
//!   same best-attack rule as the report ([`obfnet_privacy::SchemeResult::best_attack`]).
//! - [`edge`]: quantisation, device-side obfuscation of image files, and the edge-vs-engine
//!   evaluation.
//! - [`quickstart`]: the end-to-end run; its `config.json` and `report.json` are
//!   [`quickstart::RunConfig`] and [`quickstart::RunReport`].
//! - [`setup`]: datasets, server models and bundles checked against each other.
//! - [`grid`] (PNG picture grids), [`plot`] (SVG scatter with real text), [`html`] (the one
//!   escaper), [`listen`] (FSDD listening pages), [`schema`] (versioned JSON).
//!
//! Errors are [`anyhow::Error`] with context naming the file or step, except where a caller
//! needs to tell cases apart ([`schema::SchemaError`]). Every file is written with
//! [`obfnet_data::write_atomic`].

pub mod compare;
pub mod edge;
pub mod goal;
pub mod grid;
pub mod html;
pub mod listen;
pub mod plot;
pub mod privacy;
pub mod quickstart;
pub mod schema;
pub mod setup;
pub mod timefmt;

pub use obfnet_nn::TrainEvent;

/// Where long jobs report progress (training steps, attack phases).
pub trait Progress {
    /// One event.
    fn event(&mut self, event: TrainEvent);
    /// A phase is over (clear any bar before printing).
    fn finish(&mut self) {}
}

/// Discards progress.
#[derive(Debug, Default, Clone, Copy)]
pub struct Quiet;

impl Progress for Quiet {
    fn event(&mut self, _: TrainEvent) {}
}

/// Status lines of the jobs (what is being trained, reused, fetched) go to stderr, prefixed.
pub(crate) fn say(msg: impl AsRef<str>) {
    eprintln!("[obfnet] {}", msg.as_ref());
}
