//! The log: the system of record. Each stream is a sequence of numbered,
//! immutable commits; each commit names the Parquet files it adds.
//!
//! ```text
//!   append ──► write Parquet files ──► put _commits/N.json (PutMode::Create)
//!                (uuid names, not          │ Ok            → committed as N
//!                 yet visible)             │ AlreadyExists → ours? (writer id) → committed
//!                                          │                 theirs → re-read head, try N+1
//!                                          ▼
//!   read   ◄── commits 0..=N, contiguous ── the files they name, nothing else
//! ```
//!
//! Guarantees, given a store with atomic put-if-absent (the local file
//! system via hard links, S3 via `If-None-Match`):
//! - commit numbers are 0, 1, 2, … with no gap, and two writers never both
//!   own a number;
//! - files are written before the commit that names them, so a reader that
//!   sees commit N can read every file of commits 0..=N; a file that no
//!   commit names (an aborted or killed append) is never read;
//! - nothing committed is rewritten or deleted;
//! - an append with an idempotency key that is already committed commits
//!   nothing (checked again after every lost race, so concurrent retries of
//!   one key also commit once).
//!
//! Commit records are a [`RecordDir`], the numbered put-if-absent record
//! protocol that batch versions and Kappa checkpoints share.
//!
//! Two things keep a long log cheap. **Log checkpoints** ([`checkpoint`])
//! summarize commits `0..=C` in one record, so opening a log reads one
//! checkpoint and the commits after it, and an idempotency key is looked up
//! in an index. **Compaction** ([`compact`]) rewrites the small files of a
//! range of commits into larger ones, as a commit that names the steps it
//! supersedes ([`Step`], [`Snapshot::steps_between`]): every snapshot reads
//! the same rows as before; the superseded files stay until
//! `strata vacuum` removes the ones nothing retained reads.

mod append;
pub mod checkpoint;
pub mod compact;
mod convert;
mod covered;
mod ingest;
pub mod pruning;
pub mod ranges;
mod records;
pub mod schema;
mod snapshot;
mod table;
mod writer;

pub use append::{append_batches, append_inputs, AppendOutcome, AppendRequest};
pub use convert::{conform, sql_type_name};
pub use covered::Covered;
pub use ingest::{read_input, InputFormat, InputSource, ReadOptions};
pub use ranges::ColumnRange;
pub use records::{read_if_exists, Created, RecordDir};
pub use schema::{ColumnRecord, SchemaEpoch};
pub use snapshot::{Snapshot, Step};
pub use table::{parquet_scan, LogTable};

use std::collections::HashMap;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::ObjectStore;
use serde::{Deserialize, Serialize};

use crate::error::{Result, StrataError};

/// Version of the commit record format.
pub const COMMIT_FORMAT: u32 = 1;

/// One Parquet file added by a commit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileEntry {
    /// Path relative to the stream's directory, e.g. `date=2026-11-01/hour=13/<uuid>.parquet`.
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
    /// Smallest event time in the file, microseconds since the epoch (UTC).
    pub min_event_time_us: i64,
    /// Largest event time in the file, microseconds since the epoch (UTC).
    pub max_event_time_us: i64,
    /// SHA-256 of the file's bytes.
    pub sha256: String,
    /// The column the event-time range is of (`None` in files recorded
    /// before files recorded it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_time: Option<String>,
    /// The exact range of each of its other columns that has one
    /// ([`ranges`]; empty in files recorded before files recorded them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ranges: Vec<ColumnRange>,
}

/// The same file with the same recorded facts. `event_time` and `ranges`
/// are left out: a binary from before files recorded them reads and writes
/// records without them (a log checkpoint, a compaction naming the steps it
/// supersedes), and those must still match the records that have it.
impl PartialEq for FileEntry {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path
            && self.rows == other.rows
            && self.bytes == other.bytes
            && self.min_event_time_us == other.min_event_time_us
            && self.max_event_time_us == other.max_event_time_us
            && self.sha256 == other.sha256
    }
}

impl Eq for FileEntry {}

impl FileEntry {
    /// The file's event-time range, if it is of `column` (the stream's
    /// declared event time): a range measured on another column, before
    /// the declaration changed, bounds nothing.
    pub fn event_time_range(&self, column: &str) -> Option<(i64, i64)> {
        self.event_time
            .as_deref()
            .is_none_or(|c| c == column)
            .then_some((self.min_event_time_us, self.max_event_time_us))
    }
}

/// A commit record: `log/<stream>/_commits/<N>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitRecord {
    pub format: u32,
    pub stream: String,
    pub commit: u64,
    pub writer_id: String,
    pub idempotency_key: Option<String>,
    pub schema_fingerprint: String,
    /// The schema the files were written with (`None` in commits written
    /// before commits recorded it: their first file's footer has it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<ColumnRecord>>,
    pub rows: u64,
    pub bytes: u64,
    pub min_event_time_us: Option<i64>,
    pub max_event_time_us: Option<i64>,
    pub files: Vec<FileEntry>,
    /// A compaction: `files` hold exactly the rows of the steps it
    /// supersedes, commits `first..=last`; it adds no rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compacts: Option<Compaction>,
}

/// What a compaction commit rewrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compaction {
    pub first: u64,
    pub last: u64,
    /// The live steps of commits `first..=last` it replaces, as they were.
    pub supersedes: Vec<Step>,
}

/// Store layout of one stream's log.
pub fn stream_dir(stream: &str) -> Path {
    Path::from(format!("log/{stream}"))
}

/// The commit records of `stream`: `log/<stream>/_commits/<N>.json`.
pub fn commit_records(store: &Arc<dyn ObjectStore>, stream: &str) -> RecordDir<CommitRecord> {
    RecordDir::new(store.clone(), Path::from(format!("log/{stream}/_commits")))
}

/// Full store path of a file named by a commit.
pub fn file_path(stream: &str, entry: &FileEntry) -> Path {
    Path::from(format!("log/{stream}/{}", entry.path))
}

/// Outcome of trying to publish a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    /// Committed as this number.
    Committed(u64),
    /// The idempotency key was already committed as this number; nothing written.
    Duplicate(u64),
}

/// A stream's state after a prefix of its commits: what a log checkpoint
/// holds, and what every reader builds by applying commit records in
/// order ([`LogState::apply`]: the one definition of what a commit does).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogState {
    /// Commits applied: `0..next`.
    pub next: u64,
    /// The live steps, ascending by commit: shared with the snapshots
    /// taken of this state (a snapshot costs no copy; a commit applied
    /// while one is held copies once).
    pub steps: Arc<Vec<Step>>,
    /// Idempotency key → its commit.
    pub keys: HashMap<String, u64>,
    /// Where the schema fingerprint changed, in commit order.
    pub schemas: Vec<SchemaEpoch>,
}

impl LogState {
    /// Apply commit record `record`, the commit after the last applied.
    pub fn apply(&mut self, stream: &str, record: &CommitRecord) -> Result<()> {
        let corrupt = |message: String| StrataError::CorruptLog {
            stream: stream.to_string(),
            commit: record.commit,
            message,
        };
        if record.commit != self.next {
            return Err(corrupt(format!(
                "applied after commit {:?}",
                self.next.checked_sub(1)
            )));
        }
        if let Some(key) = &record.idempotency_key {
            self.keys.entry(key.clone()).or_insert(record.commit);
        }
        match &record.compacts {
            Some(c) => {
                let from = self.steps.partition_point(|s| s.commit < c.first);
                let to = self.steps.partition_point(|s| s.commit <= c.last);
                let ends = (c.supersedes.first(), c.supersedes.last());
                let bounded =
                    matches!(ends, (Some(a), Some(b)) if a.first == c.first && b.commit == c.last);
                let live = self.steps.get(from..to);
                if !bounded
                    || c.first > c.last
                    || c.last >= record.commit
                    || live != Some(&c.supersedes[..])
                {
                    return Err(corrupt(format!(
                        "compaction of commits {}..={} does not name the live steps of that range",
                        c.first, c.last
                    )));
                }
                let step = Step {
                    commit: c.last,
                    first: c.first,
                    compaction: Some(record.commit),
                    schema_fingerprint: record.schema_fingerprint.clone(),
                    files: record.files.clone(),
                };
                let rows: u64 = c.supersedes.iter().map(Step::rows).sum();
                if step.rows() != rows {
                    return Err(corrupt(format!(
                        "compaction writes {} rows for the {rows} rows it supersedes",
                        step.rows()
                    )));
                }
                Arc::make_mut(&mut self.steps).splice(from..to, [step]);
            }
            None => {
                if self.schemas.last().map(|e| &e.fingerprint) != Some(&record.schema_fingerprint)
                    && !record.files.is_empty()
                {
                    self.schemas.push(SchemaEpoch::of(record));
                }
                if !record.files.is_empty() {
                    Arc::make_mut(&mut self.steps).push(Step {
                        commit: record.commit,
                        first: record.commit,
                        compaction: None,
                        schema_fingerprint: record.schema_fingerprint.clone(),
                        files: record.files.clone(),
                    });
                }
            }
        }
        self.next = record.commit + 1;
        Ok(())
    }

    /// The state a checkpoint records (`None`: its steps are not the
    /// ascending, disjoint ranges of commits `0..=C` every state has).
    pub fn from_checkpoint(c: checkpoint::LogCheckpoint) -> Option<Self> {
        let mut after = 0;
        for s in &c.steps {
            if s.first < after || s.first > s.commit || s.commit > c.commit {
                return None;
            }
            after = s.commit + 1;
        }
        Some(Self {
            next: c.commit + 1,
            steps: Arc::new(c.steps),
            keys: c.keys.into_iter().collect(),
            schemas: c.schemas,
        })
    }

    /// This state as the checkpoint of its last commit (`None`: no commit).
    pub fn checkpoint(&self, stream: &str) -> Option<checkpoint::LogCheckpoint> {
        Some(checkpoint::LogCheckpoint {
            format: checkpoint::LOG_CHECKPOINT_FORMAT,
            stream: stream.to_string(),
            commit: self.next.checked_sub(1)?,
            steps: self.steps.to_vec(),
            keys: self.keys.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            schemas: self.schemas.clone(),
        })
    }
}

/// A handle on one stream's log with the state read so far. Commits are
/// immutable, so the state only ever moves forward.
#[derive(Debug, Clone)]
pub struct StreamLog {
    store: Arc<dyn ObjectStore>,
    stream: String,
    state: LogState,
    loaded: bool,
    /// The newest log checkpoint known (written or read).
    checkpointed: Option<u64>,
    /// Write a log checkpoint after a commit once this many commits
    /// landed since the last one (0: never).
    checkpoint_interval: u64,
    /// Compact after an append once this many small files are live (0:
    /// never), into files of about `target_file_bytes`.
    auto_compact_files: u64,
    target_file_bytes: u64,
    /// The declared schema every commit read is checked against.
    schema: Option<schema::SchemaCheck>,
}

/// Commit records read at once when probing past a log checkpoint.
const PROBE_WINDOW: u64 = 8;

/// How many times a writer re-reads the head after losing the race for a
/// commit number before giving up. Every lost race means another writer made
/// progress, so this only bounds starvation.
const MAX_COMMIT_ATTEMPTS: u32 = 10_000;

impl StreamLog {
    pub fn new(store: Arc<dyn ObjectStore>, stream: impl Into<String>) -> Self {
        Self {
            store,
            stream: stream.into(),
            state: LogState::default(),
            loaded: false,
            checkpointed: None,
            checkpoint_interval: 0,
            auto_compact_files: 0,
            target_file_bytes: crate::config::LogConfig::default().target_file_bytes,
            schema: None,
        }
    }

    /// Checkpoint and compact as `config` says (a bare `new` does
    /// neither).
    pub fn with_config(mut self, config: &crate::config::LogConfig) -> Self {
        self.checkpoint_interval = config.checkpoint_interval;
        self.auto_compact_files = config.auto_compact_files;
        self.target_file_bytes = config.target_file_bytes;
        self
    }

    /// After an append of `def`'s stream: compact if `auto_compact_files`
    /// small files are live. The append stands either way: a compaction
    /// that fails (or loses to another) is a warning.
    pub async fn auto_compact(&mut self, def: &crate::catalog::StreamDef) {
        let (every, target) = (self.auto_compact_files, self.target_file_bytes);
        if every == 0 {
            return;
        }
        // What `compact` would take: small steps of the declared schema.
        let declared = def.schema_fingerprint();
        let small = self
            .state
            .steps
            .iter()
            .filter(|s| s.bytes() < target / 2 && s.schema_fingerprint == declared)
            .count();
        if (small as u64) < every {
            return;
        }
        if let Err(e) = compact::compact(self, def, target, &|_| {}).await {
            tracing::warn!("log {}: automatic compaction: {e}", self.stream);
        }
    }

    /// Check every commit read against `def`'s declared schema: a refresh
    /// refuses a log with a commit it cannot read (invariant 8).
    pub fn declare(&mut self, def: &crate::catalog::StreamDef) {
        let declared = def.schema_fingerprint();
        if self.schema.as_ref().map(|c| c.declared()) != Some(declared.as_str()) {
            self.schema = Some(schema::SchemaCheck::new(def));
        }
    }

    /// Why a refresh refused this log, if one did.
    pub fn refusal(&self) -> Option<&schema::Refusal> {
        self.schema.as_ref()?.refusal()
    }

    pub fn stream(&self) -> &str {
        &self.stream
    }

    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The state read so far (call `refresh` first).
    pub fn state(&self) -> &LogState {
        &self.state
    }

    /// The newest log checkpoint this handle read or wrote.
    pub fn checkpointed(&self) -> Option<u64> {
        self.checkpointed
    }

    /// Read any commits published since the last call and return the head snapshot.
    pub async fn refresh(&mut self) -> Result<Snapshot> {
        self.catch_up().await?;
        Ok(self.snapshot())
    }

    /// Read any commits published since the last call (the state only: a
    /// writer needs no snapshot).
    pub async fn catch_up(&mut self) -> Result<()> {
        if !self.loaded {
            self.initial_load().await?;
            self.loaded = true;
        }
        // Probe forward: commit N+1 exists only if N does, so the first
        // missing number is the head + 1.
        while let Some(record) = self.read_commit(self.state.next).await? {
            self.state.apply(&self.stream, &record)?;
        }
        if let Some(check) = &mut self.schema {
            check.verify(&self.store, &self.state.schemas).await?;
        }
        Ok(())
    }

    /// The snapshot of what has been read so far (call `refresh` first).
    pub fn snapshot(&self) -> Snapshot {
        Snapshot::new(
            self.store.clone(),
            self.stream.clone(),
            self.state.next.checked_sub(1),
            self.state.steps.clone(),
        )
    }

    /// Start from the newest log checkpoint and read the commits after it
    /// (a few: a writer checkpoints every `checkpoint_interval` commits),
    /// fetched [`PROBE_WINDOW`] at a time; without a checkpoint, list the
    /// commit directory once (which also finds a gap) and fetch every
    /// record concurrently. Later refreshes only probe forward.
    async fn initial_load(&mut self) -> Result<()> {
        if let Some((commit, state)) = checkpoint::newest(&self.store, &self.stream).await? {
            self.checkpointed = Some(commit);
            self.state = state;
            return self.probe_forward().await;
        }
        let numbers = self.records().list().await?;
        for (i, &n) in numbers.iter().enumerate() {
            if n != i as u64 {
                return Err(StrataError::CorruptLog {
                    stream: self.stream.clone(),
                    commit: i as u64,
                    message: format!("commit {i} is missing but commit {n} exists"),
                });
            }
        }
        let records: Vec<Option<CommitRecord>> = futures::stream::iter(numbers)
            .map(|n| self.read_commit(n))
            .buffered(16)
            .try_collect()
            .await?;
        // Into a fresh state, kept only whole: a load that fails part way
        // is retried from the start.
        let mut state = LogState::default();
        for record in records {
            let record = record.ok_or_else(|| StrataError::CorruptLog {
                stream: self.stream.clone(),
                commit: state.next,
                message: "listed, but cannot be read".into(),
            })?;
            state.apply(&self.stream, &record)?;
        }
        self.state = state;
        Ok(())
    }

    /// Read the commits after the state, a window of concurrent GETs at a
    /// time, up to the first that is not there. (A listing would cost the
    /// whole directory on stores that cannot start a listing at a key.)
    async fn probe_forward(&mut self) -> Result<()> {
        loop {
            let from = self.state.next;
            let window: Vec<Option<CommitRecord>> =
                futures::stream::iter(from..from + PROBE_WINDOW)
                    .map(|n| self.read_commit(n))
                    .buffered(PROBE_WINDOW as usize)
                    .try_collect()
                    .await?;
            for record in window {
                let Some(record) = record else {
                    return Ok(());
                };
                self.state.apply(&self.stream, &record)?;
            }
        }
    }

    fn records(&self) -> RecordDir<CommitRecord> {
        commit_records(&self.store, &self.stream)
    }

    /// Read commit `n`, or `None` if it does not exist.
    pub async fn read_commit(&self, n: u64) -> Result<Option<CommitRecord>> {
        match self.records().read(n).await? {
            Some(record) => self.claimed(n, record).map(Some),
            None => Ok(None),
        }
    }

    /// `record`, read as commit `n`, if it claims to be that commit.
    fn claimed(&self, n: u64, record: CommitRecord) -> Result<CommitRecord> {
        if record.commit != n || record.stream != self.stream {
            return Err(StrataError::CorruptLog {
                stream: self.stream.clone(),
                commit: n,
                message: format!(
                    "record claims to be commit {} of stream '{}'",
                    record.commit, record.stream
                ),
            });
        }
        Ok(record)
    }

    /// The commit that holds `key`, if any, among the commits read.
    pub fn find_key(&self, key: &str) -> Option<u64> {
        self.state.keys.get(key).copied()
    }

    /// The commit that holds `key`, if any (after a refresh).
    pub async fn committed_key(&mut self, key: &str) -> Result<Option<u64>> {
        self.catch_up().await?;
        Ok(self.find_key(key))
    }

    /// Publish `draft` as the next commit. `draft.commit` is overwritten
    /// with the number won. A compaction is published only while the
    /// steps it supersedes are still live (else
    /// [`StrataError::CompactionConflict`]).
    pub async fn commit(&mut self, mut draft: CommitRecord) -> Result<CommitOutcome> {
        for _ in 0..MAX_COMMIT_ATTEMPTS {
            self.catch_up().await?;
            if let Some(key) = &draft.idempotency_key {
                if let Some(n) = self.find_key(key) {
                    return Ok(CommitOutcome::Duplicate(n));
                }
            }
            if let Some(c) = &draft.compacts {
                let live = &self.state.steps;
                let from = live.partition_point(|s| s.commit < c.first);
                let to = live.partition_point(|s| s.commit <= c.last);
                if live[from..to] != c.supersedes[..] {
                    return Err(StrataError::CompactionConflict {
                        stream: self.stream.clone(),
                        first: c.first,
                        last: c.last,
                    });
                }
            }
            let n = self.state.next;
            draft.commit = n;
            match self.records().create(n, &draft).await? {
                Created::Created => {
                    self.state.apply(&self.stream, &draft)?;
                    self.checkpoint_if_due().await;
                    return Ok(CommitOutcome::Committed(n));
                }
                // A retried request may have landed our own record: the
                // writer id tells ours from a competitor's.
                Created::Exists(Some(existing)) => {
                    let existing = self.claimed(n, existing)?;
                    if existing.writer_id == draft.writer_id {
                        self.state.apply(&self.stream, &existing)?;
                        self.checkpoint_if_due().await;
                        return Ok(CommitOutcome::Committed(n));
                    }
                }
                Created::Exists(None) => {}
            }
        }
        Err(StrataError::CommitContention {
            stream: self.stream.clone(),
            attempts: MAX_COMMIT_ATTEMPTS,
        })
    }

    /// After a commit: write a log checkpoint if `checkpoint_interval`
    /// commits landed since the last one. The commit stands either way: a
    /// checkpoint that fails to write is a warning (readers read more
    /// commits), not an error.
    async fn checkpoint_if_due(&mut self) {
        let every = self.checkpoint_interval;
        let since = self.state.next - self.checkpointed.map_or(0, |c| c + 1);
        if every == 0 || since < every {
            return;
        }
        if let Err(e) = self.write_checkpoint().await {
            tracing::warn!("log {}: writing a log checkpoint failed: {e}", self.stream);
        }
    }

    /// Write a log checkpoint of everything read so far (catch up first);
    /// `None` for an empty log.
    pub async fn write_checkpoint(&mut self) -> Result<Option<u64>> {
        let Some(c) = self.state.checkpoint(&self.stream) else {
            return Ok(None);
        };
        checkpoint::write(&self.store, &c).await?;
        self.checkpointed = Some(c.commit);
        Ok(Some(c.commit))
    }
}

#[cfg(test)]
mod tests {
    use super::FileEntry;

    /// A record written before files recorded their event-time column
    /// names the same file; its range is taken to be of the declared one.
    #[test]
    fn a_file_entry_without_its_event_time_column_is_the_same_file() {
        let old = r#"{"path":"p","rows":1,"bytes":2,"min_event_time_us":3,"max_event_time_us":4,"sha256":"x"}"#;
        let old: FileEntry = serde_json::from_str(old).unwrap();
        let new = FileEntry {
            event_time: Some("ts".into()),
            ranges: vec![super::ColumnRange {
                column: "id".into(),
                min: "1".into(),
                max: "2".into(),
            }],
            ..old.clone()
        };
        assert_eq!(new, old);
        assert_ne!(
            FileEntry {
                sha256: "y".into(),
                ..old.clone()
            },
            old
        );
        assert_eq!(new.event_time_range("ts"), Some((3, 4)));
        assert_eq!(new.event_time_range("t2"), None);
        assert_eq!(old.event_time_range("t2"), Some((3, 4)));
        assert!(!serde_json::to_string(&old)
            .unwrap()
            .contains("event_time\""));
        assert!(!serde_json::to_string(&old).unwrap().contains("ranges"));
        let back: FileEntry = serde_json::from_str(&serde_json::to_string(&new).unwrap()).unwrap();
        assert_eq!(back.ranges, new.ranges);
    }
}
