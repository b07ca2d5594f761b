//! Invariant 1 (log): an ingest killed with SIGKILL at any moment leaves a
//! readable log of whole commits only, and the next ingest succeeds.

use std::time::Instant;

use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};
use strata::sample::{write_sample, SampleFormat, SampleOptions};

use crate::common::{count, Project};

#[test]
fn kill_dash_nine_during_ingest_leaves_only_whole_commits() {
    let p = Project::orders();
    let input = p.path().join("big.ndjson");
    let opts = SampleOptions {
        events: 150_000,
        ..Default::default()
    };
    write_sample(
        opts,
        SampleFormat::Ndjson,
        std::fs::File::create(&input).unwrap(),
    )
    .unwrap();

    // How long an uninterrupted ingest takes: kills land across that span.
    let started = Instant::now();
    p.cmd()
        .args(["ingest", "orders", input.to_str().unwrap()])
        .assert()
        .success();
    let full = started.elapsed();
    let mut expected_rows: i64 = 150_000;

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let runs = 12;
    let mut interrupted = 0;
    let rt = tokio::runtime::Runtime::new().unwrap();
    for run in 0..runs {
        let delay = full.mul_f64(rng.random_range(0.05..1.1));
        let status = p.kill_after(&["ingest", "orders", input.to_str().unwrap()], delay);

        rt.block_on(async {
            let mut strata = p.strata();
            let snap = strata.snapshots().await.unwrap().remove("orders").unwrap();
            let commits = snap.steps();
            // Whole commits only: every named file is there, intact.
            for c in commits {
                assert_eq!(c.first, c.commit, "no compaction here");
                for f in &c.files {
                    let bytes = std::fs::read(p.store_dir().join("log/orders").join(&f.path))
                        .unwrap_or_else(|e| {
                            panic!(
                                "run {run}: commit {} names missing {}: {e}",
                                c.commit, f.path
                            )
                        });
                    assert_eq!(bytes.len() as u64, f.bytes);
                    assert_eq!(hex::encode(Sha256::digest(&bytes)), f.sha256);
                }
            }
            // The killed ingest either committed whole or not at all.
            if commits.len() as i64 * 150_000 == expected_rows {
                interrupted += 1;
            } else {
                expected_rows += 150_000;
            }
            assert_eq!(
                commits.len() as i64 * 150_000,
                expected_rows,
                "run {run} ({status})"
            );
            assert_eq!(
                count(&mut strata, "SELECT count(*) FROM orders").await,
                expected_rows
            );
        });
    }

    assert!(interrupted > 0, "no kill landed before a commit");

    // The log still takes appends.
    let small = p.write("small.ndjson", crate::common::orders_ndjson(0..3));
    p.cmd()
        .args(["ingest", "orders", small.to_str().unwrap()])
        .assert()
        .success();
    rt.block_on(async {
        let mut strata = p.strata();
        assert_eq!(
            count(&mut strata, "SELECT count(*) FROM orders").await,
            expected_rows + 3
        );
    });
}

/// Invariant 2 (batch): a batch killed at any moment leaves the previous
/// version served; the next batch succeeds.
#[test]
fn kill_dash_nine_during_batch_keeps_the_previous_version_served() {
    use crate::lambda::{events, lambda_project, oracle, served, MATERIALIZED};
    let p = lambda_project();
    let rt = tokio::runtime::Runtime::new().unwrap();
    // History over four days, fresh events on a later day: no key on both sides.
    let history = events(60_000, 11, 0, 96, 1, 0.0);
    let fresh = events(2_000, 12, 120, 6, 100_000, 0.0);
    let all: Vec<_> = history.iter().chain(&fresh).cloned().collect();
    let expected: Vec<String> = rt.block_on(async {
        let mut strata = p.strata();
        strata
            .append_batches("orders", history.clone(), None)
            .await
            .unwrap();
        strata.batch(&[], &|_, _| {}).await.unwrap();
        strata
            .append_batches("orders", fresh.clone(), None)
            .await
            .unwrap();
        let mut out = Vec::new();
        for v in MATERIALIZED {
            let q = strata.catalog.view(v).unwrap().query.clone();
            out.push(oracle(&q, &all).await);
        }
        out
    });
    let started = Instant::now();
    assert!(p.spawn(&["batch"]).wait().unwrap().success());
    let full = started.elapsed();

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(13);
    let mut interrupted = 0;
    for run in 0..10 {
        let before = rt
            .block_on(strata::batch::list_versions(
                p.strata().store(),
                "large_orders",
            ))
            .unwrap();
        p.kill_after(&["batch"], full.mul_f64(rng.random_range(0.05..1.0)));
        rt.block_on(async {
            let mut strata = p.strata();
            let after = strata::batch::list_versions(strata.store(), "large_orders")
                .await
                .unwrap();
            if after.last() == before.last() {
                interrupted += 1;
            }
            for (view, want) in MATERIALIZED.iter().zip(&expected) {
                let state = strata
                    .view_state(strata.catalog.view(view).unwrap())
                    .await
                    .unwrap();
                let latest = state.served.expect("a version is always served");
                for f in &latest.files {
                    assert!(
                        p.store_dir().join(&f.path).is_file(),
                        "run {run}: {view} v{} lost {}",
                        latest.version,
                        f.path
                    );
                }
                assert_eq!(&served(&mut strata, view).await, want, "run {run}: {view}");
            }
        });
    }
    assert!(interrupted > 0, "no kill landed before a publish");
    assert!(
        p.spawn(&["batch"]).wait().unwrap().success(),
        "the next batch succeeds"
    );
}
