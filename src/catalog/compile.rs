//! One compiled view (invariant 7): each materialized view is planned once,
//! when the catalog loads, by one session ([`view_session`]), and cut into
//! the pieces every layer runs.
//!
//! ```text
//!   post:     Projection / HAVING / ORDER BY …   ◄── runs on merged groups (serving, Kappa, verify)
//!   top:        Aggregate (Final)                ◄── replaced by the incremental state
//!   partial:      Aggregate (Partial)            ◄── runs per commit (speed, Kappa) or per snapshot (batch)
//!                   Filter / Projection
//!                     DataSourceExec             ◄── re-bound to the files of a commit or a snapshot
//! ```
//!
//! A grouped view's batch version stores the *groups* (the final
//! aggregate's output, before HAVING and everything above it); serving
//! merges batch and speed groups per group key and then runs `post`. So
//! HAVING, projections and any query shape above the aggregate see whole
//! groups, and the group key is the aggregate's own GROUP BY — never a
//! guess from the top node. A view without an aggregate is a row view: its
//! plan runs per commit and the rows are final on their own.
//!
//! The output schema is the executed plan's, so every layer writes and
//! reads the same types. A view that some layer cannot maintain is refused
//! here with the reason; no other check exists.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result as DFResult;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::SessionStateBuilder;
use datafusion::logical_expr::{Expr, LogicalPlan, TableProviderFilterPushDown, TableType};
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::execution_plan::reset_plan_states;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::{SessionConfig, SessionContext};
use sha2::{Digest, Sha256};

use super::{StreamDef, ViewDef};
use crate::log::parquet_scan;
use crate::STORE_URL;

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

/// Aggregates that merge, but whose result depends on how the input was
/// split (a t-digest): maintained, not reproducible bit for bit between
/// batch and Kappa.
const APPROXIMATE: &[&str] = &[
    "approx_percentile_cont",
    "approx_percentile_cont_with_weight",
    "approx_median",
];

/// What can be said of a view's maintenance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every layer computes the same rows.
    Exact,
    /// Maintained, but these functions may differ between batch and Kappa.
    Approximate(Vec<String>),
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Exact => write!(f, "exact"),
            Verdict::Approximate(fs) => write!(f, "approximate ({})", fs.join(", ")),
        }
    }
}

/// A materialized view, compiled for every layer.
#[derive(Debug, Clone)]
pub struct CompiledView {
    /// The definition, with the schema as executed and the output key.
    pub view: ViewDef,
    pub kind: PlanKind,
    /// Aggregates (by name) that keep every value in their state.
    pub holistic: Vec<String>,
    pub verdict: Verdict,
    /// Identifies the layout of stored state and groups (the columns read,
    /// the state schema, DataFusion's version): a checkpoint with another
    /// one is not restored.
    pub fingerprint: String,
    /// The stream's event-time column: each log file records its range,
    /// which prunes files a view's filter on it excludes.
    pub event_time: String,
}

#[derive(Debug, Clone)]
pub enum PlanKind {
    /// No aggregation: each commit's rows of the view are final on their
    /// own; the output is their union.
    Rows { plan: Arc<dyn ExecutionPlan> },
    /// Grouped: per commit the partial aggregate yields state rows (group
    /// columns, then each aggregate's state fields); merged state becomes
    /// groups, and groups become rows through `post`.
    Grouped(Box<GroupedPlan>),
}

#[derive(Debug, Clone)]
pub struct GroupedPlan {
    /// Partial aggregate over the stream scan.
    pub partial: Arc<dyn ExecutionPlan>,
    /// Number of group columns at the front of the partial output (and of
    /// the groups).
    pub group_columns: usize,
    pub aggregates: Vec<Arc<AggregateFunctionExpr>>,
    /// Schema of the groups: group columns, then each aggregate's result.
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

    /// HAVING's predicate over the groups, when it is the filter right
    /// above the final aggregate: a group it drops reaches nothing above
    /// it, whatever the other groups are.
    pub fn having(&self) -> Option<Arc<dyn PhysicalExpr>> {
        let mut found = None;
        let _ = self.post.apply(|node| {
            let above_top = node
                .children()
                .iter()
                .any(|c| std::ptr::addr_eq(Arc::as_ptr(*c), Arc::as_ptr(&self.top)));
            if above_top {
                found = node
                    .downcast_ref::<FilterExec>()
                    .map(|f| f.predicate().clone());
                return Ok(TreeNodeRecursion::Stop);
            }
            Ok(TreeNodeRecursion::Continue)
        });
        found
    }

    /// `post` with the final aggregate replaced by `groups` (a plan with
    /// the schema of the groups): the view's rows.
    pub fn post_over(&self, groups: Arc<dyn ExecutionPlan>) -> DFResult<Arc<dyn ExecutionPlan>> {
        reset_plan_states(replace_node(&self.post, &self.top, groups)?)
    }
}

impl CompiledView {
    /// What a batch version of this view stores: the groups of a grouped
    /// view, the rows of a row view.
    pub fn stored_schema(&self) -> SchemaRef {
        match &self.kind {
            PlanKind::Grouped(g) => g.final_schema.clone(),
            PlanKind::Rows { plan } => plan.schema(),
        }
    }

    /// Indices of the columns batch precedence compares in stored rows: the
    /// group columns, or a row view's declared key.
    pub fn stored_key(&self) -> Vec<usize> {
        match &self.kind {
            PlanKind::Grouped(g) => (0..g.group_columns).collect(),
            PlanKind::Rows { .. } => self.view.key_indices(),
        }
    }

    /// The canonical order of stored rows (see [`crate::batch::canonical_order`]):
    /// groups are unique on their group columns.
    pub fn stored_order(&self) -> Vec<usize> {
        crate::batch::canonical_order(
            self.stored_schema().fields().len(),
            &self.stored_key(),
            self.grouped().is_some(),
        )
    }

    /// The canonical order of the view's rows: a grouped view's rows are
    /// its groups (after HAVING), unique on the output key when every group
    /// column reaches the output.
    pub fn output_order(&self) -> Vec<usize> {
        crate::batch::canonical_order(
            self.view.schema.fields().len(),
            &self.view.key_indices(),
            self.grouped().is_some(),
        )
    }

    pub fn grouped(&self) -> Option<&GroupedPlan> {
        match &self.kind {
            PlanKind::Grouped(g) => Some(g),
            PlanKind::Rows { .. } => None,
        }
    }
}

/// The one session factory for views: every plan of a view comes from a
/// session configured here. COUNT(DISTINCT …) stays one aggregate with a
/// distinct-set state instead of being rewritten into two nested
/// aggregations (which could not be maintained commit by commit), and
/// the optimizer's other rewrites are the same for every layer. Decimal
/// arithmetic skips its per-value overflow check where the operands prove
/// it cannot overflow (`decimal`), and scans prune only through casts that
/// keep order (`log::pruning`).
pub fn view_session() -> SessionContext {
    let state = super::decimal::with_unchecked_decimals(reference_session().state());
    SessionContext::new_with_state(crate::log::pruning::with_safe_pruning(state))
}

/// DataFusion configured as [`view_session`] is, without strata's own
/// physical rewrites (`decimal`): the reference that tests compare views
/// with.
pub fn reference_session() -> SessionContext {
    // A compiled plan runs many times (per commit, per query): no operator
    // may carry state from one run to the next, and dynamic filters (a
    // TopK's threshold, an aggregate's bound) do.
    let config =
        SessionConfig::new().set_bool("datafusion.optimizer.enable_dynamic_filter_pushdown", false);
    let state = SessionStateBuilder::new()
        .with_config(config)
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
    SessionContext::new_with_state(state)
}

/// A table that plans as a scan of no files: the scan is re-bound to the
/// files of a commit or a snapshot when it runs.
#[derive(Debug)]
pub(crate) struct CommitScanTable {
    pub schema: SchemaRef,
    pub url: ObjectStoreUrl,
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

/// Operators that must not sit between the scan and the state: each would
/// compute something over one commit that is only right over the history.
fn stateful(plan: &Arc<dyn ExecutionPlan>) -> Option<String> {
    let mut found = None;
    let _ = plan.apply(|node| {
        let name = node.name();
        let what = if name.contains("Window") {
            Some("window functions")
        } else if name.contains("Join") {
            Some("joins")
        } else if name.contains("Aggregate") {
            Some("an aggregate")
        } else if name.contains("Limit") || node.fetch().is_some() {
            Some("LIMIT")
        } else {
            None
        };
        if let Some(w) = what {
            found = Some(w.to_string());
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

/// A leaf of `plan` other than the stream's scan (or a scan of nothing): a
/// source of rows (VALUES, a SELECT without FROM, a table function) whose
/// rows would be added again with every commit the plan runs over.
fn foreign_source(plan: &Arc<dyn ExecutionPlan>) -> Option<String> {
    let mut found = None;
    let _ = plan.apply(|node| {
        let stream = node
            .downcast_ref::<DataSourceExec>()
            .is_some_and(|d| d.data_source().downcast_ref::<FileScanConfig>().is_some());
        if node.children().is_empty() && !stream && node.downcast_ref::<EmptyExec>().is_none() {
            found = Some(node.name().to_string());
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

/// The refusal of rows from `source` beside the stream's, `place` being
/// where they would be added.
fn foreign_refusal(source: &str, place: &str) -> String {
    format!(
        "rows that do not come from the stream ({source}: VALUES, a SELECT without FROM or a table function) {place} would be added again with every commit: compute them in a plain CREATE VIEW over a materialized view"
    )
}

/// Compile `view` (a materialized view over `stream`, parsed and checked
/// at the logical level). Returns the reason when a layer cannot maintain
/// it, naming the function or operator.
pub async fn compile(view: &ViewDef, stream: &StreamDef) -> Result<CompiledView, String> {
    compile_inner(view, stream).await.map_err(|e| match e {
        Refusal::Reason(r) => r,
        Refusal::DataFusion(e) => one_line(&e.to_string()),
    })
}

enum Refusal {
    Reason(String),
    DataFusion(datafusion::error::DataFusionError),
}

impl From<datafusion::error::DataFusionError> for Refusal {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        Refusal::DataFusion(e)
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

async fn compile_inner(view: &ViewDef, stream: &StreamDef) -> Result<CompiledView, Refusal> {
    let refuse = |why: String| Refusal::Reason(why);
    let ctx = view_session();
    let url = ObjectStoreUrl::parse(STORE_URL)?;
    // Planning resolves the scan's store; nothing is read. The session
    // that runs a plan brings the real store under the same URL.
    ctx.register_object_store(
        url.as_ref(),
        Arc::new(object_store::memory::InMemory::new()),
    );
    ctx.register_table(
        stream.name.as_str(),
        Arc::new(CommitScanTable {
            schema: stream.scan_schema(),
            url,
        }),
    )?;
    let df = ctx.sql(&view.query).await?;
    // Which rows a LIMIT (or OFFSET) keeps depends on the order they
    // arrive in, which differs between a batch and the commits after it,
    // wherever it stands: over the stream's rows, in a subquery or over
    // the groups. Checked on the plan as written: the physical plan may
    // fold a limit into a scan, a merge or an aggregate.
    let mut limited = false;
    df.logical_plan().apply_with_subqueries(|node| {
        limited = matches!(node, LogicalPlan::Limit(_));
        Ok(if limited {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    })?;
    if limited {
        return Err(refuse(
            "LIMIT or OFFSET keeps rows by the order they arrive in, which differs between the batch and the speed layer: compute it in a plain CREATE VIEW over a materialized view".into(),
        ));
    }
    let plan = df.create_physical_plan().await?;
    // A scalar subquery runs once per plan, beside the stream's rows.
    if plan
        .exists(|node| Ok(node.name().contains("ScalarSubquery")))
        .unwrap_or(false)
    {
        return Err(refuse(
            "a scalar subquery is not maintained commit by commit: compute it in a plain CREATE VIEW over a materialized view".into(),
        ));
    }
    let reads = columns_read(&plan);

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
        if let Some(source) = foreign_source(&plan) {
            return Err(refuse(foreign_refusal(&source, "in a row view")));
        }
        if let Some(op) = stateful(&plan) {
            return Err(refuse(format!(
                "{op} over the stream's rows cannot be maintained commit by commit (compute it in a plain CREATE VIEW over a materialized view)"
            )));
        }
        if view.serving == super::Serving::Merge {
            return Err(refuse(
                "serving = 'merge' merges groups, and this view has no GROUP BY (a row view is the union of batch and speed rows already): remove the option".into(),
            ));
        }
        let view = with_output(view, &plan, None, &reads)?;
        return Ok(CompiledView {
            event_time: stream.event_time.clone(),
            fingerprint: fingerprint(&reads, &plan.schema()),
            view,
            kind: PlanKind::Rows { plan },
            holistic: Vec::new(),
            verdict: Verdict::Exact,
        });
    };
    // Nothing but the aggregate may read the stream (e.g. not a UNION of
    // it with another branch, nor a subquery: they would see no commit).
    let placeholder: Arc<dyn ExecutionPlan> = Arc::new(EmptyExec::new(top.schema()));
    let rest = replace_node(&plan, &top, placeholder)?;
    if rest.exists(|n| Ok(n.downcast_ref::<DataSourceExec>().is_some()))? {
        return Err(refuse(
            "it reads the stream outside its one GROUP BY (a join, UNION or subquery over the stream)"
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
            found.ok_or_else(|| refuse("its aggregate has no partial stage".into()))?
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
        other => return Err(refuse(format!("unexpected aggregate mode {other:?}"))),
    };
    let p = partial
        .downcast_ref::<AggregateExec>()
        .expect("an aggregate");
    if p.group_expr().has_grouping_set() {
        return Err(refuse(
            "GROUPING SETS, CUBE and ROLLUP are not maintained incrementally".into(),
        ));
    }
    if p.group_expr().expr().is_empty() {
        return Err(refuse(
            "an aggregate without GROUP BY has one group for the whole log: group by a time bucket, or compute it in a plain CREATE VIEW over a materialized view".into(),
        ));
    }
    if let Some(source) = foreign_source(p.input()) {
        return Err(refuse(foreign_refusal(&source, "below the GROUP BY")));
    }
    if let Some(op) = stateful(p.input()) {
        return Err(refuse(format!(
            "it aggregates in more than one stage ({op} below the GROUP BY): compute the outer stage in a plain CREATE VIEW"
        )));
    }
    let mut holistic = Vec::new();
    let mut approximate = Vec::new();
    for a in p.aggr_expr() {
        let name = a.fun().name().to_lowercase();
        if APPROXIMATE.contains(&name.as_str()) {
            approximate.push(name);
        } else if HOLISTIC.contains(&name.as_str()) || a.is_distinct() {
            holistic.push(if a.is_distinct() {
                format!("{name}(DISTINCT)")
            } else {
                name
            });
        } else if !MERGEABLE.contains(&name.as_str()) {
            return Err(refuse(format!(
                "the aggregate {name}() is not known to merge exactly across commits; compute it in a plain CREATE VIEW over a materialized view"
            )));
        }
    }
    let group_columns = p.group_expr().expr().len();
    let key = output_key(&plan, &top, group_columns);
    let view = with_output(view, &plan, Some(key), &reads)?;
    // Groups are stored under the aggregate's own column names: the plan
    // above it checks them.
    let final_schema = top.schema();
    let above = replace_node(&plan, &top, Arc::new(EmptyExec::new(top.schema())))?;
    // LIMIT or a window over the groups depends on their order, which
    // differs between a batch (sorted) and a stream of commits (arrival):
    // the same log would give different rows.
    if let Some(op) = stateful(&above) {
        return Err(refuse(format!(
            "{op} over the groups depends on the order they arrive in, which differs between the batch and the speed layer: compute it in a plain CREATE VIEW over this view"
        )));
    }
    Ok(CompiledView {
        event_time: stream.event_time.clone(),
        fingerprint: fingerprint(&reads, &partial.schema()),
        view,
        kind: PlanKind::Grouped(Box::new(GroupedPlan {
            group_columns,
            aggregates: p.aggr_expr().to_vec(),
            final_schema,
            partial,
            post: plan,
            top,
        })),
        holistic,
        verdict: if approximate.is_empty() {
            Verdict::Exact
        } else {
            Verdict::Approximate(approximate)
        },
    })
}

/// The stream columns the plan reads (names and types), as text.
fn columns_read(plan: &Arc<dyn ExecutionPlan>) -> String {
    let mut out = Vec::new();
    let _ = plan.apply(|node| {
        if node.downcast_ref::<DataSourceExec>().is_some() {
            for f in node.schema().fields() {
                out.push(format!(
                    "{}:{}:{}",
                    f.name(),
                    f.data_type(),
                    f.is_nullable()
                ));
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    out.sort();
    out.dedup();
    out.join(",")
}

fn fingerprint(reads: &str, schema: &SchemaRef) -> String {
    let text = format!(
        "{reads}|{schema:?}|datafusion {}",
        datafusion::DATAFUSION_VERSION
    );
    hex::encode(Sha256::digest(text.as_bytes()))[..16].to_string()
}

/// `view` with the executed output schema and its key checked: a grouped
/// view's declared key must be its GROUP BY outputs (`traced`); a row
/// view's names output columns the user declares unique.
fn with_output(
    view: &ViewDef,
    plan: &Arc<dyn ExecutionPlan>,
    traced: Option<Option<Vec<String>>>,
    reads: &str,
) -> Result<ViewDef, Refusal> {
    let schema = plan.schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let key = match (traced, &view.declared_key) {
        (None, Some(k)) => {
            if let Some(missing) = k.iter().find(|c| !names.contains(&c.as_str())) {
                return Err(Refusal::Reason(format!(
                    "key column '{missing}' is not an output column (outputs: {})",
                    names.join(", ")
                )));
            }
            k.clone()
        }
        (None, None) => Vec::new(),
        (Some(traced), declared) => {
            match (traced, declared) {
                (Some(t), Some(d)) if sorted(&t) == sorted(d) => t,
                (Some(t), None) => t,
                (t, Some(d)) => {
                    return Err(Refusal::Reason(format!(
                        "key '{}' must be the GROUP BY outputs of the view ({})",
                        d.join(","),
                        t.map_or(
                            "a GROUP BY expression is not an output column".into(),
                            |t| t.join(",")
                        )
                    )))
                }
                // Groups are merged by the aggregate's own key; the rows
                // above it have no key of their own.
                (None, None) => Vec::new(),
            }
        }
    };
    let mut hash = Sha256::new();
    hash.update(view.query.as_bytes());
    hash.update(format!("\0serving={}", view.serving).as_bytes());
    hash.update(b"\0key=");
    hash.update(key.join(",").as_bytes());
    hash.update(b"\0reads=");
    hash.update(reads.as_bytes());
    Ok(ViewDef {
        schema,
        key,
        definition_hash: hex::encode(&hash.finalize()[..8]),
        ..view.clone()
    })
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v
}

/// The output columns that carry `top`'s group columns, traced through
/// every node between `top` and the root; `None` if some group column does
/// not reach the output.
fn output_key(
    plan: &Arc<dyn ExecutionPlan>,
    top: &Arc<dyn ExecutionPlan>,
    group_columns: usize,
) -> Option<Vec<String>> {
    // positions[k]: where group column k is in the current node's output.
    let path = path_to(plan, top)?;
    let mut positions: Vec<Option<usize>> = (0..group_columns).map(Some).collect();
    // From just above `top` up to the root.
    for node in path.iter().rev().skip(1) {
        let map = |i: usize| -> Option<usize> {
            if let Some(p) = node.downcast_ref::<ProjectionExec>() {
                return p.expr().iter().position(|e| {
                    e.expr
                        .downcast_ref::<Column>()
                        .is_some_and(|c| c.index() == i)
                });
            }
            if let Some(f) = node.downcast_ref::<FilterExec>() {
                return match f.projection() {
                    Some(p) => p.iter().position(|&j| j == i),
                    None => Some(i),
                };
            }
            // Nodes that pass their input's columns through, in place
            // (windows append theirs after them).
            let name = node.name();
            let passes = [
                "CoalesceBatchesExec",
                "CoalescePartitionsExec",
                "RepartitionExec",
                "SortExec",
                "SortPreservingMergeExec",
                "BoundedWindowAggExec",
                "WindowAggExec",
            ];
            passes.contains(&name).then_some(i)
        };
        positions = positions.into_iter().map(|p| p.and_then(map)).collect();
    }
    let schema = plan.schema();
    positions
        .into_iter()
        .map(|p| p.map(|i| schema.field(i).name().clone()))
        .collect()
}

/// The nodes from `plan` down to `target` (by identity), both included.
fn path_to(
    plan: &Arc<dyn ExecutionPlan>,
    target: &Arc<dyn ExecutionPlan>,
) -> Option<Vec<Arc<dyn ExecutionPlan>>> {
    if std::ptr::addr_eq(Arc::as_ptr(plan), Arc::as_ptr(target)) {
        return Some(vec![plan.clone()]);
    }
    for child in plan.children() {
        if let Some(mut rest) = path_to(child, target) {
            rest.insert(0, plan.clone());
            return Some(rest);
        }
    }
    None
}

/// `plan` with the node `target` (by identity) replaced by `with`.
pub(crate) fn replace_node(
    plan: &Arc<dyn ExecutionPlan>,
    target: &Arc<dyn ExecutionPlan>,
    with: Arc<dyn ExecutionPlan>,
) -> DFResult<Arc<dyn ExecutionPlan>> {
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
