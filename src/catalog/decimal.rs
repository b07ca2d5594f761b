//! Decimal `+`, `-` and `*` without a check per value, where the operands
//! prove that no value can overflow.
//!
//! arrow computes every `Decimal128` sum, difference and product with a
//! checked `i128` operation per value, through a closure that returns a
//! `Result`: it does not vectorize, and on TPC-H Q1
//! (`l_extendedprice * (1 - l_discount) * (1 + l_tax)`) it is a third of
//! the query. DuckDB picks unchecked arithmetic when the operands' widths
//! prove the result fits. strata does the same per batch, from the values themselves: before an
//! operation it takes the largest magnitude of each operand (arrow's
//! `min`/`max`, vectorized), and if the largest result those allow fits an
//! `i128`, no value can overflow, so the wrapping operation — one
//! vectorized pass — gives exactly the values the checked one would. Else
//! it runs the checked operation, with its error. The result's type is
//! arrow's (and DataFusion's) for the operation, so nothing above it sees a
//! difference but the time.
//!
//! [`UncheckedDecimalRule`] puts [`UncheckedDecimal`] in place of such
//! `BinaryExpr`s in the projections, filters and aggregate arguments of
//! every plan strata makes: a view's (`view_session`) and a query's
//! (`Strata::new_session`).

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, PrimitiveArray, RecordBatch};
use arrow::compute::kernels::aggregate::{max, min};
use arrow::compute::{binary, unary};
use arrow::datatypes::{DataType, Decimal128Type, Schema};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Result, ScalarValue};
use datafusion::config::ConfigOptions;
use datafusion::execution::{SessionState, SessionStateBuilder};
use datafusion::logical_expr::interval_arithmetic::Interval;
use datafusion::logical_expr::sort_properties::ExprProperties;
use datafusion::logical_expr::{ColumnarValue, Operator};
use datafusion::physical_expr::expressions::BinaryExpr;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr_common::datum::apply;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::AggregateExec;
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};
use datafusion::physical_plan::projection::{ProjectionExec, ProjectionExpr};
use datafusion::physical_plan::ExecutionPlan;

/// A `Decimal128` `+`, `-` or `*`: unchecked when the batch's operands
/// prove it cannot overflow, else `checked` (the `BinaryExpr` it stands
/// for).
#[derive(Debug, Clone)]
pub struct UncheckedDecimal {
    checked: Arc<dyn PhysicalExpr>,
    op: Operator,
    /// Scales of the operands.
    scales: (i8, i8),
    /// The result's precision and scale.
    result: (u8, i8),
}

impl UncheckedDecimal {
    /// `expr` as an [`UncheckedDecimal`], if it is a `Decimal128` `+`, `-`
    /// or `*` of two `Decimal128` operands whose result has arrow's scale
    /// for the operation (`arrow_arith::numeric`, `decimal_op`): the scale
    /// the unchecked values are computed at.
    fn try_new(expr: &Arc<dyn PhysicalExpr>, schema: &Schema) -> Result<Option<Self>> {
        let Some(b) = expr.downcast_ref::<BinaryExpr>() else {
            return Ok(None);
        };
        let op = *b.op();
        if !matches!(op, Operator::Plus | Operator::Minus | Operator::Multiply) {
            return Ok(None);
        }
        let (
            DataType::Decimal128(_, s1),
            DataType::Decimal128(_, s2),
            DataType::Decimal128(precision, scale),
        ) = (
            b.left().data_type(schema)?,
            b.right().data_type(schema)?,
            expr.data_type(schema)?,
        )
        else {
            return Ok(None);
        };
        let arrows = match op {
            Operator::Multiply => s1.checked_add(s2),
            _ => Some(s1.max(s2)),
        };
        if arrows != Some(scale) {
            return Ok(None);
        }
        let result = (precision, scale);
        Ok(Some(Self {
            checked: expr.clone(),
            op,
            scales: (s1, s2),
            result,
        }))
    }

    /// The operation on `l` and `r` without checks, if their magnitudes
    /// prove that no value overflows; `None` otherwise (and for operands
    /// this does not handle: NULL scalars, two scalars).
    fn unchecked(&self, l: &ColumnarValue, r: &ColumnarValue) -> Option<ArrayRef> {
        // Multipliers that bring both operands to the result's scale.
        let (lm, rm) = match self.op {
            Operator::Multiply => (1i128, 1i128),
            _ => {
                let scale = self.scales.0.max(self.scales.1);
                (
                    10i128.checked_pow((scale - self.scales.0) as u32)?,
                    10i128.checked_pow((scale - self.scales.1) as u32)?,
                )
            }
        };
        let (lmax, rmax) = (magnitude(l)?, magnitude(r)?);
        let bound = match self.op {
            Operator::Multiply => lmax.checked_mul(rmax)?,
            _ => lmax
                .checked_mul(lm as u128)?
                .checked_add(rmax.checked_mul(rm as u128)?)?,
        };
        if bound > i128::MAX as u128 {
            return None;
        }
        let f: fn(i128, i128, i128, i128) -> i128 = match self.op {
            Operator::Multiply => |a, b, _, _| a.wrapping_mul(b),
            Operator::Plus => |a, b, lm, rm| a.wrapping_mul(lm).wrapping_add(b.wrapping_mul(rm)),
            _ => |a, b, lm, rm| a.wrapping_mul(lm).wrapping_sub(b.wrapping_mul(rm)),
        };
        let out: PrimitiveArray<Decimal128Type> = match (l, r) {
            (ColumnarValue::Array(a), ColumnarValue::Array(b)) => binary(
                a.as_primitive::<Decimal128Type>(),
                b.as_primitive::<Decimal128Type>(),
                |a, b| f(a, b, lm, rm),
            )
            .ok()?,
            (ColumnarValue::Array(a), ColumnarValue::Scalar(s)) => {
                let b = decimal_scalar(s)?;
                unary(a.as_primitive::<Decimal128Type>(), |a| f(a, b, lm, rm))
            }
            (ColumnarValue::Scalar(s), ColumnarValue::Array(b)) => {
                let a = decimal_scalar(s)?;
                unary(b.as_primitive::<Decimal128Type>(), |b| f(a, b, lm, rm))
            }
            (ColumnarValue::Scalar(_), ColumnarValue::Scalar(_)) => return None,
        };
        let out = out
            .with_precision_and_scale(self.result.0, self.result.1)
            .ok()?;
        Some(Arc::new(out))
    }
}

/// A non-NULL `Decimal128` scalar's value.
fn decimal_scalar(s: &ScalarValue) -> Option<i128> {
    match s {
        ScalarValue::Decimal128(Some(v), _, _) => Some(*v),
        _ => None,
    }
}

/// The largest magnitude among the values of `v` (`None`: no value to
/// bound it by, or not a `Decimal128`).
fn magnitude(v: &ColumnarValue) -> Option<u128> {
    match v {
        ColumnarValue::Scalar(s) => decimal_scalar(s).map(i128::unsigned_abs),
        ColumnarValue::Array(a) => {
            let a = a.as_primitive_opt::<Decimal128Type>()?;
            let (lo, hi) = (min(a)?, max(a)?);
            Some(lo.unsigned_abs().max(hi.unsigned_abs()))
        }
    }
}

impl PartialEq for UncheckedDecimal {
    fn eq(&self, other: &Self) -> bool {
        // Everything else is derived from the expression.
        self.checked.eq(&other.checked)
    }
}

impl Eq for UncheckedDecimal {}

impl Hash for UncheckedDecimal {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.checked.hash(state);
    }
}

// In parentheses: `BinaryExpr` puts its operands in them only when they
// are `BinaryExpr`s themselves, and `a * (1 + b)` must not print as
// `a * 1 + b`.
impl fmt::Display for UncheckedDecimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({})", self.checked)
    }
}

impl PhysicalExpr for UncheckedDecimal {
    fn data_type(&self, _schema: &Schema) -> Result<DataType> {
        Ok(DataType::Decimal128(self.result.0, self.result.1))
    }

    fn nullable(&self, schema: &Schema) -> Result<bool> {
        self.checked.nullable(schema)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        use arrow::compute::kernels::numeric::{add_wrapping, mul_wrapping, sub_wrapping};
        let children = self.checked.children();
        let l = children[0].evaluate(batch)?;
        let r = children[1].evaluate(batch)?;
        if let Some(out) = self.unchecked(&l, &r) {
            return Ok(ColumnarValue::Array(out));
        }
        // The kernel `BinaryExpr` runs (for decimals, arrow checks every
        // value whichever of the two it is asked for), errors included.
        match self.op {
            Operator::Multiply => apply(&l, &r, mul_wrapping),
            Operator::Plus => apply(&l, &r, add_wrapping),
            _ => apply(&l, &r, sub_wrapping),
        }
    }

    // Interval and ordering reasoning are the expression's own.
    fn evaluate_bounds(&self, children: &[&Interval]) -> Result<Interval> {
        self.checked.evaluate_bounds(children)
    }

    fn propagate_constraints(
        &self,
        interval: &Interval,
        children: &[&Interval],
    ) -> Result<Option<Vec<Interval>>> {
        self.checked.propagate_constraints(interval, children)
    }

    fn get_properties(&self, children: &[ExprProperties]) -> Result<ExprProperties> {
        self.checked.get_properties(children)
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        self.checked.children()
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        Ok(Arc::new(Self {
            checked: self.checked.clone().with_new_children(children)?,
            ..(*self).clone()
        }))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "(")?;
        self.checked.fmt_sql(f)?;
        write!(f, ")")
    }
}

/// `state` with [`UncheckedDecimalRule`] after its own physical rules.
pub fn with_unchecked_decimals(state: SessionState) -> SessionState {
    SessionStateBuilder::new_from_existing(state)
        .with_physical_optimizer_rule(Arc::new(UncheckedDecimalRule))
        .build()
}

/// Rewrites the decimal `+`, `-` and `*` of projections, filters and
/// aggregate arguments into [`UncheckedDecimal`]s.
#[derive(Debug, Default)]
pub struct UncheckedDecimalRule;

/// `exprs` with every decimal `+`, `-` and `*` in them made an
/// [`UncheckedDecimal`]; `None` if none was.
fn rewrite_all<'a>(
    exprs: impl IntoIterator<Item = &'a Arc<dyn PhysicalExpr>>,
    schema: &Schema,
) -> Result<Option<Vec<Arc<dyn PhysicalExpr>>>> {
    let mut changed = false;
    let mut out = Vec::new();
    for e in exprs {
        let t = rewrite(e, schema)?;
        changed |= t.transformed;
        out.push(t.data);
    }
    Ok(changed.then_some(out))
}

/// `expr` with every decimal `+`, `-` and `*` in it made an
/// [`UncheckedDecimal`], and whether any was.
fn rewrite(
    expr: &Arc<dyn PhysicalExpr>,
    schema: &Schema,
) -> Result<Transformed<Arc<dyn PhysicalExpr>>> {
    expr.clone().transform_up(|e| {
        Ok(match UncheckedDecimal::try_new(&e, schema)? {
            Some(u) => Transformed::yes(Arc::new(u) as Arc<dyn PhysicalExpr>),
            None => Transformed::no(e),
        })
    })
}

impl PhysicalOptimizerRule for UncheckedDecimalRule {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            if let Some(p) = node.downcast_ref::<ProjectionExec>() {
                let exprs = p.expr().iter().map(|e| &e.expr);
                if let Some(exprs) = rewrite_all(exprs, &p.input().schema())? {
                    let exprs = exprs
                        .into_iter()
                        .zip(p.expr())
                        .map(|(expr, e)| ProjectionExpr {
                            expr,
                            alias: e.alias.clone(),
                        });
                    let p = ProjectionExec::try_new_with_schema_metadata(
                        exprs,
                        p.input().clone(),
                        &p.schema(),
                    )?;
                    return Ok(Transformed::yes(Arc::new(p) as Arc<dyn ExecutionPlan>));
                }
            }
            if let Some(f) = node.downcast_ref::<FilterExec>() {
                let t = rewrite(f.predicate(), &f.input().schema())?;
                if t.transformed {
                    let f = FilterExecBuilder::from(f).with_predicate(t.data).build()?;
                    return Ok(Transformed::yes(Arc::new(f) as Arc<dyn ExecutionPlan>));
                }
            }
            if let Some(a) = node.downcast_ref::<AggregateExec>() {
                let schema = a.input_schema();
                let mut changed = false;
                let mut aggrs = Vec::with_capacity(a.aggr_expr().len());
                for f in a.aggr_expr() {
                    // An ordered aggregate is left alone: rebuilding it
                    // would drop its reversal (`with_new_expressions`),
                    // and DISTINCT … ORDER BY needs its ORDER BY to equal
                    // its argument.
                    if !f.order_bys().is_empty() || f.is_reversed() {
                        aggrs.push(f.clone());
                        continue;
                    }
                    let args = rewrite_all(&f.expressions(), &schema)?;
                    match args.and_then(|args| f.with_new_expressions(args, Vec::new())) {
                        Some(g) => {
                            changed = true;
                            aggrs.push(Arc::new(g));
                        }
                        None => aggrs.push(f.clone()),
                    }
                }
                if changed {
                    let a = a.with_new_aggr_exprs(aggrs);
                    return Ok(Transformed::yes(Arc::new(a) as Arc<dyn ExecutionPlan>));
                }
            }
            Ok(Transformed::no(node))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "unchecked_decimal_arithmetic"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// How many [`UncheckedDecimal`]s `plan`'s projections, filters and
/// aggregate arguments hold (what EXPLAIN cannot tell apart from the
/// checked expressions).
pub fn unchecked_count(plan: &Arc<dyn ExecutionPlan>) -> usize {
    let mut exprs: Vec<Arc<dyn PhysicalExpr>> = Vec::new();
    if let Some(p) = plan.downcast_ref::<ProjectionExec>() {
        exprs.extend(p.expr().iter().map(|e| e.expr.clone()));
    }
    if let Some(a) = plan.downcast_ref::<AggregateExec>() {
        exprs.extend(a.aggr_expr().iter().flat_map(|f| f.expressions()));
    }
    if let Some(f) = plan.downcast_ref::<FilterExec>() {
        exprs.push(f.predicate().clone());
    }
    let mut n = 0;
    for e in exprs {
        let _ = e.apply(|e| {
            n += e.downcast_ref::<UncheckedDecimal>().is_some() as usize;
            Ok(TreeNodeRecursion::Continue)
        });
    }
    n + plan
        .children()
        .iter()
        .map(|c| unchecked_count(c))
        .sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, Decimal128Array};
    use arrow::datatypes::Field;
    use datafusion::physical_expr::expressions::{col, lit};
    use proptest::prelude::*;

    fn batch(
        a: Vec<Option<i128>>,
        pa: (u8, i8),
        b: Vec<Option<i128>>,
        pb: (u8, i8),
    ) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Decimal128(pa.0, pa.1), true),
            Field::new("b", DataType::Decimal128(pb.0, pb.1), true),
        ]));
        let a = Decimal128Array::from(a)
            .with_precision_and_scale(pa.0, pa.1)
            .unwrap();
        let b = Decimal128Array::from(b)
            .with_precision_and_scale(pb.0, pb.1)
            .unwrap();
        RecordBatch::try_new(schema, vec![Arc::new(a), Arc::new(b)]).unwrap()
    }

    /// The checked `BinaryExpr` and its unchecked stand-in on `batch`.
    fn both(
        batch: &RecordBatch,
        left: Arc<dyn PhysicalExpr>,
        op: Operator,
        right: Arc<dyn PhysicalExpr>,
    ) -> (Result<ArrayRef>, Result<ArrayRef>) {
        let schema = batch.schema();
        let checked: Arc<dyn PhysicalExpr> = Arc::new(BinaryExpr::new(left, op, right));
        let unchecked = UncheckedDecimal::try_new(&checked, &schema)
            .unwrap()
            .expect("a decimal operation");
        let run = |e: &dyn PhysicalExpr| {
            e.evaluate(batch)
                .and_then(|v| v.into_array(batch.num_rows()))
        };
        (run(checked.as_ref()), run(&unchecked))
    }

    fn decimals() -> impl Strategy<Value = Vec<Option<i128>>> {
        prop::collection::vec(
            prop_oneof![
                1 => Just(None),
                8 => (-10i128.pow(15)..10i128.pow(15)).prop_map(Some),
                // Beyond the declared precision (nothing checks it).
                1 => any::<i128>().prop_map(Some),
            ],
            1..40,
        )
    }

    proptest! {
        /// Same values, type and errors as the checked operation, for
        /// arrays and scalars, values in and far beyond their precision.
        #[test]
        fn equals_the_checked_operation(
            a in decimals(),
            b in decimals(),
            op in prop_oneof![Just(Operator::Plus), Just(Operator::Minus), Just(Operator::Multiply)],
            scales in (0i8..6, 0i8..6),
            scalar in -10i128.pow(20)..10i128.pow(20),
            shape in 0..3,
        ) {
            let n = a.len().min(b.len());
            let batch = batch(a[..n].to_vec(), (20, scales.0), b[..n].to_vec(), (17, scales.1));
            let schema = batch.schema();
            let literal = lit(ScalarValue::Decimal128(Some(scalar), 21, scales.1));
            let (l, r) = match shape {
                0 => (col("a", &schema).unwrap(), col("b", &schema).unwrap()),
                1 => (col("a", &schema).unwrap(), literal),
                _ => (literal, col("b", &schema).unwrap()),
            };
            match both(&batch, l, op, r) {
                (Ok(c), Ok(u)) => {
                    prop_assert_eq!(c.data_type(), u.data_type());
                    prop_assert_eq!(c.nulls(), u.nulls());
                    let (c, u) = (c.as_primitive::<Decimal128Type>(), u.as_primitive::<Decimal128Type>());
                    for i in 0..n {
                        if c.is_valid(i) {
                            prop_assert_eq!(c.value(i), u.value(i), "row {}", i);
                        }
                    }
                }
                (Err(c), Err(u)) => prop_assert_eq!(c.to_string(), u.to_string()),
                (c, u) => prop_assert!(false, "checked {:?}, unchecked {:?}", c, u),
            }
        }
    }

    /// Operands that could overflow take the checked path, and fail as it
    /// does; ones that cannot are not checked.
    #[test]
    fn overflow_is_still_an_error() {
        let big = 10i128.pow(37);
        let b = batch(
            vec![Some(big), Some(1)],
            (38, 0),
            vec![Some(100), Some(2)],
            (38, 0),
        );
        let schema = b.schema();
        let (c, u) = both(
            &b,
            col("a", &schema).unwrap(),
            Operator::Multiply,
            col("b", &schema).unwrap(),
        );
        assert!(c.is_err() && u.is_err(), "{c:?} {u:?}");
        let ok = batch(
            vec![Some(big), Some(1)],
            (38, 0),
            vec![Some(10), Some(2)],
            (38, 0),
        );
        let (c, u) = both(
            &ok,
            col("a", &schema).unwrap(),
            Operator::Multiply,
            col("b", &schema).unwrap(),
        );
        assert_eq!(c.unwrap().as_ref(), u.unwrap().as_ref());
    }
}

#[cfg(test)]
mod plan_tests {
    use super::*;

    /// `sql` over a small decimal table, as text, in `ctx`.
    async fn run(ctx: datafusion::prelude::SessionContext, sql: &str) -> String {
        ctx.sql(
            "CREATE TABLE t (k INT, a DECIMAL(10,2), b DECIMAL(12,2)) AS VALUES \
             (1, 1.5, 2.25), (1, NULL, 3.00), (1, -4.75, 0.5), (2, 99999999.99, 1.01), (2, 0.01, -7)",
        )
        .await
        .unwrap();
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string()
    }

    /// Ordered aggregates over decimal arithmetic — reversed, DISTINCT
    /// with ORDER BY — answer as DataFusion does without the rule.
    #[tokio::test]
    async fn ordered_aggregates_are_unchanged() {
        // (DataFusion plans conflicting orders in one aggregate not at all.)
        for sql in [
            // The second is planned as the first reversed.
            "SELECT k, array_agg(a * 2 ORDER BY a) AS up, \
             array_agg(a * 3 ORDER BY a DESC) AS down, sum(a * (1 + b)) AS total \
             FROM t GROUP BY k ORDER BY k",
            "SELECT k, nth_value(a - b, 1 ORDER BY a) AS low, \
             nth_value(a * b, 1 ORDER BY a DESC) AS high FROM t GROUP BY k ORDER BY k",
            "SELECT k, string_agg(CAST(a * b AS VARCHAR), ',' ORDER BY a) AS up, \
             string_agg(CAST(a + b AS VARCHAR), ',' ORDER BY a DESC) AS down \
             FROM t GROUP BY k ORDER BY k",
            "SELECT k, array_agg(DISTINCT a * 2 ORDER BY a * 2) AS up FROM t GROUP BY k ORDER BY k",
        ] {
            let want = run(crate::catalog::compile::reference_session(), sql).await;
            let got = run(crate::catalog::compile::view_session(), sql).await;
            assert_eq!(got, want, "{sql}");
        }
    }

    #[tokio::test]
    async fn view_plans_use_it() {
        let ctx = crate::catalog::compile::view_session();
        ctx.sql(
            "CREATE TABLE t (a DECIMAL(10,2), b DECIMAL(12,2)) AS VALUES (1.5, 2.25), (NULL, 3.00)",
        )
        .await
        .unwrap();
        let unchecked = |sql: &'static str| {
            let ctx = ctx.clone();
            async move {
                let df = ctx.sql(sql).await.unwrap();
                unchecked_count(&df.create_physical_plan().await.unwrap())
            }
        };
        // The aggregate argument's `*` and `+`, in the partial and the
        // final aggregate (one aggregate, on a machine of one core).
        let grouped = unchecked("SELECT a, sum(a * (1 + b)) AS s FROM t GROUP BY 1").await;
        assert!(matches!(grouped, 2 | 4), "{grouped}");
        // A filter's and a projection's.
        let filtered = unchecked("SELECT a * 3 - a AS x FROM t WHERE b * 2 > a AND a > 0").await;
        assert_eq!(filtered, 3);
    }
}
