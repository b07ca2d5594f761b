//! Kappa checkpoints: a view's state and output together with the number
//! of commits they reflect.
//!
//! ```text
//!   kappa/<view>/c<seq>/state-<attempt>.arrow        grouped views: state rows (Arrow IPC)
//!   kappa/<view>/c<seq>/part-NNNNN-<attempt>.parquet grouped views: the view's rows
//!   kappa/<view>/c<seq>/rows-<attempt>.parquet       row views: rows since the last checkpoint
//!   kappa/<view>/_checkpoints/<seq>.json             the record, written last (PutMode::Create)
//! ```
//!
//! Files first, record last: a reader sees a complete checkpoint or the
//! previous one; a killed writer leaves files that no record names.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::ipc::reader::FileReader;
use arrow::ipc::writer::FileWriter;
use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use crate::batch::PartFile;
use crate::catalog::ViewDef;
use crate::error::{Result, StrataError};

/// Version of the checkpoint record format.
pub const CHECKPOINT_FORMAT: u32 = 1;

/// A checkpoint record: `kappa/<view>/_checkpoints/<seq>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointRecord {
    pub format: u32,
    pub view: String,
    pub seq: u64,
    pub stream: String,
    /// State and output reflect exactly commits `0..commits`.
    pub commits: u64,
    /// Hash of the view definition that made it.
    pub sql_hash: String,
    /// The plan's state layout ([`super::plan::KappaPlan::fingerprint`]).
    #[serde(default)]
    pub plan_fingerprint: String,
    pub writer_id: String,
    /// Events of the stream read to reach it.
    pub events: u64,
    /// Rows of the view.
    pub rows: u64,
    /// Grouped views: the state rows.
    pub state: Option<PartFile>,
    /// The view's rows: all of them (grouped), or every segment so far
    /// (row views; segments are shared with earlier checkpoints).
    pub output: Vec<PartFile>,
}

impl CheckpointRecord {
    /// The last commit reflected (`None`: none yet).
    pub fn watermark(&self) -> Option<u64> {
        self.commits.checked_sub(1)
    }

    fn paths(&self) -> impl Iterator<Item = &str> {
        self.state
            .iter()
            .chain(self.output.iter())
            .map(|f| f.path.as_str())
    }
}

fn records_dir(view: &str) -> Path {
    Path::from(format!("kappa/{view}/_checkpoints"))
}

fn record_path(view: &str, seq: u64) -> Path {
    Path::from(format!("kappa/{view}/_checkpoints/{seq:020}.json"))
}

/// Where the files of checkpoint `seq` go.
pub fn checkpoint_prefix(view: &str, seq: u64) -> String {
    format!("kappa/{view}/c{seq}")
}

/// Checkpoint numbers of `view`, ascending.
pub async fn list_checkpoints(store: &Arc<dyn ObjectStore>, view: &str) -> Result<Vec<u64>> {
    crate::log::list_numbered(store, &records_dir(view)).await
}

pub async fn read_checkpoint(
    store: &Arc<dyn ObjectStore>,
    view: &str,
    seq: u64,
) -> Result<Option<CheckpointRecord>> {
    let Some(bytes) = crate::log::read_if_exists(store, &record_path(view, seq)).await? else {
        return Ok(None);
    };
    Ok(Some(serde_json::from_slice(&bytes).map_err(|e| {
        StrataError::Kappa(format!(
            "view '{view}': unreadable checkpoint record {seq}: {e}"
        ))
    })?))
}

/// The checkpoint to serve or resume from: made by the current definition
/// of `view` (and, when given, with this state layout), reflecting at most
/// `limit` commits; the one reflecting the most commits, the newest of
/// those. (A `--from-scratch` rebuild takes over once it has caught up.)
pub async fn latest_checkpoint(
    store: &Arc<dyn ObjectStore>,
    view: &ViewDef,
    limit: Option<u64>,
    fingerprint: Option<&str>,
) -> Result<Option<CheckpointRecord>> {
    let mut records = Vec::new();
    for seq in list_checkpoints(store, &view.name).await? {
        // A checkpoint may be retired between the listing and the read.
        if let Some(r) = read_checkpoint(store, &view.name, seq).await? {
            records.push(r);
        }
    }
    Ok(best(view, &records, limit, fingerprint).cloned())
}

/// Of `records`, the one made by the current definition of `view` (with
/// this state layout, when given) reflecting at most `limit` commits that
/// reflects the most commits, the newest of those.
fn best<'a>(
    view: &ViewDef,
    records: &'a [CheckpointRecord],
    limit: Option<u64>,
    fingerprint: Option<&str>,
) -> Option<&'a CheckpointRecord> {
    records
        .iter()
        .filter(|r| {
            r.sql_hash == view.sql_hash()
                && limit.is_none_or(|l| r.commits <= l)
                && fingerprint.is_none_or(|f| r.plan_fingerprint == f)
        })
        .max_by_key(|r| (r.commits, r.seq))
}

/// Publish `record` (its files are written). Put-if-absent: another replay
/// of the same view that took the number is an error, not a merge.
pub async fn publish(store: &Arc<dyn ObjectStore>, record: &CheckpointRecord) -> Result<()> {
    let body = Bytes::from(serde_json::to_vec_pretty(record)?);
    let opts = PutOptions {
        mode: PutMode::Create,
        ..Default::default()
    };
    let path = record_path(&record.view, record.seq);
    match store.put_opts(&path, PutPayload::from(body), opts).await {
        Ok(_) => Ok(()),
        Err(object_store::Error::AlreadyExists { .. }) => {
            // A retried create may find our own record.
            match read_checkpoint(store, &record.view, record.seq).await? {
                Some(r) if r.writer_id == record.writer_id => Ok(()),
                _ => Err(StrataError::Kappa(format!(
                    "view '{}': checkpoint {} was written by another replay; run one replay per view at a time",
                    record.view, record.seq
                ))),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Remove all but the newest `retain` checkpoints of `view` — never the one
/// served — records first, then the files no remaining record names.
pub async fn retire_checkpoints(
    store: &Arc<dyn ObjectStore>,
    def: &ViewDef,
    retain: usize,
) -> Result<()> {
    let view = def.name.as_str();
    let seqs = list_checkpoints(store, view).await?;
    let cut = seqs.len().saturating_sub(retain.max(1));
    if cut == 0 {
        return Ok(());
    }
    let mut records = Vec::new();
    for &s in &seqs {
        if let Some(r) = read_checkpoint(store, view, s).await? {
            records.push(r);
        }
    }
    let served = best(def, &records, None, None).map(|r| r.seq);
    let (retired, kept): (Vec<_>, Vec<_>) = records
        .into_iter()
        .partition(|r| r.seq < seqs[cut] && Some(r.seq) != served);
    let kept: std::collections::BTreeSet<&str> = kept.iter().flat_map(|r| r.paths()).collect();
    for r in &retired {
        store.delete(&record_path(view, r.seq)).await?;
        for p in r.paths().filter(|p| !kept.contains(*p)) {
            if let Err(e) = store.delete(&Path::from(p)).await {
                tracing::warn!("could not remove {p}: {e}");
            }
        }
    }
    Ok(())
}

/// Write state rows as an Arrow IPC file (exact types, nested state too).
pub async fn write_state(
    store: &Arc<dyn ObjectStore>,
    path: String,
    batch: &RecordBatch,
) -> Result<PartFile> {
    let mut w = FileWriter::try_new(Vec::new(), batch.schema_ref())?;
    w.write(batch)?;
    w.finish()?;
    let bytes = Bytes::from(w.into_inner()?);
    let len = bytes.len() as u64;
    store
        .put(&Path::from(path.as_str()), PutPayload::from(bytes))
        .await?;
    Ok(PartFile {
        path,
        rows: batch.num_rows() as u64,
        bytes: len,
    })
}

/// Read state rows written by [`write_state`].
pub async fn read_state(store: &Arc<dyn ObjectStore>, file: &PartFile) -> Result<Vec<RecordBatch>> {
    let bytes = store
        .get(&Path::from(file.path.as_str()))
        .await?
        .bytes()
        .await?;
    let reader = FileReader::try_new(std::io::Cursor::new(bytes), None)?;
    Ok(reader.collect::<std::result::Result<Vec<_>, _>>()?)
}
