//! Parsing and checking view definitions. Each SELECT is planned by
//! DataFusion against the declared streams (and earlier views, as empty
//! tables of their schema), so a definition that cannot run is rejected when
//! the catalog loads, with its file and line.

use std::sync::Arc;

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::MemTable;
use datafusion::logical_expr::{Expr, LogicalPlan, Volatility};
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{self, CreateTableOptions};

use super::{object_name, with_options, Catalog, SourceLocation, ViewDef};
use crate::error::{Result, StrataError};

pub(super) fn parse_view(
    catalog: &Catalog,
    cv: &ast::CreateView,
    at: &SourceLocation,
) -> Result<ViewDef> {
    let name = object_name(&cv.name);
    let err =
        |msg: String| StrataError::definition(&at.path, at.line, format!("view '{name}': {msg}"));
    if !cv.columns.is_empty() {
        return Err(err(
            "a column list is not supported: name the columns with AS in the SELECT".into(),
        ));
    }
    let options = match &cv.options {
        CreateTableOptions::None => Vec::new(),
        CreateTableOptions::With(opts) => with_options(opts, at)?,
        other => {
            return Err(err(format!(
                "unsupported options '{other}' (use WITH (key = 'a,b'))"
            )))
        }
    };
    let mut key_option = None;
    for (k, v) in options {
        match k.as_str() {
            "key" if cv.materialized => {
                key_option = Some(
                    v.split(',')
                        .map(|c| c.trim().to_lowercase())
                        .filter(|c| !c.is_empty())
                        .collect::<Vec<_>>(),
                )
            }
            other => {
                return Err(err(format!(
                    "unknown option '{other}'{}",
                    if cv.materialized {
                        " (known: key)"
                    } else {
                        " (plain views take no options)"
                    }
                )))
            }
        }
    }
    let query = cv.query.to_string();
    let ctx = planning_context(catalog)?;
    let plan = futures::executor::block_on(ctx.state().create_logical_plan(&query))
        .map_err(|e| err(one_line(&e.to_string())))?;
    let schema = Arc::new(plan.schema().as_arrow().clone());
    for (i, f) in schema.fields().iter().enumerate() {
        if schema.fields()[..i].iter().any(|g| g.name() == f.name()) {
            return Err(err(format!(
                "output column '{}' appears twice: give it an alias",
                f.name()
            )));
        }
    }

    let mut stream = String::new();
    let mut key = Vec::new();
    if cv.materialized {
        let mut tables = Vec::new();
        plan.apply_with_subqueries(|node| {
            if let LogicalPlan::TableScan(scan) = node {
                tables.push(scan.table_name.table().to_string());
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        tables.sort();
        tables.dedup();
        for t in &tables {
            if !catalog.streams.contains_key(t) {
                return Err(err(format!(
                    "reads '{t}', which is a view: a materialized view reads one stream (build on views with a plain CREATE VIEW)"
                )));
            }
        }
        stream = match tables.as_slice() {
            [one] => one.clone(),
            [] => return Err(err("reads no stream".into())),
            many => {
                return Err(err(format!(
                    "reads {} streams ({}): a materialized view reads one stream",
                    many.len(),
                    many.join(", ")
                )))
            }
        };
        if let Some(f) = first_non_deterministic(&plan)? {
            return Err(err(format!(
                "uses the non-deterministic function {f}(): a materialized view must give the same rows for the same log"
            )));
        }
        if let Some(f) = first_order_dependent(&plan)? {
            return Err(err(format!(
                "uses {f}() without ORDER BY: its result depends on the order rows are read in; add ORDER BY inside the call"
            )));
        }
        check_mergeable(&plan).map_err(err)?;
        key = match key_option {
            Some(k) => k,
            None => default_key(&plan).map_err(err)?,
        };
        for k in &key {
            if schema.field_with_name(k).is_err() {
                return Err(err(format!(
                    "key column '{k}' is not an output column (outputs: {})",
                    schema
                        .fields()
                        .iter()
                        .map(|f| f.name().as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
    }
    Ok(ViewDef {
        name,
        query,
        materialized: cv.materialized,
        stream,
        schema,
        key,
        defined_at: at.clone(),
    })
}

/// A context where every stream and earlier view is an empty table of its
/// schema: enough to plan, nothing to read.
pub fn planning_context(catalog: &Catalog) -> Result<SessionContext> {
    let ctx = SessionContext::new();
    for (name, s) in &catalog.streams {
        ctx.register_table(
            name.as_str(),
            Arc::new(MemTable::try_new(s.schema.clone(), vec![vec![]])?),
        )?;
    }
    for v in &catalog.views {
        ctx.register_table(
            v.name.as_str(),
            Arc::new(MemTable::try_new(v.schema.clone(), vec![vec![]])?),
        )?;
    }
    Ok(ctx)
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The first scalar function in `plan` whose result may change between
/// runs on the same input (`now()`, `random()`, `uuid()`, …).
fn first_non_deterministic(plan: &LogicalPlan) -> Result<Option<String>> {
    let mut found = None;
    plan.apply_with_subqueries(|node| {
        node.apply_expressions(|e| {
            e.apply(|e| {
                if let Expr::ScalarFunction(f) = e {
                    if f.func.signature().volatility != Volatility::Immutable {
                        found = Some(f.func.name().to_string());
                        return Ok(TreeNodeRecursion::Stop);
                    }
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    })?;
    Ok(found)
}

/// Aggregates whose result depends on the order of their input rows
/// unless the call orders it.
const ORDER_DEPENDENT: &[&str] = &[
    "array_agg",
    "string_agg",
    "first_value",
    "last_value",
    "nth_value",
    "approx_percentile_cont",
    "approx_percentile_cont_with_weight",
    "approx_median",
];

fn first_order_dependent(plan: &LogicalPlan) -> Result<Option<String>> {
    let mut found = None;
    plan.apply_with_subqueries(|node| {
        node.apply_expressions(|e| {
            e.apply(|e| {
                if let Expr::AggregateFunction(f) = e {
                    let name = f.func.name().to_lowercase();
                    if ORDER_DEPENDENT.contains(&name.as_str()) && f.params.order_by.is_empty() {
                        found = Some(name);
                        return Ok(TreeNodeRecursion::Stop);
                    }
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    })?;
    Ok(found)
}

/// Batch and speed each compute the view over part of the log and serving
/// merges them per key (or unions them when keyless). That is right only
/// for row-by-row views (projection, filter) and views grouped by their key.
/// Reject the shapes where it is not.
fn check_mergeable(plan: &LogicalPlan) -> std::result::Result<(), String> {
    let mut problem = None;
    let _ = plan.apply_with_subqueries(|node| {
        let what = match node {
            LogicalPlan::Window(_) => Some("window functions"),
            LogicalPlan::Limit(_) => Some("LIMIT"),
            LogicalPlan::Join(_) => Some("joins"),
            LogicalPlan::Subquery(_) => Some("subqueries"),
            LogicalPlan::Aggregate(a) if a.group_expr.is_empty() => {
                Some("an aggregate without GROUP BY")
            }
            _ => None,
        };
        if let Some(w) = what {
            problem = Some(w);
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    match problem {
        Some(w) => Err(format!(
            "{w} cannot be maintained by merging a batch and a speed result; compute it in a plain CREATE VIEW over a materialized view"
        )),
        None => Ok(()),
    }
}

/// The output columns that hold the GROUP BY expressions (every output
/// column for SELECT DISTINCT); empty for a row-by-row view.
fn default_key(plan: &LogicalPlan) -> std::result::Result<Vec<String>, String> {
    let mut node = plan;
    while let LogicalPlan::Sort(_) | LogicalPlan::Limit(_) = node {
        node = node.inputs()[0];
    }
    if let LogicalPlan::Distinct(_) = node {
        return Ok(plan
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect());
    }
    let (projection, mut below) = match node {
        LogicalPlan::Projection(p) => (Some(p), p.input.as_ref()),
        other => (None, other),
    };
    while let LogicalPlan::Filter(f) = below {
        below = f.input.as_ref();
    }
    let LogicalPlan::Aggregate(agg) = below else {
        return Ok(Vec::new());
    };
    if agg
        .group_expr
        .iter()
        .any(|g| matches!(g, Expr::GroupingSet(_)))
    {
        return Err("GROUPING SETS, CUBE and ROLLUP need an explicit WITH (key = '…')".into());
    }
    let mut key = Vec::new();
    for (i, g) in agg.group_expr.iter().enumerate() {
        let (qualifier, field) = agg.schema.qualified_field(i);
        let Some(projection) = projection else {
            key.push(field.name().clone());
            continue;
        };
        let position = projection
            .expr
            .iter()
            .position(|e| match e.clone().unalias() {
                Expr::Column(c) => {
                    c.name == *field.name()
                        && (c.relation.is_none() || c.relation.as_ref() == qualifier)
                }
                _ => false,
            });
        match position {
            Some(j) => key.push(plan.schema().field(j).name().clone()),
            None => {
                return Err(format!(
                    "GROUP BY expression '{g}' is not an output column: select it, or give WITH (key = '…')"
                ))
            }
        }
    }
    Ok(key)
}
