//! `strata bench` and the hidden `strata compare-worker`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::bench::{self, BenchOptions, Workload};
use crate::error::{Result, StrataError};
use crate::Strata;

/// The workloads of `strata bench`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchWorkload {
    /// The sample orders stream and views, scaled to --events.
    Events,
    /// TPC-H lineitem at --sf, with views modelled on Q1 and Q6.
    Tpch,
}

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    #[arg(long, value_enum, default_value_t = BenchWorkload::Events)]
    pub workload: BenchWorkload,
    /// Events of the `events` workload.
    #[arg(long, default_value_t = 10_000_000)]
    pub events: u64,
    /// Scale factor of the `tpch` workload (1: about 6M lineitem rows).
    #[arg(long, default_value_t = 1.0)]
    pub sf: f64,
    /// Runs of each timed measure (medians, min and max are over these).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Events per history commit (default: a tenth of the history, at most 100000).
    #[arg(long, value_name = "N")]
    pub commit_rows: Option<usize>,
    /// Events in each ingest input file (Parquet and NDJSON; at most the history).
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    pub ingest_events: u64,
    /// Also write every measure (and every latency sample) as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Also draw throughput and latency distributions as an SVG chart.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Build the scratch project in DIR (new or empty) and keep it (default: a temporary directory, removed).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Only build the project in --dir and append the history (for benches/compare.py).
    #[arg(long, requires = "dir")]
    pub prepare_only: bool,
}

impl BenchArgs {
    fn options(&self) -> Result<BenchOptions> {
        let workload = match self.workload {
            BenchWorkload::Events if self.events == 0 => {
                return Err(StrataError::Usage("--events must be at least 1".into()))
            }
            BenchWorkload::Events => Workload::Events {
                events: self.events,
            },
            BenchWorkload::Tpch if !(self.sf > 0.0 && self.sf.is_finite()) => {
                return Err(StrataError::Usage(format!(
                    "--sf {}: give a scale factor above 0 (e.g. 0.1, 1)",
                    self.sf
                )))
            }
            BenchWorkload::Tpch => Workload::Tpch { sf: self.sf },
        };
        if self.runs == 0 {
            return Err(StrataError::Usage("--runs must be at least 1".into()));
        }
        for (flag, path, ext) in [
            ("--json", &self.json, "json"),
            ("--plot", &self.plot, "svg"),
        ] {
            if let Some(p) = path {
                if p.extension().is_none_or(|e| e != ext) {
                    return Err(StrataError::Usage(format!(
                        "{flag} {}: name a .{ext} file",
                        p.display()
                    )));
                }
            }
        }
        Ok(BenchOptions {
            workload,
            runs: self.runs,
            commit_rows: self.commit_rows,
            ingest_events: self.ingest_events,
            dir: self.dir.clone(),
        })
    }
}

/// Phase messages: a spinner on a terminal, lines otherwise.
fn reporter() -> (ProgressBar, bool) {
    let terminal = std::io::stderr().is_terminal();
    let bar = if terminal {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed}] {msg}").expect("valid template"),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    } else {
        ProgressBar::hidden()
    };
    (bar, terminal)
}

pub async fn run(args: &BenchArgs) -> Result<()> {
    let opts = args.options()?;
    if cfg!(debug_assertions) {
        eprintln!(
            "note: this is a debug build; for numbers that mean something run `cargo run --release -- bench`"
        );
    }
    let (bar, terminal) = reporter();
    let progress = |msg: &str| {
        if terminal {
            bar.set_message(msg.to_string());
        } else {
            eprintln!("{msg}");
        }
    };
    if args.prepare_only {
        let p = bench::prepare(&opts, &progress).await?;
        bar.finish_and_clear();
        println!(
            "prepared {}: {} events in {} commits of stream '{}' ({:.1} s)",
            p.scratch.path().display(),
            p.history_events,
            p.history_commits,
            opts.workload.stream(),
            p.setup_seconds
        );
        return Ok(());
    }
    let report = bench::run(&opts, &progress).await;
    bar.finish_and_clear();
    let report = report?;
    println!("{}", bench::report::render(&report));
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = &args.plot {
        bench::plot::write_svg(&report, path)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// `strata compare-worker`: see [`crate::bench::worker`].
pub async fn compare_worker(strata: &mut Strata) -> Result<()> {
    let stdin = std::io::stdin();
    bench::worker::serve(strata, stdin.lock(), std::io::stdout()).await
}
