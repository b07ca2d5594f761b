//! Serving: one DataFusion table per view and per stream.
//!
//! A materialized view is served as its batch version's rows plus the speed
//! rows whose key the batch version lacks ("batch overrides speed",
//! [`BatchPrecedenceExec`]); a keyless view as the plain union of both (every
//! event is on exactly one side, split by commit number). A stream is served
//! as its files up to the speed layer's base commit plus the in-memory tail.
//!
//! Projections reach both sides. Filters on key columns reach both sides
//! (and prune the batch Parquet); filters on other columns of a keyed view
//! are applied after the merge, because dropping a batch row before the
//! merge would let a speed row with the same key through.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::sync::Mutex;

use arrow::array::{BooleanArray, RecordBatch};
use arrow::compute::filter_record_batch;
use arrow::datatypes::SchemaRef;
use arrow::row::{RowConverter, SortField};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{project_schema, DFSchema};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::{DataFusionError, Result as DFResult};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_expr::{EquivalenceProperties, Partitioning, PhysicalExpr};
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, Distribution, ExecutionPlan, PlanProperties,
    ReplaceChildrenOptions,
};
use futures::{StreamExt, TryStreamExt};

use crate::batch::PartFile;
use crate::catalog::ViewDef;
use crate::log::{parquet_scan, LogTable};

/// A materialized view, served.
#[derive(Debug)]
pub struct ViewTable {
    view: ViewDef,
    batch_files: Vec<PartFile>,
    speed_rows: Vec<RecordBatch>,
    store_url: ObjectStoreUrl,
}

impl ViewTable {
    /// `batch_files`: the current batch version (empty: none);
    /// `speed_rows`: the view's SQL run over the tail after its watermark.
    pub fn new(
        view: ViewDef,
        batch_files: Vec<PartFile>,
        speed_rows: Vec<RecordBatch>,
        store_url: ObjectStoreUrl,
    ) -> Self {
        Self {
            view,
            batch_files,
            speed_rows,
            store_url,
        }
    }

    fn pushable<'a>(&self, filters: &'a [Expr]) -> Vec<&'a Expr> {
        filters
            .iter()
            .filter(|f| {
                self.view.key.is_empty()
                    || f.column_refs()
                        .iter()
                        .all(|c| self.view.key.contains(&c.name))
            })
            .collect()
    }
}

/// `schema` restricted to `indices`, as a DFSchema.
fn df_schema(schema: &SchemaRef, indices: &[usize]) -> DFResult<DFSchema> {
    DFSchema::try_from(schema.project(indices)?)
}

fn filtered(
    plan: Arc<dyn ExecutionPlan>,
    predicate: &Option<Arc<dyn PhysicalExpr>>,
) -> DFResult<Arc<dyn ExecutionPlan>> {
    Ok(match predicate {
        Some(p) => Arc::new(FilterExec::try_new(p.clone(), plan)?),
        None => plan,
    })
}

#[async_trait]
impl TableProvider for ViewTable {
    fn schema(&self) -> SchemaRef {
        self.view.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        let schema = self.view.schema.clone();
        let output: Vec<usize> = projection
            .cloned()
            .unwrap_or_else(|| (0..schema.fields().len()).collect());
        let pushable = self.pushable(filters);
        // Read what the output needs, plus the key and the pushed filters' columns.
        let mut inner = output.clone();
        let mut need = |i: usize| {
            if !inner.contains(&i) {
                inner.push(i)
            }
        };
        for k in self.view.key_indices() {
            need(k);
        }
        for f in &pushable {
            for c in f.column_refs() {
                need(schema.index_of(&c.name)?);
            }
        }
        let inner_predicate = conjunction(pushable.into_iter().cloned())
            .map(|p| state.create_physical_expr(p, &df_schema(&schema, &inner)?))
            .transpose()?;

        let batch: Arc<dyn ExecutionPlan> = if self.batch_files.is_empty() {
            Arc::new(EmptyExec::new(project_schema(&schema, Some(&inner))?))
        } else {
            let files = self
                .batch_files
                .iter()
                .map(|f| PartitionedFile::new(f.path.clone(), f.bytes))
                .collect();
            // DataFusion pushes the filter above into this scan, which
            // prunes the batch Parquet's row groups.
            parquet_scan(
                state,
                &self.store_url,
                &schema,
                files,
                Some(inner.clone()),
                None,
            )
            .await?
        };
        let batch = filtered(batch, &inner_predicate)?;
        let speed: Arc<dyn ExecutionPlan> = MemorySourceConfig::try_new_exec(
            std::slice::from_ref(&self.speed_rows),
            schema.clone(),
            Some(inner.clone()),
        )?;
        let speed = filtered(speed, &inner_predicate)?;

        if self.view.key.is_empty() {
            let union = UnionExec::try_new(vec![batch, speed])?;
            if inner.len() == output.len() {
                return Ok(union);
            }
            let exprs: Vec<(Arc<dyn PhysicalExpr>, String)> = (0..output.len())
                .map(|i| {
                    let f = union.schema().field(i).clone();
                    (
                        Arc::new(datafusion::physical_expr::expressions::Column::new(
                            f.name(),
                            i,
                        )) as Arc<dyn PhysicalExpr>,
                        f.name().clone(),
                    )
                })
                .collect();
            return Ok(Arc::new(
                datafusion::physical_plan::projection::ProjectionExec::try_new(exprs, union)?,
            ));
        }
        let key: Vec<usize> = self
            .view
            .key_indices()
            .iter()
            .map(|k| inner.iter().position(|i| i == k).expect("key is read"))
            .collect();
        Ok(Arc::new(BatchPrecedenceExec::try_new(
            batch,
            speed,
            key,
            output.len(),
        )?))
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DFResult<Vec<TableProviderFilterPushDown>> {
        // Both sides are filtered exactly where a filter is pushed, but
        // DataFusion re-checks above: cheap, and right in every case.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }
}

/// Batch rows, then the speed rows whose key no batch row has.
///
/// Both inputs have the same schema; `key` indexes the key columns and the
/// output is the first `output_columns` columns. Memory is proportional to
/// the speed side (its keys are held in a set), never to the batch side,
/// which is streamed through.
#[derive(Debug)]
pub struct BatchPrecedenceExec {
    batch: Arc<dyn ExecutionPlan>,
    speed: Arc<dyn ExecutionPlan>,
    key: Vec<usize>,
    output_columns: usize,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl BatchPrecedenceExec {
    pub fn try_new(
        batch: Arc<dyn ExecutionPlan>,
        speed: Arc<dyn ExecutionPlan>,
        key: Vec<usize>,
        output_columns: usize,
    ) -> DFResult<Self> {
        let indices: Vec<usize> = (0..output_columns).collect();
        let schema = Arc::new(batch.schema().project(&indices)?);
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Ok(Self {
            batch,
            speed,
            key,
            output_columns,
            schema,
            properties,
        })
    }
}

impl DisplayAs for BatchPrecedenceExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let names: Vec<String> = self
            .key
            .iter()
            .map(|k| self.batch.schema().field(*k).name().clone())
            .collect();
        write!(
            f,
            "BatchPrecedenceExec: key=[{}], inputs=[batch, speed]",
            names.join(", ")
        )
    }
}

impl ExecutionPlan for BatchPrecedenceExec {
    fn name(&self) -> &str {
        "BatchPrecedenceExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn required_input_distribution(&self) -> Vec<Distribution> {
        vec![Distribution::SinglePartition, Distribution::SinglePartition]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![false, false]
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.batch, &self.speed]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DFResult<TreeNodeRecursion>,
    ) -> DFResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        let speed = children.pop().expect("two children");
        let batch = children.pop().expect("two children");
        Ok(Arc::new(Self::try_new(
            batch,
            speed,
            self.key.clone(),
            self.output_columns,
        )?))
    }

    #[allow(deprecated)]
    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(
                datafusion::physical_plan::ChildrenPropertiesMode::Recompute,
            ),
        )
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DFResult<SendableRecordBatchStream> {
        let speed = self.speed.execute(partition, context.clone())?;
        let batch = self.batch.execute(partition, context)?;
        let key = self.key.clone();
        let out_cols: Vec<usize> = (0..self.output_columns).collect();
        let schema = self.schema.clone();
        let fields: Vec<SortField> = key
            .iter()
            .map(|k| SortField::new(self.batch.schema().field(*k).data_type().clone()))
            .collect();
        let stream = futures::stream::once(async move {
            // The speed side is small (the log's tail): hold it and its keys.
            let speed: Vec<RecordBatch> = speed.try_collect().await?;
            let converter = Arc::new(RowConverter::new(fields)?);
            let keys_of = {
                let converter = converter.clone();
                move |b: &RecordBatch| {
                    let cols: Vec<_> = key.iter().map(|k| b.column(*k).clone()).collect();
                    converter.convert_columns(&cols)
                }
            };
            let mut speed_keys: HashSet<Vec<u8>> = HashSet::new();
            let mut speed_rows = Vec::with_capacity(speed.len());
            for b in &speed {
                let rows = keys_of(b)?;
                speed_keys.extend(rows.iter().map(|r| r.as_ref().to_vec()));
                speed_rows.push(rows);
            }
            // Keys of the speed side that the batch side also has.
            let seen = Arc::new(Mutex::new(HashSet::<Vec<u8>>::new()));
            let batch_cols = out_cols.clone();
            let batch_seen = seen.clone();
            let batch_side = batch.map(move |b| {
                let b = b?;
                if !speed_keys.is_empty() {
                    let mut seen = batch_seen.lock().expect("not poisoned");
                    for r in keys_of(&b)?.iter() {
                        if speed_keys.contains(r.as_ref()) {
                            seen.insert(r.as_ref().to_vec());
                        }
                    }
                }
                Ok(b.project(&batch_cols)?)
            });
            // Polled only once the batch side is exhausted, so `seen` is complete.
            let speed_side = futures::stream::once(async move {
                let seen = seen.lock().expect("not poisoned");
                let mut out: Vec<DFResult<RecordBatch>> = Vec::new();
                for (b, rows) in speed.iter().zip(&speed_rows) {
                    let keep: BooleanArray = rows
                        .iter()
                        .map(|r| Some(!seen.contains(r.as_ref())))
                        .collect();
                    let kept = filter_record_batch(b, &keep)?;
                    if kept.num_rows() > 0 {
                        out.push(Ok(kept.project(&out_cols)?));
                    }
                }
                Ok::<_, DataFusionError>(futures::stream::iter(out))
            })
            .try_flatten();
            Ok::<_, DataFusionError>(batch_side.chain(speed_side))
        })
        .try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }
}

/// A stream, served: its files up to the speed layer's base commit plus
/// the in-memory tail after it.
#[derive(Debug)]
pub struct StreamTable {
    log: LogTable,
    tail: Vec<RecordBatch>,
}

impl StreamTable {
    pub fn new(log: LogTable, tail: Vec<RecordBatch>) -> Self {
        Self { log, tail }
    }
}

#[async_trait]
impl TableProvider for StreamTable {
    fn schema(&self) -> SchemaRef {
        self.log.schema()
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
        let files = self.log.scan(state, projection, filters, limit).await?;
        if self.tail.is_empty() {
            return Ok(files);
        }
        let tail = MemorySourceConfig::try_new_exec(
            std::slice::from_ref(&self.tail),
            self.log.schema(),
            projection.cloned(),
        )?;
        UnionExec::try_new(vec![files, tail])
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DFResult<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }
}
