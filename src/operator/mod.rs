//! The incremental operator of a compiled view: one implementation, three
//! uses (invariant 3 and 5).
//!
//! ```text
//!   batch:  all files of snapshot S   ─┐
//!   speed:  commits W+1 ..= head       ├─► Operator::apply(files) ─► groups / rows
//!   Kappa:  commits 0, 1, 2, …         ─┘        (state.rs: group table + GroupsAccumulators)
//! ```
//!
//! `apply` runs the view's partial plan (the partial aggregate, or the
//! whole plan of a row view) over exactly the files it is given and merges
//! the result into the state: the cost is the work on those files, and the
//! memory of a grouped view is its groups, never its events. The groups
//! become the view's rows through the compiled `post` plan.

pub mod state;

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::compute::SortOptions;
use arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::config::ExecutionOptions;
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::Statistics;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::physical_plan::parquet::CachedParquetFileReaderFactory;
use datafusion::datasource::physical_plan::{
    FileGroup, FileScanConfig, FileScanConfigBuilder, FileSource, ParquetSource,
};
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::utils::collect_columns;
use datafusion::physical_expr::{LexOrdering, PhysicalExpr, PhysicalSortExpr};
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::display::DisplayableExecutionPlan;
use datafusion::physical_plan::execution_plan::reset_plan_states;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    collect, collect_partitioned, ExecutionPlan, ExecutionPlanProperties, Partitioning,
};
use datafusion::prelude::SessionContext;
use futures::StreamExt;

use crate::catalog::{CompiledView, GroupedPlan, PlanKind, Serving};
use crate::error::Result;
use crate::log::{file_path, FileEntry};
use state::GroupedState;

/// Where plans run: a task context and how many partitions to spread files over.
#[derive(Clone)]
pub struct Exec {
    pub task: Arc<TaskContext>,
    pub partitions: usize,
}

impl Exec {
    pub fn of(ctx: &SessionContext) -> Self {
        Self {
            task: ctx.task_ctx(),
            partitions: ctx.state().config().target_partitions(),
        }
    }
}

/// The state of one view's operator.
pub enum OperatorState {
    Grouped(GroupedState),
    /// A row view's rows since the operator started (or was drained).
    Rows(Vec<RecordBatch>),
}

/// One view's incremental operator.
pub struct Operator {
    pub view: Arc<CompiledView>,
    pub state: OperatorState,
}

impl std::fmt::Debug for Operator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operator")
            .field("view", &self.view.view.name)
            .field("bytes", &self.size())
            .finish()
    }
}

impl Operator {
    /// An operator with empty state.
    pub fn new(view: Arc<CompiledView>) -> Result<Self> {
        let state = match &view.kind {
            PlanKind::Grouped(g) => OperatorState::Grouped(GroupedState::new(g)?),
            PlanKind::Rows { .. } => OperatorState::Rows(Vec::new()),
        };
        Ok(Self { view, state })
    }

    /// Feed `files` of the view's stream (one commit's, or a snapshot's).
    pub async fn apply(&mut self, exec: &Exec, files: &[FileEntry]) -> Result<()> {
        let view = self.view.clone();
        match (&self.view.kind, &mut self.state) {
            (PlanKind::Grouped(g), OperatorState::Grouped(state)) => {
                for b in run_on_files(exec, &g.partial, &view, files).await? {
                    state.merge(&b)?;
                }
            }
            (PlanKind::Rows { plan }, OperatorState::Rows(rows)) => {
                // One batch per apply, of exactly its rows: a selective
                // filter leaves many small batches, each with the capacity
                // of a whole one.
                let out = run_on_files(exec, plan, &view, files).await?;
                let out: Vec<RecordBatch> = out.into_iter().filter(|b| b.num_rows() > 0).collect();
                if let Some(first) = out.first() {
                    let all = arrow::compute::concat_batches(&first.schema(), &out)?;
                    rows.push(owned_views(all)?);
                }
            }
            _ => unreachable!("the state is made for the plan's kind"),
        }
        Ok(())
    }

    /// Merge state rows (a checkpoint, or a batch version's partial state).
    pub fn merge_state(&mut self, batch: &RecordBatch) -> Result<()> {
        match &mut self.state {
            OperatorState::Grouped(s) => s.merge(batch),
            OperatorState::Rows(rows) => {
                rows.push(batch.clone());
                Ok(())
            }
        }
    }

    /// Bytes held.
    pub fn size(&self) -> usize {
        match &self.state {
            OperatorState::Grouped(s) => s.size(),
            OperatorState::Rows(rows) => rows.iter().map(RecordBatch::get_array_memory_size).sum(),
        }
    }

    /// Groups of a grouped view (or rows of a row view) held.
    pub fn len(&self) -> usize {
        match &self.state {
            OperatorState::Grouped(s) => s.len(),
            OperatorState::Rows(rows) => rows.iter().map(RecordBatch::num_rows).sum(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A grouped view's partial state rows (group columns, then each
    /// aggregate's state fields), the state left intact; None for a row view.
    pub fn state_rows(&mut self) -> Result<Option<RecordBatch>> {
        match &mut self.state {
            OperatorState::Grouped(s) => Ok(Some(s.snapshot()?)),
            OperatorState::Rows(_) => Ok(None),
        }
    }

    /// What the operator holds, in the layout a batch version stores: the
    /// final groups (grouped), or the rows (row view).
    pub fn stored(&mut self) -> Result<Vec<RecordBatch>> {
        match (&self.view.kind, &mut self.state) {
            (PlanKind::Grouped(_), OperatorState::Grouped(state)) => {
                Ok(vec![state.snapshot_and_evaluate()?.1])
            }
            (_, OperatorState::Rows(rows)) => Ok(rows.clone()),
            _ => unreachable!("the state is made for the plan's kind"),
        }
    }
}

/// `plan` with every scan reading exactly `files` of `stream`, spread over
/// `partitions` file groups.
///
/// A plan is compiled once, before any store is known: its Parquet
/// readers are re-bound here to the store of the session that runs it.
fn rebind(
    plan: &Arc<dyn ExecutionPlan>,
    view: &CompiledView,
    files: &[FileEntry],
    exec: &Exec,
) -> Result<Arc<dyn ExecutionPlan>> {
    let partitions = exec.partitions;
    let stream = view.view.stream.as_str();
    // Each file's event-time and column ranges, from its commit record, as
    // DataFusion file statistics: a scan whose filter bounds a ranged
    // column skips the files outside it without opening them.
    // Only the columns the scan's pruning predicate names are read back
    // from the records: this runs for every commit in the speed layer and
    // Kappa.
    let mut scan = None;
    let _ = plan.apply(|node| {
        if let Some(cfg) = node
            .downcast_ref::<DataSourceExec>()
            .and_then(|ds| ds.data_source().downcast_ref::<FileScanConfig>())
        {
            let filtered: HashSet<String> = FileSource::filter(cfg.file_source().as_ref())
                .map(|p| {
                    collect_columns(&p)
                        .into_iter()
                        .map(|c| c.name().to_string())
                        .collect()
                })
                .unwrap_or_default();
            scan = Some((cfg.file_schema().clone(), filtered));
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    let files: Vec<PartitionedFile> = files
        .iter()
        .map(|f| {
            let file = PartitionedFile::new(file_path(stream, f).to_string(), f.bytes);
            match &scan {
                Some((s, filtered)) => file.with_statistics(Arc::new(file_statistics(
                    s,
                    filtered,
                    &view.event_time,
                    f,
                ))),
                None => file,
            }
        })
        .collect();
    let file_groups: Vec<FileGroup> = contiguous_groups(files, |f| f.object_meta.size, partitions)
        .into_iter()
        .map(FileGroup::new)
        .collect();
    Ok(plan
        .clone()
        .transform_up(|node| {
            // The plan was compiled over a scan of no files, one partition,
            // so the optimizer spread it round-robin. Over several file
            // groups that is a hop, and one whose output order depends on
            // thread timing (batches of all groups share each channel):
            // the operator's merge order must not. Over one file group it
            // stays (batch i goes to partition i mod n, a fixed order), with
            // n the partitions this run has, not the cores of the machine
            // that compiled the plan.
            if let Some(r) = node.downcast_ref::<RepartitionExec>() {
                let input = r.input();
                if let Partitioning::RoundRobinBatch(n) = r.partitioning() {
                    if input.output_partitioning().partition_count() > 1 || partitions <= 1 {
                        return Ok(Transformed::yes(input.clone()));
                    }
                    if *n != partitions {
                        return Ok(Transformed::yes(Arc::new(RepartitionExec::try_new(
                            input.clone(),
                            Partitioning::RoundRobinBatch(partitions),
                        )?)));
                    }
                }
            }
            let Some(ds) = node.downcast_ref::<DataSourceExec>() else {
                return Ok(Transformed::no(node));
            };
            let Some(cfg) = ds.data_source().downcast_ref::<FileScanConfig>() else {
                return Ok(Transformed::no(node));
            };
            let mut builder =
                FileScanConfigBuilder::from(cfg.clone()).with_file_groups(file_groups.clone());
            if let Some(parquet) = cfg.file_source().downcast_ref::<ParquetSource>() {
                let runtime = exec.task.runtime_env();
                let store = runtime.object_store(&cfg.object_store_url)?;
                let cache = runtime.cache_manager.get_file_metadata_cache();
                builder = builder.with_source(Arc::new(
                    parquet.clone().with_parquet_file_reader_factory(Arc::new(
                        CachedParquetFileReaderFactory::new(store, cache),
                    )),
                ));
            }
            let cfg = builder.build();
            Ok(Transformed::yes(
                DataSourceExec::from_data_source(cfg) as Arc<dyn ExecutionPlan>
            ))
        })?
        .data)
}

/// A log file's statistics from its commit record, for the files of a
/// scan's `schema`: its rows, and the range of each column in `filtered`
/// (those its pruning predicate names): the event time's, or the column's. A range whose minimum is its maximum gets
/// no null count: DataFusion would read that column as the value, and a
/// file's rows must come from the file alone.
fn file_statistics(
    schema: &SchemaRef,
    filtered: &HashSet<String>,
    event_time: &str,
    f: &FileEntry,
) -> Statistics {
    let mut statistics = Statistics::new_unknown(schema);
    if let Ok(rows) = usize::try_from(f.rows) {
        statistics.num_rows = Precision::Exact(rows);
    }
    for (field, column) in schema
        .fields()
        .iter()
        .zip(&mut statistics.column_statistics)
        .filter(|(field, _)| filtered.contains(field.name()))
    {
        let Some((min, max)) = f.range(field.name(), field.data_type(), event_time) else {
            continue;
        };
        // The event time is NOT NULL; other columns' nulls are not counted.
        let event = field.name() == event_time && f.event_time_range(event_time).is_some();
        column.null_count = if min != max && event {
            Precision::Exact(0)
        } else {
            Precision::Absent
        };
        column.min_value = Precision::Exact(min);
        column.max_value = Precision::Exact(max);
    }
    statistics
}

/// `files` cut into at most `partitions` runs of consecutive files, of
/// about equal bytes, in order; every run holds at least one file.
///
/// Runs of consecutive files (as DataFusion's `split_files` cuts them, but
/// balanced by bytes and never splitting a file), not files dealt
/// round-robin: the log's files are in commit
/// and partition (event-time) order, so a run covers one span of time, and
/// keys that follow time (an order id, a day) land in one partition's
/// aggregate instead of in every partition's. Reading the partitions one
/// after another reads the files in log order.
fn contiguous_groups<T>(
    files: Vec<T>,
    bytes: impl Fn(&T) -> u64,
    partitions: usize,
) -> Vec<Vec<T>> {
    let groups = partitions.clamp(1, files.len().max(1));
    let total: u64 = files.iter().map(|f| bytes(f).max(1)).sum();
    let mut out: Vec<Vec<T>> = Vec::with_capacity(groups);
    let mut current = Vec::new();
    let mut seen = 0u64;
    let count = files.len();
    for (i, f) in files.into_iter().enumerate() {
        seen += bytes(&f).max(1);
        current.push(f);
        let left_files = count - i - 1;
        let left_groups = groups - out.len() - 1;
        // Cut when this run has its share of the bytes, or when the files
        // left are just enough to give every remaining run one.
        let share = (total as u128 * (out.len() as u128 + 1) / groups as u128) as u64;
        if left_groups > 0 && (seen >= share || left_files == left_groups) {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() || out.is_empty() {
        out.push(current);
    }
    out
}

/// What a batch version of `view` stores over all of `files` (a batch
/// over a snapshot) — its groups (grouped) or rows (row view) — as a stream
/// sorted in
/// the canonical order (the stored key, then every column; ascending,
/// nulls last), computed as DataFusion computes a query: the plan on every
/// file group side by side, for a grouped view the partial aggregate, a
/// hash repartition on the group key and the final aggregate per
/// partition, then a sort per partition and a merge of the sorted
/// partitions. The order is total, so the result does not depend on which
/// thread did what.
///
/// `None` when the result could depend on thread timing — a floating-point
/// aggregate state, whose merge order would change its rounding — and for
/// `serving = 'merge'` views, which store the partial state too: the
/// caller runs the operator, in its fixed merge order.
pub async fn sorted_version(
    exec: &Exec,
    view: &CompiledView,
    files: &[FileEntry],
) -> Result<Option<SendableRecordBatchStream>> {
    if files.is_empty() {
        return Ok(None);
    }
    // Whether the partial aggregate may give up sooner than DataFusion's
    // default: only where every aggregate has its own groups accumulator,
    // which turns rows into states column by column. The others would
    // build an accumulator per row.
    let mut skip_sooner = false;
    let plan = match &view.kind {
        PlanKind::Rows { plan } => reset_plan_states(rebind(plan, view, files, exec)?)?,
        PlanKind::Grouped(g) => {
            let floats = g
                .state_schema()
                .fields()
                .iter()
                .any(|f| holds_float(f.data_type()));
            if floats || view.view.serving == Serving::Merge {
                return Ok(None);
            }
            let partial = reset_plan_states(rebind(&g.partial, view, files, exec)?)?;
            let Some(p) = partial.downcast_ref::<AggregateExec>() else {
                return Ok(None);
            };
            skip_sooner = p
                .aggr_expr()
                .iter()
                .all(|a| a.groups_accumulator_supported());
            let schema = partial.schema();
            let keys: Vec<Arc<dyn PhysicalExpr>> = (0..g.group_columns)
                .map(|i| Arc::new(Column::new(schema.field(i).name(), i)) as Arc<dyn PhysicalExpr>)
                .collect();
            let repartitioned = Arc::new(RepartitionExec::try_new(
                partial.clone(),
                Partitioning::Hash(keys, exec.partitions.max(1)),
            )?);
            Arc::new(AggregateExec::try_new(
                AggregateMode::FinalPartitioned,
                p.group_expr().as_final(),
                p.aggr_expr().to_vec(),
                p.filter_expr().to_vec(),
                repartitioned,
                p.input_schema(),
            )?)
        }
    };
    let schema = plan.schema();
    let order = view.stored_order().into_iter().map(|i| PhysicalSortExpr {
        expr: Arc::new(Column::new(schema.field(i).name(), i)),
        options: SortOptions {
            descending: false,
            nulls_first: false,
        },
    });
    let Some(order) = LexOrdering::new(order) else {
        return Ok(None);
    };
    let sorted = Arc::new(SortExec::new(order.clone(), plan).with_preserve_partitioning(true));
    let merged: Arc<dyn ExecutionPlan> = Arc::new(SortPreservingMergeExec::new(order, sorted));
    let stream = merged.execute(0, version_task(&exec.task, skip_sooner))?;
    if !tracing::enabled!(tracing::Level::TRACE) {
        return Ok(Some(stream));
    }
    // As EXPLAIN ANALYZE: the plan with each operator's metrics (rows,
    // compute time), once the last row has been read.
    let name = view.view.name.clone();
    let after = futures::stream::once(async move {
        tracing::trace!(
            "batch plan of {name}, run:\n{}",
            DisplayableExecutionPlan::with_metrics(merged.as_ref()).indent(true)
        );
        None
    })
    .filter_map(|none: Option<datafusion::error::Result<RecordBatch>>| async move { none });
    Ok(Some(Box::pin(RecordBatchStreamAdapter::new(
        schema.clone(),
        stream.chain(after),
    ))))
}

/// Up to this many bytes of rows, a partition's sort concatenates them and
/// sorts them at once. Bounded: the concatenation is a second copy of the
/// rows while it is sorted, and one `Utf8`/`Binary` column cannot exceed
/// 2 GiB in one array.
const SORT_IN_PLACE_BYTES: usize = 256 * 1024 * 1024;

/// A version's partial aggregate stops aggregating, and passes the rest of
/// its rows on to the final aggregate as one-row states, once it has seen
/// 100k rows and holds more than this many groups per row seen
/// (DataFusion's default: 0.8). A partial aggregate pays for itself only
/// when it shrinks its input a lot: for a key of many groups each
/// partition's partial table holds nearly every group while each final
/// table holds a share, and the partial pass is a second, slower pass over
/// the rows. Measured (BENCHMARKS.md, session 10): the TPC-H views keyed
/// by order, at 0.5–0.6 groups per row, computed in about 0.77 of the time;
/// the views at 0.1 or fewer do not skip. Between 0.1 and 0.5 no view
/// was measured.
const SKIP_PARTIAL_AGGREGATION_RATIO: f64 = 0.3;

/// `task` as a version computes with: each partition's sort done in one
/// piece up to [`SORT_IN_PLACE_BYTES`] (its rows concatenated and sorted
/// at once, instead of every incoming batch sorted alone and the sorted
/// batches merged, DataFusion's way above 1 MiB), and, if `skip_sooner`,
/// the partial aggregate skipped above [`SKIP_PARTIAL_AGGREGATION_RATIO`].
fn version_task(task: &Arc<TaskContext>, skip_sooner: bool) -> Arc<TaskContext> {
    task_with(task, |options| {
        options.sort_in_place_threshold_bytes = SORT_IN_PLACE_BYTES;
        if skip_sooner {
            options.skip_partial_aggregation_probe_ratio_threshold = SKIP_PARTIAL_AGGREGATION_RATIO;
        }
    })
}

/// `task` with `change` made to its execution options.
fn task_with(
    task: &Arc<TaskContext>,
    change: impl FnOnce(&mut ExecutionOptions),
) -> Arc<TaskContext> {
    let mut config = task.session_config().clone();
    change(&mut config.options_mut().execution);
    Arc::new(TaskContext::new(
        task.task_id(),
        task.session_id(),
        config,
        task.scalar_functions().clone(),
        task.higher_order_functions().clone(),
        task.aggregate_functions().clone(),
        task.window_functions().clone(),
        task.runtime_env(),
    ))
}

/// `batch` with its string and binary views holding only their own bytes.
/// Views straight from the Parquet reader point into whole decoded pages;
/// rows a row view keeps (speed, Kappa) would keep those pages alive, and
/// count them once per batch against `speed_max_bytes`.
fn owned_views(batch: RecordBatch) -> Result<RecordBatch> {
    use arrow::array::{Array, AsArray};
    if !batch
        .columns()
        .iter()
        .any(|c| matches!(c.data_type(), DataType::Utf8View | DataType::BinaryView))
    {
        return Ok(batch);
    }
    let columns = batch
        .columns()
        .iter()
        .map(|c| match c.data_type() {
            DataType::Utf8View => Arc::new(c.as_string_view().gc()) as Arc<dyn Array>,
            DataType::BinaryView => Arc::new(c.as_binary_view().gc()) as Arc<dyn Array>,
            _ => c.clone(),
        })
        .collect();
    Ok(RecordBatch::try_new(batch.schema(), columns)?)
}

/// Whether values of `t` hold a floating-point number anywhere (a list of
/// floats, say a `sum(DISTINCT f)` state, counts): adding them up in
/// another order can round differently.
fn holds_float(t: &DataType) -> bool {
    match t {
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::ListView(f)
        | DataType::LargeListView(f)
        | DataType::FixedSizeList(f, _)
        | DataType::Map(f, _) => holds_float(f.data_type()),
        DataType::Struct(fields) => fields.iter().any(|f| holds_float(f.data_type())),
        DataType::Union(fields, _) => fields.iter().any(|(_, f)| holds_float(f.data_type())),
        DataType::Dictionary(_, v) => holds_float(v),
        DataType::RunEndEncoded(_, v) => holds_float(v.data_type()),
        other => other.is_floating(),
    }
}

/// Run `plan` (one of `view`'s) over `files` of its stream and collect its
/// output.
pub async fn run_on_files(
    exec: &Exec,
    plan: &Arc<dyn ExecutionPlan>,
    view: &CompiledView,
    files: &[FileEntry],
) -> Result<Vec<RecordBatch>> {
    if files.is_empty() {
        return Ok(Vec::new());
    }
    // Fresh operator state per run: a compiled plan is run again and again.
    let bound = reset_plan_states(rebind(plan, view, files, exec)?)?;
    // Partition by partition, in order: the merge order (and so any
    // floating-point rounding) does not depend on thread timing. So each
    // partition reads its own files: DataFusion would let an idle one take
    // a sibling's, and which rows a partition holds would depend on timing.
    let task = task_with(&exec.task, |options| {
        options.enable_file_stream_work_stealing = false;
    });
    Ok(collect_partitioned(bound, task)
        .await?
        .into_iter()
        .flatten()
        .collect())
}

/// The view's rows from `groups` (schema: the final aggregate's): the plan
/// above the aggregate, run over them.
pub async fn run_post(
    exec: &Exec,
    g: &GroupedPlan,
    groups: Vec<RecordBatch>,
) -> Result<Vec<RecordBatch>> {
    // Groups read back from a version's Parquet carry its field metadata:
    // take the columns under the aggregate's own schema.
    let groups = groups
        .into_iter()
        .map(|b| RecordBatch::try_new(g.final_schema.clone(), b.columns().to_vec()))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let source = MemorySourceConfig::try_new_exec(&[groups], g.final_schema.clone(), None)?;
    Ok(collect(g.post_over(source)?, exec.task.clone()).await?)
}

/// The groups (stored layout) of `states`, partial state rows of `g`
/// merged per group key: batch state ⊕ speed state.
pub fn merge_states(g: &GroupedPlan, states: &[RecordBatch]) -> Result<RecordBatch> {
    let all = arrow::compute::concat_batches(&g.state_schema(), states)?;
    GroupedState::evaluate(g, &all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::StringViewArray;
    use arrow::datatypes::{Field, Fields, Schema};

    #[test]
    fn file_groups_are_runs_of_consecutive_files() {
        let groups = |sizes: &[u64], n| contiguous_groups(sizes.to_vec(), |b| *b, n);
        // In order, every file once, every run non-empty.
        for (sizes, n) in [
            (&[5u64, 5, 5, 5][..], 2),
            (&[1, 1, 1, 100][..], 2),
            (&[100, 1, 1, 1][..], 3),
            (&[0, 0, 0][..], 2),
            (&[7][..], 4),
            (&[3, 9, 2, 8, 1, 1, 6][..], 3),
        ] {
            let g = groups(sizes, n);
            assert_eq!(g.len(), n.min(sizes.len()), "{sizes:?} in {n}");
            assert!(g.iter().all(|r| !r.is_empty()), "{g:?}");
            assert_eq!(g.concat(), sizes, "{g:?}");
        }
        // Runs of about equal bytes.
        assert_eq!(groups(&[5, 5, 5, 5], 2), [vec![5, 5], vec![5, 5]]);
        assert_eq!(groups(&[100, 1, 1, 1], 2), [vec![100], vec![1, 1, 1]]);
        assert_eq!(groups(&[1, 1, 1, 100], 2), [vec![1, 1, 1], vec![100]]);
        assert!(groups(&[], 2).iter().all(|r| r.is_empty()));
    }

    #[test]
    fn a_float_anywhere_in_a_state_counts() {
        let item = |t: DataType| Arc::new(Field::new("item", t, true));
        assert!(holds_float(&DataType::Float64));
        // sum(DISTINCT f): the state is the list of distinct values.
        assert!(holds_float(&DataType::List(item(DataType::Float64))));
        assert!(holds_float(&DataType::Struct(Fields::from(vec![
            Field::new("n", DataType::Int64, false),
            Field::new("x", DataType::Float32, true),
        ]))));
        assert!(!holds_float(&DataType::List(item(DataType::Int64))));
        assert!(!holds_float(&DataType::Decimal128(12, 2)));
    }

    #[test]
    fn kept_rows_own_their_strings() {
        let long = "a string longer than twelve bytes";
        let all = StringViewArray::from_iter_values((0..1000).map(|i| format!("{long} {i}")));
        // A slice of one row still points at the buffer of all 1000.
        let one = all.slice(7, 1);
        let schema = Arc::new(Schema::new(vec![Field::new(
            "s",
            DataType::Utf8View,
            false,
        )]));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(one)]).unwrap();
        let before = batch.get_array_memory_size();
        let owned = owned_views(batch.clone()).unwrap();
        assert_eq!(owned.column(0).as_ref(), batch.column(0).as_ref());
        assert!(
            owned.get_array_memory_size() * 10 < before,
            "{} of {before} bytes",
            owned.get_array_memory_size()
        );
    }
}
