//! Pruning predicates that only use casts which keep the order of values.
//!
//! DataFusion prunes a file, row group or page by a filter such as
//! `CAST(col AS T) op lit` by casting the container's minimum and maximum
//! to `T`. That is only right when the cast keeps the order of values: its
//! one guard refuses casts between strings and other types, but a
//! timestamp's time of day (`CAST(at AS TIME)`) or a number's truth
//! (`CAST(q AS BOOLEAN)`) do not keep it, and a file whose values run from
//! 18:00 on one day to 08:00 two days later was skipped by a filter for
//! 09:00–17:00 though it held noon in between. Every pruning predicate of a
//! strata scan is therefore cut to the conjuncts whose casts keep order
//! ([`order_safe`]): the stream's own table (`LogTable::prune`) and every
//! Parquet scan a plan has ([`SafePruningRule`], for the predicates
//! DataFusion pushes into a scan — the files' statistics, row groups and
//! pages). The filter above the scan still applies the whole condition, so
//! dropping a conjunct only reads more.

use std::sync::Arc;

use arrow::datatypes::{DataType, Schema};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::ScalarValue;
use datafusion::datasource::physical_plan::{
    FileScanConfig, FileScanConfigBuilder, FileSource, ParquetSource,
};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result;
use datafusion::execution::{SessionState, SessionStateBuilder};
use datafusion::physical_expr::expressions::{CastExpr, Literal, TryCastExpr};
use datafusion::physical_expr::utils::{conjunction_opt, split_conjunction};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;

/// `predicate` (over `schema`) cut to its conjuncts in which every cast
/// keeps the order of values; `None` if none is left.
pub fn order_safe(
    predicate: &Arc<dyn PhysicalExpr>,
    schema: &Schema,
) -> Option<Arc<dyn PhysicalExpr>> {
    conjunction_opt(
        split_conjunction(predicate)
            .into_iter()
            .filter(|c| casts_keep_order(c, schema))
            .cloned(),
    )
}

/// Whether every cast in `expr` keeps the order of values.
fn casts_keep_order(expr: &Arc<dyn PhysicalExpr>, schema: &Schema) -> bool {
    let mut safe = true;
    let _ = expr.apply(|e| {
        let cast = if let Some(c) = e.downcast_ref::<CastExpr>() {
            Some((c.expr(), c.cast_type()))
        } else {
            e.downcast_ref::<TryCastExpr>()
                .map(|c| (c.expr(), c.cast_type()))
        };
        if let Some((input, to)) = cast {
            safe = input
                .data_type(schema)
                .is_ok_and(|from| keeps_order(&from, to));
            if !safe {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    safe
}

/// Whether a cast from `from` to `to` keeps the order of values: `a <= b`
/// gives `cast(a) <= cast(b)`, and no value of `from` fails to fit `to`.
fn keeps_order(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    let unwrap = |t: &DataType| match t {
        Dictionary(_, v) => v.as_ref().clone(),
        other => other.clone(),
    };
    let (from, to) = (unwrap(from), unwrap(to));
    if from == to || (from.is_string() && to.is_string()) {
        return true;
    }
    let time = |t: &DataType| matches!(t, Date32 | Date64 | Timestamp(_, _));
    match (integer(&from), integer(&to)) {
        (Some((fs, fb)), Some((ts, tb))) => {
            return (fs == ts && tb >= fb) || (!fs && ts && tb > fb);
        }
        (Some((_, bits)), None) => {
            return match to {
                Float32 | Float64 => true,
                Decimal32(p, s) | Decimal64(p, s) | Decimal128(p, s) | Decimal256(p, s) => {
                    i64::from(p) - i64::from(s) >= digits(bits)
                }
                _ => false,
            };
        }
        _ => {}
    }
    match (&from, &to) {
        (Float32, Float64) => true,
        (
            Decimal32(_, _) | Decimal64(_, _) | Decimal128(_, _) | Decimal256(_, _),
            Float32 | Float64,
        ) => true,
        (
            Decimal32(p1, s1) | Decimal64(p1, s1) | Decimal128(p1, s1) | Decimal256(p1, s1),
            Decimal32(p2, s2) | Decimal64(p2, s2) | Decimal128(p2, s2) | Decimal256(p2, s2),
        ) => i64::from(*p2) - i64::from(*s2) >= i64::from(*p1) - i64::from(*s1),
        (a, b) => time(a) && time(b),
    }
}

/// An integer type: whether it is signed, and its bits.
fn integer(t: &DataType) -> Option<(bool, u32)> {
    use DataType::*;
    Some(match t {
        Int8 => (true, 8),
        Int16 => (true, 16),
        Int32 => (true, 32),
        Int64 => (true, 64),
        UInt8 => (false, 8),
        UInt16 => (false, 16),
        UInt32 => (false, 32),
        UInt64 => (false, 64),
        _ => return None,
    })
}

/// The decimal digits an integer of `bits` bits may need.
fn digits(bits: u32) -> i64 {
    match bits {
        8 => 3,
        16 => 5,
        32 => 10,
        _ => 20,
    }
}

/// `state` with [`SafePruningRule`] after its own physical rules.
pub fn with_safe_pruning(state: SessionState) -> SessionState {
    SessionStateBuilder::new_from_existing(state)
        .with_physical_optimizer_rule(Arc::new(SafePruningRule))
        .build()
}

/// Cuts the predicate DataFusion pushed into each Parquet scan to its
/// order-safe conjuncts ([`order_safe`]). Only where the scan prunes with
/// it and does not filter rows by it (`pushdown_filters` off, strata's
/// setting): a row filter must keep the whole condition.
#[derive(Debug, Default)]
pub struct SafePruningRule;

impl PhysicalOptimizerRule for SafePruningRule {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(cfg) = node
                .downcast_ref::<DataSourceExec>()
                .and_then(|ds| ds.data_source().downcast_ref::<FileScanConfig>())
            else {
                return Ok(Transformed::no(node));
            };
            let Some(parquet) = cfg.file_source().downcast_ref::<ParquetSource>() else {
                return Ok(Transformed::no(node));
            };
            let Some(predicate) = FileSource::filter(parquet) else {
                return Ok(Transformed::no(node));
            };
            if parquet.table_parquet_options().global.pushdown_filters {
                return Ok(Transformed::no(node));
            }
            let safe = order_safe(&predicate, cfg.file_schema());
            let kept = safe.as_ref().map_or(0, |s| split_conjunction(s).len());
            if kept == split_conjunction(&predicate).len() {
                return Ok(Transformed::no(node));
            }
            let safe =
                safe.unwrap_or_else(|| Arc::new(Literal::new(ScalarValue::Boolean(Some(true)))));
            let source = parquet.with_predicate(safe);
            let cfg = FileScanConfigBuilder::from(cfg.clone())
                .with_source(Arc::new(source))
                .build();
            Ok(Transformed::yes(
                DataSourceExec::from_data_source(cfg) as Arc<dyn ExecutionPlan>
            ))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "strata_order_safe_pruning"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::{Field, TimeUnit};
    use datafusion::logical_expr::Operator;
    use datafusion::physical_expr::expressions::{binary, cast, col, lit};

    use super::*;

    #[test]
    fn casts_that_keep_order() {
        use DataType::*;
        let ts = Timestamp(TimeUnit::Microsecond, None);
        for (from, to) in [
            (Int32, Int64),
            (UInt32, Int64),
            (Int64, Float64),
            (Int32, Decimal128(12, 2)),
            (Decimal128(12, 2), Decimal128(15, 2)),
            (Decimal128(12, 2), Decimal128(11, 1)),
            (Decimal128(12, 2), Float64),
            (Date32, ts.clone()),
            (ts.clone(), Date32),
            (
                ts.clone(),
                Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            ),
            (Utf8, Utf8View),
        ] {
            assert!(keeps_order(&from, &to), "{from} -> {to}");
        }
        for (from, to) in [
            (ts.clone(), Time64(TimeUnit::Microsecond)),
            (Int32, Boolean),
            (Int64, Int8),
            (Int32, UInt64),
            (Int64, Decimal128(10, 2)),
            (Decimal128(15, 2), Decimal128(12, 2)),
            (Float64, Int64),
            (Int64, Utf8),
            (Utf8, Int64),
            (Int64, ts.clone()),
        ] {
            assert!(!keeps_order(&from, &to), "{from} -> {to}");
        }
    }

    #[test]
    fn only_the_conjuncts_with_order_safe_casts_are_kept() {
        let schema = Schema::new(vec![
            Field::new(
                "at",
                DataType::Timestamp(TimeUnit::Microsecond, None),
                false,
            ),
            Field::new("q", DataType::Int32, false),
        ]);
        let at = col("at", &schema).unwrap();
        let q = col("q", &schema).unwrap();
        let time = cast(at.clone(), &schema, DataType::Time64(TimeUnit::Microsecond)).unwrap();
        let wide = cast(q.clone(), &schema, DataType::Int64).unwrap();
        let cmp = |l: Arc<dyn PhysicalExpr>, v: ScalarValue| {
            binary(l, Operator::Gt, lit(v), &schema).unwrap()
        };
        let bad = cmp(time, ScalarValue::Time64Microsecond(Some(1)));
        let good = cmp(wide, ScalarValue::Int64(Some(3)));
        let plain = cmp(q, ScalarValue::Int32(Some(1)));
        let both = binary(
            binary(bad.clone(), Operator::And, good.clone(), &schema).unwrap(),
            Operator::And,
            plain.clone(),
            &schema,
        )
        .unwrap();
        let kept = order_safe(&both, &schema).unwrap();
        assert_eq!(split_conjunction(&kept).len(), 2);
        assert_eq!(
            kept.to_string(),
            binary(good, Operator::And, plain, &schema)
                .unwrap()
                .to_string()
        );
        assert!(order_safe(&bad, &schema).is_none());
    }
}
