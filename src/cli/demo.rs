//! `strata demo`: the whole cycle on the sample in `data/` and `sql/`.
//! Appends are keyed by the file's content hash, so running the demo again
//! commits nothing twice.

use std::path::PathBuf;

use sha2::{Digest, Sha256};

use super::print::OutputFormat;
use crate::error::{Result, StrataError};
use crate::log::{AppendRequest, InputSource};
use crate::Strata;

const SAMPLE_FILES: [&str; 2] = ["orders.parquet", "orders-fresh.ndjson"];

const QUERIES: [(&str, &str); 3] = [
    (
        "Revenue per country (all events, history + fresh)",
        "SELECT country, count(*) AS orders, sum(amount) AS revenue \
         FROM orders GROUP BY country ORDER BY revenue DESC",
    ),
    (
        "Orders per day",
        "SELECT date_trunc('day', ts) AS day, count(*) AS orders, sum(amount) AS revenue \
         FROM orders GROUP BY 1 ORDER BY 1",
    ),
    (
        "Best sellers in the fresh window (event time pruned to the last day)",
        "SELECT product, sum(quantity) AS units FROM orders \
         WHERE ts >= TIMESTAMP '2026-11-07T00:00:00Z' GROUP BY product ORDER BY units DESC LIMIT 5",
    ),
];

pub async fn run(strata: &mut Strata) -> Result<()> {
    let base = strata
        .config
        .path
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default();
    let data = std::path::absolute(base.join("data"))?;
    println!("== strata demo: store {} ==\n", strata.config.store);
    strata.catalog.stream("orders").map_err(|_| {
        StrataError::Usage(format!(
            "the demo needs the sample stream 'orders' in {}",
            strata.config.sql_dir.display()
        ))
    })?;
    for (step, file) in SAMPLE_FILES.iter().enumerate() {
        let path = data.join(file);
        let bytes = std::fs::read(&path).map_err(|e| {
            StrataError::input(
                path.display().to_string(),
                format!("cannot read sample: {e}"),
            )
        })?;
        let key = format!(
            "sample:{file}:{}",
            &hex::encode(Sha256::digest(&bytes))[..16]
        );
        println!("-- {}. ingest {file}", step + 1);
        let req = AppendRequest {
            inputs: vec![InputSource::new(&path.to_string_lossy(), None)?],
            idempotency_key: Some(key),
            ignore_extra_columns: false,
        };
        super::ingest(strata, "orders", req).await?;
        println!();
    }
    println!("-- status");
    super::status(strata, OutputFormat::Table).await?;
    for (title, sql) in QUERIES {
        println!("\n-- {title}\n{sql}");
        super::query(strata, sql, OutputFormat::Table).await?;
    }
    Ok(())
}
