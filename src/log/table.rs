//! A stream snapshot as a DataFusion table: exactly the files its commits
//! name (never a directory listing), with files pruned by their recorded
//! event-time and column ranges before any is opened.

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, UInt64Array};
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::pruning::PruningStatistics;
use datafusion::common::{Column, DFSchema, ScalarValue};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::error::Result as DFResult;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_optimizer::pruning::PruningPredicateBuilder;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::ExecutionPlan;

use super::pruning::order_safe;
use super::{file_path, FileEntry, Snapshot};
use crate::catalog::StreamDef;

/// A stream at a pinned snapshot, as a table.
#[derive(Debug, Clone)]
pub struct LogTable {
    stream: StreamDef,
    /// What scans read: [`StreamDef::scan_schema`].
    schema: SchemaRef,
    files: Vec<FileEntry>,
    store_url: ObjectStoreUrl,
}

impl LogTable {
    /// The files of `snapshot`; `store_url` is where the session's runtime
    /// has the strata store registered.
    pub fn new(stream: StreamDef, snapshot: &Snapshot, store_url: ObjectStoreUrl) -> Self {
        Self {
            schema: stream.scan_schema(),
            stream,
            files: snapshot.files().cloned().collect(),
            store_url,
        }
    }

    /// The files a scan with `filters` would read.
    pub fn prune(&self, state: &dyn Session, filters: &[Expr]) -> DFResult<Vec<&FileEntry>> {
        let schema = self.schema.clone();
        let Some(predicate) = conjunction(filters.iter().cloned()) else {
            return Ok(self.files.iter().collect());
        };
        let df_schema = DFSchema::try_from(schema.as_ref().clone())?;
        let physical = state.create_physical_expr(predicate, &df_schema)?;
        let Some(physical) = order_safe(&physical, &schema) else {
            return Ok(self.files.iter().collect());
        };
        let stats = FileStats {
            files: &self.files,
            event_time: &self.stream.event_time,
            schema: &self.schema,
        };
        // A predicate the pruner cannot use, or fails to evaluate over the
        // ranges (a cast that overflows), prunes nothing.
        let keep = PruningPredicateBuilder::new()
            .with_file_schema(schema)
            .try_build(physical)
            .and_then(|p| p.prune(&stats))
            .unwrap_or_else(|_| vec![true; self.files.len()]);
        Ok(self
            .files
            .iter()
            .zip(keep)
            .filter_map(|(f, k)| k.then_some(f))
            .collect())
    }
}

#[async_trait]
impl TableProvider for LogTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        let files = self.prune(state, filters)?;
        if files.is_empty() {
            let schema = datafusion::common::project_schema(&self.schema, projection)?;
            return Ok(Arc::new(EmptyExec::new(schema)));
        }
        let files = files
            .iter()
            .map(|f| PartitionedFile::new(file_path(&self.stream.name, f).to_string(), f.bytes))
            .collect();
        parquet_scan(
            state,
            &self.store_url,
            &self.schema,
            files,
            projection.cloned(),
            limit,
        )
        .await
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DFResult<Vec<TableProviderFilterPushDown>> {
        // Files are pruned by their recorded ranges, and row groups by the Parquet
        // reader, but rows are not filtered exactly: keep the filter above.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }
}

/// A DataFusion scan of exactly `files` (Parquet of `schema`) in the store at
/// `url`. Filters above it are pushed in by DataFusion's optimizer.
pub async fn parquet_scan(
    state: &dyn Session,
    url: &ObjectStoreUrl,
    schema: &SchemaRef,
    files: Vec<PartitionedFile>,
    projection: Option<Vec<usize>>,
    limit: Option<usize>,
) -> DFResult<Arc<dyn ExecutionPlan>> {
    let source = Arc::new(ParquetSource::new(schema.clone()));
    let config = FileScanConfigBuilder::new(url.clone(), source)
        .with_file_group(FileGroup::new(files))
        .with_projection_indices(projection)?
        .with_limit(limit)
        .build();
    let format = ParquetFormat::default().with_options(state.table_options().parquet.clone());
    format.create_physical_plan(state, config).await
}

/// Each file's recorded event-time range and column ranges as pruning
/// statistics.
struct FileStats<'a> {
    files: &'a [FileEntry],
    event_time: &'a str,
    /// What scans read: the types the bounds are of.
    schema: &'a SchemaRef,
}

impl FileStats<'_> {
    /// Each file's bound of `column` (`max` or min), null (unknown) where
    /// it has none; `None` if no file has one.
    fn bounds(&self, column: &Column, max: bool) -> Option<ArrayRef> {
        let data_type = self.schema.field_with_name(&column.name).ok()?.data_type();
        let null = ScalarValue::try_new_null(data_type).ok()?;
        let mut known = false;
        let values: Vec<ScalarValue> = self
            .files
            .iter()
            .map(
                |f| match f.range(&column.name, data_type, self.event_time) {
                    Some((lo, hi)) => {
                        known = true;
                        if max {
                            hi
                        } else {
                            lo
                        }
                    }
                    None => null.clone(),
                },
            )
            .collect();
        known.then(|| ScalarValue::iter_to_array(values).ok())?
    }
}

impl PruningStatistics for FileStats<'_> {
    fn min_values(&self, column: &Column) -> Option<ArrayRef> {
        self.bounds(column, false)
    }

    fn max_values(&self, column: &Column) -> Option<ArrayRef> {
        self.bounds(column, true)
    }

    fn num_containers(&self) -> usize {
        self.files.len()
    }

    fn null_counts(&self, column: &Column) -> Option<ArrayRef> {
        (column.name == self.event_time)
            .then(|| Arc::new(UInt64Array::from(vec![0u64; self.files.len()])) as ArrayRef)
    }

    fn row_counts(&self) -> Option<ArrayRef> {
        Some(Arc::new(UInt64Array::from_iter_values(
            self.files.iter().map(|f| f.rows),
        )))
    }

    fn contained(&self, _column: &Column, _values: &HashSet<ScalarValue>) -> Option<BooleanArray> {
        None
    }
}
