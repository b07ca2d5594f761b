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

mod append;
mod convert;
mod covered;
mod ingest;
mod records;
pub mod schema;
mod table;
mod writer;

pub use append::{append_batches, append_inputs, AppendOutcome, AppendRequest};
pub use convert::{conform, sql_type_name};
pub use covered::Covered;
pub use ingest::{read_input, InputFormat, InputSource, ReadOptions};
pub use records::{read_if_exists, Created, RecordDir};
pub use schema::ColumnRecord;
pub use table::{parquet_scan, LogTable};

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::ObjectStore;
use serde::{Deserialize, Serialize};

use crate::error::{Result, StrataError};

/// Version of the commit record format.
pub const COMMIT_FORMAT: u32 = 1;

/// One Parquet file added by a commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

/// A pinned, immutable view of a stream: exactly commits `0..=head`.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub stream: String,
    commits: Arc<[CommitRecord]>,
}

impl Snapshot {
    /// The last commit in the snapshot, if any.
    pub fn head(&self) -> Option<u64> {
        self.commits.last().map(|c| c.commit)
    }

    pub fn commits(&self) -> &[CommitRecord] {
        &self.commits
    }

    /// Every file named by the snapshot's commits, in commit order.
    pub fn files(&self) -> impl Iterator<Item = &FileEntry> {
        self.commits.iter().flat_map(|c| c.files.iter())
    }

    /// The same stream pinned at an earlier commit (`None`: empty).
    pub fn at(&self, head: Option<u64>) -> Snapshot {
        let len = (Covered::through(head).count() as usize).min(self.commits.len());
        Snapshot {
            stream: self.stream.clone(),
            commits: self.commits[..len].into(),
        }
    }

    /// Commits after `after` (all of them when `after` is `None`).
    pub fn commits_after(&self, after: Option<u64>) -> &[CommitRecord] {
        let start = (Covered::through(after).count() as usize).min(self.commits.len());
        &self.commits[start..]
    }
}

/// Outcome of trying to publish a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    /// Committed as this number.
    Committed(u64),
    /// The idempotency key was already committed as this number; nothing written.
    Duplicate(u64),
}

/// A handle on one stream's log with a cache of the commits read so far.
/// Commits are immutable, so the cache is only ever extended.
#[derive(Debug, Clone)]
pub struct StreamLog {
    store: Arc<dyn ObjectStore>,
    stream: String,
    commits: Vec<CommitRecord>,
    loaded: bool,
    /// The declared schema every commit read is checked against.
    schema: Option<schema::SchemaCheck>,
}

/// How many times a writer re-reads the head after losing the race for a
/// commit number before giving up. Every lost race means another writer made
/// progress, so this only bounds starvation.
const MAX_COMMIT_ATTEMPTS: u32 = 10_000;

impl StreamLog {
    pub fn new(store: Arc<dyn ObjectStore>, stream: impl Into<String>) -> Self {
        Self {
            store,
            stream: stream.into(),
            commits: Vec::new(),
            loaded: false,
            schema: None,
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

    /// Read any commits published since the last call and return the head snapshot.
    pub async fn refresh(&mut self) -> Result<Snapshot> {
        if !self.loaded {
            self.initial_load().await?;
            self.loaded = true;
        }
        // Probe forward: commit N+1 exists only if N does, so the first
        // missing number is the head + 1.
        while let Some(record) = self.read_commit(self.commits.len() as u64).await? {
            self.commits.push(record);
        }
        if let Some(check) = &mut self.schema {
            check.verify(&self.store, &self.commits).await?;
        }
        Ok(self.snapshot())
    }

    /// The snapshot of what has been read so far (call `refresh` first).
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            stream: self.stream.clone(),
            commits: self.commits.clone().into(),
        }
    }

    /// List the commit directory once and fetch every record concurrently;
    /// later refreshes only probe forward.
    async fn initial_load(&mut self) -> Result<()> {
        let numbers = self.records().list().await?;
        for (expected, &n) in numbers.iter().enumerate() {
            if n != expected as u64 {
                return Err(StrataError::CorruptLog {
                    stream: self.stream.clone(),
                    commit: expected as u64,
                    message: format!("commit {expected} is missing but commit {n} exists"),
                });
            }
        }
        let records: Vec<Option<CommitRecord>> = futures::stream::iter(numbers)
            .map(|n| self.read_commit(n))
            .buffered(16)
            .try_collect()
            .await?;
        let mut commits = Vec::with_capacity(records.len());
        for (n, record) in records.into_iter().enumerate() {
            commits.push(record.ok_or_else(|| StrataError::CorruptLog {
                stream: self.stream.clone(),
                commit: n as u64,
                message: "listed, but cannot be read".into(),
            })?);
        }
        self.commits = commits;
        Ok(())
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

    fn find_key(&self, key: &str) -> Option<u64> {
        self.commits
            .iter()
            .find(|c| c.idempotency_key.as_deref() == Some(key))
            .map(|c| c.commit)
    }

    /// The commit that holds `key`, if any (after a refresh).
    pub async fn committed_key(&mut self, key: &str) -> Result<Option<u64>> {
        self.refresh().await?;
        Ok(self.find_key(key))
    }

    /// Publish `draft` as the next commit. `draft.commit` is overwritten
    /// with the number won.
    pub async fn commit(&mut self, mut draft: CommitRecord) -> Result<CommitOutcome> {
        for _ in 0..MAX_COMMIT_ATTEMPTS {
            self.refresh().await?;
            if let Some(key) = &draft.idempotency_key {
                if let Some(n) = self.find_key(key) {
                    return Ok(CommitOutcome::Duplicate(n));
                }
            }
            let n = self.commits.len() as u64;
            draft.commit = n;
            match self.records().create(n, &draft).await? {
                Created::Created => {
                    self.commits.push(draft);
                    return Ok(CommitOutcome::Committed(n));
                }
                // A retried request may have landed our own record: the
                // writer id tells ours from a competitor's.
                Created::Exists(Some(existing)) => {
                    let existing = self.claimed(n, existing)?;
                    if existing.writer_id == draft.writer_id {
                        self.commits.push(existing);
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
}
