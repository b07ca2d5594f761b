//! The batch layer: a materialized view recomputed from a pinned log
//! snapshot by its compiled plan, sorted canonically, written as Parquet and
//! published atomically as a new version.
//!
//! ```text
//!   snapshot S ──► the view's operator over every file of S ──► groups (grouped
//!       view: the final aggregate's output, before HAVING) or rows (row view)
//!       ──► ORDER BY key, then every column
//!       ──► fixed-size chunks ──► views/<v>/v<N>/part-00000-<attempt>.parquet …
//!       ──► put views/<v>/_versions/<N>.json (PutMode::Create)   ← the publish
//! ```
//!
//! A grouped view's version holds its groups, not its rows: serving merges
//! them with the speed layer's groups and only then applies HAVING and
//! everything above the aggregate (see `catalog::compile`).
//!
//! Guarantees:
//! - same snapshot, same SQL → byte-identical part files and the same content
//!   hash (the sort is total over the output, chunks have fixed sizes and
//!   the writer settings are fixed);
//! - a reader sees the previous version or the new one, never a mix: the
//!   record is written last and names every file; a killed batch leaves
//!   files no record names, which nobody reads;
//! - older versions beyond `retain_versions` are removed only after a newer
//!   one is published, record first, so no reader finds a record without
//!   its files.
//!
//! Publish records are a [`RecordDir`] (see `log::records` for the
//! protocol).

use std::sync::Arc;
use std::time::Instant;

use arrow::array::RecordBatch;
use arrow::array::{make_comparator, UInt32Array};
use arrow::array::{Array, BooleanArray};
use arrow::compute::kernels::boolean::not;
use arrow::compute::{concat_batches, filter_record_batch, prep_null_mask_filter};
use arrow::compute::{
    lexsort_to_indices, sort_to_indices, take_record_batch, LexicographicalComparator, SortColumn,
    SortOptions,
};
use arrow::datatypes::{DataType, SchemaRef};
use bytes::Bytes;
use datafusion::common::cast::as_boolean_array;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::catalog::{CompiledView, PlanKind, Serving, ViewDef};
use crate::error::{Result, StrataError};
use crate::log::{Covered, Created, FileEntry, RecordDir, Snapshot};
use crate::operator::{sorted_version, Exec, Operator};

/// Version of the publish record format (2: grouped views store groups;
/// 3: `TIMESTAMP` columns are naive UTC; 4: string columns are `Utf8View`,
/// as scans read them — older versions are stale and the next batch
/// replaces them, while serving reads the log; 5: the groups HAVING drops
/// may be stored as keys, [`VersionRecord::keys`]).
pub const VERSION_FORMAT: u32 = 5;
/// The oldest publish record format still served: format 5 added
/// [`VersionRecord::keys`], and a format-4 record (which has none) means
/// the same.
const OLDEST_SERVED_FORMAT: u32 = 4;
/// One part file of a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartFile {
    /// Path in the store.
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
}

/// A publish record: `views/<view>/_versions/<N>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRecord {
    pub format: u32,
    pub view: String,
    pub version: u64,
    pub stream: String,
    /// The snapshot the version was computed from: commits 0..=watermark.
    pub watermark: Option<u64>,
    /// Hash of the view definition it was computed with.
    pub sql_hash: String,
    pub rows: u64,
    /// SHA-256 over the part files' bytes, in order: `files`, then `keys`.
    pub content_hash: String,
    pub duration_ms: u64,
    pub files: Vec<PartFile>,
    /// `serving = 'merge'` views: the partial state per group (Arrow IPC),
    /// which serving merges with the speed layer's state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub state: Vec<PartFile>,
    /// Precedence views with HAVING: the key columns alone of the groups
    /// HAVING drops (`files` holds the groups it keeps, whole). Serving
    /// needs every batch key — a batch group overrides the speed layer's
    /// group of the same key even when HAVING drops it — but never the
    /// aggregates of a dropped group.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<PartFile>,
}

/// The publish records of `view`: `views/<view>/_versions/<N>.json`.
pub fn version_records(store: &Arc<dyn ObjectStore>, view: &str) -> RecordDir<VersionRecord> {
    RecordDir::new(store.clone(), Path::from(format!("views/{view}/_versions")))
}

impl VersionRecord {
    /// The commits the version covers.
    pub fn covered(&self) -> Covered {
        Covered::through(self.watermark)
    }
}

/// Published version numbers of `view`, ascending.
pub async fn list_versions(store: &Arc<dyn ObjectStore>, view: &str) -> Result<Vec<u64>> {
    version_records(store, view).list().await
}

/// Read one publish record (`None`: not there, or retired).
pub async fn read_version(
    store: &Arc<dyn ObjectStore>,
    view: &str,
    version: u64,
) -> Result<Option<VersionRecord>> {
    version_records(store, view).read(version).await
}

/// The newest published version of `view`, and the version to serve: made
/// by the current definition, with the highest watermark (a batch that
/// started earlier may publish later, with an older snapshot).
pub async fn served_version(
    store: &Arc<dyn ObjectStore>,
    view: &ViewDef,
) -> Result<(Option<VersionRecord>, Option<VersionRecord>)> {
    let mut newest: Option<VersionRecord> = None;
    let mut served: Option<VersionRecord> = None;
    for v in list_versions(store, &view.name).await?.into_iter().rev() {
        // A version may be retired between the listing and the read.
        let Some(r) = read_version(store, &view.name, v).await? else {
            continue;
        };
        if newest.is_none() {
            newest = Some(r.clone());
        }
        let better = served
            .as_ref()
            .is_none_or(|s| (r.watermark, r.version) > (s.watermark, s.version));
        if is_current(view, &r) && better {
            served = Some(r);
        }
    }
    Ok((newest, served))
}

/// The columns of the canonical order: the key columns, then every other
/// output column.
pub fn canonical_columns(view: &ViewDef) -> Vec<String> {
    let mut names = view.key.clone();
    for f in view.schema.fields() {
        if !names.contains(f.name()) {
            names.push(f.name().clone());
        }
    }
    names
}

/// `name` as a quoted SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Compute what a version of `view` at `snapshot` stores (groups or
/// rows), in canonical order: the stored key, then every column. The rows
/// come as a stream, so that writing them overlaps the sort's final merge;
/// the partial state of a merge view comes whole.
pub async fn recompute(
    exec: &Exec,
    view: &Arc<CompiledView>,
    snapshot: &Snapshot,
) -> Result<(SendableRecordBatchStream, Option<RecordBatch>)> {
    let files: Vec<FileEntry> = snapshot.files().cloned().collect();
    if let Some(sorted) = sorted_version(exec, view, &files).await? {
        return Ok((sorted, None));
    }
    let mut op = Operator::new(view.clone())?;
    op.apply(exec, &files).await?;
    let state = match view.view.serving {
        Serving::Merge => op.state_rows()?,
        Serving::Precedence => None,
    };
    let schema = view.stored_schema();
    let order = view.stored_order();
    let sorted = canonical_sort(&schema, &order, &op.stored()?)?;
    let stream = futures::stream::iter([Ok(sorted)]);
    Ok((
        Box::pin(RecordBatchStreamAdapter::new(schema, stream)),
        state,
    ))
}

/// The columns of the canonical order, by index: `key`, then every other
/// of the `columns`. Rows unique on a non-empty key (a grouped view's
/// groups) are ordered totally by the key alone: the same order, without
/// comparing (or encoding) the rest.
pub fn canonical_order(columns: usize, key: &[usize], unique_on_key: bool) -> Vec<usize> {
    let mut order = key.to_vec();
    if !unique_on_key || key.is_empty() {
        order.extend((0..columns).filter(|i| !key.contains(i)));
    }
    order
}

/// `batches` as one batch sorted by the columns `order` (ascending, nulls
/// last; see [`canonical_order`]): a total order, so equal inputs give
/// equal bytes.
pub fn canonical_sort(
    schema: &SchemaRef,
    order: &[usize],
    batches: &[RecordBatch],
) -> Result<RecordBatch> {
    let all = concat_batches(schema, batches)?;
    if all.num_rows() == 0 || order.is_empty() {
        return Ok(all);
    }
    let options = SortOptions {
        descending: false,
        nulls_first: false,
    };
    let columns: Vec<SortColumn> = order
        .iter()
        .map(|&i| SortColumn {
            values: all.column(i).clone(),
            options: Some(options),
        })
        .collect();
    let indices = match columns.as_slice() {
        [first, rest @ ..] if !rest.is_empty() && sorts_alone(first.values.data_type()) => {
            sort_by_first_then_ties(first, rest)?
        }
        _ => lexsort_to_indices(&columns, None)?,
    };
    Ok(take_record_batch(&all, &indices)?)
}

/// Whether arrow sorts a column of `t` by itself (`sort_to_indices`); the
/// others (lists, structs, dictionaries, …) are compared only within a
/// lexicographic sort.
fn sorts_alone(t: &DataType) -> bool {
    t.is_primitive()
        || matches!(
            t,
            DataType::Boolean
                | DataType::Utf8
                | DataType::LargeUtf8
                | DataType::Utf8View
                | DataType::Binary
                | DataType::LargeBinary
                | DataType::BinaryView
                | DataType::FixedSizeBinary(_)
        )
}

/// The indices of a lexicographic sort by `first`, then `rest`: one sort
/// of the first column's values (a primitive sort where it is one), then
/// each run of equal first values sorted by the rest. The same order as
/// comparing every column at each step, which costs more where the first
/// column decides nearly every comparison (a time bucket ahead of a
/// short key).
fn sort_by_first_then_ties(first: &SortColumn, rest: &[SortColumn]) -> Result<UInt32Array> {
    let options = first.options.unwrap_or_default();
    let mut order = sort_to_indices(&first.values, Some(options), None)?
        .values()
        .to_vec();
    let equal = make_comparator(first.values.as_ref(), first.values.as_ref(), options)?;
    let rest = LexicographicalComparator::try_new(rest)?;
    let mut start = 0;
    while start < order.len() {
        let at = order[start] as usize;
        let end = start
            + 1
            + order[start + 1..]
                .iter()
                .take_while(|&&i| equal(at, i as usize).is_eq())
                .count();
        order[start..end].sort_unstable_by(|&a, &b| rest.compare(a as usize, b as usize));
        start = end;
    }
    Ok(UInt32Array::from(order))
}

/// Rows per part file of a batch version: parts are encoded in parallel.
const VERSION_PART_ROWS: usize = 256 * 1024;

/// Up to this many rows a version is written uncompressed: compressing
/// costs more than it saves. (Rows, not bytes in memory: the choice must
/// depend only on the rows, so the same rows give the same bytes.)
const COMPRESS_ABOVE_ROWS: usize = 64 * 1024;

/// A version's part files, their rows and their bytes, in order.
struct Parts {
    files: Vec<PartFile>,
    rows: u64,
    encoded: Vec<Bytes>,
    /// When the last row arrived: the computation's end (for a view the
    /// operator computes, its stored state's write included); parts still
    /// being encoded and put after it are the write's tail.
    last_row: Instant,
}

/// Write the rows of `sorted` as the part files of a version under
/// `prefix`: parts of [`VERSION_PART_ROWS`] rows, each encoded on a
/// blocking thread and uploaded as soon as its rows have arrived, while
/// the rest are still being merged. Part boundaries, writer settings and so
/// the bytes depend only on the rows: the same rows give the same parts and
/// content hash. The codec depends on the row count: none for small
/// versions, Snappy (fast to write and to read) for large ones.
async fn write_parts(
    store: &Arc<dyn ObjectStore>,
    schema: SchemaRef,
    (prefix, name): (&str, &str),
    mut sorted: SendableRecordBatchStream,
    empty_part: bool,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<Parts> {
    let attempt = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
    let mut pending: Vec<RecordBatch> = Vec::new();
    let mut pending_rows = 0usize;
    let mut jobs = Vec::new();
    let mut done = false;
    let mut rows = 0u64;
    while !done {
        match sorted.next().await.transpose()? {
            Some(batch) => {
                pending_rows += batch.num_rows();
                pending.push(RecordBatch::try_new(
                    schema.clone(),
                    batch.columns().to_vec(),
                )?);
                if pending_rows < VERSION_PART_ROWS {
                    continue;
                }
            }
            // The last part (an empty result is still one part, with the
            // schema, if asked for).
            None if pending_rows > 0 || (jobs.is_empty() && empty_part) => done = true,
            None => break,
        }
        let all = concat_batches(&schema, &pending)?;
        pending.clear();
        let mut start = 0;
        while all.num_rows().saturating_sub(start) >= VERSION_PART_ROWS
            || (done && start < all.num_rows().max(1))
        {
            let part = all.slice(start, VERSION_PART_ROWS.min(all.num_rows() - start));
            start += part.num_rows().max(1);
            // A full part means more than COMPRESS_ABOVE_ROWS rows in all;
            // otherwise this is the only part and its rows are all.
            let compression = if jobs.is_empty() && part.num_rows() <= COMPRESS_ABOVE_ROWS {
                Compression::UNCOMPRESSED
            } else {
                Compression::SNAPPY
            };
            let path = format!("{prefix}/{name}-{:05}-{attempt}.parquet", jobs.len());
            rows += part.num_rows() as u64;
            jobs.push(tokio::spawn(write_part(
                store.clone(),
                part,
                path,
                version_part_properties(&schema, compression),
            )));
        }
        let rest = all.num_rows().saturating_sub(start);
        if rest > 0 {
            pending.push(all.slice(start, rest));
        }
        pending_rows = rest;
    }
    let last_row = Instant::now();
    let mut files = Vec::with_capacity(jobs.len());
    let mut encoded = Vec::with_capacity(jobs.len());
    for job in jobs {
        let (file, bytes) = job
            .await
            .map_err(|e| StrataError::Usage(format!("writing a version part: {e}")))??;
        progress(file.rows);
        files.push(file);
        encoded.push(bytes);
    }
    Ok(Parts {
        files,
        rows,
        encoded,
        last_row,
    })
}

/// SHA-256 over the bytes of `parts`, in order.
fn content_hash(parts: &[&Parts]) -> String {
    let mut hasher = Sha256::new();
    for bytes in parts.iter().flat_map(|p| &p.encoded) {
        hasher.update(bytes);
    }
    hex::encode(hasher.finalize())
}

/// Encode one part on a blocking thread and put it at `path`.
async fn write_part(
    store: Arc<dyn ObjectStore>,
    part: RecordBatch,
    path: String,
    props: WriterProperties,
) -> Result<(PartFile, Bytes)> {
    let rows = part.num_rows() as u64;
    let bytes = tokio::task::spawn_blocking(move || -> Result<Bytes> {
        let mut w = ArrowWriter::try_new(Vec::new(), part.schema(), Some(props))?;
        w.write(&part)?;
        Ok(Bytes::from(w.into_inner()?))
    })
    .await
    .map_err(|e| StrataError::Usage(format!("encoding a version part: {e}")))??;
    let len = bytes.len() as u64;
    store
        .put(&Path::from(path.as_str()), PutPayload::from(bytes.clone()))
        .await?;
    Ok((
        PartFile {
            path,
            rows,
            bytes: len,
        },
        bytes,
    ))
}

/// Writer settings of a version part. Dictionary pages only for strings:
/// numbers and timestamps (an id, an instant, an amount) are mostly
/// distinct, and building a dictionary for them only to give it up costs
/// more than the rest of the encoding.
fn version_part_properties(schema: &SchemaRef, compression: Compression) -> WriterProperties {
    let mut props = WriterProperties::builder()
        .set_compression(compression)
        .set_max_row_group_row_count(Some(128 * 1024))
        .set_dictionary_enabled(false);
    for f in schema.fields() {
        if matches!(
            f.data_type(),
            DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8
        ) {
            props = props.set_column_dictionary_enabled(ColumnPath::from(f.name().as_str()), true);
        }
    }
    props.build()
}

/// Write `rows` (in their final order) as part files under `prefix`, the
/// way a version's parts are written ([`write_parts`]): Kappa checkpoints
/// store their rows with it, so there is one Parquet part writer.
pub(crate) async fn write_rows(
    store: &Arc<dyn ObjectStore>,
    schema: SchemaRef,
    prefix: &str,
    rows: Vec<RecordBatch>,
) -> Result<Vec<PartFile>> {
    let stream = RecordBatchStreamAdapter::new(
        schema.clone(),
        futures::stream::iter(rows.into_iter().map(Ok)),
    );
    let parts = write_parts(
        store,
        schema,
        (prefix, "part"),
        Box::pin(stream),
        true,
        &|_| {},
    )
    .await?;
    Ok(parts.files)
}

/// `sorted` groups split by HAVING's `predicate`: the stream keeps the
/// groups it keeps; the key columns (the first `group_columns`) of the
/// others are sent to `dropped`, in order, and the sender is closed as
/// soon as the groups end. A group whose predicate is NULL is dropped, as
/// HAVING drops it; one whose predicate fails (a division by zero) is
/// kept whole, so HAVING fails when the view is queried, as it would
/// without the split.
fn split_having(
    sorted: SendableRecordBatchStream,
    predicate: Arc<dyn PhysicalExpr>,
    group_columns: usize,
    dropped: futures::channel::mpsc::UnboundedSender<RecordBatch>,
) -> SendableRecordBatchStream {
    let schema = sorted.schema();
    let keys: Vec<usize> = (0..group_columns).collect();
    let sender = Arc::new(std::sync::Mutex::new(Some(dropped)));
    let closer = sender.clone();
    let kept = sorted
        .map(move |batch| {
            let batch = batch?;
            let keep = having_mask(&predicate, &batch)?;
            let gone = filter_record_batch(&batch.project(&keys)?, &not(&keep)?)?;
            if gone.num_rows() > 0 {
                if let Some(sender) = sender.lock().expect("not poisoned").as_ref() {
                    // The receiver lives as long as the write.
                    let _ = sender.unbounded_send(gone);
                }
            }
            Ok(filter_record_batch(&batch, &keep)?)
        })
        .chain(
            futures::stream::once(async move {
                closer.lock().expect("not poisoned").take();
            })
            .filter_map(|()| futures::future::ready(None)),
        );
    Box::pin(RecordBatchStreamAdapter::new(schema, kept))
}

/// Which rows of `batch` HAVING keeps (NULL: not kept). If the predicate
/// fails on the batch, each row is decided on its own, and a row on which
/// it fails is kept: the decision never depends on how rows are batched.
fn having_mask(
    predicate: &Arc<dyn PhysicalExpr>,
    batch: &RecordBatch,
) -> datafusion::error::Result<BooleanArray> {
    let eval = |b: &RecordBatch| -> datafusion::error::Result<BooleanArray> {
        let mask = predicate.evaluate(b)?.into_array(b.num_rows())?;
        let mask = as_boolean_array(&mask)?;
        Ok(match mask.nulls() {
            Some(_) => prep_null_mask_filter(mask),
            None => mask.clone(),
        })
    };
    match eval(batch) {
        Ok(mask) => Ok(mask),
        Err(_) => Ok((0..batch.num_rows())
            .map(|i| Some(eval(&batch.slice(i, 1)).map_or(true, |m| m.value(0))))
            .collect()),
    }
}

/// Compute `view` at `snapshot` and publish it as the next version.
/// `exec` must reach the store at [`crate::STORE_URL`].
pub async fn run_batch(
    store: &Arc<dyn ObjectStore>,
    exec: &Exec,
    compiled: &Arc<CompiledView>,
    snapshot: &Snapshot,
    retain_versions: usize,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<VersionRecord> {
    let started = Instant::now();
    let view = &compiled.view;
    let versions = version_records(store, &view.name);
    let latest = versions.list().await?.last().copied();
    let mut version = latest.map_or(1, |v| v + 1);
    let (sorted, state) = recompute(exec, compiled, snapshot).await?;
    let state = match state {
        Some(rows) => vec![
            crate::kappa::checkpoint::write_state(
                store,
                format!(
                    "views/{}/v{version}/state-{}.arrow",
                    view.name,
                    &uuid::Uuid::new_v4().simple().to_string()[..12]
                ),
                &rows,
            )
            .await?,
        ],
        None => Vec::new(),
    };
    let prefix = format!("views/{}/v{version}", view.name);
    // A precedence view with HAVING keeps the groups HAVING drops as keys.
    let having = match (view.serving, &compiled.kind) {
        (Serving::Precedence, PlanKind::Grouped(g)) => g.having().map(|p| (p, g.group_columns)),
        _ => None,
    };
    let schema = compiled.stored_schema();
    let (parts, keys) = match having {
        None => {
            let parts = write_parts(store, schema, (&prefix, "part"), sorted, true, progress);
            (parts.await?, None)
        }
        // The kept groups and the dropped groups' keys are written side by
        // side, both as the sorted groups arrive.
        Some((predicate, group_columns)) => {
            let key_schema = Arc::new(schema.project(&(0..group_columns).collect::<Vec<_>>())?);
            let (dropped, dropped_rx) = futures::channel::mpsc::unbounded();
            let kept = split_having(sorted, predicate, group_columns, dropped);
            let dropped = RecordBatchStreamAdapter::new(key_schema.clone(), dropped_rx.map(Ok));
            let (parts, keys) = futures::try_join!(
                write_parts(store, schema, (&prefix, "part"), kept, true, progress),
                write_parts(
                    store,
                    key_schema,
                    (&prefix, "keys"),
                    Box::pin(dropped),
                    false,
                    progress
                ),
            )?;
            (parts, Some(keys))
        }
    };
    let content_hash = content_hash(
        &[Some(&parts), keys.as_ref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>(),
    );
    let (keys, key_rows) = keys.map_or((Vec::new(), 0), |k| (k.files, k.rows));
    let rows = parts.rows + key_rows;
    tracing::debug!(
        view = %view.name,
        rows,
        compute_ms = (parts.last_row - started).as_millis() as u64,
        write_tail_ms = parts.last_row.elapsed().as_millis() as u64,
        "batch computed and written (parts are written as rows arrive; the tail is after the last row)"
    );
    let mut record = VersionRecord {
        format: VERSION_FORMAT,
        view: view.name.clone(),
        version,
        stream: view.stream.clone(),
        watermark: snapshot.head(),
        sql_hash: view.sql_hash(),
        rows,
        content_hash,
        duration_ms: started.elapsed().as_millis() as u64,
        files: parts.files,
        state,
        keys,
    };
    // Publish: put-if-absent; a concurrent batch that took the number
    // makes us take the next one (our files are named by our record).
    loop {
        record.version = version;
        match versions.create(version, &record).await? {
            Created::Created => break,
            // A retried create can find our own record (its response was
            // lost): the whole record, attempt-named files included, is ours
            // only.
            Created::Exists(Some(r)) if r == record => break,
            Created::Exists(_) => version += 1,
        }
    }
    retire_old_versions(store, view, retain_versions).await?;
    Ok(record)
}

/// Remove all but the newest `retain` versions — never the served one —
/// record first, then files.
pub async fn retire_old_versions(
    store: &Arc<dyn ObjectStore>,
    view: &ViewDef,
    retain: usize,
) -> Result<()> {
    let records = version_records(store, &view.name);
    let versions = records.list().await?;
    let served = served_version(store, view).await?.1.map(|r| r.version);
    let cut = versions.len().saturating_sub(retain.max(1));
    for &v in &versions[..cut] {
        if Some(v) == served {
            continue;
        }
        let Some(record) = records.read(v).await? else {
            continue;
        };
        records.retire(v).await?;
        for f in record.files.iter().chain(&record.state).chain(&record.keys) {
            if let Err(e) = store.delete(&Path::from(f.path.as_str())).await {
                tracing::warn!("could not remove {}: {e}", f.path);
            }
        }
    }
    Ok(())
}

/// Whether `record` was made by the current definition of `view` (and in
/// the current layout).
pub fn is_current(view: &ViewDef, record: &VersionRecord) -> bool {
    (OLDEST_SERVED_FORMAT..=VERSION_FORMAT).contains(&record.format)
        && record.sql_hash == view.sql_hash()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use arrow::datatypes::{Field, Schema};

    fn stream_of(schema: &SchemaRef, batches: Vec<RecordBatch>) -> SendableRecordBatchStream {
        let stream = futures::stream::iter(batches.into_iter().map(Ok));
        Box::pin(RecordBatchStreamAdapter::new(schema.clone(), stream))
    }

    /// Parts depend only on the rows, not on how the sorted stream happened
    /// to batch them: cut at fixed row counts, the codec chosen by the total.
    #[tokio::test]
    async fn parts_depend_only_on_the_rows() {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
        let rows = |from: i64, to: i64| {
            RecordBatch::try_new(
                schema.clone(),
                vec![Arc::new(Int64Array::from_iter_values(from..to))],
            )
            .unwrap()
        };
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let write = |n: usize, cuts: &[i64], prefix: &str| {
            let mut bounds = vec![0];
            bounds.extend(cuts.iter().copied().filter(|&c| c < n as i64));
            bounds.push(n as i64);
            let batches: Vec<RecordBatch> = bounds.windows(2).map(|w| rows(w[0], w[1])).collect();
            let (store, schema, prefix) = (store.clone(), schema.clone(), prefix.to_string());
            async move {
                write_parts(
                    &store,
                    schema.clone(),
                    (&prefix, "part"),
                    stream_of(&schema, batches),
                    true,
                    &|_| {},
                )
                .await
                .unwrap()
            }
        };
        let n = 2 * VERSION_PART_ROWS + 1234;
        let whole = write(n, &[], "a").await;
        let ragged = write(n, &[1, 8192, 100_000, 262_143, 262_145, 530_000], "b").await;
        assert_eq!(content_hash(&[&whole]), content_hash(&[&ragged]));
        let shape = |p: &Parts| p.files.iter().map(|f| f.rows).collect::<Vec<_>>();
        let part = VERSION_PART_ROWS as u64;
        assert_eq!(shape(&whole), vec![part, part, 1234]);
        assert_eq!(shape(&ragged), shape(&whole));
        assert_eq!(whole.rows, n as u64);
        // Every part of a large version is compressed, a small one is not.
        let codec = |path: String| {
            let store = store.clone();
            async move {
                use parquet::file::reader::{FileReader, SerializedFileReader};
                let bytes = store.get(&Path::from(path)).await.unwrap();
                let reader = SerializedFileReader::new(bytes.bytes().await.unwrap()).unwrap();
                reader.metadata().row_group(0).column(0).compression()
            }
        };
        for f in &whole.files {
            assert_eq!(
                codec(f.path.clone()).await,
                Compression::SNAPPY,
                "{}",
                f.path
            );
        }
        let small = write(10, &[3], "c").await;
        assert_eq!(shape(&small), vec![10]);
        assert_eq!(
            codec(small.files[0].path.clone()).await,
            Compression::UNCOMPRESSED
        );
        let empty = write(0, &[], "d").await;
        assert_eq!((shape(&empty), empty.rows), (vec![0], 0));
    }

    /// A first column arrow cannot sort by itself (a list of strings, as
    /// `array_agg` makes) goes through the lexicographic sort.
    #[test]
    fn a_list_first_is_sorted_lexicographically() {
        use arrow::array::{Int64Array, ListBuilder, StringViewBuilder};
        let mut lists = ListBuilder::new(StringViewBuilder::new());
        for v in [&["b"][..], &["a", "c"], &["a"], &["b"]] {
            for s in v {
                lists.values().append_value(*s);
            }
            lists.append(true);
        }
        let lists = lists.finish();
        let schema = Arc::new(Schema::new(vec![
            Field::new("l", lists.data_type().clone(), true),
            Field::new("n", DataType::Int64, false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(lists),
                Arc::new(Int64Array::from(vec![2, 3, 4, 1])),
            ],
        )
        .unwrap();
        let sorted = canonical_sort(&schema, &[0, 1], &[batch]).unwrap();
        let n = sorted
            .column(1)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!(n.values(), &[4, 3, 1, 2]);
    }

    proptest::proptest! {
        /// The first column's sort with its ties sorted by the rest is the
        /// lexicographic order over every column (nulls, floats, strings).
        #[test]
        fn sorting_ties_of_the_first_column_is_the_lexicographic_sort(
            rows in proptest::collection::vec(
                (proptest::option::of(0i64..6), proptest::option::of(-2.0f64..2.0), proptest::option::of("[ab]{0,2}")),
                0..200,
            ),
        ) {
            use arrow::array::{Float64Array, StringArray};
            let schema = Arc::new(Schema::new(vec![
                Field::new("a", DataType::Int64, true),
                Field::new("f", DataType::Float64, true),
                Field::new("s", DataType::Utf8, true),
            ]));
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(rows.iter().map(|r| r.0).collect::<Int64Array>()),
                    // Rounded, so that equal values (ties) occur.
                    Arc::new(rows.iter().map(|r| r.1.map(|f| (f * 2.0).round() / 2.0)).collect::<Float64Array>()),
                    Arc::new(rows.iter().map(|r| r.2.clone()).collect::<StringArray>()),
                ],
            )
            .unwrap();
            for order in [[0, 1, 2], [2, 0, 1], [1, 2, 0]] {
                let sorted = canonical_sort(&schema, &order, std::slice::from_ref(&batch)).unwrap();
                let columns: Vec<SortColumn> = order
                    .iter()
                    .map(|&i| SortColumn {
                        values: batch.column(i).clone(),
                        options: Some(SortOptions { descending: false, nulls_first: false }),
                    })
                    .collect();
                let expected = take_record_batch(&batch, &lexsort_to_indices(&columns, None).unwrap()).unwrap();
                proptest::prop_assert_eq!(sorted, expected);
            }
        }
    }
}
