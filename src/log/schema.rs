//! Schema evolution (invariant 8): a stream with commits may only gain
//! nullable columns. Older commits then read them as NULL in every layer;
//! any other change — a column dropped, renamed, retyped, made NOT NULL (or
//! nullable), a NOT NULL column added — is refused when the stream's log is
//! first read, naming the column and the first commit whose schema differs.
//!
//! ```text
//!   commit's schema_fingerprint == declared's ──► fine (the common case: no I/O)
//!            │ otherwise, once per distinct fingerprint
//!            ▼
//!   the commit's schema: its recorded `columns`, or (older commits) the
//!   Parquet footer of its first file
//!            │ fingerprint of that schema != recorded ──► corrupt commit record
//!            ▼
//!   declared == that schema + nullable columns? ──► fine : refused
//! ```
//!
//! The one check is shared: `StreamLog::refresh` runs it on every commit it
//! reads, `strata check` on every commit it checks.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;
use std::sync::Arc;

use arrow::datatypes::{DataType, Schema, SchemaRef, TimeUnit};
use datafusion::prelude::SessionContext;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::parquet_to_arrow_schema;
use parquet::errors::ParquetError;
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaDataReader};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{file_path, sql_type_name, CommitRecord, FileEntry, Snapshot, StreamLog};
use crate::catalog::{Catalog, StreamDef};
use crate::error::{Result, StrataError};
use crate::serving::FailedTable;

/// One column of the schema a commit's files were written with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnRecord {
    pub name: String,
    /// The Arrow type as Arrow prints it (what the fingerprint hashes),
    /// e.g. `Decimal128(12, 2)`.
    #[serde(rename = "type")]
    pub data_type: String,
    pub nullable: bool,
}

/// The columns of `schema`, as a commit records them.
pub fn columns_of(schema: &Schema) -> Vec<ColumnRecord> {
    schema
        .fields()
        .iter()
        .map(|f| ColumnRecord {
            name: f.name().clone(),
            data_type: f.data_type().to_string(),
            nullable: f.is_nullable(),
        })
        .collect()
}

/// The schema fingerprint of `columns` (names, types, nullability, in
/// order): what a commit records as `schema_fingerprint`.
pub fn fingerprint(columns: &[ColumnRecord]) -> String {
    let mut h = Sha256::new();
    for c in columns {
        h.update(format!("{}:{}:{};", c.name, c.data_type, c.nullable));
    }
    hex::encode(&h.finalize()[..8])
}

/// Why a commit cannot be read under the declared schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A change other than an added nullable column, since `commit`.
    Changed {
        column: String,
        change: String,
        commit: u64,
    },
    /// The recorded fingerprint is not that of the schema the commit was
    /// written with: the record was altered.
    Fingerprint { commit: u64, message: String },
}

impl Refusal {
    /// The error of `stream`'s log refused for this.
    pub fn error(&self, stream: &str) -> StrataError {
        match self {
            Refusal::Changed {
                column,
                change,
                commit,
            } => StrataError::SchemaChanged {
                stream: stream.to_string(),
                column: column.clone(),
                change: change.clone(),
                commit: *commit,
            },
            Refusal::Fingerprint { commit, message } => StrataError::CorruptLog {
                stream: stream.to_string(),
                commit: *commit,
                message: message.clone(),
            },
        }
    }

    /// The reason, without the stream (for `strata check`'s lines).
    pub fn reason(&self) -> String {
        match self {
            Refusal::Changed { column, change, .. } => format!("column '{column}' {change}"),
            Refusal::Fingerprint { message, .. } => message.clone(),
        }
    }
}

/// The first change from `older` to `declared` other than an added
/// nullable column: the column and what happened to it. Columns are matched
/// by name (order does not matter: files are read by name).
pub fn first_change(declared: &Schema, older: &[ColumnRecord]) -> Option<(String, String)> {
    let old_names: BTreeSet<&str> = older.iter().map(|c| c.name.as_str()).collect();
    let added: Vec<_> = declared
        .fields()
        .iter()
        .filter(|d| !old_names.contains(d.name().as_str()))
        .collect();
    for o in older {
        let Ok(d) = declared.field_with_name(&o.name) else {
            // A new column of the same type may be its new name.
            let change = match added
                .iter()
                .find(|d| d.data_type().to_string() == o.data_type)
            {
                Some(d) => format!("was renamed to '{}' or dropped", d.name()),
                None => "was dropped".to_string(),
            };
            return Some((o.name.clone(), change));
        };
        let now = d.data_type().to_string();
        if now != o.data_type && !same_instants(&o.data_type, d.data_type()) {
            let (was, is) = match (sql_name(&o.data_type), sql_type_name(d.data_type())) {
                (was, is) if was == is => (o.data_type.clone(), now),
                names => names,
            };
            return Some((o.name.clone(), format!("changed type from {was} to {is}")));
        }
        match (o.nullable, d.is_nullable()) {
            (true, false) => return Some((o.name.clone(), "became NOT NULL".into())),
            (false, true) => {
                return Some((o.name.clone(), "was NOT NULL and became nullable".into()))
            }
            _ => {}
        }
    }
    added.iter().find(|d| !d.is_nullable()).map(|d| {
        (
            d.name().clone(),
            "was added NOT NULL (older commits have no value for it)".into(),
        )
    })
}

/// Whether a column written as `older` (as Arrow prints it) reads as the
/// same values under `declared`: microsecond timestamps, with or without a
/// zone label. Arrow keeps zoned timestamps as UTC instants and strata's
/// `TIMESTAMP` is naive UTC, so the values are the same; scans cast.
pub fn same_instants(older: &str, declared: &DataType) -> bool {
    matches!(
        (DataType::from_str(older), declared),
        (
            Ok(DataType::Timestamp(TimeUnit::Microsecond, Some(tz))),
            DataType::Timestamp(TimeUnit::Microsecond, None),
        ) if tz.as_ref() == "UTC" || tz.as_ref() == "+00:00"
    )
}

/// The SQL name of an Arrow type as Arrow prints it.
fn sql_name(arrow_type: &str) -> String {
    DataType::from_str(arrow_type).map_or_else(|_| arrow_type.to_string(), |t| sql_type_name(&t))
}

/// Where a stream's schema fingerprint changed: the first commit written
/// with `fingerprint`, and what tells its schema (what a log checkpoint
/// keeps of its commits' schemas).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaEpoch {
    pub first: u64,
    pub fingerprint: String,
    /// The columns the commit records (`None` before commits recorded
    /// them: `probe`'s footer has them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<ColumnRecord>>,
    /// The commit's first file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<FileEntry>,
}

impl SchemaEpoch {
    /// The schema of `record`'s files, as an epoch starting at it.
    pub fn of(record: &CommitRecord) -> Self {
        Self {
            first: record.commit,
            fingerprint: record.schema_fingerprint.clone(),
            columns: record.columns.clone(),
            probe: record.files.first().cloned(),
        }
    }
}

/// The schema `epoch`'s files were written with: the columns its commit
/// records, or for a commit from before commits recorded them, the Parquet
/// footer of its first file. `None` for a commit without files (it reads
/// as nothing).
pub async fn epoch_columns(
    store: &Arc<dyn ObjectStore>,
    stream: &str,
    epoch: &SchemaEpoch,
) -> Result<Option<Vec<ColumnRecord>>> {
    if let Some(columns) = &epoch.columns {
        return Ok(Some(columns.clone()));
    }
    let Some(first) = &epoch.probe else {
        return Ok(None);
    };
    let path = file_path(stream, first);
    let schema = footer_schema(store, &path, first.bytes)
        .await
        .map_err(|e| StrataError::CorruptLog {
            stream: stream.to_string(),
            commit: epoch.first,
            message: format!("cannot read the schema of its file {path}: {e}"),
        })?;
    Ok(Some(columns_of(&schema)))
}

/// The Arrow schema a Parquet file of `size` bytes was written with, from
/// its footer alone (one range read from the end of the file, two if the
/// footer is large).
async fn footer_schema(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    size: u64,
) -> std::result::Result<Schema, String> {
    let mut want = size.min(64 * 1024);
    loop {
        let tail = store
            .get_range(path, size - want..size)
            .await
            .map_err(|e| e.to_string())?;
        let mut reader = ParquetMetaDataReader::new().with_page_index_policy(PageIndexPolicy::Skip);
        match reader.try_parse_sized(&tail, size) {
            Ok(()) => {
                let meta = reader.finish().map_err(|e| e.to_string())?;
                let file = meta.file_metadata();
                return parquet_to_arrow_schema(file.schema_descr(), file.key_value_metadata())
                    .map_err(|e| e.to_string());
            }
            Err(ParquetError::NeedMoreData(n)) if n as u64 > want && n as u64 <= size => {
                want = n as u64
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Whether `record` can be read under `def`'s declared schema (whose
/// fingerprint is `declared`): `None` if it can — its fingerprint is the
/// declared one, or that of the schema it was written with, which the
/// declared one only extends with nullable columns — else why not.
pub async fn check_commit(
    store: &Arc<dyn ObjectStore>,
    def: &StreamDef,
    declared: &str,
    record: &CommitRecord,
) -> Result<Option<Refusal>> {
    check_epoch(store, def, declared, &SchemaEpoch::of(record)).await
}

/// [`check_commit`] for the commits of one schema epoch.
pub async fn check_epoch(
    store: &Arc<dyn ObjectStore>,
    def: &StreamDef,
    declared: &str,
    epoch: &SchemaEpoch,
) -> Result<Option<Refusal>> {
    if epoch.fingerprint == declared {
        return Ok(None);
    }
    let Some(columns) = epoch_columns(store, &def.name, epoch).await? else {
        return Ok(None);
    };
    let actual = fingerprint(&columns);
    if actual != epoch.fingerprint {
        let from = match epoch.columns {
            Some(_) => "the schema it records",
            None => "its files' schema",
        };
        return Ok(Some(Refusal::Fingerprint {
            commit: epoch.first,
            message: format!(
                "it records schema fingerprint {}, but {from} has fingerprint {actual}",
                epoch.fingerprint
            ),
        }));
    }
    Ok(
        first_change(&def.schema, &columns).map(|(column, change)| Refusal::Changed {
            column,
            change,
            commit: epoch.first,
        }),
    )
}

/// A stream log's schema check: the declared schema, the fingerprints
/// already accepted, how far the log is checked, and the refusal once one
/// commit was refused (commits are immutable: it stands).
#[derive(Debug, Clone)]
pub struct SchemaCheck {
    def: StreamDef,
    declared: String,
    accepted: BTreeSet<String>,
    checked: usize,
    refused: Option<Refusal>,
}

impl SchemaCheck {
    pub fn new(def: &StreamDef) -> Self {
        let declared = def.schema_fingerprint();
        Self {
            def: def.clone(),
            accepted: BTreeSet::from([declared.clone()]),
            declared,
            checked: 0,
            refused: None,
        }
    }

    /// The fingerprint of the declared schema.
    pub fn declared(&self) -> &str {
        &self.declared
    }

    /// Why the log is refused, if a commit was.
    pub fn refusal(&self) -> Option<&Refusal> {
        self.refused.as_ref()
    }

    /// Check `epochs` (the schema history of the whole log read so far)
    /// from where the last call stopped: only fingerprints not yet
    /// accepted cost any I/O.
    pub async fn verify(
        &mut self,
        store: &Arc<dyn ObjectStore>,
        epochs: &[SchemaEpoch],
    ) -> Result<()> {
        if let Some(r) = &self.refused {
            return Err(r.error(&self.def.name));
        }
        for epoch in epochs.get(self.checked..).unwrap_or_default() {
            if !self.accepted.contains(&epoch.fingerprint) {
                match check_epoch(store, &self.def, &self.declared, epoch).await? {
                    None => {
                        self.accepted.insert(epoch.fingerprint.clone());
                    }
                    Some(refusal) => {
                        let e = refusal.error(&self.def.name);
                        self.refused = Some(refusal);
                        return Err(e);
                    }
                }
            }
            self.checked += 1;
        }
        Ok(())
    }
}

/// `snapshots[stream]`, or the error `stream`'s log was refused with (a
/// stream whose log is refused is left out of the snapshots: it fails
/// alone, wherever it is read).
pub fn pinned<'a>(
    snapshots: &'a BTreeMap<String, Snapshot>,
    logs: &BTreeMap<String, StreamLog>,
    stream: &str,
) -> Result<&'a Snapshot> {
    snapshots
        .get(stream)
        .ok_or_else(|| match logs.get(stream).and_then(StreamLog::refusal) {
            Some(r) => r.error(stream),
            None => StrataError::Usage(format!("stream '{stream}' was not read")),
        })
}

/// In `ctx`, a table that fails with its refusal for each stream of
/// `catalog` whose log is refused (left out of `snapshots`) and, with
/// `views`, for each materialized view of such a stream: queries that read
/// them fail with the reason; the others run.
pub fn register_refused(
    ctx: &SessionContext,
    catalog: &Catalog,
    logs: &BTreeMap<String, StreamLog>,
    snapshots: &BTreeMap<String, Snapshot>,
    views: bool,
) -> Result<()> {
    for (name, def) in &catalog.streams {
        if snapshots.contains_key(name) {
            continue;
        }
        let Some(refusal) = logs.get(name).and_then(StreamLog::refusal) else {
            continue;
        };
        let refused = |schema: SchemaRef| {
            let (stream, refusal) = (name.clone(), refusal.clone());
            Arc::new(FailedTable::new(schema, move || refusal.error(&stream)))
        };
        ctx.deregister_table(name.as_str())?;
        ctx.register_table(name.as_str(), refused(def.scan_schema()))?;
        if views {
            for c in catalog.compiled.values().filter(|c| &c.view.stream == name) {
                ctx.deregister_table(c.view.name.as_str())?;
                ctx.register_table(c.view.name.as_str(), refused(c.view.schema.clone()))?;
            }
        }
    }
    Ok(())
}
