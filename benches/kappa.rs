//! Kappa benchmarks (a plain harness: medians, p50/p99).
//!
//! STRATA_BENCH_EVENTS=10000000 STRATA_BENCH_RUNS=3 cargo bench --bench kappa
//!
//! 1. replay from scratch of the whole log through the sample views
//!    (events/s), against the batch recompute of the same views on the same
//!    log: the ratio replay / batch;
//! 2. incremental cost: one 10k-event commit processed after a history of
//!    H/10 events and after H events (state restored from a checkpoint),
//!    median over runs: the ratio should stay near 1;
//! 3. checkpoint pause: p50/p99 over a replay that checkpoints every commit.

use std::time::{Duration, Instant};

use strata::kappa::{CheckpointPolicy, ReplayEvent, ReplayOptions};
use strata::sample::{SampleGenerator, SampleOptions};
use strata::Strata;

mod common;
use common::{env, median, pct, project};

fn options(every: u64, from_scratch: bool, until: Option<u64>) -> ReplayOptions {
    ReplayOptions {
        from_scratch,
        follow: false,
        until_commits: until,
        policy: CheckpointPolicy {
            every_commits: every,
            every: None,
        },
        retain: 3,
        poll: Duration::from_millis(100),
        stop: None,
    }
}

/// A scratch project in kappa mode.
fn kappa_project() -> (tempfile::TempDir, Strata) {
    project("store = 'file://store'\nmode = 'kappa'\n")
}

/// Append `events` sample orders spread evenly over `hours` from
/// `start_hour` (after 2026-11-01), in commits of `commit_rows`.
async fn append(
    strata: &mut Strata,
    events: u64,
    first_id: i64,
    seed: u64,
    commit_rows: usize,
    (start_hour, hours): (i64, u32),
) {
    let gen = SampleGenerator::new(SampleOptions {
        events,
        seed,
        start_us: 1_793_491_200_000_000 + start_hour * 3_600_000_000,
        hours,
        batch_rows: commit_rows,
        first_order_id: first_id,
        late_fraction: 0.0,
    });
    for b in gen {
        strata
            .append_batches("orders", vec![b], None)
            .await
            .unwrap();
    }
}

/// The history: 30 days, in time order.
const HISTORY: (i64, u32) = (0, 30 * 24);

#[tokio::main]
async fn main() {
    let events = env("STRATA_BENCH_EVENTS", 1_000_000);
    let runs = env("STRATA_BENCH_RUNS", 3) as usize;
    let (_dir, mut strata) = kappa_project();
    let t = Instant::now();
    append(&mut strata, events, 1, 1, 100_000, HISTORY).await;
    println!("# strata kappa bench: {events} events in commits of 100k, {runs} runs each");
    println!("setup: appended in {:.1}s\n", t.elapsed().as_secs_f64());

    // 1. Replay vs batch, alternating.
    let (mut replay, mut batch) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let t = Instant::now();
        strata
            .replay(&[], options(0, true, None), &|_| {})
            .await
            .unwrap();
        replay.push(t.elapsed());
        let t = Instant::now();
        strata.batch(&[], &|_, _| {}).await.unwrap();
        batch.push(t.elapsed());
    }
    let (r, b) = (median(&mut replay), median(&mut batch));
    println!("## replay from scratch vs batch recompute (all 3 sample views)");
    println!("| | median ms | events/s |\n|---|---|---|");
    println!("| replay | {r:.0} | {:.0} |", events as f64 / (r / 1000.0));
    println!("| batch | {b:.0} | {:.0} |", events as f64 / (b / 1000.0));
    println!("replay / batch = {:.2} (target ≤ 1.5)\n", r / b);

    // 3. Checkpoint pauses: every commit of a from-scratch replay.
    let pauses = std::sync::Mutex::new(Vec::new());
    strata
        .replay(&[], options(1, true, None), &|e| {
            if let ReplayEvent::Checkpoint { pause, .. } = e {
                pauses.lock().unwrap().push(pause);
            }
        })
        .await
        .unwrap();
    let mut pauses = pauses.into_inner().unwrap();
    pauses.sort();
    println!(
        "## checkpoint pause (every commit, {} checkpoints)",
        pauses.len()
    );
    println!(
        "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (target p99 ≤ 100 ms)\n",
        pct(&pauses, 0.5),
        pct(&pauses, 0.99),
        pct(&pauses, 1.0)
    );

    // 2. Incremental cost: one 10k commit after a short and a long history.
    // The short history is a second project with events/10 events.
    let small = events / 10;
    let (_dir2, mut short) = kappa_project();
    append(&mut short, small, 1, 1, 100_000, HISTORY).await;
    let mut results = Vec::new();
    for (label, s, history) in [("short", &mut short, small), ("long", &mut strata, events)] {
        s.replay(&[], options(0, false, None), &|_| {})
            .await
            .unwrap();
        let mut times = Vec::new();
        for run in 0..runs.max(3) {
            // Fresh events: the hour after the history.
            let hour = (24 * 30 + run) as i64;
            append(
                s,
                10_000,
                1_000_000_000 + run as i64 * 10_000,
                7 + run as u64,
                10_000,
                (hour, 1),
            )
            .await;
            let took = std::sync::Mutex::new(Duration::ZERO);
            let last = std::sync::Mutex::new(Instant::now());
            s.replay(&[], options(0, false, None), &|e| match e {
                ReplayEvent::Pending { .. } => *last.lock().unwrap() = Instant::now(),
                ReplayEvent::Commit { .. } => {
                    let mut l = last.lock().unwrap();
                    *took.lock().unwrap() += l.elapsed();
                    *l = Instant::now();
                }
                _ => {}
            })
            .await
            .unwrap();
            times.push(took.into_inner().unwrap());
        }
        let m = median(&mut times);
        println!(
            "one 10k-event commit after {history} events ({label}): median {m:.1} ms (3 views)"
        );
        results.push(m);
    }
    println!(
        "incremental cost long / short = {:.2} (target ≤ 1.2)",
        results[1] / results[0]
    );
}
