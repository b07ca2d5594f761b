//! `strata compare-worker`: the Rust side of `benches/compare.py`. It keeps
//! one process alive so that runs of strata's batch layer and of DataFusion
//! alone can alternate with DuckDB's, each timed in-process.
//!
//! One command per line on stdin, one JSON object per line on stdout:
//!
//! - `info` → the stream, its log files, and per view its SQL and
//!   canonical column order;
//! - `strata VIEW` → recompute and publish VIEW: `{ms, rows, files}`;
//! - `datafusion VIEW` → the view's SQL + ORDER BY run by a plain
//!   DataFusion `SessionContext` over the same files: `{ms, rows, result}`
//!   (the rows, written to a Parquet file after timing);
//! - `quit`.
//!
//! A failed command answers `{"error": "…"}`.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::prelude::SessionContext;
use serde_json::{json, Value};

use crate::batch::{canonical_columns, quote_ident};
use crate::config::StoreLocation;
use crate::error::{Result, StrataError};
use crate::log::file_path;
use crate::Strata;

/// Serve the protocol until `quit` or the end of `input`.
pub async fn serve(strata: &mut Strata, input: impl BufRead, mut out: impl Write) -> Result<()> {
    let root = match &strata.config.store {
        StoreLocation::Local(dir) => dir.clone(),
        other => {
            return Err(StrataError::Usage(format!(
                "compare-worker reads the log's files directly: it needs a local store, not {other}"
            )))
        }
    };
    let results = strata
        .config
        .path
        .parent()
        .map(|p| p.join("compare-results"))
        .unwrap_or_else(|| PathBuf::from("compare-results"));
    std::fs::create_dir_all(&results)?;
    for line in input.lines() {
        let line = line?;
        let words: Vec<&str> = line.split_whitespace().collect();
        let reply = match words.as_slice() {
            [] => continue,
            ["quit"] => break,
            ["info"] => info(strata, &root).await,
            ["strata", view] => run_strata(strata, &results, view).await,
            ["datafusion", view] => run_datafusion(strata, &root, &results, view).await,
            _ => Err(StrataError::Usage(format!(
                "unknown command '{line}' (info, strata VIEW, datafusion VIEW, quit)"
            ))),
        };
        let reply = reply.unwrap_or_else(|e| json!({ "error": e.to_string() }));
        writeln!(out, "{reply}")?;
        out.flush()?;
    }
    Ok(())
}

/// The log files of the views' stream at its head, as absolute paths.
async fn log_files(strata: &mut Strata, root: &Path) -> Result<(String, Vec<PathBuf>)> {
    let views = strata.materialized_views(&[])?;
    let stream = views
        .first()
        .map(|v| v.stream.clone())
        .ok_or_else(|| StrataError::Usage("the project has no materialized views".into()))?;
    let snapshot = strata.snapshot(&stream).await?;
    let files = snapshot
        .files()
        .map(|f| root.join(file_path(&stream, f).as_ref()))
        .collect();
    Ok((stream, files))
}

async fn info(strata: &mut Strata, root: &Path) -> Result<Value> {
    let (stream, files) = log_files(strata, root).await?;
    let views: Vec<Value> = strata
        .materialized_views(&[])?
        .iter()
        .map(|v| {
            json!({
                "name": v.name,
                "sql": v.query,
                "order_by": canonical_columns(v),
            })
        })
        .collect();
    Ok(json!({ "stream": stream, "files": files, "views": views }))
}

async fn run_strata(strata: &mut Strata, results: &Path, view: &str) -> Result<Value> {
    let t = Instant::now();
    let records = strata.batch(&[view.to_string()], &|_, _| {}).await?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let record = records
        .first()
        .ok_or_else(|| StrataError::Usage(format!("batch published nothing for '{view}'")))?;
    // A grouped view's version holds its groups: its rows are the compiled
    // plan above the aggregate over them (not timed: serving runs it).
    let rows = strata.version_rows(view, record).await?;
    let result = results.join(format!("{view}.strata.parquet"));
    let schema = strata.catalog.view(view)?.schema.clone();
    write_parquet(&result, schema, &rows)?;
    Ok(json!({ "ms": ms, "rows": record.rows, "files": [result] }))
}

fn write_parquet(
    path: &Path,
    schema: arrow::datatypes::SchemaRef,
    batches: &[arrow::array::RecordBatch],
) -> Result<()> {
    let mut w = parquet::arrow::ArrowWriter::try_new(std::fs::File::create(path)?, schema, None)?;
    for b in batches {
        w.write(b)?;
    }
    w.close()?;
    Ok(())
}

async fn run_datafusion(
    strata: &mut Strata,
    root: &Path,
    results: &Path,
    view: &str,
) -> Result<Value> {
    let def = strata.catalog.view(view)?.clone();
    let (stream, files) = log_files(strata, root).await?;
    // As many partitions as strata's batch runs on.
    let ctx = SessionContext::new_with_config(strata.config.session_config());
    let urls = files
        .iter()
        .map(|f| ListingTableUrl::parse(f.to_string_lossy()))
        .collect::<datafusion::error::Result<Vec<_>>>()?;
    let options = ListingOptions::new(Arc::new(ParquetFormat::default()));
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .infer_schema(&ctx.state())
        .await?;
    ctx.register_table(stream.as_str(), Arc::new(ListingTable::try_new(config)?))?;
    let order: Vec<String> = canonical_columns(&def)
        .iter()
        .map(|c| quote_ident(c))
        .collect();
    let sql = format!(
        "SELECT * FROM ({}) ORDER BY {}",
        def.query,
        order.join(", ")
    );
    let t = Instant::now();
    let batches = ctx.sql(&sql).await?.collect().await?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    let result = results.join(format!("{view}.datafusion.parquet"));
    let schema = batches
        .first()
        .map(|b| b.schema())
        .unwrap_or_else(|| def.schema.clone());
    let mut w =
        parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&result)?, schema, None)?;
    for b in &batches {
        w.write(b)?;
    }
    w.close()?;
    Ok(json!({ "ms": ms, "rows": rows, "result": result }))
}
