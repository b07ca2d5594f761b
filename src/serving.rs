//! Serving: one DataFusion table per materialized view.
//!
//! A grouped view is served as its batch version's groups plus the speed
//! layer's groups whose group key the batch version lacks ("batch
//! overrides speed", [`BatchPrecedenceExec`]), and then the compiled plan
//! above the aggregate — HAVING, projections, ORDER BY, any outer query —
//! over those merged groups. So the answer at any moment is exactly:
//! precedence over pre-HAVING groups, then HAVING and the rest.
//!
//! A row view is the plain union of its batch rows and its speed rows
//! (every event is on exactly one side, split by commit number); with a
//! declared key, batch rows override speed rows of the same key.
//!
//! The speed layer of a view is brought up to date only when a query
//! scans that view, so one view's trouble (say, a full speed layer) is its
//! own: queries of other views and of streams keep answering. Filters are
//! applied above the merge; only filters on the key columns also go below
//! it, to both sides alike (any other filter could drop a batch group
//! first and let a speed group with the same key through).
//!
//! A HAVING view's version may hold the keys alone of the groups HAVING
//! drops (`VersionRecord::keys`): they are a third input of the merge,
//! which override speed groups and are never output.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::sync::Mutex;

use arrow::array::{ArrayRef, BooleanArray, RecordBatch};
use arrow::compute::filter_record_batch;
use arrow::datatypes::SchemaRef;
use arrow::row::{RowConverter, SortField};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::DFSchema;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::{DataFusionError, Result as DFResult};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{EquivalenceProperties, Partitioning, PhysicalExpr};
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, Distribution, ExecutionPlan, PlanProperties,
    ReplaceChildrenOptions,
};
use futures::{StreamExt, TryStreamExt};

use crate::batch::PartFile;
use crate::catalog::{CompiledView, PlanKind, Serving};
use crate::error::StrataError;
use crate::kappa::checkpoint::read_state;
use crate::log::{parquet_scan, Covered, Snapshot};
use crate::operator::{merge_states, Exec};
use crate::speed::SpeedView;

/// Where a served view's fresh part comes from.
#[derive(Debug, Clone)]
pub enum Fresh {
    /// Nothing: the files are the whole view (Kappa mode's checkpoint output).
    None,
    /// The view's speed layer, brought to `snapshot` after the commits
    /// the batch files cover; `state`: the batch version's partial state
    /// (`serving = 'merge'`).
    Speed {
        speed: Arc<tokio::sync::Mutex<SpeedView>>,
        snapshot: Snapshot,
        batch: Covered,
        state: Vec<PartFile>,
        /// The batch version's keys of the groups HAVING drops.
        keys: Vec<PartFile>,
    },
}

/// A materialized view, served.
#[derive(Debug)]
pub struct ViewTable {
    view: Arc<CompiledView>,
    /// The files served: a batch version (stored layout), or view rows in
    /// Kappa mode.
    files: Vec<PartFile>,
    fresh: Fresh,
    store_url: ObjectStoreUrl,
}

impl ViewTable {
    /// A view served from a batch version (`files`, empty: none) and its
    /// speed layer.
    pub fn lambda(
        view: Arc<CompiledView>,
        files: Vec<PartFile>,
        fresh: Fresh,
        store_url: ObjectStoreUrl,
    ) -> Self {
        Self {
            view,
            files,
            fresh,
            store_url,
        }
    }

    /// A view served from files that hold its rows (Kappa output).
    pub fn rows(view: Arc<CompiledView>, files: Vec<PartFile>, store_url: ObjectStoreUrl) -> Self {
        Self {
            view,
            files,
            fresh: Fresh::None,
            store_url,
        }
    }

    async fn scan_files(
        &self,
        state: &dyn Session,
        schema: &SchemaRef,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        if self.files.is_empty() {
            return Ok(Arc::new(EmptyExec::new(schema.clone())));
        }
        let files = self
            .files
            .iter()
            .map(|f| PartitionedFile::new(f.path.clone(), f.bytes))
            .collect();
        parquet_scan(state, &self.store_url, schema, files, None, None).await
    }

    /// The filters that may go below the merge: on key columns only (all
    /// of them for a keyless row view), and for a grouped view only when
    /// the plan above the groups is row by row.
    fn below_merge(&self, filters: &[Expr]) -> Vec<Expr> {
        let stored = self.view.stored_schema();
        let view = &self.view.view;
        // Output column → stored column, for the columns a filter may use.
        let renames: Vec<(String, String)> = match &self.view.kind {
            // Nothing above the groups can depend on which groups exist
            // but a row-by-row plan (the compiler refuses LIMIT and
            // windows there), so a key filter commutes with it.
            PlanKind::Grouped(g) if view.key.len() == g.group_columns => view
                .key
                .iter()
                .enumerate()
                .map(|(i, k)| (k.clone(), stored.field(i).name().clone()))
                .collect(),
            PlanKind::Grouped(_) => Vec::new(),
            PlanKind::Rows { .. } if view.key.is_empty() => stored
                .fields()
                .iter()
                .map(|f| (f.name().clone(), f.name().clone()))
                .collect(),
            PlanKind::Rows { .. } => view.key.iter().map(|k| (k.clone(), k.clone())).collect(),
        };
        filters
            .iter()
            .filter(|f| {
                f.column_refs()
                    .iter()
                    .all(|c| renames.iter().any(|(from, _)| *from == c.name))
            })
            .map(|f| rename_columns(f.clone().unalias(), &renames))
            .collect()
    }

    /// The view's rows: batch ⊕ speed in the stored layout, then `post`.
    async fn merged(
        &self,
        state: &dyn Session,
        filters: &[Expr],
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        let Fresh::Speed {
            speed,
            snapshot,
            batch,
            state: batch_state,
            keys,
        } = &self.fresh
        else {
            return self.scan_files(state, &self.view.view.schema).await;
        };
        let stored = self.view.stored_schema();
        let exec = Exec {
            task: state.task_ctx(),
            partitions: state.config().target_partitions(),
        };
        if let (Serving::Merge, PlanKind::Grouped(g)) = (self.view.view.serving, &self.view.kind) {
            // Batch state ⊕ speed state per group, then the plan above
            // the aggregate: the view over the whole log at the head. A
            // version made before the view asked for merge has no state;
            // its definition hash differs, so it is not served.
            let store = state.runtime_env().object_store(&self.store_url)?;
            let mut states = Vec::new();
            for f in batch_state {
                states.extend(read_state(&store, f).await?);
            }
            {
                let mut speed = speed.lock().await;
                speed.sync(&exec, snapshot, *batch).await?;
                states.extend(speed.state_rows()?);
            }
            let groups = merge_states(g, &states)?;
            let merged = MemorySourceConfig::try_new_exec(&[vec![groups]], stored, None)?;
            return g.post_over(merged);
        }
        let fresh_rows = {
            let mut speed = speed.lock().await;
            speed.sync(&exec, snapshot, *batch).await?;
            speed.stored()?
        };
        // The dropped groups' keys matter only against speed groups.
        let has_fresh = fresh_rows.iter().any(|b| b.num_rows() > 0);
        // Key filters go below the merge, to both sides (and prune the
        // batch Parquet): they keep or drop whole groups on both alike.
        let predicate = conjunction(self.below_merge(filters))
            .map(|p| state.create_physical_expr(p, &DFSchema::try_from(stored.as_ref().clone())?))
            .transpose()?;
        let batch = filtered(self.scan_files(state, &stored).await?, &predicate)?;
        let fresh = filtered(
            MemorySourceConfig::try_new_exec(&[fresh_rows], stored.clone(), None)?,
            &predicate,
        )?;
        let key = self.view.stored_key();
        let merged: Arc<dyn ExecutionPlan> = if key.is_empty() {
            UnionExec::try_new(vec![batch, fresh])?
        } else {
            let mut exec = BatchPrecedenceExec::try_new(batch, fresh, key, stored.fields().len())?
                .with_key_names(self.view.view.key.clone());
            if has_fresh && !keys.is_empty() {
                let key_schema = Arc::new(stored.project(&self.view.stored_key())?);
                let files = keys
                    .iter()
                    .map(|f| PartitionedFile::new(f.path.clone(), f.bytes))
                    .collect();
                exec = exec.with_shadow(
                    parquet_scan(state, &self.store_url, &key_schema, files, None, None).await?,
                );
            }
            Arc::new(exec)
        };
        match &self.view.kind {
            PlanKind::Grouped(g) => g.post_over(merged),
            PlanKind::Rows { .. } => Ok(merged),
        }
    }
}

#[async_trait]
impl TableProvider for ViewTable {
    fn schema(&self) -> SchemaRef {
        self.view.view.schema.clone()
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
        let plan = self.merged(state, filters).await?;
        let Some(projection) = projection else {
            return Ok(plan);
        };
        let schema = plan.schema();
        let exprs: Vec<(Arc<dyn PhysicalExpr>, String)> = projection
            .iter()
            .map(|&i| {
                let name = schema.field(i).name().clone();
                (
                    Arc::new(Column::new(&name, i)) as Arc<dyn PhysicalExpr>,
                    name,
                )
            })
            .collect();
        Ok(Arc::new(ProjectionExec::try_new(exprs, plan)?))
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DFResult<Vec<TableProviderFilterPushDown>> {
        // Key filters also run below the merge; DataFusion re-checks every
        // filter above: cheap, and right in every case.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }
}

/// `expr` with its columns renamed by `renames` (output → stored),
/// unqualified.
fn rename_columns(expr: Expr, renames: &[(String, String)]) -> Expr {
    use datafusion::common::tree_node::{Transformed, TreeNode};
    expr.transform(|e| match e {
        Expr::Column(c) => {
            let name = renames
                .iter()
                .find(|(from, _)| *from == c.name)
                .map_or(c.name.clone(), |(_, to)| to.clone());
            Ok(Transformed::yes(Expr::Column(
                datafusion::common::Column::new_unqualified(name),
            )))
        }
        other => Ok(Transformed::no(other)),
    })
    .map(|t| t.data)
    .expect("renaming columns cannot fail")
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
    /// Batch keys that are not output (a version's groups HAVING drops):
    /// its rows are the key columns alone, in `key`'s order.
    shadow: Option<Arc<dyn ExecutionPlan>>,
    key: Vec<usize>,
    /// How EXPLAIN names the key (default: the stored column names).
    key_names: Vec<String>,
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
        let key_names = key
            .iter()
            .map(|k| batch.schema().field(*k).name().clone())
            .collect();
        Ok(Self {
            batch,
            speed,
            shadow: None,
            key,
            key_names,
            output_columns,
            schema,
            properties,
        })
    }

    /// Batch keys that override speed rows without being output: `shadow`
    /// has the key columns alone.
    pub fn with_shadow(mut self, shadow: Arc<dyn ExecutionPlan>) -> Self {
        self.shadow = Some(shadow);
        self
    }

    /// Name the key as the view's output does (when it has one per column).
    pub fn with_key_names(mut self, names: Vec<String>) -> Self {
        if names.len() == self.key.len() {
            self.key_names = names;
        }
        self
    }
}

impl DisplayAs for BatchPrecedenceExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "BatchPrecedenceExec: key=[{}], inputs=[batch, speed{}]",
            self.key_names.join(", "),
            if self.shadow.is_some() {
                ", batch keys"
            } else {
                ""
            }
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
        vec![Distribution::SinglePartition; self.children().len()]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![false; self.children().len()]
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        let mut children = vec![&self.batch, &self.speed];
        children.extend(&self.shadow);
        children
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
        let shadow = (children.len() == 3).then(|| children.pop().expect("three children"));
        let speed = children.pop().expect("two children");
        let batch = children.pop().expect("two children");
        let mut exec = Self::try_new(batch, speed, self.key.clone(), self.output_columns)?
            .with_key_names(self.key_names.clone());
        if let Some(shadow) = shadow {
            exec = exec.with_shadow(shadow);
        }
        Ok(Arc::new(exec))
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
        let shadow = self
            .shadow
            .as_ref()
            .map(|s| s.execute(partition, context.clone()))
            .transpose()?;
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
            let mut speed_keys: HashSet<Vec<u8>> = HashSet::new();
            let mut speed_rows = Vec::with_capacity(speed.len());
            for b in &speed {
                let cols: Vec<_> = key.iter().map(|k| b.column(*k).clone()).collect();
                let rows = converter.convert_columns(&cols)?;
                speed_keys.extend(rows.iter().map(|r| r.as_ref().to_vec()));
                speed_rows.push(rows);
            }
            let any_speed = !speed_keys.is_empty();
            let speed_keys = Arc::new(speed_keys); // shared by two closures
                                                   // Keys of the speed side that the batch side also has, marked
                                                   // from the key columns `cols` of batch rows.
            let seen = Arc::new(Mutex::new(HashSet::<Vec<u8>>::new()));
            let mark_seen = {
                let seen = seen.clone();
                move |cols: Vec<ArrayRef>| -> DFResult<()> {
                    if !any_speed {
                        return Ok(());
                    }
                    let mut seen = seen.lock().expect("not poisoned");
                    for r in converter.convert_columns(&cols)?.iter() {
                        if speed_keys.contains(r.as_ref()) {
                            seen.insert(r.as_ref().to_vec());
                        }
                    }
                    Ok(())
                }
            };
            let batch_cols = out_cols.clone();
            let batch_mark = mark_seen.clone();
            let batch_side = batch.map(move |b| {
                let b = b?;
                batch_mark(key.iter().map(|k| b.column(*k).clone()).collect())?;
                Ok(b.project(&batch_cols)?)
            });
            // The batch keys that are not output: they only mark speed
            // keys as seen (read only when the speed side has rows).
            let shadow_side = futures::stream::iter(shadow.filter(|_| any_speed))
                .flatten()
                .try_filter_map(move |b| {
                    futures::future::ready(mark_seen(b.columns().to_vec()).map(|()| None))
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
            Ok::<_, DataFusionError>(batch_side.chain(shadow_side).chain(speed_side))
        })
        .try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }
}

/// A table that cannot be served (a damaged record, a refused plan or
/// stream): it plans with its declared schema, its scans fail with the
/// reason, and every other table keeps answering.
pub struct FailedTable {
    schema: SchemaRef,
    error: Box<dyn Fn() -> StrataError + Send + Sync>,
}

impl fmt::Debug for FailedTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FailedTable({})", (self.error)())
    }
}

impl FailedTable {
    /// Scans fail with `error()`.
    pub fn new(schema: SchemaRef, error: impl Fn() -> StrataError + Send + Sync + 'static) -> Self {
        Self {
            schema,
            error: Box::new(error),
        }
    }

    /// Scans fail with `message`.
    pub fn with_message(schema: SchemaRef, message: String) -> Self {
        Self::new(schema, move || StrataError::Usage(message.clone()))
    }
}

#[async_trait]
impl TableProvider for FailedTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        _projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        Err(DataFusionError::External(Box::new((self.error)())))
    }
}
