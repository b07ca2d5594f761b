//! Compiling a view for Kappa: its own DataFusion physical plan, cut at the
//! aggregate into the part that runs on one commit's files (the partial
//! aggregate, or the whole plan for a row-by-row view) and the part that
//! turns merged state into the view's rows (projection, HAVING, …).
//!
//! ```text
//!   Projection / HAVING          ◄── post: runs on the final groups
//!     Aggregate (Final)          ◄── replaced by the incremental state
//!       Aggregate (Partial)      ◄── partial: runs per commit, yields state rows
//!         Filter / Projection
//!           DataSourceExec       ◄── re-bound to the commit's files
//! ```

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfig, FileScanConfigBuilder};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result as DFResult;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::SessionStateBuilder;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::{collect, collect_partitioned, ExecutionPlan};
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::catalog::{StreamDef, ViewDef};
use crate::error::{Result, StrataError};
use crate::log::{file_path, parquet_scan, FileEntry};
use crate::STORE_URL;
use object_store::ObjectStore;

/// Aggregates whose partial states merge to exactly the result a single
/// pass gives, whatever the commit split (floating-point sums up to
/// rounding: `verify` compares float columns with a tolerance).
const MERGEABLE: &[&str] = &[
    "count",
    "sum",
    "min",
    "max",
    "avg",
    "mean",
    "bool_and",
    "bool_or",
    "bit_and",
    "bit_or",
    "bit_xor",
    "approx_distinct",
    "var",
    "var_samp",
    "var_pop",
    "var_population",
    "stddev",
    "stddev_samp",
    "stddev_pop",
    "covar",
    "covar_samp",
    "covar_pop",
    "corr",
    "regr_slope",
    "regr_intercept",
    "regr_count",
    "regr_r2",
    "regr_avgx",
    "regr_avgy",
    "regr_sxx",
    "regr_syy",
    "regr_sxy",
    "first_value",
    "last_value",
];

/// Aggregates whose state holds every value seen (per group): exact, but
/// their state grows with the history, not with the number of groups.
const HOLISTIC: &[&str] = &["median", "array_agg", "string_agg", "nth_value"];

/// A view compiled for incremental maintenance.
#[derive(Debug, Clone)]
pub struct KappaPlan {
    pub view: ViewDef,
    pub kind: PlanKind,
    /// Aggregates (by name) that keep every value in their state.
    pub holistic: Vec<String>,
    /// Identifies the layout of checkpointed state (stream schema, state
    /// schema, DataFusion version): a checkpoint with another one is not
    /// restored.
    pub fingerprint: String,
}

fn fingerprint(stream: &StreamDef, schema: &SchemaRef) -> String {
    use sha2::{Digest, Sha256};
    let text = format!(
        "{}|{schema:?}|datafusion {}",
        stream.schema_fingerprint(),
        datafusion::DATAFUSION_VERSION
    );
    hex::encode(Sha256::digest(text.as_bytes()))[..16].to_string()
}

#[derive(Debug, Clone)]
pub enum PlanKind {
    /// No aggregation: each commit's rows of the view are final on their
    /// own; the output is their union.
    Rows { plan: Arc<dyn ExecutionPlan> },
    /// Grouped: per commit the partial aggregate yields state rows (group
    /// columns, then each aggregate's state fields); merged state becomes
    /// rows through `post`.
    Grouped(Box<GroupedPlan>),
}

#[derive(Debug, Clone)]
pub struct GroupedPlan {
    /// Partial aggregate over the stream scan.
    pub partial: Arc<dyn ExecutionPlan>,
    /// Number of group columns at the front of the partial output.
    pub group_columns: usize,
    pub aggregates: Vec<Arc<AggregateFunctionExpr>>,
    /// Schema of the final aggregate (group columns, then results).
    pub final_schema: SchemaRef,
    /// The view's plan with the final aggregate in it (replaced by the
    /// merged groups at evaluation).
    pub post: Arc<dyn ExecutionPlan>,
    /// The final aggregate node inside `post`.
    pub top: Arc<dyn ExecutionPlan>,
}

impl GroupedPlan {
    /// The partial output schema (also the layout of checkpointed state).
    pub fn state_schema(&self) -> SchemaRef {
        self.partial.schema()
    }
}

/// A session for Kappa plans: COUNT(DISTINCT …) stays one aggregate with a
/// distinct-set state instead of being rewritten into two nested
/// aggregations (which could not be maintained commit by commit).
pub fn kappa_context(store: &Arc<dyn ObjectStore>) -> Result<SessionContext> {
    let state = SessionStateBuilder::new()
        .with_config(SessionConfig::new())
        .with_default_features()
        .build();
    let rules: Vec<_> = state
        .optimizers()
        .iter()
        .filter(|r| r.name() != "single_distinct_aggregation_to_group_by")
        .cloned()
        .collect();
    let state = SessionStateBuilder::new_from_existing(state)
        .with_optimizer_rules(rules)
        .build();
    let ctx = SessionContext::new_with_state(state);
    ctx.register_object_store(ObjectStoreUrl::parse(STORE_URL)?.as_ref(), store.clone());
    Ok(ctx)
}

/// A table that plans as a scan of no files: the scan is re-bound to each
/// commit's files when it runs.
#[derive(Debug)]
struct CommitScanTable {
    schema: SchemaRef,
    url: ObjectStoreUrl,
}

#[async_trait]
impl TableProvider for CommitScanTable {
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
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        parquet_scan(
            state,
            &self.url,
            &self.schema,
            Vec::new(),
            projection.cloned(),
            None,
        )
        .await
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DFResult<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }
}

fn refused(view: &ViewDef, why: String) -> StrataError {
    StrataError::definition(
        &view.defined_at.path,
        view.defined_at.line,
        format!("view '{}' cannot be maintained by Kappa: {why}", view.name),
    )
}

/// Operators that must not sit between the scan and the state: each would
/// compute something over one commit that is only right over the history.
fn stateful(plan: &Arc<dyn ExecutionPlan>) -> Option<String> {
    let mut found = None;
    let _ = plan.apply(|node| {
        let name = node.name();
        let bad = name.contains("Aggregate")
            || name.contains("Window")
            || name.contains("Join")
            || name.contains("Limit")
            || node
                .downcast_ref::<SortExec>()
                .is_some_and(|s| s.fetch().is_some());
        if bad {
            found = Some(name.to_string());
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

/// Compile `view` (a materialized view over `stream`). Refuses, naming the
/// function or operator, what cannot be maintained incrementally.
pub async fn compile(
    ctx: &SessionContext,
    view: &ViewDef,
    stream: &StreamDef,
) -> Result<KappaPlan> {
    let url = ObjectStoreUrl::parse(STORE_URL)?;
    ctx.deregister_table(stream.name.as_str())?;
    ctx.register_table(
        stream.name.as_str(),
        Arc::new(CommitScanTable {
            schema: stream.schema.clone(),
            url,
        }),
    )?;
    let plan = ctx.sql(&view.query).await?.create_physical_plan().await?;

    // The topmost aggregate.
    let mut top: Option<Arc<dyn ExecutionPlan>> = None;
    plan.apply(|node| {
        if node.downcast_ref::<AggregateExec>().is_some() {
            top = Some(node.clone());
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    let Some(top) = top else {
        if let Some(op) = stateful(&plan) {
            return Err(refused(view, format!("its plan has {op}")));
        }
        return Ok(KappaPlan {
            view: view.clone(),
            fingerprint: fingerprint(stream, &plan.schema()),
            kind: PlanKind::Rows { plan },
            holistic: Vec::new(),
        });
    };
    // Nothing but the aggregate may read the stream (e.g. not a UNION of
    // it with another branch: that branch would see no commit).
    let placeholder: Arc<dyn ExecutionPlan> = Arc::new(EmptyExec::new(top.schema()));
    let rest = replace_node(&plan, &top, placeholder)?;
    if rest.exists(|n| Ok(n.downcast_ref::<DataSourceExec>().is_some()))? {
        return Err(refused(
            view,
            "it reads the stream outside its one GROUP BY (e.g. a UNION with another branch)"
                .into(),
        ));
    }
    let agg = top.downcast_ref::<AggregateExec>().expect("found above");
    // The partial aggregate: below a Final one, or built from a Single one.
    let partial: Arc<dyn ExecutionPlan> = match agg.mode() {
        AggregateMode::Final | AggregateMode::FinalPartitioned => {
            let mut found = None;
            agg.input().apply(|node| {
                if let Some(a) = node.downcast_ref::<AggregateExec>() {
                    if *a.mode() == AggregateMode::Partial {
                        found = Some(node.clone());
                    }
                    return Ok(TreeNodeRecursion::Stop);
                }
                Ok(TreeNodeRecursion::Continue)
            })?;
            found.ok_or_else(|| refused(view, "its aggregate has no partial stage".into()))?
        }
        AggregateMode::Single | AggregateMode::SinglePartitioned => {
            Arc::new(AggregateExec::try_new(
                AggregateMode::Partial,
                agg.group_expr().clone(),
                agg.aggr_expr().to_vec(),
                agg.filter_expr().to_vec(),
                agg.input().clone(),
                agg.input_schema(),
            )?)
        }
        other => {
            return Err(refused(
                view,
                format!("unexpected aggregate mode {other:?}"),
            ))
        }
    };
    let p = partial
        .downcast_ref::<AggregateExec>()
        .expect("an aggregate");
    if p.group_expr().has_grouping_set() {
        return Err(refused(
            view,
            "GROUPING SETS, CUBE and ROLLUP are not maintained incrementally".into(),
        ));
    }
    if let Some(op) = stateful(p.input()) {
        return Err(refused(
            view,
            format!("it aggregates in more than one stage ({op} below the GROUP BY)"),
        ));
    }
    let mut holistic = Vec::new();
    for a in p.aggr_expr() {
        let name = a.fun().name().to_lowercase();
        if HOLISTIC.contains(&name.as_str()) || a.is_distinct() {
            holistic.push(if a.is_distinct() {
                format!("{name}(DISTINCT)")
            } else {
                name
            });
        } else if !MERGEABLE.contains(&name.as_str()) {
            return Err(refused(
                view,
                format!(
                    "the aggregate {name}() is not known to merge exactly across commits (approximate percentiles depend on merge order); use it in a plain CREATE VIEW, or in lambda mode"
                ),
            ));
        }
    }
    Ok(KappaPlan {
        view: view.clone(),
        fingerprint: fingerprint(stream, &partial.schema()),
        kind: PlanKind::Grouped(Box::new(GroupedPlan {
            group_columns: p.group_expr().expr().len(),
            aggregates: p.aggr_expr().to_vec(),
            final_schema: top.schema(),
            partial,
            post: plan,
            top,
        })),
        holistic,
    })
}

/// `plan` with every scan reading exactly `files` of `stream`.
fn rebind(
    plan: &Arc<dyn ExecutionPlan>,
    stream: &str,
    files: &[FileEntry],
    partitions: usize,
) -> Result<Arc<dyn ExecutionPlan>> {
    let files: Vec<PartitionedFile> = files
        .iter()
        .map(|f| PartitionedFile::new(file_path(stream, f).to_string(), f.bytes))
        .collect();
    let groups = partitions.clamp(1, files.len().max(1));
    let mut file_groups: Vec<Vec<PartitionedFile>> = vec![Vec::new(); groups];
    for (i, f) in files.into_iter().enumerate() {
        file_groups[i % groups].push(f);
    }
    let file_groups: Vec<FileGroup> = file_groups.into_iter().map(FileGroup::new).collect();
    Ok(plan
        .clone()
        .transform_up(|node| {
            let Some(ds) = node.downcast_ref::<DataSourceExec>() else {
                return Ok(Transformed::no(node));
            };
            let Some(cfg) = ds.data_source().downcast_ref::<FileScanConfig>() else {
                return Ok(Transformed::no(node));
            };
            let cfg = FileScanConfigBuilder::from(cfg.clone())
                .with_file_groups(file_groups.clone())
                .build();
            Ok(Transformed::yes(
                DataSourceExec::from_data_source(cfg) as Arc<dyn ExecutionPlan>
            ))
        })?
        .data)
}

/// Run `plan` over one commit's `files` and collect its output.
pub async fn run_on_files(
    ctx: &SessionContext,
    plan: &Arc<dyn ExecutionPlan>,
    stream: &str,
    files: &[FileEntry],
) -> Result<Vec<RecordBatch>> {
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let partitions = ctx.state().config().target_partitions();
    let bound = rebind(plan, stream, files, partitions)?;
    // Partition by partition, in order: the merge order (and so any
    // floating-point rounding) does not depend on thread timing.
    Ok(collect_partitioned(bound, ctx.task_ctx())
        .await?
        .into_iter()
        .flatten()
        .collect())
}

/// The view's rows from the final groups: the plan above the aggregate run
/// over `groups` (schema: the final aggregate's).
pub async fn run_post(
    ctx: &SessionContext,
    g: &GroupedPlan,
    groups: RecordBatch,
) -> Result<Vec<RecordBatch>> {
    let source = MemorySourceConfig::try_new_exec(&[vec![groups]], g.final_schema.clone(), None)?;
    let plan = replace_node(&g.post, &g.top, source)?;
    Ok(collect(plan, ctx.task_ctx()).await?)
}

/// `plan` with the node `target` (by identity) replaced by `with`.
fn replace_node(
    plan: &Arc<dyn ExecutionPlan>,
    target: &Arc<dyn ExecutionPlan>,
    with: Arc<dyn ExecutionPlan>,
) -> Result<Arc<dyn ExecutionPlan>> {
    Ok(plan
        .clone()
        .transform_down(|node| {
            if std::ptr::addr_eq(Arc::as_ptr(&node), Arc::as_ptr(target)) {
                Ok(Transformed::new(
                    with.clone(),
                    true,
                    TreeNodeRecursion::Jump,
                ))
            } else {
                Ok(Transformed::no(node))
            }
        })?
        .data)
}
