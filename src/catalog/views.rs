//! Parsing and checking view definitions. Each SELECT is planned by
//! DataFusion against the declared streams (and earlier views, as empty
//! tables of their schema), so a definition that cannot run is rejected when
//! the catalog loads, with its file and line.

use std::sync::Arc;

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::MemTable;
use datafusion::logical_expr::{Distinct, Expr, LogicalPlan, Volatility};
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{self, CreateTableOptions};

use sha2::{Digest, Sha256};

use super::{object_name, with_options, Catalog, CompiledView, Serving, SourceLocation, ViewDef};
use crate::error::{Result, StrataError};

pub(super) fn parse_view(
    catalog: &Catalog,
    cv: &ast::CreateView,
    at: &SourceLocation,
) -> Result<(ViewDef, Option<CompiledView>)> {
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
    let mut serving = Serving::Precedence;
    for (k, v) in options {
        match k.as_str() {
            "serving" if cv.materialized => {
                serving = match v.to_lowercase().as_str() {
                    "precedence" => Serving::Precedence,
                    "merge" => Serving::Merge,
                    other => {
                        return Err(err(format!(
                            "serving = '{other}': use 'precedence' (batch overrides speed, the default) or 'merge' (batch state ⊕ speed state)"
                        )))
                    }
                }
            }
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
                        " (known: key, serving)"
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
            return Err(err(f));
        }
    }
    let mut hash = Sha256::new();
    hash.update(query.as_bytes());
    let view = ViewDef {
        name: name.clone(),
        query,
        materialized: cv.materialized,
        stream,
        schema,
        key: key_option.clone().unwrap_or_default(),
        declared_key: key_option,
        serving,
        definition_hash: hex::encode(&hash.finalize()[..8]),
        defined_at: at.clone(),
    };
    if !view.materialized {
        return Ok((view, None));
    }
    let stream = catalog.stream(&view.stream)?;
    let compiled = futures::executor::block_on(super::compile::compile(&view, stream))
        .map_err(|why| err(format!("cannot be maintained: {why}")))?;
    Ok((compiled.view.clone(), Some(compiled)))
}

/// A context where every stream and earlier view is an empty table of its
/// schema: enough to plan, nothing to read.
pub fn planning_context(catalog: &Catalog) -> Result<SessionContext> {
    let ctx = SessionContext::new();
    for (name, s) in &catalog.streams {
        ctx.register_table(
            name.as_str(),
            Arc::new(MemTable::try_new(s.scan_schema(), vec![vec![]])?),
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

/// Aggregates whose result depends on the order of their input rows:
/// their ORDER BY must decide every row that could change the result.
const ORDER_DEPENDENT: &[&str] = &[
    "array_agg",
    "string_agg",
    "first_value",
    "last_value",
    "nth_value",
];

/// The first order-dependent aggregate (or DISTINCT ON) whose ORDER BY
/// leaves ties that could change its result, as a message. Rows that tie
/// on the ORDER BY and also agree on every argument give the same result
/// in any order, so the rule is: every argument is in the ORDER BY.
fn first_order_dependent(plan: &LogicalPlan) -> Result<Option<String>> {
    let mut found = None;
    plan.apply_with_subqueries(|node| {
        if let LogicalPlan::Distinct(Distinct::On(on)) = node {
            let order: Vec<Expr> = on
                .sort_expr
                .iter()
                .flatten()
                .map(|s| s.expr.clone().unalias())
                .collect();
            let undecided = on
                .select_expr
                .iter()
                .map(|e| e.clone().unalias())
                .find(|e| !order.contains(e) && !on.on_expr.contains(e));
            if let Some(e) = undecided {
                found = Some(format!(
                    "DISTINCT ON keeps the first row of each group, and its ORDER BY does not decide between rows that differ in {e}: add it to the ORDER BY"
                ));
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        node.apply_expressions(|e| {
            e.apply(|e| {
                if let Expr::AggregateFunction(f) = e {
                    let name = f.func.name().to_lowercase();
                    if !ORDER_DEPENDENT.contains(&name.as_str()) {
                        return Ok(TreeNodeRecursion::Continue);
                    }
                    let order: Vec<Expr> = f
                        .params
                        .order_by
                        .iter()
                        .map(|s| s.expr.clone())
                        .collect();
                    let undecided = f
                        .params
                        .args
                        .iter()
                        .find(|a| !matches!(a, Expr::Literal(..)) && !order.contains(a));
                    if order.is_empty() {
                        found = Some(format!(
                            "uses {name}() without ORDER BY: its result depends on the order rows are read in; add ORDER BY inside the call"
                        ));
                    } else if let Some(a) = undecided {
                        found = Some(format!(
                            "{name}() orders by {}, which leaves ties between rows that differ in {a}: add {a} to its ORDER BY so the same log always gives the same result",
                            order.iter().map(|o| o.to_string()).collect::<Vec<_>>().join(", ")
                        ));
                    }
                    if found.is_some() {
                        return Ok(TreeNodeRecursion::Stop);
                    }
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    })?;
    Ok(found)
}
