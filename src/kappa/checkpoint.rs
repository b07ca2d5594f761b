//! Kappa checkpoints: a view's state and output together with the number
//! of commits they reflect, and how concurrent replays of one view share
//! them.
//!
//! ```text
//!   kappa/<view>/c<seq>/state-<attempt>.arrow        grouped views: state rows (Arrow IPC)
//!   kappa/<view>/c<seq>/part-NNNNN-<attempt>.parquet grouped views: the view's rows
//!   kappa/<view>/c<seq>/part-NNNNN-<attempt>.parquet row views: rows since the checkpoint continued
//!   kappa/<view>/_checkpoints/<seq>.json             the record, written last (PutMode::Create)
//!   kappa/<view>/_pins/<writer>-<attempt>.json       row views: the files a checkpoint in the
//!                                                    making continues (see "Retention")
//! ```
//!
//! Files first, record last: a reader sees a complete checkpoint or the
//! previous one; a killed writer leaves files that no record names. The
//! records are a [`RecordDir`] (see `log::records` for the protocol).
//!
//! # Several replays of one view
//!
//! A shell `INSERT` in kappa mode replays the stream's views to the head
//! and checkpoints them while a `strata replay --follow` may be doing the
//! same. There is no lock and no lease: both may run, and both finish.
//! Replay is deterministic — a checkpoint of a definition reflecting
//! commits `0..n` holds the same rows whoever made it — so any checkpoint
//! of the current definition (and state layout) is as good as one's own.
//! A checkpoint attempt ([`super::ViewProcessor::checkpoint`]) goes:
//!
//! 1. List and read the records. The attempt's number is one past the
//!    highest listed. If another replay's checkpoint already reflects at
//!    least as many commits as this replay's state, *adopt* it: write
//!    nothing and report it (a row view continues from its segments and
//!    commit count; a grouped view keeps its own state, equal to the
//!    adopted one's at the same commit, and carries on from there).
//! 2. Write the files, named with a fresh random *attempt* suffix under
//!    `c<seq>/`, then put the record if absent.
//! 3. Lost the put (another replay took the number): remove this
//!    attempt's files and go back to 1 — the winner is adopted if it
//!    reflects at least as much, otherwise the attempt is made again,
//!    with new files, at the next free number. After
//!    [`MAX_CHECKPOINT_ATTEMPTS`] straight losses the replay stops with
//!    [`StrataError::CheckpointConflict`].
//!
//! So two concurrent replays of a view both succeed; the records they
//! leave are each a complete checkpoint of the definition, numbered
//! without collision, and the served one (most commits, then newest)
//! equals a replay from scratch to that commit. A replay started with
//! `--from-scratch` adopts only its own checkpoints (it does not trust
//! the older ones), unless it has to (below).
//!
//! **The files of a losing attempt are never named by a record.** Its
//! record was refused, so nothing names them; the retry writes new files
//! with a new attempt suffix, and the old ones are removed (a crash in
//! between leaves them as orphans for `strata check --gc`). Attempt
//! suffixes are what make this safe: two attempts at the same number
//! write side by side in `c<seq>/` and never overwrite each other, and
//! nothing is ever removed by directory or prefix — only by exact name.
//!
//! # Row views continue earlier files
//!
//! A row view's record names every segment so far: those of the
//! checkpoint it continues (its *base*: the one it resumed from, adopted
//! or wrote last) plus the rows since, so checkpointing costs the new
//! rows only. It keeps the rows since the base per commit, so it can move
//! onto a newer base (*rebase*: any usable checkpoint reflecting between
//! its base's commits and its own) and name that one's segments instead;
//! step 1 does so whenever the best usable checkpoint is not its base,
//! which keeps concurrent replays on one line of segments.
//!
//! # Retention
//!
//! [`retire_checkpoints`] keeps the newest `retain` records and the served
//! one. The hazard with concurrency: a replay removes a record that
//! another replay's checkpoint *in the making* continues, and with it the
//! segments that checkpoint is about to name. Two rules close it:
//!
//! * A writer continuing a base first puts a *pin* naming the base's files,
//!   then re-reads the base's record (it must still be there, unchanged),
//!   then writes and publishes, and only then removes the pin. If the base
//!   is gone, it unpins and rebases onto the best usable checkpoint (the
//!   retirer kept the served one, reflecting at least as many commits; a
//!   `--from-scratch` replay then trusts it too, with a warning). With
//!   none to continue, the replay stops with a [`StrataError::Kappa`].
//! * A retirer deletes the retired *records* first, then takes a stable
//!   look at what is named — list and read the records, list and read the
//!   pins, list the records again, until that second list equals the
//!   first — and removes only the retired records' files that no record
//!   and no pin names. (With no stable look in a few tries it removes no
//!   files: orphans, never damage.)
//!
//! Why that suffices. A listing shows what exists when it is taken, and a
//! record number is never reused (the highest record is never retired and
//! new numbers go past it). Suppose a retirer removes a file `f` while a
//! record `N` standing after its look names `f`. A retired record named
//! `f`, so the record that first wrote `f` is older than the look. `N` is
//! newer than the look: one present at it was read in it (equal listings:
//! no record appeared during the look) and would have named `f`. So `N`
//! did not write `f`: it continued a base naming `f`, under a pin naming
//! `f` from before its base check until after `N` was published, past
//! the look. The look missed the pin, so the pin was put after the pins
//! were listed, and the base check, later still, found the base standing:
//! present after the first listing, not read in the look, so it too is
//! newer than the look. Following bases back reaches the record that
//! first wrote `f` — newer than the look, and older: a contradiction. A
//! checkpoint in the making's own new files are named by no record until
//! it is published, so no retirer has them to remove. Hence retention
//! never removes a file that a standing record names, or that a
//! concurrent replay's checkpoint is about to name.
//!
//! A pin lives for one checkpoint attempt; a replay killed in that moment
//! leaves it behind, and its files stay until `strata check --gc` removes
//! the pin as an old orphan.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::ipc::reader::FileReader;
use arrow::ipc::writer::FileWriter;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use crate::batch::PartFile;
use crate::catalog::ViewDef;
use crate::error::{Result, StrataError};
use crate::log::{Covered, Created, RecordDir};

/// Version of the checkpoint record format.
pub const CHECKPOINT_FORMAT: u32 = 1;

/// Lost races for a checkpoint number in a row before a replay gives up.
pub const MAX_CHECKPOINT_ATTEMPTS: u32 = 32;

/// Tries at a stable look at the records before a retirer leaves the
/// files of the records it retired in place (orphans, never damage).
const STABLE_LOOK_ATTEMPTS: usize = 8;

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
    /// The plan's state layout ([`crate::catalog::CompiledView::fingerprint`]).
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
        self.covered().watermark()
    }

    /// The commits the record reflects.
    pub fn covered(&self) -> Covered {
        Covered(self.commits)
    }

    /// Every file the record names.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.state
            .iter()
            .chain(self.output.iter())
            .map(|f| f.path.as_str())
    }
}

/// A pin: `kappa/<view>/_pins/<writer>-<attempt>.json`, the files of the
/// base a checkpoint in the making continues (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    pub view: String,
    pub writer_id: String,
    /// The base checkpoint's number.
    pub base: u64,
    pub files: Vec<String>,
}

/// The checkpoint records of `view`: `kappa/<view>/_checkpoints/<seq>.json`.
pub fn checkpoint_records(store: &Arc<dyn ObjectStore>, view: &str) -> RecordDir<CheckpointRecord> {
    RecordDir::new(
        store.clone(),
        Path::from(format!("kappa/{view}/_checkpoints")),
    )
}

fn pins_dir(view: &str) -> Path {
    Path::from(format!("kappa/{view}/_pins"))
}

/// Where the files of checkpoint `seq` go.
pub fn checkpoint_prefix(view: &str, seq: u64) -> String {
    format!("kappa/{view}/c{seq}")
}

/// A fresh attempt suffix for file names.
pub fn new_attempt() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

/// Checkpoint numbers of `view`, ascending.
pub async fn list_checkpoints(store: &Arc<dyn ObjectStore>, view: &str) -> Result<Vec<u64>> {
    checkpoint_records(store, view).list().await
}

pub async fn read_checkpoint(
    store: &Arc<dyn ObjectStore>,
    view: &str,
    seq: u64,
) -> Result<Option<CheckpointRecord>> {
    checkpoint_records(store, view).read(seq).await
}

/// The checkpoint numbers of `view` as listed, and the records of those
/// still there when read (one may be retired in between).
pub async fn read_checkpoints(
    store: &Arc<dyn ObjectStore>,
    view: &str,
) -> Result<(Vec<u64>, Vec<CheckpointRecord>)> {
    let seqs = list_checkpoints(store, view).await?;
    let mut records = Vec::with_capacity(seqs.len());
    for &seq in &seqs {
        if let Some(r) = read_checkpoint(store, view, seq).await? {
            records.push(r);
        }
    }
    Ok((seqs, records))
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
    let (_, records) = read_checkpoints(store, &view.name).await?;
    Ok(best(view, &records, limit, fingerprint).cloned())
}

/// Of `records`, the one made by the current definition of `view` (with
/// this state layout, when given) reflecting at most `limit` commits that
/// reflects the most commits, the newest of those.
pub fn best<'a>(
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

/// Publish `record` (its files are written), if its number is free.
/// `Ok(false)`: another replay's record holds the number — the caller
/// lost the race and must not let anything name this attempt's files.
pub async fn publish(store: &Arc<dyn ObjectStore>, record: &CheckpointRecord) -> Result<bool> {
    match checkpoint_records(store, &record.view)
        .create(record.seq, record)
        .await?
    {
        Created::Created => Ok(true),
        // A retried create may find our own record (the same attempt's
        // files, so the same record).
        Created::Exists(existing) => Ok(existing.as_ref() == Some(record)),
    }
}

/// Put a pin on `base`'s files for a checkpoint attempt of `writer_id`;
/// returns where it is, for [`unpin`].
pub async fn pin(
    store: &Arc<dyn ObjectStore>,
    writer_id: &str,
    base: &CheckpointRecord,
) -> Result<Path> {
    let pin = Pin {
        view: base.view.clone(),
        writer_id: writer_id.to_string(),
        base: base.seq,
        files: base.paths().map(str::to_string).collect(),
    };
    let path = Path::from(format!(
        "kappa/{}/_pins/{writer_id}-{}.json",
        base.view,
        new_attempt()
    ));
    store
        .put(
            &path,
            PutPayload::from(Bytes::from(serde_json::to_vec(&pin)?)),
        )
        .await?;
    Ok(path)
}

/// Remove a pin. A pin left behind only keeps files, so a failure is
/// logged, not raised.
pub async fn unpin(store: &Arc<dyn ObjectStore>, path: &Path) {
    if let Err(e) = delete_if_exists(store, path).await {
        tracing::warn!("could not remove pin {path}: {e}");
    }
}

/// The pins on `view`'s checkpoints (one removed while listed is skipped:
/// its writer is done).
pub async fn read_pins(store: &Arc<dyn ObjectStore>, view: &str) -> Result<Vec<Pin>> {
    let listed: Vec<Path> = store
        .list(Some(&pins_dir(view)))
        .map_ok(|m| m.location)
        .try_filter(|p| futures::future::ready(p.as_ref().ends_with(".json")))
        .try_collect()
        .await?;
    let mut pins = Vec::with_capacity(listed.len());
    for path in listed {
        let Some(bytes) = crate::log::read_if_exists(store, &path).await? else {
            continue;
        };
        pins.push(
            serde_json::from_slice(&bytes).map_err(|e| StrataError::CorruptRecord {
                path: path.to_string(),
                message: e.to_string(),
            })?,
        );
    }
    Ok(pins)
}

async fn delete_if_exists(store: &Arc<dyn ObjectStore>, path: &Path) -> Result<()> {
    match store.delete(path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Remove files of a checkpoint attempt that no record names (a lost
/// race). Best effort: what stays is an orphan.
pub async fn remove_unnamed(store: &Arc<dyn ObjectStore>, paths: &[String]) {
    for p in paths {
        if let Err(e) = delete_if_exists(store, &Path::from(p.as_str())).await {
            tracing::warn!("could not remove {p}: {e}");
        }
    }
}

/// Every file named by a record or a pin of `view`, from a stable look:
/// records listed and all read, pins listed and read, records listed
/// again and unchanged. `None` if the records kept changing.
pub(crate) async fn named_files(
    store: &Arc<dyn ObjectStore>,
    view: &str,
) -> Result<Option<BTreeSet<String>>> {
    'look: for _ in 0..STABLE_LOOK_ATTEMPTS {
        let seqs = list_checkpoints(store, view).await?;
        let mut named = BTreeSet::new();
        for &seq in &seqs {
            match read_checkpoint(store, view, seq).await? {
                Some(r) => named.extend(r.paths().map(str::to_string)),
                None => continue 'look,
            }
        }
        for pin in read_pins(store, view).await? {
            named.extend(pin.files);
        }
        if list_checkpoints(store, view).await? == seqs {
            return Ok(Some(named));
        }
    }
    Ok(None)
}

/// Remove all but the newest `retain` checkpoints of `view` — never the one
/// served: the records first, then, after a stable look at what records
/// and pins name, the files of theirs nothing names (see the module docs).
pub async fn retire_checkpoints(
    store: &Arc<dyn ObjectStore>,
    def: &ViewDef,
    retain: usize,
) -> Result<()> {
    let view = def.name.as_str();
    let (seqs, records) = read_checkpoints(store, view).await?;
    let cut = seqs.len().saturating_sub(retain.max(1));
    if cut == 0 {
        return Ok(());
    }
    let served = best(def, &records, None, None).map(|r| r.seq);
    let retired: Vec<CheckpointRecord> = records
        .into_iter()
        .filter(|r| r.seq < seqs[cut] && Some(r.seq) != served)
        .collect();
    if retired.is_empty() {
        return Ok(());
    }
    // Another replay may be retiring the same ones.
    let records = checkpoint_records(store, view);
    for r in &retired {
        records.retire(r.seq).await?;
    }
    let Some(named) = named_files(store, view).await? else {
        tracing::warn!(
            "view '{view}': checkpoints kept changing; the files of retired ones stay (orphans)"
        );
        return Ok(());
    };
    let mut removed = BTreeSet::new();
    for p in retired.iter().flat_map(|r| r.paths()) {
        if named.contains(p) || !removed.insert(p) {
            continue;
        }
        if let Err(e) = delete_if_exists(store, &Path::from(p)).await {
            tracing::warn!("could not remove {p}: {e}");
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
