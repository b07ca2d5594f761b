//! `strata bench`: an end-to-end benchmark in a scratch project (never the
//! user's data). One run, in this order:
//!
//! 1. **setup** — write the project (strata.toml, the workload's SQL) and
//!    append the history in commits; keep the first rows as Parquet and
//!    NDJSON input files;
//! 2. **ingest** — append each input file as one commit to a fresh project,
//!    formats alternating, `runs` times: events/s;
//! 3. **batch** — recompute each view from the head snapshot: seconds;
//! 4. **serving** — the workload's queries over the served views, batch
//!    only, then with 1% more events in the speed layer: latency p50/p99;
//! 5. **freshness** — append 10 events in a new period, open a session and
//!    query until they count: p50/p99;
//! 6. **Kappa** — replay the whole log from scratch (events/s); a replay
//!    checkpointing every commit (pauses); one commit applied to state
//!    restored after 10% and after all of the history (ms);
//! 7. **speed layer** — after a batch, a tail of 0.1% and of 10% of the
//!    history in speed: in one long-lived session (as the shell), the cost
//!    of serving one more 1k-event commit, freshness, and the operators'
//!    memory against the raw tail; then `serving = 'merge'` against
//!    precedence and batch only, side by side;
//!
//! and the peak resident memory of each phase.

pub mod plot;
pub mod report;
pub mod worker;
pub mod workload;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use serde::Serialize;

use crate::config::Config;
use crate::error::{Result, StrataError};
use crate::kappa::{CheckpointPolicy, ReplayEvent, ReplayOptions, ViewProcessor};
use crate::log::{AppendRequest, InputSource, Step};
use crate::Strata;
pub use workload::Workload;

/// How `strata bench` runs.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub workload: Workload,
    /// Runs of each timed measure.
    pub runs: usize,
    /// Events per history commit (default: a tenth of the history, at
    /// most 100,000).
    pub commit_rows: Option<usize>,
    /// Events in each ingest input file (at most the history).
    pub ingest_events: u64,
    /// Build the project here (a new or empty directory) and keep it;
    /// default: a temporary directory, removed at the end.
    pub dir: Option<PathBuf>,
}

/// Median, min and max of a measure over its runs.
#[derive(Debug, Clone, Serialize)]
pub struct Stat {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub runs: usize,
}

impl Stat {
    pub fn of(values: &[f64]) -> Self {
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        Self {
            median: median(&v),
            min: v.first().copied().unwrap_or(f64::NAN),
            max: v.last().copied().unwrap_or(f64::NAN),
            runs: v.len(),
        }
    }
}

/// The `p` quantile of sorted values (nearest rank); NaN when empty.
pub fn quantile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// The median of sorted values (the mean of the middle two when even).
pub fn median(sorted: &[f64]) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// A latency distribution, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Every sample, ascending.
    pub samples_ms: Vec<f64>,
}

impl Latency {
    pub fn of(samples: &[Duration]) -> Self {
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        Self {
            p50_ms: quantile(&ms, 0.5),
            p99_ms: quantile(&ms, 0.99),
            max_ms: quantile(&ms, 1.0),
            samples_ms: ms,
        }
    }
}

/// Where the numbers were made.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub memory_gib: Option<f64>,
    pub os: String,
    pub strata: String,
    pub datafusion: String,
    /// `debug` or `release`: debug numbers say little.
    pub profile: String,
}

impl Machine {
    pub fn here() -> Self {
        let memory_gib =
            proc_kib("/proc/meminfo", "MemTotal:").map(|k| (k / 1048576.0 * 10.0).round() / 10.0);
        Self {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_gib,
            os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
            strata: env!("CARGO_PKG_VERSION").into(),
            datafusion: datafusion::DATAFUSION_VERSION.into(),
            profile: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            }
            .into(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct IngestResult {
    pub format: String,
    pub events: u64,
    pub bytes: u64,
    pub events_per_s: Stat,
}

#[derive(Debug, Clone, Serialize)]
pub struct ViewTiming {
    pub view: String,
    pub rows: u64,
    pub seconds: Stat,
}

#[derive(Debug, Clone, Serialize)]
pub struct Incremental {
    /// Commits (and their events) in the state before the measured one.
    pub history_commits: u64,
    pub history_events: u64,
    /// Events of the measured commit.
    pub commit_events: u64,
    /// Applying it to every view.
    pub ms: Stat,
}

#[derive(Debug, Clone, Serialize)]
pub struct PhaseMemory {
    pub phase: String,
    /// Peak resident set size during the phase.
    pub peak_rss_mib: Option<f64>,
}

/// Everything one `strata bench` measured.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub workload: String,
    pub runs: usize,
    pub machine: Machine,
    pub history_events: u64,
    pub history_commits: u64,
    pub setup_seconds: f64,
    pub ingest: Vec<IngestResult>,
    pub batch: Vec<ViewTiming>,
    /// Every view, per run.
    pub batch_seconds: Stat,
    pub served_queries: Vec<String>,
    pub served_batch_only: Latency,
    /// Events in the speed layer for `served_with_speed`.
    pub speed_events: u64,
    pub served_with_speed: Latency,
    pub freshness: Latency,
    /// Events in the log when replaying.
    pub replay_events: u64,
    pub replay_seconds: Stat,
    pub replay_events_per_s: Stat,
    pub incremental: Vec<Incremental>,
    pub checkpoint_pause: Latency,
    /// The speed layer at two tail sizes (small, large).
    pub speed_tails: Vec<SpeedTail>,
    pub merge_serving: MergeServing,
    pub memory: Vec<PhaseMemory>,
}

/// The speed layer with `tail_events` after the batch watermark, in one
/// long-lived session.
#[derive(Debug, Clone, Serialize)]
pub struct SpeedTail {
    pub tail_events: u64,
    pub commit_events: u64,
    /// The first queries after the batch: every view's operator built from
    /// the new watermark over the whole tail (what a new batch version
    /// costs the speed layer, which restarts from it).
    pub rebuild_ms: f64,
    /// After an append: bring the session up to date and run the probe and
    /// every served query.
    pub serve_one_commit: Latency,
    /// Append → the probe query counts the new events.
    pub freshness: Latency,
    /// Every view's speed operator state, bytes.
    pub speed_bytes: u64,
    /// The tail's events as Arrow batches in memory, bytes.
    pub raw_tail_bytes: u64,
}

/// One view served batch only, with precedence and with merge, side by side.
#[derive(Debug, Clone, Serialize)]
pub struct MergeServing {
    pub query: String,
    pub speed_events: u64,
    pub batch_only: Latency,
    pub precedence: Latency,
    pub merge: Latency,
}

impl BenchReport {
    /// Served latency with 1% in speed over batch only, at p50.
    pub fn served_ratio(&self) -> f64 {
        self.served_with_speed.p50_ms / self.served_batch_only.p50_ms
    }
    /// Replay from scratch over the batch recompute of every view.
    pub fn replay_over_batch(&self) -> f64 {
        self.replay_seconds.median / self.batch_seconds.median
    }
    /// Serving one new commit with the large tail over the small one, p50.
    pub fn speed_tail_ratio(&self) -> Option<f64> {
        match self.speed_tails.as_slice() {
            [small, large] => Some(large.serve_one_commit.p50_ms / small.serve_one_commit.p50_ms),
            _ => None,
        }
    }
    /// Merge serving over batch only, p50.
    pub fn merge_ratio(&self) -> f64 {
        self.merge_serving.merge.p50_ms / self.merge_serving.batch_only.p50_ms
    }
    /// One commit after the whole history over one after a tenth of it.
    pub fn incremental_ratio(&self) -> Option<f64> {
        match self.incremental.as_slice() {
            [short, long] => Some(long.ms.median / short.ms.median),
            _ => None,
        }
    }
}

/// The scratch project's directory: temporary, or kept where the user asked.
pub enum Scratch {
    Temp(tempfile::TempDir),
    Kept(PathBuf),
}

impl Scratch {
    fn new(dir: Option<&Path>) -> Result<Self> {
        match dir {
            None => Ok(Scratch::Temp(
                tempfile::Builder::new().prefix("strata-bench-").tempdir()?,
            )),
            Some(d) => {
                if d.exists() && std::fs::read_dir(d)?.next().is_some() {
                    return Err(StrataError::Usage(format!(
                        "--dir {}: not empty; strata bench builds its project in a new or empty directory",
                        d.display()
                    )));
                }
                std::fs::create_dir_all(d)?;
                Ok(Scratch::Kept(std::path::absolute(d)?))
            }
        }
    }

    pub fn path(&self) -> &Path {
        match self {
            Scratch::Temp(t) => t.path(),
            Scratch::Kept(p) => p,
        }
    }
}

/// A project of `workload` in `dir` (created), opened.
fn project(dir: &Path, workload: &Workload) -> Result<Strata> {
    std::fs::create_dir_all(dir.join("sql"))?;
    for (name, text) in workload.sql() {
        std::fs::write(dir.join("sql").join(name), text)?;
    }
    let config = dir.join("strata.toml");
    std::fs::write(
        &config,
        "# Written by `strata bench`.\nstore = 'file://store'\nspeed_max_bytes = 8589934592\n",
    )?;
    Strata::open(Config::load(&config, true)?)
}

/// The `key:` line of a /proc file, in KiB (Linux).
fn proc_kib(file: &str, key: &str) -> Option<f64> {
    let text = std::fs::read_to_string(file).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Peak resident memory since the last reset, in MiB (Linux).
fn peak_rss_mib() -> Option<f64> {
    proc_kib("/proc/self/status", "VmHWM:").map(|k| (k / 1024.0 * 10.0).round() / 10.0)
}

/// Hand freed heap back to the system: glibc keeps it in per-thread
/// arenas, and each run would otherwise add the last one's peak to RSS.
fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Start a new peak-memory window (Linux: clear_refs 5 resets VmHWM).
fn reset_peak_rss() {
    trim_heap();
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// A prepared project: the history appended.
pub struct Prepared {
    pub scratch: Scratch,
    pub strata: Strata,
    pub history_events: u64,
    pub history_commits: u64,
    pub setup_seconds: f64,
    /// Input files of the first history events: (format, path, events, bytes).
    pub inputs: Vec<(String, PathBuf, u64, u64)>,
}

/// Build the scratch project and append the history.
pub async fn prepare(opts: &BenchOptions, progress: &(dyn Fn(&str) + Sync)) -> Result<Prepared> {
    let scratch = Scratch::new(opts.dir.as_deref())?;
    let mut strata = project(scratch.path(), &opts.workload)?;
    let stream = opts.workload.stream();
    let estimate = match opts.workload {
        Workload::Events { events } => events,
        Workload::Tpch { sf } => (sf * 6_000_000.0) as u64,
    };
    let commit_rows = opts
        .commit_rows
        .unwrap_or((estimate / 10).clamp(1, 100_000) as usize)
        .max(1);
    progress(&format!(
        "setup: generating {} and appending it in commits of {commit_rows} events",
        opts.workload.name()
    ));
    let started = Instant::now();
    let inputs_dir = scratch.path().join("inputs");
    std::fs::create_dir_all(&inputs_dir)?;
    let mut writers = InputWriters::new(&inputs_dir, strata.catalog.stream(stream)?)?;
    let (mut events, mut commits) = (0u64, 0u64);
    for batch in opts.workload.history(&strata.catalog, commit_rows)? {
        let batch = batch?;
        let keep = (opts.ingest_events.saturating_sub(events) as usize).min(batch.num_rows());
        if keep > 0 {
            writers.write(&batch.slice(0, keep))?;
        }
        events += batch.num_rows() as u64;
        strata.append_batches(stream, vec![batch], None).await?;
        commits += 1;
        if commits % 10 == 0 {
            progress(&format!("setup: {events} events in {commits} commits"));
        }
    }
    let inputs = writers.finish()?;
    Ok(Prepared {
        scratch,
        strata,
        history_events: events,
        history_commits: commits,
        setup_seconds: started.elapsed().as_secs_f64(),
        inputs,
    })
}

/// The ingest input files: Parquet (zstd) and NDJSON.
struct InputWriters {
    dir: PathBuf,
    parquet: parquet::arrow::ArrowWriter<std::fs::File>,
    ndjson: arrow::json::LineDelimitedWriter<std::io::BufWriter<std::fs::File>>,
    events: u64,
}

impl InputWriters {
    fn new(dir: &Path, stream: &crate::catalog::StreamDef) -> Result<Self> {
        let props = parquet::file::properties::WriterProperties::builder()
            .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
            .build();
        Ok(Self {
            dir: dir.to_path_buf(),
            parquet: parquet::arrow::ArrowWriter::try_new(
                std::fs::File::create(dir.join("input.parquet"))?,
                stream.schema.clone(),
                Some(props),
            )?,
            ndjson: arrow::json::LineDelimitedWriter::new(std::io::BufWriter::new(
                std::fs::File::create(dir.join("input.ndjson"))?,
            )),
            events: 0,
        })
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.parquet.write(batch)?;
        self.ndjson.write(batch)?;
        self.events += batch.num_rows() as u64;
        Ok(())
    }

    fn finish(mut self) -> Result<Vec<(String, PathBuf, u64, u64)>> {
        self.parquet.close()?;
        self.ndjson.finish()?;
        drop(self.ndjson);
        let mut out = Vec::new();
        for format in ["parquet", "ndjson"] {
            let path = self.dir.join(format!("input.{format}"));
            let bytes = std::fs::metadata(&path)?.len();
            out.push((format.to_string(), path, self.events, bytes));
        }
        Ok(out)
    }
}

fn replay_options(every_commits: u64, until: Option<u64>) -> ReplayOptions {
    ReplayOptions {
        from_scratch: until.is_none(),
        follow: false,
        until_commits: until,
        policy: CheckpointPolicy {
            every_commits,
            every: None,
        },
        retain: 3,
        poll: Duration::from_millis(100),
        stop: None,
    }
}

/// The first column of the first row, as a count.
fn first_count(batches: &[RecordBatch]) -> i64 {
    batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .and_then(|b| {
            b.column(0)
                .as_primitive_opt::<Int64Type>()
                .map(|c| c.value(0))
        })
        .unwrap_or(0)
}

/// Run every measure on a prepared project.
pub async fn run(opts: &BenchOptions, progress: &(dyn Fn(&str) + Sync)) -> Result<BenchReport> {
    let runs = opts.runs.max(1);
    let mut memory = Vec::new();
    let mut phase_done = |phase: &str| {
        memory.push(PhaseMemory {
            phase: phase.into(),
            peak_rss_mib: peak_rss_mib(),
        });
        reset_peak_rss();
    };
    reset_peak_rss();
    let prepared = prepare(opts, progress).await?;
    phase_done("setup: generate and append the history");
    let Prepared {
        scratch,
        mut strata,
        history_events,
        history_commits,
        setup_seconds,
        inputs,
    } = prepared;
    let workload = opts.workload;
    let stream = workload.stream();

    // 2. Ingest, formats alternating, each into a fresh project.
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); inputs.len()];
    for run in 0..runs {
        for (i, (format, path, events, _)) in inputs.iter().enumerate() {
            progress(&format!("ingest: {format}, run {}/{runs}", run + 1));
            let dir = scratch.path().join(format!("ingest-{format}-{run}"));
            let mut target = project(&dir, &workload)?;
            let req = AppendRequest {
                inputs: vec![InputSource::new(&path.to_string_lossy(), None)?],
                ..Default::default()
            };
            let t = Instant::now();
            target.append(stream, req, Arc::new(|_| {})).await?;
            rates[i].push(*events as f64 / t.elapsed().as_secs_f64());
            drop(target);
            std::fs::remove_dir_all(&dir)?;
            trim_heap();
        }
    }
    let ingest = inputs
        .iter()
        .zip(&rates)
        .map(|((format, _, events, bytes), r)| IngestResult {
            format: format.clone(),
            events: *events,
            bytes: *bytes,
            events_per_s: Stat::of(r),
        })
        .collect();
    phase_done("ingest");

    // 3. Batch recompute, view by view.
    let views: Vec<String> = strata
        .catalog
        .materialized()
        .map(|v| v.name.clone())
        .collect();
    let mut per_view: Vec<Vec<f64>> = vec![Vec::new(); views.len()];
    let mut rows = vec![0; views.len()];
    let mut totals = Vec::new();
    for run in 0..runs {
        let mut total = 0.0;
        for (i, view) in views.iter().enumerate() {
            progress(&format!("batch: {view}, run {}/{runs}", run + 1));
            let t = Instant::now();
            let record = strata.batch(std::slice::from_ref(view), &|_, _| {}).await?;
            let s = t.elapsed().as_secs_f64();
            per_view[i].push(s);
            total += s;
            rows[i] = record.first().map_or(0, |r| r.rows);
        }
        totals.push(total);
    }
    let batch = views
        .iter()
        .zip(&per_view)
        .zip(&rows)
        .map(|((view, s), rows)| ViewTiming {
            view: view.clone(),
            rows: *rows,
            seconds: Stat::of(s),
        })
        .collect();
    phase_done("batch");

    // 4. Served latency: batch only, then with 1% of the events in speed.
    let queries = workload.queries();
    let served = |ctx: datafusion::prelude::SessionContext, label: &'static str| async move {
        let mut all = Vec::new();
        for run in 0..runs * 10 {
            if run % 10 == 0 {
                progress(&format!(
                    "serving ({label}): round {}/{}",
                    run + 1,
                    runs * 10
                ));
            }
            for q in queries {
                let t = Instant::now();
                ctx.sql(q).await?.collect().await?;
                all.push(t.elapsed());
            }
        }
        Ok::<_, StrataError>(Latency::of(&all))
    };
    let served_batch_only = served(strata.session().await?, "batch only").await?;
    let speed_events = (history_events / 100).max(1);
    let fresh = workload.fresh(&strata.catalog, speed_events, 0)?;
    let speed_events = fresh.iter().map(|b| b.num_rows() as u64).sum();
    strata.append_batches(stream, fresh, None).await?;
    let served_with_speed = served(strata.session().await?, "batch ∪ speed").await?;
    phase_done("serving");

    // 5. Freshness: append, then a new session that must see the events.
    let mut lat = Vec::new();
    for seq in 1..=(runs * 20) as u64 {
        if seq % 10 == 1 {
            progress(&format!("freshness: append {seq}/{}", runs * 20));
        }
        let events = workload.fresh(&strata.catalog, 10, seq)?;
        let probe = workload.probe(seq);
        let t = Instant::now();
        strata.append_batches(stream, events, None).await?;
        let ctx = strata.session().await?;
        let got = ctx.sql(&probe).await?.collect().await?;
        lat.push(t.elapsed());
        if first_count(&got) <= 0 {
            return Err(StrataError::Usage(format!(
                "freshness: events appended in period {seq} are not served ({probe})"
            )));
        }
    }
    let freshness = Latency::of(&lat);
    phase_done("freshness");

    // 6. Kappa: replay from scratch, then checkpoint pauses, then the
    // incremental cost of one commit at two history sizes.
    let commit_rows: Vec<u64> = strata
        .snapshot(stream)
        .await?
        .steps()
        .iter()
        .map(Step::rows)
        .collect();
    let replay_events: u64 = commit_rows.iter().sum();
    let mut replay_s = Vec::new();
    for run in 0..runs {
        progress(&format!(
            "kappa: replay {replay_events} events from scratch, run {}/{runs}",
            run + 1
        ));
        let t = Instant::now();
        strata.replay(&[], replay_options(0, None), &|_| {}).await?;
        replay_s.push(t.elapsed().as_secs_f64());
    }
    let replay_rates: Vec<f64> = replay_s.iter().map(|s| replay_events as f64 / s).collect();
    progress("kappa: replay checkpointing every commit");
    let pauses = Mutex::new(Vec::new());
    strata
        .replay(&[], replay_options(1, None), &|e| {
            if let ReplayEvent::Checkpoint { pause, .. } = e {
                pauses.lock().expect("not poisoned").push(pause);
            }
        })
        .await?;
    let checkpoint_pause = Latency::of(&pauses.into_inner().expect("not poisoned"));
    let mut incremental = Vec::new();
    // The commit after a tenth of the history, and the last history
    // commit of the same size (the very last one may be partial).
    let short = (history_commits / 10).max(1);
    let long = (short + 1..history_commits)
        .rev()
        .find(|&c| commit_rows[c as usize] == commit_rows[short as usize]);
    if let Some(long) = long {
        for at in [short, long] {
            progress(&format!("kappa: one commit after {at} commits of history"));
            incremental.push(incremental_cost(&mut strata, at, runs.max(3)).await?);
        }
    }
    phase_done("kappa");

    // 7. The speed layer at two tail sizes, then merge serving.
    let mut speed_tails = Vec::new();
    for (i, tail) in [history_events / 1000, history_events / 10]
        .into_iter()
        .enumerate()
    {
        progress(&format!("speed: a tail of {tail} events"));
        // Periods after the freshness phase's (1..=20 runs), within the
        // years a timestamp holds (TPC-H periods are months).
        let seq0 = 200 * (i as u64 + 1) + 20 * runs as u64;
        speed_tails.push(speed_tail(&mut strata, &workload, tail.max(10), seq0, runs).await?);
    }
    let merge_serving = merge_serving(&mut strata, &scratch, &workload, runs, progress).await?;
    phase_done("speed");
    drop(strata);
    drop(scratch);

    Ok(BenchReport {
        workload: workload.name(),
        runs,
        machine: Machine::here(),
        history_events,
        history_commits,
        setup_seconds,
        ingest,
        batch,
        batch_seconds: Stat::of(&totals),
        served_queries: queries.iter().map(|q| q.to_string()).collect(),
        served_batch_only,
        speed_events,
        served_with_speed,
        freshness,
        replay_events,
        replay_seconds: Stat::of(&replay_s),
        replay_events_per_s: Stat::of(&replay_rates),
        incremental,
        checkpoint_pause,
        speed_tails,
        merge_serving,
        memory,
    })
}

/// Events per measured commit in the speed phase.
const SPEED_COMMIT_EVENTS: u64 = 1000;

/// After a batch, append `tail` events in 10 commits, then in one session
/// (kept, as the shell keeps it) time one more commit at a time.
async fn speed_tail(
    strata: &mut Strata,
    workload: &Workload,
    tail: u64,
    seq0: u64,
    runs: usize,
) -> Result<SpeedTail> {
    let stream = workload.stream();
    strata.batch(&[], &|_, _| {}).await?;
    let mut raw_tail_bytes = 0u64;
    for c in 0..10 {
        let events = workload.fresh(&strata.catalog, (tail / 10).max(1), seq0 + c)?;
        raw_tail_bytes += events
            .iter()
            .map(|b| b.get_array_memory_size() as u64)
            .sum::<u64>();
        strata.append_batches(stream, events, None).await?;
    }
    let t = Instant::now();
    let ctx = strata.session().await?;
    for q in workload.queries() {
        ctx.sql(q).await?.collect().await?;
    }
    let rebuild_ms = t.elapsed().as_secs_f64() * 1e3;
    let speed_bytes = strata
        .view_status()
        .await?
        .iter()
        .map(|s| s.speed_bytes)
        .sum();
    let (mut serve, mut fresh) = (Vec::new(), Vec::new());
    for j in 0..(runs * 10) as u64 {
        let seq = seq0 + 10 + j;
        let events = workload.fresh(&strata.catalog, SPEED_COMMIT_EVENTS, seq)?;
        let probe = workload.probe(seq);
        let t = Instant::now();
        strata.append_batches(stream, events, None).await?;
        let appended = t.elapsed();
        strata.serve(&ctx).await?;
        let got = ctx.sql(&probe).await?.collect().await?;
        fresh.push(t.elapsed());
        for q in workload.queries() {
            ctx.sql(q).await?.collect().await?;
        }
        serve.push(t.elapsed() - appended);
        if first_count(&got) <= 0 {
            return Err(StrataError::Usage(format!(
                "speed: events appended in period {seq} are not served ({probe})"
            )));
        }
    }
    Ok(SpeedTail {
        tail_events: tail,
        commit_events: SPEED_COMMIT_EVENTS,
        rebuild_ms,
        serve_one_commit: Latency::of(&serve),
        freshness: Latency::of(&fresh),
        speed_bytes,
        raw_tail_bytes,
    })
}

/// A merge-served twin of the workload's first view, batched, then 1% of
/// the history in speed: the same query over the view batch only, with
/// precedence and with merge, runs alternating.
async fn merge_serving(
    strata: &mut Strata,
    scratch: &Scratch,
    workload: &Workload,
    runs: usize,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<MergeServing> {
    let (view, query) = workload.merge_probe();
    let twin = format!("{view}_merge");
    let sql = strata.catalog.view(view)?.query.clone();
    std::fs::write(
        scratch.path().join("sql").join("merge.sql"),
        format!("CREATE MATERIALIZED VIEW {twin} WITH (serving = 'merge') AS {sql};\n"),
    )?;
    strata.reload_catalog()?;
    strata.batch(&[], &|_, _| {}).await?;
    let on = |v: &str| query.replace("{view}", v);
    let timed = |ctx: datafusion::prelude::SessionContext, sql: String| async move {
        let t = Instant::now();
        ctx.sql(&sql).await?.collect().await?;
        Ok::<_, StrataError>(t.elapsed())
    };
    let ctx = strata.session().await?;
    let mut batch_only = Vec::new();
    for _ in 0..runs * 20 {
        batch_only.push(timed(ctx.clone(), on(view)).await?);
    }
    let history: u64 = strata.snapshot(workload.stream()).await?.rows();
    let speed_events = (history / 100).max(1);
    let fresh = workload.fresh(&strata.catalog, speed_events, 0)?;
    strata
        .append_batches(workload.stream(), fresh, None)
        .await?;
    let ctx = strata.session().await?;
    let (mut precedence, mut merge) = (Vec::new(), Vec::new());
    for round in 0..runs * 20 {
        if round % 20 == 0 {
            progress(&format!(
                "speed: merge serving, round {}/{}",
                round + 1,
                runs * 20
            ));
        }
        precedence.push(timed(ctx.clone(), on(view)).await?);
        merge.push(timed(ctx.clone(), on(&twin)).await?);
    }
    Ok(MergeServing {
        query: on(view),
        speed_events,
        batch_only: Latency::of(&batch_only),
        precedence: Latency::of(&precedence),
        merge: Latency::of(&merge),
    })
}

/// Time applying commit `at` to every view's state restored from a
/// checkpoint of commits `0..at`.
async fn incremental_cost(strata: &mut Strata, at: u64, runs: usize) -> Result<Incremental> {
    strata
        .replay(&[], replay_options(0, Some(at)), &|_| {})
        .await?;
    let plans = strata.compiled_views(&[])?;
    let ctx = strata.new_session()?;
    let stream = plans
        .first()
        .map(|v| v.view.stream.clone())
        .unwrap_or_default();
    let snapshot = strata.snapshot(&stream).await?;
    let commit = snapshot.steps_between(at, at + 1).await?;
    let mut times = Vec::new();
    for _ in 0..runs {
        let mut total = Duration::ZERO;
        for plan in &plans {
            let mut p = ViewProcessor::start(strata.store(), plan.clone(), false, Some(at)).await?;
            if p.commits != at {
                return Err(StrataError::Kappa(format!(
                    "view '{}': restored {} commits, expected {at}",
                    plan.view.name, p.commits
                )));
            }
            let t = Instant::now();
            for step in &commit {
                p.apply(&ctx, step).await?;
            }
            total += t.elapsed();
        }
        times.push(total.as_secs_f64() * 1e3);
    }
    Ok(Incremental {
        history_commits: at,
        history_events: snapshot
            .steps_between(0, at)
            .await?
            .iter()
            .map(Step::rows)
            .sum(),
        commit_events: commit.iter().map(Step::rows).sum(),
        ms: Stat::of(&times),
    })
}
