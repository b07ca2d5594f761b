//! The log at scale (issue 14), a benchmark — not a timed test. For each
//! history length it builds a log of one-row commits in-process, then runs
//! the real release binary:
//!
//! - `strata query "SELECT count(*) FROM orders"` (opens the log: newest
//!   log checkpoint + the commits after it) and `strata ingest` of one row,
//!   median of `--runs` wall times each, on the default `[log]` settings
//!   (checkpoint every 100 commits, automatic compaction past 1,000 small
//!   files);
//! - with `--batch`: a log of that many tiny commits kept uncompacted
//!   (`auto_compact_files = 0`), `strata batch` before and after
//!   `strata compact`, and the files each reads.
//!
//! ```text
//! cargo bench --bench log_scale -- --commits 100,10000,100000 [--runs 5] [--batch] [--s3 ENDPOINT]
//! ```
//!
//! With `--s3 ENDPOINT` the store is a fresh prefix of bucket `test` on the
//! S3-compatible server at ENDPOINT (`scripts/s3-server.sh start DIR`
//! prints it; identity `strata` / `strata-secret`).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use strata::sample::{SampleGenerator, SampleOptions};

struct Args {
    commits: Vec<u64>,
    runs: usize,
    batch: bool,
    s3: Option<String>,
}

fn args() -> Args {
    let mut out = Args {
        commits: vec![100, 10_000, 100_000],
        runs: 5,
        batch: false,
        s3: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--commits" => {
                out.commits = it
                    .next()
                    .expect("--commits N,N,…")
                    .split(',')
                    .map(|n| n.parse().expect("a number of commits"))
                    .collect()
            }
            "--runs" => out.runs = it.next().expect("--runs N").parse().expect("a number"),
            "--batch" => out.batch = true,
            "--s3" => out.s3 = Some(it.next().expect("--s3 ENDPOINT")),
            _ => {} // cargo bench passes --bench
        }
    }
    out
}

/// A project dir with the sample stream and views, and `log` as `[log]`.
fn project(dir: &Path, s3: Option<&str>, name: &str, log: &str) {
    std::fs::create_dir_all(dir.join("sql")).unwrap();
    for f in ["orders.sql", "views.sql"] {
        std::fs::copy(
            format!("{}/sql/{f}", env!("CARGO_MANIFEST_DIR")),
            dir.join("sql").join(f),
        )
        .unwrap();
    }
    let store = match s3 {
        None => "store = \"file://store\"\n".to_string(),
        Some(endpoint) => format!(
            "store = \"s3://test/log-scale-{name}-{}\"\n[s3]\nendpoint = \"{endpoint}\"\nregion = \"us-east-1\"\naccess_key_id = \"strata\"\nsecret_access_key = \"strata-secret\"\nallow_http = true\n",
            std::process::id()
        ),
    };
    std::fs::write(dir.join("strata.toml"), format!("{store}[log]\n{log}\n")).unwrap();
}

/// `commits` one-row commits, in-process (the quick way to a long log).
fn fill(dir: &Path, commits: u64) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let config = strata::config::Config::load(&dir.join("strata.toml"), true).unwrap();
    let mut strata = strata::Strata::open(config).unwrap();
    let events = SampleGenerator::new(SampleOptions {
        events: commits,
        ..Default::default()
    });
    let started = Instant::now();
    let mut n = 0u64;
    rt.block_on(async {
        for batch in events {
            for i in 0..batch.num_rows() {
                strata
                    .append_batches("orders", vec![batch.slice(i, 1)], None)
                    .await
                    .unwrap();
                n += 1;
                if n.is_multiple_of(10_000) {
                    eprintln!(
                        "  {n} commits ({:.0} commits/s)",
                        n as f64 / started.elapsed().as_secs_f64()
                    );
                }
            }
        }
    });
}

/// Median wall time of `strata ARGS` in `dir`, in milliseconds.
fn time(dir: &Path, args: &[&str], runs: usize) -> f64 {
    let mut ms: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            let out = Command::new(env!("CARGO_BIN_EXE_strata"))
                .arg("--config")
                .arg(dir.join("strata.toml"))
                .args(args)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "strata {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ms.sort_by(|a, b| a.total_cmp(b));
    ms[ms.len() / 2]
}

/// `strata status --format json`'s orders stream.
fn status(dir: &Path) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg("--config")
        .arg(dir.join("strata.toml"))
        .args(["status", "--format", "json"])
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["streams"][0].clone()
}

fn main() {
    let args = args();
    let backend = if args.s3.is_some() { "s3" } else { "local" };
    println!("| store | commits | live files | query count(*) ms | ingest 1 row ms |");
    println!("|---|---|---|---|---|");
    let mut base: Option<(f64, f64)> = None;
    for &n in &args.commits {
        let dir = tempfile::tempdir().unwrap();
        project(dir.path(), args.s3.as_deref(), &format!("q{n}"), "");
        eprintln!("{backend}: {n} one-row commits");
        fill(dir.path(), n);
        let row = dir.path().join("one.ndjson");
        std::fs::write(
            &row,
            "{\"order_id\":1,\"ts\":\"2026-11-01T10:00:00Z\",\"country\":\"DE\",\"product\":\"p1\",\"quantity\":1,\"amount\":\"1.00\"}\n",
        )
        .unwrap();
        let query = time(
            dir.path(),
            &["query", "SELECT count(*) FROM orders"],
            args.runs,
        );
        let ingest = time(
            dir.path(),
            &["ingest", "orders", row.to_str().unwrap()],
            args.runs,
        );
        let files = status(dir.path())["files"].clone();
        let (q0, i0) = *base.get_or_insert((query, ingest));
        println!(
            "| {backend} | {n} | {files} | {query:.0} ({:.2}×) | {ingest:.0} ({:.2}×) |",
            query / q0,
            ingest / i0
        );
    }
    if !args.batch {
        return;
    }
    println!();
    println!("| store | tiny commits | files before | batch before ms | compact ms | files after | batch after ms |");
    println!("|---|---|---|---|---|---|---|");
    for &n in &args.commits {
        let dir = tempfile::tempdir().unwrap();
        project(
            dir.path(),
            args.s3.as_deref(),
            &format!("b{n}"),
            // Checkpoints of an uncompacted log grow with it: fewer here.
            "auto_compact_files = 0\ncheckpoint_interval = 10000",
        );
        eprintln!("{backend}: {n} tiny commits, uncompacted");
        fill(dir.path(), n);
        let files_before = status(dir.path())["files"].clone();
        let before = time(dir.path(), &["batch"], args.runs.min(3));
        let t = Instant::now();
        time(dir.path(), &["compact"], 1);
        let compact = t.elapsed().as_secs_f64() * 1e3;
        let files_after = status(dir.path())["files"].clone();
        let after = time(dir.path(), &["batch"], args.runs.min(3));
        println!(
            "| {backend} | {n} | {files_before} | {before:.0} | {compact:.0} | {files_after} | {after:.0} ({:.1}× faster) |",
            before / after
        );
    }
}
