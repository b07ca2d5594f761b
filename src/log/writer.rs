//! Writing one append's rows as Parquet files.
//!
//! A small append — at most `small_append_rows` rows (`[log]` in
//! strata.toml) and at most [`SMALL_APPEND_MAX_BYTES`] of decoded data — is
//! written as **one** file, in the partition directory of its earliest
//! event time, whatever partitions its rows span: nothing reads a partition
//! from a path (scans prune by each file's recorded min/max event time,
//! which stay exact). A larger append is partitioned Hive-style by event
//! time (`date=YYYY-MM-DD/hour=HH/<uuid>.parquet`): one file or more per
//! partition.
//!
//! A file streams to the store as its row groups complete: one under
//! [`UPLOAD_PART_BYTES`] is put whole when finished; a larger one goes up as
//! a multipart upload in parts of that size, completed when the file is.
//! Either way a file is absent or complete in the store. Memory is bounded:
//! a file holds the rows of its next row group (as Arrow batches: they are
//! encoded a row group at a time) and its upload buffer, and while the open
//! files together exceed the budget the one holding the most gives some
//! back: its waiting rows become a (smaller) row group or, if its memory is
//! its upload buffer, it is finished (later rows of its partition start a
//! new file).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch, UInt32Array};
use arrow::compute::take_record_batch;
use arrow::datatypes::TimestampMicrosecondType;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::{WriterProperties, WriterVersion};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::ranges::file_ranges;
use super::{file_path, stream_dir, FileEntry};
use crate::catalog::{Partitioning, StreamDef};
use crate::error::Result;

/// A small append's rows are held in memory until the append ends (to
/// write them as one file): past this many bytes of decoded data, an
/// append is partitioned whatever its row count.
pub const SMALL_APPEND_MAX_BYTES: usize = 32 * 1024 * 1024;

/// A file smaller than this is put in one request; a larger one is
/// uploaded in parts of this size.
pub const UPLOAD_PART_BYTES: usize = 8 * 1024 * 1024;

/// Parts of one file in flight at once.
const UPLOAD_CONCURRENCY: usize = 2;

/// What an open file costs in memory beyond its rows and upload buffer,
/// as the budget counts it.
const OPEN_FILE_BYTES: usize = 64 * 1024;

/// Rows per row group (as [`log_writer_properties`] sets): a file's rows
/// are encoded this many at a time.
const ROW_GROUP_ROWS: usize = 128 * 1024;

/// Writer tuning.
#[derive(Debug, Clone, Copy)]
pub struct WriterLimits {
    /// Finish a file once its encoded size reaches this.
    pub target_file_bytes: usize,
    /// While the open files' memory (rows waiting to be encoded, upload
    /// buffers) exceeds this, the one holding the most encodes its rows or
    /// is finished. With the reader's buffers, an ingest of a 1 GiB NDJSON
    /// object peaks around 200 MiB (`benches/ingest_s3_memory.sh`).
    pub memory_budget_bytes: usize,
    /// Appends of at most this many rows write one file (0, the default
    /// here: always partition; appends take `[log] small_append_rows`).
    pub small_append_rows: u64,
}

impl Default for WriterLimits {
    fn default() -> Self {
        Self {
            target_file_bytes: 128 * 1024 * 1024,
            memory_budget_bytes: 64 * 1024 * 1024,
            small_append_rows: 0,
        }
    }
}

/// Properties of every log file: LZ4 (`LZ4_RAW`: as small as Snappy on the
/// sample, and faster to read for every engine — see BENCHMARKS.md,
/// "Session 6"), row groups small enough to prune and to scan in parallel.
/// Files written earlier with Snappy stay as they are; readers take both.
pub fn log_writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_writer_version(WriterVersion::PARQUET_2_0)
        .set_compression(Compression::LZ4_RAW)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build()
}

/// One file being written. Its rows wait as Arrow batches until a row
/// group's worth is there ([`ROW_GROUP_ROWS`], or less when the budget
/// asks), then are encoded as one row group and handed to the upload. So
/// the encoder's per-column state (which reserves several MiB per row group
/// in progress) exists for one row group at a time, not for every open
/// partition.
struct OpenFile {
    /// Path relative to the stream's directory.
    path: String,
    writer: ArrowWriter<Vec<u8>>,
    upload: BufWriter,
    sha256: Sha256,
    /// Bytes handed to the upload so far.
    uploaded: u64,
    /// Rows not yet encoded, and their memory.
    pending: VecDeque<RecordBatch>,
    pending_rows: usize,
    pending_bytes: usize,
    rows: u64,
    min: i64,
    max: i64,
    /// The event-time column `min` and `max` are of.
    event_time: String,
    /// The schema the file is written with.
    schema: arrow::datatypes::SchemaRef,
}

impl OpenFile {
    fn create(
        store: &Arc<dyn ObjectStore>,
        stream: &StreamDef,
        props: &WriterProperties,
        dir: &str,
    ) -> Result<Self> {
        let path = format!("{dir}/{}.parquet", uuid::Uuid::new_v4());
        let location = Path::from(format!("{}/{path}", stream_dir(&stream.name)));
        Ok(Self {
            path,
            writer: ArrowWriter::try_new(Vec::new(), stream.schema.clone(), Some(props.clone()))?,
            upload: BufWriter::with_capacity(store.clone(), location, UPLOAD_PART_BYTES)
                .with_max_concurrency(UPLOAD_CONCURRENCY),
            sha256: Sha256::new(),
            uploaded: 0,
            pending: VecDeque::new(),
            pending_rows: 0,
            pending_bytes: 0,
            rows: 0,
            min: i64::MAX,
            max: i64::MIN,
            event_time: stream.event_time.clone(),
            schema: stream.schema.clone(),
        })
    }

    /// Add `batch`, whose event times are `ts`; encode every full row group.
    async fn write(&mut self, batch: &RecordBatch, ts: &[i64]) -> Result<()> {
        self.rows += batch.num_rows() as u64;
        for &t in ts {
            self.min = self.min.min(t);
            self.max = self.max.max(t);
        }
        self.pending_rows += batch.num_rows();
        self.pending_bytes += batch.get_array_memory_size();
        self.pending.push_back(batch.clone());
        while self.pending_rows >= ROW_GROUP_ROWS {
            self.encode(ROW_GROUP_ROWS).await?;
        }
        Ok(())
    }

    /// Encode the first `rows` pending rows as one row group and hand it to
    /// the upload.
    async fn encode(&mut self, rows: usize) -> Result<()> {
        let mut left = rows.min(self.pending_rows);
        while left > 0 {
            let Some(batch) = self.pending.pop_front() else {
                break;
            };
            let part = if batch.num_rows() > left {
                self.pending
                    .push_front(batch.slice(left, batch.num_rows() - left));
                batch.slice(0, left)
            } else {
                batch
            };
            self.writer.write(&part)?;
            left -= part.num_rows();
            self.pending_rows -= part.num_rows();
        }
        self.pending_bytes = self
            .pending
            .iter()
            .map(RecordBatch::get_array_memory_size)
            .sum();
        self.writer.flush()?;
        self.drain().await
    }

    /// Hand what the encoder has finished to the upload.
    async fn drain(&mut self) -> Result<()> {
        if self.writer.inner().is_empty() {
            return Ok(());
        }
        // No spare capacity kept for as long as the upload holds it.
        let mut buf = std::mem::take(self.writer.inner_mut());
        buf.shrink_to_fit();
        let bytes = Bytes::from(buf);
        self.sha256.update(&bytes);
        self.uploaded += bytes.len() as u64;
        self.upload.put(bytes).await?;
        Ok(())
    }

    /// The file's size so far, encoded.
    fn size(&self) -> usize {
        self.uploaded as usize
    }

    /// What its upload holds in memory: everything handed to it while it is
    /// below one part (it is put whole), else at most a part being filled
    /// and the parts in flight.
    fn buffered(&self) -> usize {
        let uploaded = self.uploaded as usize;
        if uploaded < UPLOAD_PART_BYTES {
            uploaded
        } else {
            UPLOAD_PART_BYTES * (1 + UPLOAD_CONCURRENCY)
        }
    }

    /// What the file holds in memory: rows waiting, the upload's buffers
    /// and the file's own state.
    fn memory(&self) -> usize {
        self.pending_bytes + self.buffered() + OPEN_FILE_BYTES
    }

    /// Write the rows left and the footer, and complete the upload.
    async fn finish(mut self) -> Result<FileEntry> {
        if self.pending_rows > 0 {
            self.encode(self.pending_rows).await?;
        }
        let metadata = self.writer.finish()?;
        let ranges = file_ranges(&self.schema, &metadata, &self.event_time);
        self.drain().await?;
        self.upload.shutdown().await?;
        Ok(FileEntry {
            path: self.path,
            rows: self.rows,
            bytes: self.uploaded,
            min_event_time_us: self.min,
            max_event_time_us: self.max,
            sha256: hex::encode(self.sha256.finalize()),
            event_time: Some(self.event_time),
            ranges,
        })
    }

    /// Give up the file: a multipart upload in progress is aborted.
    async fn abort(mut self) {
        if let Err(e) = self.upload.abort().await {
            tracing::warn!("could not abort the upload of {}: {e}", self.path);
        }
    }
}

/// Rows held back while an append may still be small.
#[derive(Default)]
struct Held {
    batches: Vec<RecordBatch>,
    rows: u64,
    bytes: usize,
}

/// The files of one append (see the module documentation).
pub struct PartitionedWriter {
    store: Arc<dyn ObjectStore>,
    stream: StreamDef,
    limits: WriterLimits,
    props: WriterProperties,
    /// `Some` while the append is small enough to be one file.
    held: Option<Held>,
    open: BTreeMap<i64, OpenFile>,
    written: Vec<FileEntry>,
}

impl PartitionedWriter {
    pub fn new(store: Arc<dyn ObjectStore>, stream: StreamDef, limits: WriterLimits) -> Self {
        Self {
            store,
            stream,
            held: (limits.small_append_rows > 0).then(Held::default),
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
        let Some(held) = &mut self.held else {
            return self.partition(batch).await;
        };
        held.rows += batch.num_rows() as u64;
        held.bytes += batch.get_array_memory_size();
        held.batches.push(batch.clone());
        if held.rows <= self.limits.small_append_rows && held.bytes <= SMALL_APPEND_MAX_BYTES {
            return Ok(());
        }
        // Not small: partition what was held, then every later batch.
        let held = self.held.take().unwrap_or_default();
        for batch in &held.batches {
            self.partition(batch).await?;
        }
        Ok(())
    }

    /// Split `batch` by partition and add each part to its partition's file.
    async fn partition(&mut self, batch: &RecordBatch) -> Result<()> {
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
            self.write_part(first, batch).await?;
        } else {
            let mut groups: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
            for (i, v) in values.iter().enumerate() {
                groups.entry(start_of(*v)).or_default().push(i as u32);
            }
            for (start, idx) in groups {
                let part = take_record_batch(batch, &UInt32Array::from(idx))?;
                self.write_part(start, &part).await?;
            }
        }
        self.enforce_limits().await
    }

    async fn write_part(&mut self, start: i64, batch: &RecordBatch) -> Result<()> {
        let file = match self.open.entry(start) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => e.insert(OpenFile::create(
                &self.store,
                &self.stream,
                &self.props,
                &partition_dir(self.stream.partitioning, start),
            )?),
        };
        let ts = batch.column(self.stream.event_time_index());
        file.write(
            batch,
            ts.as_primitive::<TimestampMicrosecondType>().values(),
        )
        .await
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
        // Over the budget: the file holding the most gives some back. Its
        // waiting rows become a row group (the file stays open: no extra file
        // for a partition that is still filling), or, when its memory is its
        // upload buffer, it is finished. Each file is picked at most twice in
        // a row, so this ends.
        loop {
            let total: usize = self.open.values().map(OpenFile::memory).sum();
            if total <= self.limits.memory_budget_bytes {
                return Ok(());
            }
            let (&largest, file) = self
                .open
                .iter_mut()
                .max_by_key(|(k, f)| (f.memory(), std::cmp::Reverse(**k)))
                .expect("budget exceeded with no open file");
            if file.pending_bytes > file.buffered() {
                let rows = file.pending_rows;
                file.encode(rows).await?;
            } else {
                self.finish_file(largest).await?;
            }
        }
    }

    async fn finish_file(&mut self, start: i64) -> Result<()> {
        let Some(file) = self.open.remove(&start) else {
            return Ok(());
        };
        self.written.push(file.finish().await?);
        Ok(())
    }

    /// A small append's rows as one file, in the partition of its earliest
    /// event time.
    async fn write_small(&mut self, held: Held) -> Result<()> {
        let index = self.stream.event_time_index();
        let times = |b: &RecordBatch| -> Vec<i64> {
            b.column(index)
                .as_primitive::<TimestampMicrosecondType>()
                .values()
                .to_vec()
        };
        let Some(min) = held.batches.iter().flat_map(&times).min() else {
            return Ok(());
        };
        let p = self.stream.partitioning;
        let mut file = OpenFile::create(
            &self.store,
            &self.stream,
            &self.props,
            &partition_dir(p, p.range_of(min).start),
        )?;
        for batch in &held.batches {
            if let Err(e) = file.write(batch, &times(batch)).await {
                file.abort().await;
                return Err(e);
            }
        }
        self.written.push(file.finish().await?);
        Ok(())
    }

    /// Finish every file; returns all files written, in the order they
    /// were finished. On an error, the uploads in progress are aborted and
    /// the files this call finished removed; those finished before it
    /// ([`PartitionedWriter::written`]) are the caller's to remove.
    pub async fn finish(mut self) -> Result<Vec<FileEntry>> {
        let before = self.written.len();
        match self.finish_all().await {
            Ok(()) => Ok(std::mem::take(&mut self.written)),
            Err(e) => {
                let finished = self.written.split_off(before);
                self.abort().await;
                delete_files(&self.store, &self.stream.name, &finished).await;
                Err(e)
            }
        }
    }

    async fn finish_all(&mut self) -> Result<()> {
        if let Some(held) = self.held.take() {
            self.write_small(held).await?;
        }
        let keys: Vec<i64> = self.open.keys().copied().collect();
        for key in keys {
            self.finish_file(key).await?;
        }
        Ok(())
    }

    /// The store the files go to.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// Files uploaded so far (to delete on abort).
    pub fn written(&self) -> &[FileEntry] {
        &self.written
    }

    /// Abort the uploads in progress (the files already written are the
    /// caller's to remove: [`PartitionedWriter::written`]).
    pub async fn abort(&mut self) {
        for (_, file) in std::mem::take(&mut self.open) {
            file.abort().await;
        }
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
