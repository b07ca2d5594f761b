//! Lambda benchmarks (a plain harness: it reports medians and p50/p99).
//!
//! STRATA_BENCH_EVENTS=1000000 STRATA_BENCH_RUNS=5 cargo bench --bench lambda
//!
//! 1. batch recompute of each sample view (strata: SQL + canonical sort +
//!    Parquet write + publish) against the same SQL and ORDER BY run by
//!    DataFusion directly over the same Parquet files, alternating runs;
//! 2. served query latency over batch only, then with 1% of events in speed;
//! 3. freshness: append a small commit, then a served query that sees it.

use std::time::Instant;

use datafusion::prelude::{ParquetReadOptions, SessionContext};
use strata::sample::{SampleGenerator, SampleOptions};

const VIEWS: [&str; 3] = ["revenue_hourly", "product_daily", "large_orders"];

mod common;
use common::{env, median, pct, project};

#[tokio::main]
async fn main() {
    let events = env("STRATA_BENCH_EVENTS", 1_000_000);
    let runs = env("STRATA_BENCH_RUNS", 5) as usize;
    let (dir, mut strata) = project("store = 'file://store'\nspeed_max_bytes = 8589934592\n");
    // History: `events` orders over 30 days, in commits of 100k.
    let hours = 30 * 24;
    let gen = SampleGenerator::new(SampleOptions {
        events,
        hours,
        batch_rows: 100_000,
        late_fraction: 0.0,
        ..Default::default()
    });
    let t = Instant::now();
    for b in gen {
        strata
            .append_batches("orders", vec![b], None)
            .await
            .unwrap();
    }
    println!("# strata lambda bench: {events} events, {runs} runs each");
    println!(
        "setup: appended {events} events in {:.1}s\n",
        t.elapsed().as_secs_f64()
    );

    // 1. Batch recompute vs DataFusion direct.
    let direct = SessionContext::new();
    direct
        .register_parquet(
            "orders",
            dir.path().join("store/log/orders").to_str().unwrap(),
            ParquetReadOptions::default(),
        )
        .await
        .unwrap();
    println!("| view | strata batch (ms, median) | DataFusion direct (ms, median) | ratio |");
    println!("|---|---|---|---|");
    for view in VIEWS {
        let def = strata.catalog.view(view).unwrap().clone();
        let mut order: Vec<String> = def.key.iter().map(|k| format!("\"{k}\"")).collect();
        for f in def.schema.fields() {
            if !def.key.contains(f.name()) {
                order.push(format!("\"{}\"", f.name()));
            }
        }
        let sql = format!(
            "SELECT * FROM ({}) ORDER BY {}",
            def.query,
            order.join(", ")
        );
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            let t = Instant::now();
            strata.batch(&[view.to_string()], &|_, _| {}).await.unwrap();
            a.push(t.elapsed());
            let t = Instant::now();
            let rows = direct.sql(&sql).await.unwrap().collect().await.unwrap();
            b.push(t.elapsed());
            assert!(!rows.is_empty());
        }
        let (ma, mb) = (median(&mut a), median(&mut b));
        println!("| {view} | {ma:.1} | {mb:.1} | {:.2} |", ma / mb);
    }

    // 2. Served latency: batch only, then with 1% of events in speed.
    let queries = [
        "SELECT country, sum(revenue) FROM revenue_hourly GROUP BY country",
        "SELECT * FROM product_daily WHERE product = 'phone'",
        "SELECT count(*), sum(amount) FROM large_orders",
    ];
    let served = |ctx: SessionContext| async move {
        let mut all = Vec::new();
        for _ in 0..runs * 10 {
            for q in queries {
                let t = Instant::now();
                ctx.sql(q).await.unwrap().collect().await.unwrap();
                all.push(t.elapsed());
            }
        }
        all.sort();
        all
    };
    let batch_only = served(strata.session().await.unwrap()).await;
    let fresh = SampleGenerator::new(SampleOptions {
        events: events / 100,
        start_us: SampleOptions::default().start_us + (hours as i64 + 24) * 3_600_000_000,
        hours: 24,
        first_order_id: events as i64 + 1,
        late_fraction: 0.0,
        batch_rows: 100_000,
        ..Default::default()
    });
    for b in fresh {
        strata
            .append_batches("orders", vec![b], None)
            .await
            .unwrap();
    }
    let t = Instant::now();
    let ctx = strata.session().await.unwrap();
    let session_ms = t.elapsed().as_secs_f64() * 1000.0;
    let with_speed = served(ctx).await;
    println!(
        "\n| served queries ({} each) | p50 (ms) | p99 (ms) |",
        runs * 10 * queries.len()
    );
    println!("|---|---|---|");
    println!(
        "| batch only | {:.2} | {:.2} |",
        pct(&batch_only, 0.5),
        pct(&batch_only, 0.99)
    );
    println!(
        "| batch ∪ speed (1% in speed) | {:.2} | {:.2} |",
        pct(&with_speed, 0.5),
        pct(&with_speed, 0.99)
    );
    println!(
        "| ratio | {:.2} | |",
        pct(&with_speed, 0.5) / pct(&batch_only, 0.5)
    );
    println!("\nsession refresh with 1% in speed (speed SQL over the tail): {session_ms:.1} ms");

    // 3. Freshness: append 10 events, then a served query that sees them.
    let mut lat = Vec::new();
    let mut next_id = events as i64 * 2;
    for i in 0..runs * 20 {
        let b = SampleGenerator::new(SampleOptions {
            events: 10,
            seed: 1000 + i as u64,
            start_us: SampleOptions::default().start_us + (hours as i64 + 30) * 3_600_000_000,
            hours: 1,
            first_order_id: next_id,
            late_fraction: 0.0,
            ..Default::default()
        })
        .collect();
        let t = Instant::now();
        strata.append_batches("orders", b, None).await.unwrap();
        let ctx = strata.session().await.unwrap();
        let got = ctx
            .sql(&format!(
                "SELECT count(*) FROM orders WHERE order_id = {next_id}"
            ))
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        lat.push(t.elapsed());
        assert_eq!(
            arrow::util::pretty::pretty_format_batches(&got)
                .unwrap()
                .to_string()
                .matches("| 1 ")
                .count(),
            1
        );
        next_id += 10;
    }
    lat.sort();
    println!(
        "\nfreshness (append 10 events → served query sees them, {} runs): p50 {:.1} ms, p99 {:.1} ms",
        lat.len(),
        pct(&lat, 0.5),
        pct(&lat, 0.99)
    );
}
