//! Writing one append's rows as Parquet files partitioned Hive-style by event
//! time (`date=YYYY-MM-DD/hour=HH/<uuid>.parquet`).
//!
//! Files are encoded in memory and put whole, so a file is either absent or
//! complete in the store. Memory is bounded: when the open files together
//! exceed the budget, the largest is finished and uploaded, and later rows of
//! its partition start a new file.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch, UInt32Array};
use arrow::compute::take_record_batch;
use arrow::datatypes::TimestampMicrosecondType;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::{WriterProperties, WriterVersion};
use sha2::{Digest, Sha256};

use super::{file_path, FileEntry};
use crate::catalog::{Partitioning, StreamDef};
use crate::error::Result;

/// Writer tuning.
#[derive(Debug, Clone, Copy)]
pub struct WriterLimits {
    /// Finish a file once its encoded size reaches this.
    pub target_file_bytes: usize,
    /// Finish the largest open file while all open files exceed this.
    pub memory_budget_bytes: usize,
}

impl Default for WriterLimits {
    fn default() -> Self {
        Self {
            target_file_bytes: 128 * 1024 * 1024,
            memory_budget_bytes: 256 * 1024 * 1024,
        }
    }
}

struct OpenFile {
    writer: ArrowWriter<Vec<u8>>,
    rows: u64,
    min: i64,
    max: i64,
}

impl OpenFile {
    fn size(&self) -> usize {
        self.writer.bytes_written() + self.writer.in_progress_size()
    }
}

/// Properties of every log file: Snappy (fast to write and read), row groups
/// small enough to prune and to scan in parallel.
pub fn log_writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_writer_version(WriterVersion::PARQUET_2_0)
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(128 * 1024))
        .build()
}

pub struct PartitionedWriter {
    store: Arc<dyn ObjectStore>,
    stream: StreamDef,
    limits: WriterLimits,
    props: WriterProperties,
    open: BTreeMap<i64, OpenFile>,
    written: Vec<FileEntry>,
}

impl PartitionedWriter {
    pub fn new(store: Arc<dyn ObjectStore>, stream: StreamDef, limits: WriterLimits) -> Self {
        Self {
            store,
            stream,
            limits,
            props: log_writer_properties(),
            open: BTreeMap::new(),
            written: Vec::new(),
        }
    }

    /// Add a batch of the stream's schema.
    pub async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let p = self.stream.partitioning;
        let ts = batch.column(self.stream.event_time_index());
        let ts = ts.as_primitive::<TimestampMicrosecondType>();
        let values = ts.values();
        // Events mostly arrive in time order: reuse the last partition's
        // bounds while they hold.
        let mut bounds = 0..0;
        let mut start_of = |v: i64| {
            if !bounds.contains(&v) {
                bounds = p.range_of(v);
            }
            bounds.start
        };
        let first = start_of(values[0]);
        if values.iter().all(|v| start_of(*v) == first) {
            self.write_part(first, batch.clone(), ts.values())?;
        } else {
            let mut groups: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
            for (i, v) in values.iter().enumerate() {
                groups.entry(start_of(*v)).or_default().push(i as u32);
            }
            for (start, idx) in groups {
                let part = take_record_batch(batch, &UInt32Array::from(idx))?;
                let part_ts = part.column(self.stream.event_time_index()).clone();
                let part_ts = part_ts.as_primitive::<TimestampMicrosecondType>();
                self.write_part(start, part.clone(), part_ts.values())?;
            }
        }
        self.enforce_limits().await
    }

    fn write_part(&mut self, start: i64, batch: RecordBatch, ts: &[i64]) -> Result<()> {
        let file = match self.open.entry(start) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => e.insert(OpenFile {
                writer: ArrowWriter::try_new(
                    Vec::new(),
                    self.stream.schema.clone(),
                    Some(self.props.clone()),
                )?,
                rows: 0,
                min: i64::MAX,
                max: i64::MIN,
            }),
        };
        file.writer.write(&batch)?;
        file.rows += batch.num_rows() as u64;
        for &t in ts {
            file.min = file.min.min(t);
            file.max = file.max.max(t);
        }
        Ok(())
    }

    async fn enforce_limits(&mut self) -> Result<()> {
        let full: Vec<i64> = self
            .open
            .iter()
            .filter(|(_, f)| f.size() >= self.limits.target_file_bytes)
            .map(|(k, _)| *k)
            .collect();
        for key in full {
            self.finish_file(key).await?;
        }
        loop {
            let total: usize = self.open.values().map(OpenFile::size).sum();
            if total <= self.limits.memory_budget_bytes {
                return Ok(());
            }
            let largest = self
                .open
                .iter()
                .max_by_key(|(k, f)| (f.size(), std::cmp::Reverse(**k)))
                .map(|(k, _)| *k)
                .expect("budget exceeded with no open file");
            self.finish_file(largest).await?;
        }
    }

    async fn finish_file(&mut self, start: i64) -> Result<()> {
        let Some(mut file) = self.open.remove(&start) else {
            return Ok(());
        };
        file.writer.finish()?;
        let bytes = Bytes::from(std::mem::take(file.writer.inner_mut()));
        let entry = FileEntry {
            path: format!(
                "{}/{}.parquet",
                partition_dir(self.stream.partitioning, start),
                uuid::Uuid::new_v4()
            ),
            rows: file.rows,
            bytes: bytes.len() as u64,
            min_event_time_us: file.min,
            max_event_time_us: file.max,
            sha256: hex::encode(Sha256::digest(&bytes)),
        };
        self.store
            .put(
                &file_path(&self.stream.name, &entry),
                PutPayload::from(bytes),
            )
            .await?;
        self.written.push(entry);
        Ok(())
    }

    /// Finish every open file; returns all files written, in path order of
    /// partitions as they were finished.
    pub async fn finish(mut self) -> Result<Vec<FileEntry>> {
        let keys: Vec<i64> = self.open.keys().copied().collect();
        for key in keys {
            self.finish_file(key).await?;
        }
        Ok(std::mem::take(&mut self.written))
    }

    /// Files uploaded so far (to delete on abort).
    pub fn written(&self) -> &[FileEntry] {
        &self.written
    }
}

/// Remove files of an append that will not be committed. Best effort: a
/// file that no commit names is invisible to readers anyway.
pub async fn delete_files(store: &Arc<dyn ObjectStore>, stream: &str, files: &[FileEntry]) {
    for f in files {
        if let Err(e) = store.delete(&file_path(stream, f)).await {
            tracing::warn!("could not remove uncommitted file {}: {e}", f.path);
        }
    }
}

/// `date=YYYY-MM-DD/hour=HH`, `date=YYYY-MM-DD` or `month=YYYY-MM` for a
/// partition start.
pub fn partition_dir(p: Partitioning, start_us: i64) -> String {
    let t = DateTime::<Utc>::from_timestamp_micros(start_us).unwrap_or_default();
    match p {
        Partitioning::Hour => t.format("date=%Y-%m-%d/hour=%H").to_string(),
        Partitioning::Day => t.format("date=%Y-%m-%d").to_string(),
        Partitioning::Month => t.format("month=%Y-%m").to_string(),
    }
}
