//! One append = one atomic commit. Input is decoded on a blocking thread and
//! handed to the writer through a bounded channel, so decoding and Parquet
//! encoding overlap and memory stays bounded. Any error before the commit
//! removes the files already written and leaves the log as it was.

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
/// bytes (or Parquet rows) read as they are read.
pub async fn append_inputs(
    log: &mut StreamLog,
    stream: &StreamDef,
    req: AppendRequest,
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
    let write_result = write_all(log, stream, rx).await;
    let read_result = match reader.await {
        Ok(r) => r,
        Err(e) => Err(StrataError::Usage(format!("input reader failed: {e}"))),
    };
    finish_append(log, stream, req.idempotency_key, write_result, read_result).await
}

/// Append in-memory batches (any subset of the declared columns, values
/// converted by the one rule of `convert`) as one commit.
pub async fn append_batches(
    log: &mut StreamLog,
    stream: &StreamDef,
    batches: Vec<RecordBatch>,
    idempotency_key: Option<String>,
) -> Result<AppendOutcome> {
    if let Some(out) = already_committed(log, idempotency_key.as_deref()).await? {
        return Ok(out);
    }
    let (tx, rx) = mpsc::channel::<RecordBatch>(batches.len().max(1));
    let mut rows: u64 = 0;
    let mut conform_err = None;
    for raw in &batches {
        let first = rows;
        match super::convert::conform(raw, stream, &|i| format!("row {}", first + i as u64 + 1)) {
            Ok(b) => {
                rows += b.num_rows() as u64;
                tx.send(b).await.expect("receiver alive");
            }
            Err(e) => {
                conform_err = Some(e);
                break;
            }
        }
    }
    drop(tx);
    if let Some(e) = conform_err {
        return Err(e);
    }
    if rows == 0 {
        return Err(StrataError::input(stream.name.clone(), "no rows to append"));
    }
    let write_result = write_all(log, stream, rx).await;
    finish_append(log, stream, idempotency_key, write_result, Ok(rows)).await
}

async fn already_committed(
    log: &mut StreamLog,
    key: Option<&str>,
) -> Result<Option<AppendOutcome>> {
    // Before anything is written: a log the declared schema cannot read
    // (invariant 8) takes no append.
    log.refresh().await?;
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

/// Files written, or the error and the files to remove.
type WriteResult = std::result::Result<Vec<super::FileEntry>, (StrataError, Vec<super::FileEntry>)>;

async fn write_all(
    log: &StreamLog,
    stream: &StreamDef,
    mut rx: mpsc::Receiver<RecordBatch>,
) -> WriteResult {
    let mut writer =
        PartitionedWriter::new(log.store().clone(), stream.clone(), WriterLimits::default());
    while let Some(batch) = rx.recv().await {
        if let Err(e) = writer.write(&batch).await {
            return Err((e, writer.written().to_vec()));
        }
    }
    let partial = writer.written().to_vec();
    writer.finish().await.map_err(|e| (e, partial))
}

async fn finish_append(
    log: &mut StreamLog,
    stream: &StreamDef,
    idempotency_key: Option<String>,
    written: WriteResult,
    read: Result<u64>,
) -> Result<AppendOutcome> {
    let store = log.store().clone();
    let files = match (written, read) {
        (Ok(files), Ok(_)) => files,
        // One side failing closes the channel under the other: report the
        // failure, not the closed channel.
        (Err((write_err, files)), Err(read_err)) => {
            delete_files(&store, &stream.name, &files).await;
            return Err(if is_aborted(&read_err) {
                write_err
            } else {
                read_err
            });
        }
        (Ok(files), Err(e)) | (Err((e, files)), Ok(_)) => {
            delete_files(&store, &stream.name, &files).await;
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
    };
    match log.commit(draft).await? {
        CommitOutcome::Committed(commit) => Ok(AppendOutcome::Committed {
            commit,
            rows,
            bytes,
            files: files.len(),
        }),
        CommitOutcome::Duplicate(commit) => {
            delete_files(&store, &stream.name, &files).await;
            Ok(AppendOutcome::AlreadyCommitted {
                commit,
                key: idempotency_key.unwrap_or_default(),
            })
        }
    }
}
