//! Invariant 1 (log): an append re-sent with a committed idempotency key
//! stores its events once, also when the retries race each other.

use std::sync::Arc;

use strata::log::{AppendOutcome, AppendRequest, InputSource};

use crate::common::{count, Project};

fn keyed(path: &std::path::Path, key: &str) -> AppendRequest {
    AppendRequest {
        inputs: vec![InputSource::new(path.to_str().unwrap(), None).unwrap()],
        idempotency_key: Some(key.to_string()),
        ignore_extra_columns: false,
    }
}

#[tokio::test]
async fn retry_with_the_same_key_stores_events_once() {
    let p = Project::orders();
    let path = p.write("a.ndjson", crate::common::orders_ndjson(0..50));
    let mut strata = p.strata();
    let first = strata
        .append("orders", keyed(&path, "batch-1"), Arc::new(|_| {}))
        .await
        .unwrap();
    assert!(matches!(
        first,
        AppendOutcome::Committed {
            commit: 0,
            rows: 50,
            ..
        }
    ));
    let tree = p.store_tree();
    // A fresh handle (a new process) retrying the same key.
    let mut retry = p.strata();
    let second = retry
        .append("orders", keyed(&path, "batch-1"), Arc::new(|_| {}))
        .await
        .unwrap();
    assert_eq!(
        second,
        AppendOutcome::AlreadyCommitted {
            commit: 0,
            key: "batch-1".into()
        }
    );
    assert_eq!(p.store_tree(), tree, "a duplicate writes nothing");
    assert_eq!(count(&mut retry, "SELECT count(*) FROM orders").await, 50);
    // Another key appends.
    let third = retry
        .append("orders", keyed(&path, "batch-2"), Arc::new(|_| {}))
        .await
        .unwrap();
    assert!(matches!(third, AppendOutcome::Committed { commit: 1, .. }));
    assert_eq!(count(&mut retry, "SELECT count(*) FROM orders").await, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_retries_of_one_key_commit_once() {
    let p = Arc::new(Project::orders());
    let path = p.write("a.ndjson", crate::common::orders_ndjson(0..20));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (p, path) = (p.clone(), path.clone());
        tasks.push(tokio::spawn(async move {
            p.strata()
                .append("orders", keyed(&path, "k"), Arc::new(|_| {}))
                .await
                .unwrap()
        }));
    }
    let mut committed = 0;
    for t in tasks {
        match t.await.unwrap() {
            AppendOutcome::Committed { commit, .. } => {
                assert_eq!(commit, 0);
                committed += 1
            }
            AppendOutcome::AlreadyCommitted { commit, .. } => assert_eq!(commit, 0),
        }
    }
    assert_eq!(committed, 1);
    let mut strata = p.strata();
    assert_eq!(count(&mut strata, "SELECT count(*) FROM orders").await, 20);
    // The losers removed their files: only the winner's remain.
    let files: usize = p
        .store_tree()
        .keys()
        .filter(|k| k.ends_with(".parquet"))
        .count();
    let snap = strata.snapshots().await.unwrap().remove("orders").unwrap();
    assert_eq!(files, snap.files().count());
}

#[test]
fn cli_says_a_duplicate_is_a_no_op() {
    let p = Project::orders();
    let path = p.write("a.ndjson", crate::common::orders_ndjson(0..5));
    for expect in ["as commit 0", "already committed as commit 0"] {
        let out = p
            .cmd()
            .args([
                "ingest",
                "orders",
                path.to_str().unwrap(),
                "--idempotency-key",
                "k1",
            ])
            .assert()
            .success();
        let stdout = String::from_utf8(out.get_output().stdout.clone()).unwrap();
        assert!(stdout.contains(expect), "{stdout}");
    }
}
