//! One append = one atomic commit. Input is decoded on a blocking thread and
//! handed to the writer through a bounded channel, so decoding and Parquet
//! encoding overlap and memory stays bounded end to end: an input (a local
//! file, stdin or a store object) is read as it is decoded, and files
//! stream to the store as they are encoded. Any error before the commit —
//! a bad row anywhere in the input included — aborts the uploads in
//! progress, removes the files already written and leaves the log as it
//! was: only the commit names files.

use std::sync::Arc;

use arrow::array::RecordBatch;
use tokio::sync::mpsc;

use super::ingest::{read_input, ReadOptions};
use super::writer::{delete_files, PartitionedWriter, WriterLimits};
use super::{CommitOutcome, CommitRecord, InputSource, StreamLog, COMMIT_FORMAT};
use crate::catalog::StreamDef;
use crate::error::{Result, StrataError};

/// The reader's error when the writer stopped taking batches.
const ABORTED: &str = "append aborted";

fn is_aborted(e: &StrataError) -> bool {
    matches!(e, StrataError::Usage(m) if m == ABORTED)
}

/// What to append.
#[derive(Debug, Clone, Default)]
pub struct AppendRequest {
    pub inputs: Vec<InputSource>,
    pub idempotency_key: Option<String>,
    pub ignore_extra_columns: bool,
}

/// What an append did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendOutcome {
    Committed {
        commit: u64,
        rows: u64,
        bytes: u64,
        files: usize,
    },
    /// The idempotency key was already committed: nothing was written.
    AlreadyCommitted { commit: u64, key: String },
}

/// Append the rows of `req.inputs` as one commit. `progress` receives the
/// bytes (or Parquet rows) read as they are read. Appends of at most
/// `small_append_rows` rows write one file (see `writer`).
pub async fn append_inputs(
    log: &mut StreamLog,
    stream: &StreamDef,
    req: AppendRequest,
    small_append_rows: u64,
    progress: Arc<dyn Fn(u64) + Send + Sync>,
) -> Result<AppendOutcome> {
    if let Some(out) = already_committed(log, req.idempotency_key.as_deref()).await? {
        return Ok(out);
    }
    let (tx, rx) = mpsc::channel::<RecordBatch>(2);
    let def = stream.clone();
    let opts = ReadOptions {
        ignore_extra_columns: req.ignore_extra_columns,
    };
    let inputs = req.inputs.clone();
    let reader = tokio::task::spawn_blocking(move || -> Result<u64> {
        let mut rows = 0;
        let mut sink = |batch: RecordBatch| {
            tx.blocking_send(batch)
                .map_err(|_| StrataError::Usage(ABORTED.into()))
        };
        for input in &inputs {
            rows += read_input(input, &def, opts, &mut sink, progress.as_ref())?;
        }
        Ok(rows)
    });
    let mut writer = writer_for(log, stream, small_append_rows);
    let write_result = write_all(&mut writer, rx).await;
    let read_result = match reader.await {
        Ok(r) => r,
        Err(e) => Err(StrataError::Usage(format!("input reader failed: {e}"))),
    };
    let failed = match (write_result, read_result) {
        (Ok(()), Ok(_)) => None,
        // One side failing closes the channel under the other: report the
        // failure, not the closed channel.
        (Err(write_err), Err(read_err)) => Some(if is_aborted(&read_err) {
            write_err
        } else {
            read_err
        }),
        (Ok(()), Err(e)) | (Err(e), Ok(_)) => Some(e),
    };
    if let Some(e) = failed {
        return Err(abort(writer, stream, e).await);
    }
    finish_append(log, stream, req.idempotency_key, writer).await
}

/// Append in-memory batches (any subset of the declared columns, values
/// converted by the one rule of `convert`) as one commit.
pub async fn append_batches(
    log: &mut StreamLog,
    stream: &StreamDef,
    batches: Vec<RecordBatch>,
    idempotency_key: Option<String>,
    small_append_rows: u64,
) -> Result<AppendOutcome> {
    if let Some(out) = already_committed(log, idempotency_key.as_deref()).await? {
        return Ok(out);
    }
    // Every row is converted before anything is written.
    let mut rows: u64 = 0;
    let mut conformed = Vec::with_capacity(batches.len());
    for raw in &batches {
        let first = rows;
        let b = super::convert::conform(raw, stream, &|i| format!("row {}", first + i as u64 + 1))?;
        rows += b.num_rows() as u64;
        conformed.push(b);
    }
    if rows == 0 {
        return Err(StrataError::input(stream.name.clone(), "no rows to append"));
    }
    let mut writer = writer_for(log, stream, small_append_rows);
    for batch in &conformed {
        if let Err(e) = writer.write(batch).await {
            return Err(abort(writer, stream, e).await);
        }
    }
    finish_append(log, stream, idempotency_key, writer).await
}

/// Give up an append after `e`: abort its uploads, remove its files.
async fn abort(mut writer: PartitionedWriter, stream: &StreamDef, e: StrataError) -> StrataError {
    writer.abort().await;
    delete_files(writer.store(), &stream.name, writer.written()).await;
    e
}

fn writer_for(log: &StreamLog, stream: &StreamDef, small_append_rows: u64) -> PartitionedWriter {
    let limits = WriterLimits {
        small_append_rows,
        ..WriterLimits::default()
    };
    PartitionedWriter::new(log.store().clone(), stream.clone(), limits)
}

async fn already_committed(
    log: &mut StreamLog,
    key: Option<&str>,
) -> Result<Option<AppendOutcome>> {
    // Before anything is written: a log the declared schema cannot read
    // (invariant 8) takes no append.
    log.catch_up().await?;
    if let Some(key) = key {
        if let Some(commit) = log.find_key(key) {
            return Ok(Some(AppendOutcome::AlreadyCommitted {
                commit,
                key: key.to_string(),
            }));
        }
    }
    Ok(None)
}

/// Write every batch the reader sends; stops at the first error (which
/// closes the channel under the reader).
async fn write_all(
    writer: &mut PartitionedWriter,
    mut rx: mpsc::Receiver<RecordBatch>,
) -> Result<()> {
    while let Some(batch) = rx.recv().await {
        writer.write(&batch).await?;
    }
    Ok(())
}

/// Finish the files and commit them; on any error before the commit, the
/// files are removed and the log is as it was.
async fn finish_append(
    log: &mut StreamLog,
    stream: &StreamDef,
    idempotency_key: Option<String>,
    writer: PartitionedWriter,
) -> Result<AppendOutcome> {
    let store = log.store().clone();
    let partial = writer.written().to_vec();
    let files = match writer.finish().await {
        Ok(files) => files,
        Err(e) => {
            delete_files(&store, &stream.name, &partial).await;
            return Err(e);
        }
    };
    let rows = files.iter().map(|f| f.rows).sum();
    let bytes = files.iter().map(|f| f.bytes).sum();
    let draft = CommitRecord {
        format: COMMIT_FORMAT,
        stream: stream.name.clone(),
        commit: 0,
        writer_id: uuid::Uuid::new_v4().to_string(),
        idempotency_key: idempotency_key.clone(),
        schema_fingerprint: stream.schema_fingerprint(),
        columns: Some(super::schema::columns_of(&stream.schema)),
        rows,
        bytes,
        min_event_time_us: files.iter().map(|f| f.min_event_time_us).min(),
        max_event_time_us: files.iter().map(|f| f.max_event_time_us).max(),
        files: files.clone(),
        compacts: None,
    };
    match log.commit(draft).await? {
        CommitOutcome::Committed(commit) => {
            log.auto_compact(stream).await;
            Ok(AppendOutcome::Committed {
                commit,
                rows,
                bytes,
                files: files.len(),
            })
        }
        CommitOutcome::Duplicate(commit) => {
            delete_files(&store, &stream.name, &files).await;
            Ok(AppendOutcome::AlreadyCommitted {
                commit,
                key: idempotency_key.unwrap_or_default(),
            })
        }
    }
}
