//! The `strata` command line: subcommands, output and progress.

mod bench;
mod command;
mod demo;
mod helper;
pub mod kappa;
pub mod print;
pub mod shell;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::{Config, STARTER_CONFIG, STARTER_SQL};
use crate::error::{Result, StrataError};
use crate::guard::SqlPolicy;
use crate::log::{AppendOutcome, AppendRequest, Covered, InputFormat, InputSource};
use crate::sample::{write_sample, SampleFormat, SampleOptions};
use crate::{Strata, StreamStatus};
use print::{print_batches, row_count, OutputFormat};

/// strata: fresh and provably correct SQL views over an immutable event log.
#[derive(Debug, Parser)]
#[command(name = "strata", version, about, long_about = None)]
pub struct Cli {
    /// Project config file.
    #[arg(
        long,
        global = true,
        env = "STRATA_CONFIG",
        default_value = "strata.toml"
    )]
    pub config: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a starter strata.toml and an example stream definition.
    Init {
        /// Project directory (created if missing).
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Append files (or stdin) to a stream as one atomic commit.
    Ingest {
        /// Stream to append to.
        stream: String,
        /// Input files; `-` or none reads stdin.
        files: Vec<String>,
        /// Input format (default: from the file extension; ndjson for stdin).
        #[arg(long, value_enum)]
        format: Option<InputFormat>,
        /// Commit at most once per key: a retry with a committed key does nothing.
        #[arg(long)]
        idempotency_key: Option<String>,
        /// Drop input columns the stream does not declare.
        #[arg(long)]
        ignore_extra_columns: bool,
    },
    /// Run SQL over the streams at their latest commit.
    Query {
        /// The SQL statement (read-only: no DDL, DML or SET). It may start
        /// with a `--` comment.
        #[arg(allow_hyphen_values = true)]
        sql: String,
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
        /// Allow statements that read or write host files (URL tables, CREATE EXTERNAL TABLE, COPY … TO). The store's own files are never writable.
        #[arg(long)]
        allow_host_files: bool,
    },
    /// Recompute materialized views from the head of the log and publish a new version of each.
    Batch {
        /// Views to recompute (default: every materialized view).
        views: Vec<String>,
    },
    /// Kappa: replay the log through the materialized views, resuming from their checkpoints.
    Replay {
        /// Views to replay (default: every materialized view).
        views: Vec<String>,
        /// Ignore checkpoints: reset state and replay from commit 0.
        #[arg(long)]
        from_scratch: bool,
        /// Keep tailing new commits until Ctrl-C (which stops after a checkpoint).
        #[arg(long)]
        follow: bool,
        /// Checkpoint every N commits (default: [kappa] checkpoint_commits; 0: only at the end).
        #[arg(long, value_name = "N")]
        checkpoint_every: Option<u64>,
        /// Replay commits 0..=N only.
        #[arg(long, value_name = "N")]
        until_commit: Option<u64>,
    },
    /// Prove Kappa equals batch: replay each view to its batch snapshot and compare row by row.
    Verify {
        /// Views to verify (default: every materialized view).
        views: Vec<String>,
        /// Replay from commit 0 instead of resuming from a checkpoint.
        #[arg(long)]
        from_scratch: bool,
    },
    /// Show every stream (commits, rows, event-time range) and view (batch version, watermark, speed layer), and what is refused (a stream whose log its declaration cannot read, a view that does not compile) with why.
    Status {
        /// table: up to three tables (streams, views, refused); csv: the same, a blank line between; json: one object {"streams": [...], "views": [...], "refused": [...]}; ndjson: one object a line, each with "kind" (stream, view or refused) and the same fields as in json.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Check the store: records readable and commits gap-free, every named file present with its recorded size and checksum, schema fingerprints, orphan files. Fails on damage; orphans alone are listed but pass unless --strict.
    Check {
        /// Remove orphan files older than --grace (never a file a record names).
        #[arg(long)]
        gc: bool,
        /// With --gc: keep orphans younger than this (e.g. 0s, 15m, 1h, 2d), which may belong to a write in progress.
        #[arg(long, default_value = "1h", value_parser = crate::check::parse_duration)]
        grace: std::time::Duration,
        /// Fail when orphan files remain.
        #[arg(long)]
        strict: bool,
    },
    /// Compact small log files: rewrite each run of small commits into larger files per event-time partition, as one commit that names what it supersedes. Every snapshot reads the same rows; superseded files stay until `strata vacuum`.
    Compact {
        /// Streams to compact (default: every stream).
        streams: Vec<String>,
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Remove log files that compactions superseded, once nothing retained reads them: the compaction is older than --older-than, and no batch version or Kappa checkpoint sits inside the compacted range.
    Vacuum {
        /// Streams to vacuum (default: every stream).
        streams: Vec<String>,
        /// Keep files superseded more recently than this (e.g. 0s, 15m, 1h, 7d): a query or batch that pinned its snapshot before the compaction still reads them.
        #[arg(long, value_parser = crate::check::parse_duration)]
        older_than: std::time::Duration,
        /// Only report what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
    /// Write a log checkpoint of each stream at its head now (writers also write one every [log] checkpoint_interval commits).
    CheckpointLog {
        /// Streams (default: every stream).
        streams: Vec<String>,
    },
    /// Run the whole cycle on the sample in data/ and sql/.
    Demo,
    /// Interactive SQL shell (or run SQL from -c, -f or stdin).
    Shell {
        /// Run these statements and exit.
        #[arg(short = 'c', long = "command")]
        command: Option<String>,
        /// Run the statements in FILE and exit.
        #[arg(short = 'f', long = "file")]
        file: Option<PathBuf>,
        /// Allow statements that read or write host files (CREATE EXTERNAL TABLE, COPY).
        #[arg(long)]
        allow_host_files: bool,
    },
    /// Benchmark strata end to end in a scratch project (never your data): ingest, batch, serving, freshness, Kappa, memory.
    Bench(bench::BenchArgs),
    /// Serve benches/compare.py: time batch and plain DataFusion runs of this project's views.
    #[command(hide = true)]
    CompareWorker,
    /// Generate sample order events (deterministic for a seed).
    Sample {
        /// Output file: .parquet, .ndjson or .csv.
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 100_000)]
        events: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// First event time (RFC 3339).
        #[arg(long, default_value = "2026-11-01T00:00:00Z")]
        start: String,
        /// Hours the events are spread over.
        #[arg(long, default_value_t = 144)]
        hours: u32,
        #[arg(long, default_value_t = 1)]
        first_order_id: i64,
        /// Fraction of events stamped up to 12 hours late.
        #[arg(long, default_value_t = 0.005)]
        late_fraction: f64,
    },
}

/// Log to stderr, filtered by `RUST_LOG` (default: warnings).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Load the config the user pointed at (it must exist if named explicitly).
pub fn load_config(path: &Path) -> Result<Config> {
    let named = path != Path::new("strata.toml") || std::env::var_os("STRATA_CONFIG").is_some();
    Config::load(path, named)
}

/// Run one command.
pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Init { dir } => init(&dir),
        Command::Bench(args) => bench::run(&args).await,
        Command::Sample {
            out,
            events,
            seed,
            start,
            hours,
            first_order_id,
            late_fraction,
        } => {
            let start_us = chrono::DateTime::parse_from_rfc3339(&start)
                .map_err(|e| StrataError::Usage(format!("--start '{start}': {e}")))?
                .timestamp_micros();
            if !(0.0..=1.0).contains(&late_fraction) {
                return Err(StrataError::Usage(
                    "--late-fraction must be within 0..1".into(),
                ));
            }
            let format = match InputFormat::from_path(&out) {
                Some(InputFormat::Parquet) => SampleFormat::Parquet,
                Some(InputFormat::Csv) => SampleFormat::Csv,
                Some(InputFormat::Ndjson) => SampleFormat::Ndjson,
                None => {
                    return Err(StrataError::Usage(format!(
                        "--out {}: use .parquet, .ndjson or .csv",
                        out.display()
                    )))
                }
            };
            let opts = SampleOptions {
                events,
                seed,
                start_us,
                hours: hours.max(1),
                first_order_id,
                late_fraction,
                ..Default::default()
            };
            let file = std::fs::File::create(&out).map_err(|e| {
                StrataError::Usage(format!("--out {}: cannot create: {e}", out.display()))
            })?;
            let rows = write_sample(opts, format, file)?;
            println!("wrote {rows} events to {}", out.display());
            Ok(())
        }
        command => {
            let config = load_config(&cli.config)?;
            let mut strata = Strata::open(config)?;
            let writes = matches!(
                command,
                Command::Ingest { .. }
                    | Command::Batch { .. }
                    | Command::Replay { .. }
                    | Command::Demo
                    | Command::Shell { .. }
                    | Command::CompareWorker
            );
            strata.check_store(writes).await?;
            match command {
                Command::Ingest {
                    stream,
                    files,
                    format,
                    idempotency_key,
                    ignore_extra_columns,
                } => {
                    let files = if files.is_empty() {
                        vec!["-".to_string()]
                    } else {
                        files
                    };
                    let mut inputs = Vec::new();
                    for f in &files {
                        inputs.push(strata.input(f, format).await?);
                    }
                    let req = AppendRequest {
                        inputs,
                        idempotency_key,
                        ignore_extra_columns,
                    };
                    ingest(&mut strata, &stream, req).await.map(|_| ())
                }
                Command::Query {
                    sql,
                    format,
                    allow_host_files,
                } => {
                    let policy = SqlPolicy { allow_host_files };
                    query(&mut strata, &sql, format, policy).await
                }
                Command::Batch { views } => {
                    batch(&mut strata, &views).await?;
                    refused_views(&strata, &views)
                }
                Command::Replay {
                    views,
                    from_scratch,
                    follow,
                    checkpoint_every,
                    until_commit,
                } => {
                    let args = kappa::ReplayArgs {
                        views,
                        from_scratch,
                        follow,
                        checkpoint_every,
                        until_commit,
                    };
                    let views = args.views.clone();
                    kappa::replay(&mut strata, &args).await?;
                    refused_views(&strata, &views)
                }
                Command::Verify {
                    views,
                    from_scratch,
                } => {
                    kappa::verify(&mut strata, &views, from_scratch).await?;
                    refused_views(&strata, &views)
                }
                Command::Status { format } => status(&mut strata, format).await,
                Command::Check { gc, grace, strict } => {
                    let opts = crate::check::CheckOptions { gc, grace };
                    let report = crate::check::check_store(&strata, &opts).await?;
                    print!("{report}");
                    report.verdict(strict)
                }
                Command::Compact { streams, format } => {
                    compact(&mut strata, &streams, format).await
                }
                Command::Vacuum {
                    streams,
                    older_than,
                    dry_run,
                } => {
                    for v in strata.vacuum(&streams, older_than, dry_run).await? {
                        let verb = if dry_run { "would remove" } else { "removed" };
                        println!(
                            "{}: {verb} {} superseded files ({}); kept {}: {} read by a retained batch version or Kappa checkpoint, {} younger than --older-than",
                            v.stream,
                            v.files,
                            human_bytes(v.bytes),
                            v.kept,
                            v.kept_read,
                            v.kept - v.kept_read
                        );
                    }
                    Ok(())
                }
                Command::CheckpointLog { streams } => {
                    for (stream, at) in strata.checkpoint_logs(&streams).await? {
                        match at {
                            Some(c) => println!("{stream}: log checkpoint at commit {c}"),
                            None => println!("{stream}: empty log, no checkpoint"),
                        }
                    }
                    Ok(())
                }
                Command::Demo => demo::run(&mut strata).await,
                Command::Shell {
                    command,
                    file,
                    allow_host_files,
                } => {
                    let opts = shell::ShellOptions {
                        allow_host_files,
                        command,
                        file,
                    };
                    shell::run(&mut strata, opts).await
                }
                Command::CompareWorker => bench::compare_worker(&mut strata).await,
                Command::Init { .. } | Command::Sample { .. } | Command::Bench(_) => {
                    unreachable!("handled above")
                }
            }
        }
    }
}

/// After a command over every view (`views` empty): the views refused at
/// load make it fail, once the others are done.
fn refused_views(strata: &Strata, views: &[String]) -> Result<()> {
    if !views.is_empty() {
        return Ok(());
    }
    match strata.catalog.refused.as_slice() {
        [] => Ok(()),
        [one] => Err(one.error()),
        all => Err(StrataError::ViewRefused {
            view: all[0].view.clone(),
            message: format!(
                "{} views were refused:\n  {}",
                all.len(),
                all.iter()
                    .map(|r| r.message.as_str())
                    .collect::<Vec<_>>()
                    .join("\n  ")
            ),
        }),
    }
}

fn init(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir.join("sql"))?;
    let config = dir.join("strata.toml");
    let sql = dir.join("sql").join("orders.sql");
    // A stream `orders` declared already (in any file under sql/) is the
    // project's: the starter would clash with it.
    let declared = crate::catalog::Catalog::load(&dir.join("sql"))
        .is_ok_and(|c| c.streams.contains_key("orders"));
    for (path, text) in [(&config, STARTER_CONFIG), (&sql, STARTER_SQL)] {
        if path.exists() {
            println!("kept existing {}", path.display());
        } else if path == &sql && declared {
            println!(
                "kept the stream orders declared in {}; the starter {} is not written",
                dir.join("sql").display(),
                sql.display()
            );
        } else {
            std::fs::write(path, text)?;
            println!("wrote {}", path.display());
        }
    }
    println!(
        "next: strata --config {} ingest orders FILE.ndjson",
        config.display()
    );
    Ok(())
}

/// Inputs larger than this show a progress bar (on a terminal).
const PROGRESS_MIN_BYTES: u64 = 4 * 1024 * 1024;

/// `strata ingest`: one append, with a progress bar on a terminal.
pub async fn ingest(
    strata: &mut Strata,
    stream: &str,
    req: AppendRequest,
) -> Result<AppendOutcome> {
    let started = Instant::now();
    let text_bytes: u64 = req
        .inputs
        .iter()
        .filter(|i| i.format != InputFormat::Parquet)
        .filter_map(InputSource::size_bytes)
        .sum();
    let bar = if std::io::stderr().is_terminal() && text_bytes > PROGRESS_MIN_BYTES {
        let bar = ProgressBar::new(text_bytes);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {bytes}/{total_bytes} {bar:30} {bytes_per_sec} eta {eta}",
            )
            .expect("valid template"),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let counter = bar.clone();
    let outcome = strata
        .append(stream, req, Arc::new(move |n| counter.inc(n)))
        .await;
    bar.finish_and_clear();
    let outcome = outcome?;
    let secs = started.elapsed().as_secs_f64();
    match &outcome {
        AppendOutcome::Committed {
            commit,
            rows,
            bytes,
            files,
        } => println!(
            "{stream}: committed {rows} rows ({}, {files} files) as commit {commit} in {secs:.2}s ({:.0} rows/s)",
            human_bytes(*bytes),
            *rows as f64 / secs.max(1e-9)
        ),
        AppendOutcome::AlreadyCommitted { commit, key } => println!(
            "{stream}: idempotency key '{key}' is already committed as commit {commit}; nothing appended"
        ),
    }
    Ok(outcome)
}

/// `strata query`: results on stdout, row count and time on stderr.
pub async fn query(
    strata: &mut Strata,
    sql: &str,
    format: OutputFormat,
    policy: SqlPolicy,
) -> Result<()> {
    let started = Instant::now();
    let (schema, batches) = strata.query_with(sql, policy).await?;
    let mut out = std::io::stdout().lock();
    print_batches(&schema, &batches, format, &mut out)?;
    if format == OutputFormat::Table {
        let n = row_count(&batches);
        eprintln!(
            "{n} row{} in {:.3}s",
            if n == 1 { "" } else { "s" },
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// `strata batch`: one line per view, a spinner on a terminal.
pub async fn batch(
    strata: &mut Strata,
    views: &[String],
) -> Result<Vec<crate::batch::VersionRecord>> {
    if strata.catalog.materialized().next().is_none() {
        return Err(StrataError::Usage(format!(
            "no materialized views: define one with CREATE MATERIALIZED VIEW in {}",
            strata.config.sql_dir.display()
        )));
    }
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} {pos} rows").expect("valid template"),
        );
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar
    } else {
        ProgressBar::hidden()
    };
    let counter = bar.clone();
    let started = Instant::now();
    let records = strata
        .batch(views, &move |view, rows| {
            // Each view's rows from 0: the count is the view's, not a
            // running total over the views before it.
            let message = format!("batch {view}:");
            if counter.message() != message {
                counter.set_message(message);
                counter.set_position(0);
            }
            counter.inc(rows);
        })
        .await;
    bar.finish_and_clear();
    let records = records?;
    for r in &records {
        println!(
            "{}: version {} — {} rows at watermark {} (stream {}), files hash {}, {:.2}s",
            r.view,
            r.version,
            r.rows,
            r.watermark
                .map_or("none (empty log)".to_string(), |w| format!("commit {w}")),
            r.stream,
            &r.content_hash[..16],
            r.duration_ms as f64 / 1000.0
        );
    }
    tracing::info!("batch took {:.2}s", started.elapsed().as_secs_f64());
    Ok(records)
}

/// `strata status`: streams, then views.
/// `strata compact`: one line per compaction as it lands (or, with
/// `--format json`, all of them at the end).
async fn compact(strata: &mut Strata, streams: &[String], format: OutputFormat) -> Result<()> {
    let json = format == OutputFormat::Json;
    let report = |c: &crate::log::compact::Compacted| {
        if !json {
            println!(
                "{}: commits {}..={} compacted as commit {}: {} files ({}) -> {} ({})",
                c.stream,
                c.first,
                c.last,
                c.commit,
                c.files_before,
                human_bytes(c.bytes_before),
                c.files_after,
                human_bytes(c.bytes_after)
            );
        }
    };
    let done = strata.compact(streams, &report).await?;
    let mut out = std::io::stdout().lock();
    use std::io::Write;
    if json {
        serde_json::to_writer_pretty(&mut out, &done)?;
        writeln!(out)?;
    } else if done.is_empty() {
        writeln!(out, "nothing to compact")?;
    }
    Ok(())
}

pub async fn status(strata: &mut Strata, format: OutputFormat) -> Result<()> {
    use std::io::Write;
    let streams = strata.status().await?;
    let views = strata.view_status().await?;
    let refused = strata.refusals();
    let mut out = std::io::stdout().lock();
    match format {
        OutputFormat::Json => {
            let doc = serde_json::json!({ "streams": streams, "views": views, "refused": refused });
            serde_json::to_writer_pretty(&mut out, &doc)?;
            writeln!(out)?;
        }
        OutputFormat::Ndjson => {
            // One object a line, with its `kind`: the same fields and
            // types as `json`.
            let line = |kind: &str, v: serde_json::Value| {
                let mut o = serde_json::Map::new();
                o.insert("kind".into(), kind.into());
                if let serde_json::Value::Object(m) = v {
                    o.extend(m);
                }
                serde_json::Value::Object(o)
            };
            let lines = streams
                .iter()
                .map(|s| line("stream", serde_json::json!(s)))
                .chain(views.iter().map(|v| line("view", serde_json::json!(v))))
                .chain(
                    refused
                        .iter()
                        .map(|r| line("refused", serde_json::json!(r))),
                );
            for l in lines {
                serde_json::to_writer(&mut out, &l)?;
                writeln!(out)?;
            }
        }
        OutputFormat::Table | OutputFormat::Csv => {
            let mut tables = vec![status_batch(&streams)?];
            if !views.is_empty() {
                tables.push(view_status_batch(&views)?);
            }
            if !refused.is_empty() {
                tables.push(RecordBatch::try_from_iter(vec![
                    ("refused", text_column(refused.iter().map(|r| r.what))),
                    ("name", text_column(refused.iter().map(|r| r.name.as_str()))),
                    (
                        "reason",
                        text_column(refused.iter().map(|r| r.reason.as_str())),
                    ),
                ])?);
            }
            for (i, batch) in tables.iter().enumerate() {
                // CSV: the tables one after another, a blank line between.
                if i > 0 && format == OutputFormat::Csv {
                    writeln!(out)?;
                }
                print_batches(
                    &batch.schema(),
                    std::slice::from_ref(batch),
                    format,
                    &mut out,
                )?;
            }
        }
    }
    Ok(())
}

/// `seconds` as the two largest of days, hours, minutes and seconds:
/// `0s`, `45s`, `12m 5s`, `15h 0m`, `3d 4h`.
fn human_duration(seconds: f64) -> String {
    let total = seconds.max(0.0).round() as u64;
    let (d, h, m, s) = (
        total / 86_400,
        total / 3_600 % 24,
        total / 60 % 60,
        total % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

fn text_column<'a>(values: impl Iterator<Item = &'a str>) -> Arc<dyn arrow::array::Array> {
    Arc::new(StringArray::from_iter_values(values))
}

fn view_status_batch(rows: &[crate::ViewStatus]) -> Result<RecordBatch> {
    let text = |f: &dyn Fn(&crate::ViewStatus) -> String| -> Arc<dyn arrow::array::Array> {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
    };
    let opt = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
    Ok(RecordBatch::try_from_iter(vec![
        ("view", text(&|r| r.view.clone())),
        (
            "key",
            text(&|r| {
                if r.key.is_empty() {
                    "(none)".into()
                } else {
                    r.key.clone()
                }
            }),
        ),
        (
            "batch",
            text(&|r| match r.batch_version {
                Some(v) => format!("v{v} ({})", r.batch_state),
                None => "none".into(),
            }),
        ),
        ("batch_rows", text(&|r| opt(r.batch_rows))),
        ("watermark", text(&|r| opt(r.watermark))),
        ("head", text(&|r| opt(r.head_commit))),
        ("speed_commits", text(&|r| r.speed_commits.to_string())),
        (
            "speed_groups",
            text(&|r| match &r.speed_error {
                Some(e) => format!("error: {e}"),
                None => r.speed_groups.to_string(),
            }),
        ),
        ("speed_bytes", text(&|r| human_bytes(r.speed_bytes))),
        ("serving", text(&|r| r.serving.clone())),
        ("verdict", text(&|r| r.verdict.clone())),
        (
            "behind",
            text(&|r| match r.behind_seconds {
                Some(s) => format!("{} of event time", human_duration(s)),
                None => "whole log".into(),
            }),
        ),
        (
            "kappa",
            text(&|r| match (r.kappa_checkpoint, r.kappa_commits) {
                (Some(c), Some(n)) => format!(
                    "checkpoint {c}, {} commits behind",
                    Covered(n).behind(r.head_commit)
                ),
                _ => "none".into(),
            }),
        ),
    ])?)
}

fn status_batch(rows: &[StreamStatus]) -> Result<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("stream", DataType::Utf8, false),
        Field::new("commits", DataType::UInt64, false),
        Field::new("head_commit", DataType::UInt64, true),
        Field::new("rows", DataType::UInt64, false),
        Field::new("bytes", DataType::UInt64, false),
        Field::new("files", DataType::UInt64, false),
        Field::new("avg_file", DataType::Utf8, false),
        Field::new("log_checkpoint", DataType::UInt64, true),
        Field::new("since_checkpoint", DataType::UInt64, false),
        Field::new("min_event_time", DataType::Utf8, true),
        Field::new("max_event_time", DataType::Utf8, true),
    ]));
    Ok(RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.stream.as_str()),
            )),
            Arc::new(UInt64Array::from_iter_values(
                rows.iter().map(|r| r.commits),
            )),
            Arc::new(UInt64Array::from_iter(rows.iter().map(|r| r.head_commit))),
            Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.rows))),
            Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.bytes))),
            Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.files))),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| human_bytes(r.avg_file_bytes)),
            )),
            Arc::new(UInt64Array::from_iter(
                rows.iter().map(|r| r.log_checkpoint),
            )),
            Arc::new(UInt64Array::from_iter_values(
                rows.iter().map(|r| r.commits_since_checkpoint),
            )),
            Arc::new(StringArray::from_iter(
                rows.iter().map(|r| r.min_event_time.as_deref()),
            )),
            Arc::new(StringArray::from_iter(
                rows.iter().map(|r| r.max_event_time.as_deref()),
            )),
        ],
    )?)
}

/// Bytes as B, KiB, MiB or GiB.
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = b as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::human_duration;

    #[test]
    fn durations_read_as_their_two_largest_units() {
        for (seconds, text) in [
            (0.0, "0s"),
            (44.6, "45s"),
            (725.0, "12m 5s"),
            (54_011.0, "15h 0m"),
            (273_600.0, "3d 4h"),
            (-1.0, "0s"),
        ] {
            assert_eq!(human_duration(seconds), text);
        }
    }
}
