//! The speed layer: the log's tail — the commits after a view's batch
//! watermark — held in memory as Arrow record batches, and each view's SQL
//! run over it. One SQL text, two executions: the batch layer runs it over a
//! snapshot's files, the speed layer over these batches.
//!
//! The tail is rebuilt from the log by whoever serves queries (nothing here
//! survives a restart) and drops the commits a new batch version covers.
//! Memory is accounted per stream and capped by `speed_max_bytes`: past
//! the cap, loading stops with an error that says to run the batch layer.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::catalog::{StreamDef, ViewDef};
use crate::error::{Result, StrataError};
use crate::log::{file_path, CommitRecord, Snapshot};

/// One stream's tail: commit number → its events.
#[derive(Debug, Default)]
struct StreamTail {
    commits: BTreeMap<u64, Vec<RecordBatch>>,
    bytes: usize,
}

/// Memory held by a stream's tail.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TailStats {
    pub commits: u64,
    pub rows: u64,
    pub bytes: u64,
}

/// In-memory tails of every stream.
#[derive(Debug)]
pub struct SpeedLayer {
    tails: BTreeMap<String, StreamTail>,
    max_bytes: u64,
}

impl SpeedLayer {
    pub fn new(max_bytes: u64) -> Self {
        Self {
            tails: BTreeMap::new(),
            max_bytes,
        }
    }

    /// Make the tail of `stream` hold exactly the commits of `snapshot`
    /// after `from`: drop older ones, load missing ones from the store.
    pub async fn sync(
        &mut self,
        store: &Arc<dyn ObjectStore>,
        stream: &StreamDef,
        snapshot: &Snapshot,
        from: Option<u64>,
    ) -> Result<()> {
        let tail = self.tails.entry(stream.name.clone()).or_default();
        let keep_from = from.map_or(0, |f| f + 1);
        let dropped = std::mem::take(&mut tail.commits);
        for (n, batches) in dropped {
            if n >= keep_from && snapshot.head().is_some_and(|h| n <= h) {
                tail.commits.insert(n, batches);
            }
        }
        tail.bytes = tail
            .commits
            .values()
            .flatten()
            .map(RecordBatch::get_array_memory_size)
            .sum();
        for commit in snapshot.commits_after(from) {
            if tail.commits.contains_key(&commit.commit) {
                continue;
            }
            let batches = load_commit(store, commit).await?;
            tail.bytes += batches
                .iter()
                .map(RecordBatch::get_array_memory_size)
                .sum::<usize>();
            tail.commits.insert(commit.commit, batches);
            if tail.bytes as u64 > self.max_bytes {
                let held = tail.commits.len();
                self.tails.remove(&stream.name);
                return Err(StrataError::Usage(format!(
                    "the speed layer for stream '{}' would hold more than speed_max_bytes = {} bytes ({} commits after the batch watermark): run `strata batch` to fold them into the batch layer, or raise speed_max_bytes in strata.toml",
                    stream.name, self.max_bytes, held
                )));
            }
        }
        Ok(())
    }

    /// The events of `stream`'s commits after `after`, in commit order.
    pub fn events(&self, stream: &str, after: Option<u64>) -> Vec<RecordBatch> {
        let from = after.map_or(0, |a| a + 1);
        self.tails
            .get(stream)
            .map(|t| {
                t.commits
                    .range(from..)
                    .flat_map(|(_, b)| b.iter().cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// What the tail of `stream` after `after` holds.
    pub fn stats(&self, stream: &str, after: Option<u64>) -> TailStats {
        let from = after.map_or(0, |a| a + 1);
        let mut s = TailStats::default();
        if let Some(t) = self.tails.get(stream) {
            for (_, batches) in t.commits.range(from..) {
                s.commits += 1;
                for b in batches {
                    s.rows += b.num_rows() as u64;
                    s.bytes += b.get_array_memory_size() as u64;
                }
            }
        }
        s
    }
}

/// Read every file of `commit` into memory.
pub async fn load_commit(
    store: &Arc<dyn ObjectStore>,
    commit: &CommitRecord,
) -> Result<Vec<RecordBatch>> {
    let mut out = Vec::new();
    for f in &commit.files {
        out.extend(read_parquet(store, &file_path(&commit.stream, f)).await?);
    }
    Ok(out)
}

/// Read one Parquet file of the store into memory.
pub async fn read_parquet(
    store: &Arc<dyn ObjectStore>,
    path: &object_store::path::Path,
) -> Result<Vec<RecordBatch>> {
    let bytes = store.get(path).await?.bytes().await?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()?;
    Ok(reader.collect::<std::result::Result<Vec<_>, _>>()?)
}

/// Run `view`'s SQL over `events` (rows of its stream).
pub async fn run_view(
    view: &ViewDef,
    stream: &StreamDef,
    events: Vec<RecordBatch>,
) -> Result<Vec<RecordBatch>> {
    let ctx = SessionContext::new();
    let partitions = ctx.state().config().target_partitions().max(1);
    let mut parts: Vec<Vec<RecordBatch>> = vec![Vec::new(); partitions];
    for (i, b) in events.into_iter().enumerate() {
        parts[i % partitions].push(b);
    }
    ctx.register_table(
        stream.name.as_str(),
        Arc::new(MemTable::try_new(stream.schema.clone(), parts)?),
    )?;
    let batches = ctx.sql(&view.query).await?.collect().await?;
    batches
        .into_iter()
        .map(|b| {
            Ok(RecordBatch::try_new(
                view.schema.clone(),
                b.columns().to_vec(),
            )?)
        })
        .collect()
}
