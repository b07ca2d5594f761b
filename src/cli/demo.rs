//! `strata demo`: the whole cycle on the sample in `data/` and `sql/`.
//! Appends are keyed by the file's content hash, so running the demo again
//! commits nothing twice.

use std::path::PathBuf;

use sha2::{Digest, Sha256};

use super::print::OutputFormat;
use crate::error::{Result, StrataError};
use crate::log::{AppendRequest, InputSource};
use crate::Strata;

const HISTORY: &str = "orders.parquet";
const FRESH: &str = "orders-fresh.ndjson";

/// Runs a titled query.
async fn show(strata: &mut Strata, title: &str, sql: &str) -> Result<()> {
    println!("\n-- {title}\n{sql}");
    super::query(strata, sql, OutputFormat::Table, Default::default()).await
}

pub async fn run(strata: &mut Strata) -> Result<()> {
    let base = strata
        .config
        .path
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default();
    let data = std::path::absolute(base.join("data"))?;
    println!("== strata demo: store {} ==", strata.config.store);
    strata.catalog.stream("orders").map_err(|_| {
        StrataError::Usage(format!(
            "the demo needs the sample stream 'orders' in {}",
            strata.config.sql_dir.display()
        ))
    })?;

    println!("\n-- 1. the log: append six days of order history as one commit");
    ingest_sample(strata, &data, HISTORY).await?;

    println!("\n-- 2. the batch layer: recompute every materialized view from that snapshot");
    super::batch(strata, &[]).await?;

    println!("\n-- 3. fresh events arrive: a new commit after the batch watermark");
    ingest_sample(strata, &data, FRESH).await?;

    println!("\n-- 4. status: the views' speed layer holds the commits after their watermark");
    super::status(strata, OutputFormat::Table).await?;

    show(
        strata,
        "5. serving: hours up to the watermark come from batch, later ones from speed",
        "SELECT hour, sum(orders) AS orders, sum(revenue) AS revenue FROM revenue_hourly \
         WHERE hour >= TIMESTAMP '2026-11-06T21:00:00Z' GROUP BY hour ORDER BY hour LIMIT 6",
    )
    .await?;
    show(
        strata,
        "6. raw events are always fresh: the stream is its files plus the in-memory tail",
        "SELECT count(*) AS events, max(ts) AS newest FROM orders",
    )
    .await?;
    let by_country = "SELECT * FROM revenue_by_country ORDER BY revenue DESC LIMIT 3";
    show(
        strata,
        "7. a plain view over a served view. Late fresh events for hours the batch \
         already holds are hidden (batch overrides speed) until the next batch",
        by_country,
    )
    .await?;

    println!("\n-- 8. batch again: the new versions cover every commit, the speed layer drains");
    super::batch(strata, &[]).await?;
    super::status(strata, OutputFormat::Table).await?;
    show(
        strata,
        "9. the late events are now in the batch layer",
        by_country,
    )
    .await?;

    println!(
        "\n-- 10. Kappa: replay the log commit by commit through the same views (resuming from checkpoints)"
    );
    super::kappa::replay(strata, &super::kappa::ReplayArgs::default()).await?;
    println!("\n-- 11. verify: replayed from commit 0 to each batch snapshot, Kappa equals the batch version");
    super::kappa::verify(strata, &[], true).await?;
    Ok(())
}

/// Append a sample file, keyed by its content hash so a rerun is a no-op.
async fn ingest_sample(strata: &mut Strata, data: &std::path::Path, file: &str) -> Result<()> {
    let path = data.join(file);
    let bytes = std::fs::read(&path).map_err(|e| {
        StrataError::input(
            path.display().to_string(),
            format!(
                "cannot read sample: {e} (`strata demo` runs on the sample in the strata repository's data/ and sql/: run it there, or make events for this project with `strata sample --out FILE` and `strata ingest`)"
            ),
        )
    })?;
    let key = format!(
        "sample:{file}:{}",
        &hex::encode(Sha256::digest(&bytes))[..16]
    );
    let req = AppendRequest {
        inputs: vec![InputSource::new(&path.to_string_lossy(), None)?],
        idempotency_key: Some(key),
        ignore_extra_columns: false,
    };
    super::ingest(strata, "orders", req).await?;
    Ok(())
}
