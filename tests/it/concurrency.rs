//! Invariant 1 (log): concurrent writers never share a commit number, and
//! commits are exactly 0..N with every event present once.

use std::sync::Arc;

use crate::common::{count, Project};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_writers_twenty_five_appends_each() {
    const WRITERS: i64 = 4;
    const APPENDS: i64 = 25;
    const ROWS: i64 = 3;
    let p = Arc::new(Project::orders());
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let p = p.clone();
        tasks.push(tokio::spawn(async move {
            // Each writer has its own handle on the log, as separate processes would.
            let mut strata = p.strata();
            let mut won = Vec::new();
            for a in 0..APPENDS {
                let first = (w * APPENDS + a) * ROWS;
                let path = p.write(
                    &format!("w{w}a{a}.ndjson"),
                    crate::common::orders_ndjson(first..first + ROWS),
                );
                let out = crate::common::append_file(&mut strata, "orders", &path).await;
                match out {
                    strata::log::AppendOutcome::Committed { commit, .. } => won.push(commit),
                    other => panic!("unexpected {other:?}"),
                }
            }
            won
        }));
    }
    let mut all: Vec<u64> = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_unstable();
    let total = (WRITERS * APPENDS) as u64;
    assert_eq!(
        all,
        (0..total).collect::<Vec<_>>(),
        "every number won exactly once"
    );

    let mut strata = p.strata();
    let snap = strata.snapshots().await.unwrap().remove("orders").unwrap();
    assert_eq!(snap.head(), Some(total - 1));
    assert_eq!(snap.count(), total);
    assert_eq!(snap.steps().len() as u64, total);
    let rows = WRITERS * APPENDS * ROWS;
    assert_eq!(
        count(&mut strata, "SELECT count(*) FROM orders").await,
        rows
    );
    assert_eq!(
        count(&mut strata, "SELECT count(DISTINCT order_id) FROM orders").await,
        rows
    );
    assert_eq!(
        count(&mut strata, "SELECT max(order_id) FROM orders").await,
        rows - 1
    );
}
