//! Criterion micro-benchmarks of the hot paths besides ingest (see
//! `benches/ingest.rs` for decode + Parquet write of one commit):
//!
//! - `serving_merge`: a served query over a view, batch only and with a
//!   speed tail (the batch-overrides-speed merge);
//! - `kappa_apply`: one 10k-event commit applied to a view's state;
//! - `kappa_checkpoint`: writing a checkpoint of that state.
//!
//! cargo bench --bench hot_paths

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use strata::kappa::{CheckpointPolicy, ReplayOptions, ViewProcessor};
use strata::sample::{SampleGenerator, SampleOptions};
use strata::Strata;

mod common;
use common::project;

const HISTORY: u64 = 500_000;
const COMMIT: u64 = 10_000;
/// 2026-11-01T00:00:00Z.
const START_US: i64 = 1_793_491_200_000_000;

/// `events` sample orders over `hours` from `start_hour`, as one commit.
async fn append(strata: &mut Strata, events: u64, first_id: i64, start_hour: i64, hours: u32) {
    let batches = SampleGenerator::new(SampleOptions {
        events,
        start_us: START_US + start_hour * 3_600_000_000,
        hours,
        first_order_id: first_id,
        late_fraction: 0.0,
        batch_rows: 65_536,
        seed: first_id as u64,
    })
    .collect();
    strata
        .append_batches("orders", batches, None)
        .await
        .unwrap();
}

fn serving_merge(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (_dir, mut strata) = project("store = 'file://store'\n");
    rt.block_on(async {
        append(&mut strata, HISTORY, 1, 0, 30 * 24).await;
        strata.batch(&[], &|_, _| {}).await.unwrap();
    });
    let query = "SELECT * FROM revenue_hourly";
    let mut group = c.benchmark_group("serving_merge");
    let batch_only = rt.block_on(strata.session()).unwrap();
    group.bench_function("batch_only", |b| {
        b.iter(|| {
            rt.block_on(async { batch_only.sql(query).await?.collect().await })
                .unwrap()
        })
    });
    // 1% more events in the speed layer, in new hours: every speed row's
    // key is checked against the batch keys.
    rt.block_on(append(&mut strata, HISTORY / 100, 10_000_000, 30 * 24, 24));
    let with_speed = rt.block_on(strata.session()).unwrap();
    group.bench_function("batch_and_1pct_speed", |b| {
        b.iter(|| {
            rt.block_on(async { with_speed.sql(query).await?.collect().await })
                .unwrap()
        })
    });
    group.finish();
}

fn kappa(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (_dir, mut strata) = project("store = 'file://store'\nmode = 'kappa'\n");
    let opts = ReplayOptions {
        from_scratch: true,
        follow: false,
        until_commits: None,
        policy: CheckpointPolicy {
            every_commits: 0,
            every: None,
        },
        retain: 3,
        poll: std::time::Duration::from_millis(100),
        stop: None,
    };
    let (ctx, plan, commit) = rt.block_on(async {
        append(&mut strata, HISTORY, 1, 0, 30 * 24).await;
        strata.replay(&[], opts, &|_| {}).await.unwrap();
        append(&mut strata, COMMIT, 10_000_000, 30 * 24, 1).await;
        let plan = strata
            .compiled_views(&["revenue_hourly".into()])
            .unwrap()
            .remove(0);
        let ctx = strata.new_session().unwrap();
        let snapshot = strata.snapshot("orders").await.unwrap();
        let commit = snapshot.steps().last().unwrap().clone();
        (ctx, plan, commit)
    });
    let store = strata.store().clone();
    let start = || {
        rt.block_on(ViewProcessor::start(&store, plan.clone(), false, None))
            .unwrap()
    };
    let mut group = c.benchmark_group("kappa");
    group.throughput(Throughput::Elements(COMMIT));
    group.bench_function("apply_10k_commit_revenue_hourly", |b| {
        b.iter_batched(
            start,
            |mut p| rt.block_on(p.apply(&ctx, &commit)).unwrap(),
            BatchSize::PerIteration,
        )
    });
    let mut p = start();
    rt.block_on(p.apply(&ctx, &commit)).unwrap();
    group.bench_function("checkpoint_revenue_hourly", |b| {
        b.iter(|| rt.block_on(p.checkpoint(&ctx, &store, 3)).unwrap())
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = serving_merge, kappa
}
criterion_main!(benches);
