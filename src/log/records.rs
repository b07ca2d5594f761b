//! Numbered records: the one protocol under log commits, batch versions and
//! Kappa checkpoints. A [`RecordDir`] is a directory of JSON records named
//! by number; a record is created with put-if-absent, after the files it
//! names, and is never rewritten.
//!
//! ```text
//!   <dir>/00000000000000000000.json     zero-padded: a listing sorts by number
//!   <dir>/00000000000000000001.json
//!   …
//!   write the files the record names ──► create(n): put <dir>/<n>.json (PutMode::Create)
//!                                            │ Ok            → Created: n is ours
//!                                            │ AlreadyExists → Exists(the record there):
//!                                            │                 ours (a retried put landed) or
//!                                            │                 another writer's (take another n)
//!                                            ▼
//!   readers: list() and read(n) — a record names every file it stands for
//! ```
//!
//! Guarantees, given a store with atomic put-if-absent (the local file
//! system via hard links, S3 via `If-None-Match`; `strata` refuses to write
//! to a store without it):
//! - **atomic visibility**: a record is seen whole or not at all;
//! - **mutual exclusion**: of two writers creating number `n`, exactly one
//!   gets [`Created::Created`]; the other gets [`Created::Exists`] with the
//!   record that won, so it can tell a retry of its own put from a rival;
//! - **files first**: callers create a record only after writing every
//!   file it names, so a reader that sees a record can read its files, and
//!   a file no record names (a lost race, a killed writer) is never read;
//! - **no rewrite**: a record is never changed. [`RecordDir::retire`]
//!   removes one — record first, its files after, by the caller — for
//!   versions and checkpoints; log commits are never retired.
//!
//! Not guaranteed here: that numbers are contiguous (the log makes them so
//! by creating only `head + 1`), or that a listing is atomic with
//! creations (a record listed may be retired before it is read: `read`
//! then returns `None`).

use std::marker::PhantomData;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Result, StrataError};

/// What [`RecordDir::create`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created<T> {
    /// The record was written: the number is ours.
    Created,
    /// A record already held the number: this one (`None`: it was retired
    /// before it could be read). It may be our own, from a retried put.
    Exists(Option<T>),
}

/// A directory of numbered JSON records `T`, written put-if-absent.
#[derive(Debug, Clone)]
pub struct RecordDir<T> {
    store: Arc<dyn ObjectStore>,
    dir: Path,
    record: PhantomData<fn() -> T>,
}

impl<T: Serialize + DeserializeOwned> RecordDir<T> {
    /// The records directly in `dir`.
    pub fn new(store: Arc<dyn ObjectStore>, dir: Path) -> Self {
        Self {
            store,
            dir,
            record: PhantomData,
        }
    }

    /// Where record `n` is.
    pub fn path(&self, n: u64) -> Path {
        self.dir.clone().join(format!("{n:020}.json"))
    }

    /// The numbers of the records, ascending.
    pub async fn list(&self) -> Result<Vec<u64>> {
        list_numbered(&self.store, &self.dir).await
    }

    /// Record `n`, or `None` if there is none (not yet written, or
    /// retired). A record that does not parse is a
    /// [`StrataError::CorruptRecord`].
    pub async fn read(&self, n: u64) -> Result<Option<T>> {
        let path = self.path(n);
        let Some(bytes) = read_if_exists(&self.store, &path).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StrataError::CorruptRecord {
                path: path.to_string(),
                message: e.to_string(),
            })
    }

    /// Create record `n` if no record holds the number (write the files it
    /// names first).
    pub async fn create(&self, n: u64, record: &T) -> Result<Created<T>> {
        let body = Bytes::from(serde_json::to_vec_pretty(record)?);
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .store
            .put_opts(&self.path(n), PutPayload::from(body), opts)
            .await
        {
            Ok(_) => Ok(Created::Created),
            Err(object_store::Error::AlreadyExists { .. }) => {
                Ok(Created::Exists(self.read(n).await?))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Remove record `n` (its files are the caller's to remove, after).
    /// A record already gone is fine: another retirer got there first.
    pub async fn retire(&self, n: u64) -> Result<()> {
        match self.store.delete(&self.path(n)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// The numbers `N` of the `<N>.json` objects directly in `dir`, ascending.
async fn list_numbered(store: &Arc<dyn ObjectStore>, dir: &Path) -> Result<Vec<u64>> {
    let mut out: Vec<u64> = store
        .list(Some(dir))
        .map_ok(|meta| record_number(&meta.location))
        .try_filter_map(|n| async move { Ok(n) })
        .try_collect()
        .await?;
    out.sort_unstable();
    Ok(out)
}

/// `N` for a path ending in `<N>.json`.
fn record_number(path: &Path) -> Option<u64> {
    path.filename()
        .and_then(|f| f.strip_suffix(".json"))
        .and_then(|n| n.parse::<u64>().ok())
}

/// The bytes at `path`, or `None` if nothing is there (a record not yet
/// written, or retired).
pub async fn read_if_exists(store: &Arc<dyn ObjectStore>, path: &Path) -> Result<Option<Bytes>> {
    match store.get(path).await {
        Ok(r) => Ok(Some(r.bytes().await?)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
