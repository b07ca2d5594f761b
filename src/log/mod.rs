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

mod append;
mod convert;
mod ingest;
mod table;
mod writer;

pub use append::{append_batches, append_inputs, AppendOutcome, AppendRequest};
pub use convert::{conform, sql_type_name};
pub use ingest::{read_input, InputFormat, InputSource, ReadOptions};
pub use table::{parquet_scan, LogTable};

use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
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

fn commits_dir(stream: &str) -> Path {
    Path::from(format!("log/{stream}/_commits"))
}

/// Path of commit `n`: zero-padded so listings sort numerically.
pub fn commit_path(stream: &str, n: u64) -> Path {
    Path::from(format!("log/{stream}/_commits/{n:020}.json"))
}

/// Full store path of a file named by a commit.
pub fn file_path(stream: &str, entry: &FileEntry) -> Path {
    Path::from(format!("log/{stream}/{}", entry.path))
}

/// The numbers `N` of the `<N>.json` records directly in `dir`, ascending
/// (commit records, publish records).
pub async fn list_numbered(store: &Arc<dyn ObjectStore>, dir: &Path) -> Result<Vec<u64>> {
    let mut out: Vec<u64> = store
        .list(Some(dir))
        .map_ok(|meta| {
            meta.location
                .filename()
                .and_then(|f| f.strip_suffix(".json"))
                .and_then(|n| n.parse::<u64>().ok())
        })
        .try_filter_map(|n| async move { Ok(n) })
        .try_collect()
        .await?;
    out.sort_unstable();
    Ok(out)
}

/// The bytes at `path`, or `None` if nothing is there (a record not yet
/// written, or retired).
pub async fn read_if_exists(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
) -> Result<Option<bytes::Bytes>> {
    match store.get(path).await {
        Ok(r) => Ok(Some(r.bytes().await?)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
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
        let len = head.map_or(0, |h| (h as usize + 1).min(self.commits.len()));
        Snapshot {
            stream: self.stream.clone(),
            commits: self.commits[..len].into(),
        }
    }

    /// Commits after `after` (all of them when `after` is `None`).
    pub fn commits_after(&self, after: Option<u64>) -> &[CommitRecord] {
        let start = after.map_or(0, |a| (a as usize + 1).min(self.commits.len()));
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
        }
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
        let numbers = list_numbered(&self.store, &commits_dir(&self.stream)).await?;
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

    /// Read commit `n`, or `None` if it does not exist.
    pub async fn read_commit(&self, n: u64) -> Result<Option<CommitRecord>> {
        let Some(bytes) = read_if_exists(&self.store, &commit_path(&self.stream, n)).await? else {
            return Ok(None);
        };
        let record: CommitRecord =
            serde_json::from_slice(&bytes).map_err(|e| StrataError::CorruptLog {
                stream: self.stream.clone(),
                commit: n,
                message: format!("unreadable commit record: {e}"),
            })?;
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
        Ok(Some(record))
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
            let body = Bytes::from(serde_json::to_vec_pretty(&draft)?);
            let opts = PutOptions {
                mode: PutMode::Create,
                ..Default::default()
            };
            match self
                .store
                .put_opts(&commit_path(&self.stream, n), PutPayload::from(body), opts)
                .await
            {
                Ok(_) => {
                    self.commits.push(draft);
                    return Ok(CommitOutcome::Committed(n));
                }
                Err(object_store::Error::AlreadyExists { .. }) => {
                    // A retried request may have landed our own record: the
                    // writer id tells ours from a competitor's.
                    if let Some(existing) = self.read_commit(n).await? {
                        if existing.writer_id == draft.writer_id {
                            self.commits.push(existing);
                            return Ok(CommitOutcome::Committed(n));
                        }
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(StrataError::CommitContention {
            stream: self.stream.clone(),
            attempts: MAX_COMMIT_ATTEMPTS,
        })
    }
}
