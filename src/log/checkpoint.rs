//! Log checkpoints: a stream's state at commit C in one record, so that
//! opening a log costs the same at 100 commits and at 1,000,000.
//!
//! ```text
//!   log/<stream>/_checkpoints/<C>.json       LogCheckpoint: live steps, idempotency
//!                                             keys, schema history of commits 0..=C
//!                                             (put-if-absent, a RecordDir like commits)
//!   log/<stream>/_checkpoints/_last.json     {"commit": C}: a hint, overwritten
//!
//!   open: GET _last ──► GET <C>.json ──► LIST _commits after C ──► GET each
//!           │ missing/torn   │ missing/torn/not C
//!           ▼                ▼
//!         LIST _checkpoints, newest readable first ──► none: every commit from 0
//! ```
//!
//! A checkpoint is a pure function of commits `0..=C` (ordered maps, no
//! clock): two writers that race to write it write the same bytes, and
//! either one's record is the truth. It is written after commit C landed
//! and the pointer after the checkpoint, so a writer killed anywhere leaves
//! the log as readable as before: at worst a stale pointer (readers read a
//! few more commits) or no checkpoint. `strata check` rebuilds every
//! checkpoint from the commits it summarizes and compares.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use super::{read_if_exists, LogState, RecordDir, SchemaEpoch, Step};
use crate::error::Result;

/// Version of the log checkpoint format.
pub const LOG_CHECKPOINT_FORMAT: u32 = 1;

/// A stream's state after commits `0..=commit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogCheckpoint {
    pub format: u32,
    pub stream: String,
    /// The last commit it summarizes.
    pub commit: u64,
    /// The live steps, in commit order.
    pub steps: Vec<Step>,
    /// Every idempotency key committed, with its commit.
    pub keys: BTreeMap<String, u64>,
    /// Where the schema fingerprint changed.
    pub schemas: Vec<SchemaEpoch>,
}

/// The pointer to the newest checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastCheckpoint {
    pub commit: u64,
}

/// The checkpoint records of `stream`.
pub fn log_checkpoints(store: &Arc<dyn ObjectStore>, stream: &str) -> RecordDir<LogCheckpoint> {
    RecordDir::new(
        store.clone(),
        Path::from(format!("log/{stream}/_checkpoints")),
    )
}

/// Where the pointer to the newest checkpoint of `stream` is.
pub fn last_checkpoint_path(stream: &str) -> Path {
    Path::from(format!("log/{stream}/_checkpoints/_last.json"))
}

/// The checkpoint the pointer names, if the pointer and the checkpoint
/// are there, whole, and agree.
async fn pointed(store: &Arc<dyn ObjectStore>, stream: &str) -> Result<Option<(u64, LogState)>> {
    let Some(bytes) = read_if_exists(store, &last_checkpoint_path(stream)).await? else {
        return Ok(None);
    };
    let Ok(last) = serde_json::from_slice::<LastCheckpoint>(&bytes) else {
        tracing::warn!("log {stream}: the checkpoint pointer is torn; looking for checkpoints");
        return Ok(None);
    };
    Ok(readable(store, stream, last.commit)
        .await
        .map(|state| (last.commit, state)))
}

/// Checkpoint `n` as a state, if it is there, whole, about `stream`'s
/// commit `n`, and well formed.
async fn readable(store: &Arc<dyn ObjectStore>, stream: &str, n: u64) -> Option<LogState> {
    let state = match log_checkpoints(store, stream).read(n).await {
        Ok(Some(c)) if c.commit == n && c.stream == stream && c.format == LOG_CHECKPOINT_FORMAT => {
            LogState::from_checkpoint(c)
        }
        Ok(None) => return None,
        Ok(Some(_)) | Err(_) => None,
    };
    if state.is_none() {
        tracing::warn!("log {stream}: checkpoint {n} is not readable; using an older one");
    }
    state
}

/// The newest checkpoint a reader can start from, as its commit and the
/// state after it: the pointer's, else the newest readable one listed,
/// else none (read every commit).
pub async fn newest(store: &Arc<dyn ObjectStore>, stream: &str) -> Result<Option<(u64, LogState)>> {
    if let Some(c) = pointed(store, stream).await? {
        return Ok(Some(c));
    }
    let listed = log_checkpoints(store, stream).list().await?;
    for n in listed.into_iter().rev() {
        if let Some(state) = readable(store, stream, n).await {
            return Ok(Some((n, state)));
        }
    }
    Ok(None)
}

/// Write `checkpoint` (if no checkpoint holds its number) and point to it.
pub async fn write(store: &Arc<dyn ObjectStore>, checkpoint: &LogCheckpoint) -> Result<()> {
    let stream = &checkpoint.stream;
    log_checkpoints(store, stream)
        .create(checkpoint.commit, checkpoint)
        .await?;
    // The pointer only ever helps: a reader checks what it names, and a
    // stale one costs it a few more commits to read. Don't move it back
    // past what is there now (two writers racing can still leave the
    // older of their two: harmless).
    if let Some(bytes) = read_if_exists(store, &last_checkpoint_path(stream)).await? {
        if let Ok(last) = serde_json::from_slice::<LastCheckpoint>(&bytes) {
            if last.commit >= checkpoint.commit {
                return Ok(());
            }
        }
    }
    let body = serde_json::to_vec(&LastCheckpoint {
        commit: checkpoint.commit,
    })?;
    store
        .put(
            &last_checkpoint_path(stream),
            PutPayload::from(Bytes::from(body)),
        )
        .await?;
    Ok(())
}
