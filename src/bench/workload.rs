//! The data `strata bench` runs on: a stream definition, its views, the
//! history, fresh events after the history and the queries served.

use std::sync::Arc;

use arrow::array::{AsArray, Int64Array, RecordBatch, TimestampMicrosecondArray};
use arrow::compute::{concat_batches, sort_to_indices, take_record_batch};
use arrow::datatypes::{Int64Type, TimestampMicrosecondType};

use crate::catalog::Catalog;
use crate::error::{Result, StrataError};
use crate::log::conform;
use crate::sample::{SampleGenerator, SampleOptions};
use crate::status::iso_micros;

const HOUR_US: i64 = 3_600_000_000;
const DAY_US: i64 = 24 * HOUR_US;

/// The sample views, as in the repository's `sql/`.
const ORDERS_SQL: &str = include_str!("../../sql/orders.sql");
const ORDER_VIEWS_SQL: &str = include_str!("../../sql/views.sql");

/// TPC-H lineitem as an event stream, and views modelled on Q1 and Q6.
pub const TPCH_SQL: &str = "\
-- TPC-H lineitem as an event stream: the event time is the ship date.
CREATE TABLE lineitem (
  l_orderkey      BIGINT NOT NULL,
  l_partkey       BIGINT NOT NULL,
  l_suppkey       BIGINT NOT NULL,
  l_linenumber    INT NOT NULL,
  l_quantity      DECIMAL(15,2) NOT NULL,
  l_extendedprice DECIMAL(15,2) NOT NULL,
  l_discount      DECIMAL(15,2) NOT NULL,
  l_tax           DECIMAL(15,2) NOT NULL,
  l_returnflag    VARCHAR NOT NULL,
  l_linestatus    VARCHAR NOT NULL,
  l_shipdate      TIMESTAMP NOT NULL,
  l_commitdate    DATE NOT NULL,
  l_receiptdate   DATE NOT NULL,
  l_shipinstruct  VARCHAR NOT NULL,
  l_shipmode      VARCHAR NOT NULL,
  l_comment       VARCHAR NOT NULL
) WITH (event_time = 'l_shipdate', partition = 'month');

-- Q1, the pricing summary report (shipped up to 90 days before 1998-12-01).
CREATE MATERIALIZED VIEW pricing_summary AS
SELECT l_returnflag, l_linestatus,
       sum(l_quantity) AS sum_qty,
       sum(l_extendedprice) AS sum_base_price,
       sum(l_extendedprice * (1 - l_discount)) AS sum_disc_price,
       sum(l_extendedprice * (1 - l_discount) * (1 + l_tax)) AS sum_charge,
       avg(l_quantity) AS avg_qty,
       avg(l_extendedprice) AS avg_price,
       avg(l_discount) AS avg_disc,
       count(*) AS count_order
FROM lineitem
WHERE l_shipdate <= TIMESTAMP '1998-09-02T00:00:00Z'
GROUP BY l_returnflag, l_linestatus;

-- Q1 per ship month.
CREATE MATERIALIZED VIEW pricing_monthly AS
SELECT date_trunc('month', l_shipdate) AS ship_month, l_returnflag, l_linestatus,
       sum(l_quantity) AS sum_qty,
       sum(l_extendedprice) AS sum_base_price,
       sum(l_extendedprice * (1 - l_discount)) AS sum_disc_price,
       sum(l_extendedprice * (1 - l_discount) * (1 + l_tax)) AS sum_charge,
       avg(l_quantity) AS avg_qty,
       avg(l_extendedprice) AS avg_price,
       avg(l_discount) AS avg_disc,
       count(*) AS count_order
FROM lineitem
GROUP BY 1, 2, 3;

-- Q6, the forecast revenue change, per ship month.
CREATE MATERIALIZED VIEW discount_revenue_monthly AS
SELECT date_trunc('month', l_shipdate) AS ship_month,
       sum(l_extendedprice * l_discount) AS revenue,
       count(*) AS lines
FROM lineitem
WHERE l_discount BETWEEN 0.05 AND 0.07 AND l_quantity < 24
GROUP BY 1;
";

/// Which data a benchmark runs on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Workload {
    /// The sample orders, `events` of them over 30 days.
    Events { events: u64 },
    /// TPC-H lineitem at scale factor `sf`, in ship-date order.
    Tpch { sf: f64 },
}

/// Hours the `events` history spans.
const EVENT_HOURS: u32 = 30 * 24;
/// 2026-11-01T00:00:00Z.
const EVENTS_START: i64 = 1_793_491_200_000_000;
/// Fresh TPC-H rows ship from 2000-01-01 on (the history ends in 1998).
const TPCH_FRESH_START: i64 = 946_684_800_000_000;

impl Workload {
    pub fn name(&self) -> String {
        match self {
            Workload::Events { events } => format!("events ({events} sample orders)"),
            Workload::Tpch { sf } => format!("tpch (lineitem, SF {sf})"),
        }
    }

    /// The stream the history is appended to.
    pub fn stream(&self) -> &'static str {
        match self {
            Workload::Events { .. } => "orders",
            Workload::Tpch { .. } => "lineitem",
        }
    }

    /// The project's definitions: `(file name, SQL)`.
    pub fn sql(&self) -> Vec<(&'static str, &'static str)> {
        match self {
            Workload::Events { .. } => {
                vec![("orders.sql", ORDERS_SQL), ("views.sql", ORDER_VIEWS_SQL)]
            }
            Workload::Tpch { .. } => vec![("lineitem.sql", TPCH_SQL)],
        }
    }

    /// The history, in event-time order, in batches of `commit_rows`.
    pub fn history(
        &self,
        catalog: &Catalog,
        commit_rows: usize,
    ) -> Result<Box<dyn Iterator<Item = Result<RecordBatch>> + Send>> {
        match *self {
            Workload::Events { events } => Ok(Box::new(
                SampleGenerator::new(SampleOptions {
                    events,
                    start_us: EVENTS_START,
                    hours: EVENT_HOURS,
                    batch_rows: commit_rows,
                    late_fraction: 0.0,
                    ..Default::default()
                })
                .map(Ok),
            )),
            Workload::Tpch { sf } => {
                let rows = lineitem(catalog, sf, usize::MAX)?;
                let all = concat_batches(&rows[0].schema(), &rows)?;
                drop(rows);
                let shipdate = all.schema().index_of("l_shipdate")?;
                let order = sort_to_indices(all.column(shipdate), None, None)?;
                let total = all.num_rows();
                Ok(Box::new((0..total).step_by(commit_rows.max(1)).map(
                    move |start| {
                        let idx = order.slice(start, commit_rows.min(total - start));
                        Ok(take_record_batch(&all, &idx)?)
                    },
                )))
            }
        }
    }

    /// `events` new events after the history, in period `seq`: each period
    /// holds keys no earlier period has (seq 0 is a larger, longer one).
    pub fn fresh(&self, catalog: &Catalog, events: u64, seq: u64) -> Result<Vec<RecordBatch>> {
        match *self {
            Workload::Events { .. } => {
                let (start_us, hours) = match seq {
                    0 => (EVENTS_START + (EVENT_HOURS as i64 + 24) * HOUR_US, 24),
                    n => (
                        EVENTS_START + (EVENT_HOURS as i64 + 48 + n as i64) * HOUR_US,
                        1,
                    ),
                };
                Ok(SampleGenerator::new(SampleOptions {
                    events,
                    seed: 1000 + seq,
                    start_us,
                    hours,
                    first_order_id: 1_000_000_000_000 + seq as i64 * 100_000_000,
                    late_fraction: 0.0,
                    batch_rows: 100_000,
                })
                .collect())
            }
            Workload::Tpch { .. } => {
                // Rows of a small scale factor, re-keyed and shipped in a
                // month after the history (seq 0: spread over later years).
                let sf = (events as f64 / 5_000_000.0).max(0.001);
                let rows = lineitem(catalog, sf, events as usize)?;
                let mut out = Vec::new();
                for b in rows {
                    out.push(retime(b, seq)?);
                }
                Ok(out)
            }
        }
    }

    /// SQL that returns one row whose first column is positive once the
    /// events of [`Self::fresh`] period `seq` are served.
    pub fn probe(&self, seq: u64) -> String {
        match self {
            Workload::Events { .. } => format!(
                "SELECT count(*) FROM revenue_hourly WHERE hour = TIMESTAMP '{}'",
                iso_micros(EVENTS_START + (EVENT_HOURS as i64 + 48 + seq as i64) * HOUR_US)
            ),
            Workload::Tpch { .. } => format!(
                "SELECT count(*) FROM pricing_monthly WHERE ship_month = TIMESTAMP '{}'",
                iso_micros(tpch_fresh_month(seq))
            ),
        }
    }

    /// A view to serve in merge mode too, and a query over it (`{view}`
    /// stands for the view's name).
    pub fn merge_probe(&self) -> (&'static str, &'static str) {
        match self {
            Workload::Events { .. } => (
                "revenue_hourly",
                "SELECT country, sum(revenue) FROM {view} GROUP BY country",
            ),
            Workload::Tpch { .. } => (
                "pricing_monthly",
                "SELECT l_returnflag, sum(count_order) FROM {view} GROUP BY 1",
            ),
        }
    }

    /// The queries whose latency is measured, over the served views.
    pub fn queries(&self) -> &'static [&'static str] {
        match self {
            Workload::Events { .. } => &[
                "SELECT country, sum(revenue) FROM revenue_hourly GROUP BY country",
                "SELECT * FROM product_daily WHERE product = 'phone'",
                "SELECT count(*), sum(amount) FROM large_orders",
            ],
            Workload::Tpch { .. } => &[
                "SELECT * FROM pricing_summary",
                "SELECT l_returnflag, sum(count_order) FROM pricing_monthly GROUP BY 1",
                "SELECT ship_month, revenue FROM discount_revenue_monthly WHERE ship_month >= TIMESTAMP '1997-01-01T00:00:00Z'",
            ],
        }
    }
}

/// The first month of fresh period `seq` (seq ≥ 1: one month each, from
/// 2010 on; seq 0 spreads over 2000–2006).
fn tpch_fresh_month(seq: u64) -> i64 {
    let month0 = 2010 * 12 + seq as i32;
    chrono::NaiveDate::from_ymd_opt(month0 / 12, (month0 % 12) as u32 + 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map_or(0, |t| t.and_utc().timestamp_micros())
}

/// Move a lineitem batch to fresh period `seq`: new order keys, and ship
/// dates after the history.
fn retime(b: RecordBatch, seq: u64) -> Result<RecordBatch> {
    let schema = b.schema();
    let key = schema.index_of("l_orderkey")?;
    let ship = schema.index_of("l_shipdate")?;
    let mut columns = b.columns().to_vec();
    let offset = 1_000_000_000_000 + seq as i64 * 100_000_000;
    let keys: Int64Array = b
        .column(key)
        .as_primitive::<Int64Type>()
        .iter()
        .map(|k| k.map(|k| k + offset))
        .collect();
    columns[key] = Arc::new(keys);
    let ts = b.column(ship).as_primitive::<TimestampMicrosecondType>();
    let shifted: TimestampMicrosecondArray = if seq == 0 {
        // 1992 → 2000: whole days, so the months stay new keys.
        ts.iter()
            .map(|t| t.map(|t| t + TPCH_FRESH_START - 694_224_000_000_000))
            .collect()
    } else {
        let month = tpch_fresh_month(seq);
        ts.iter()
            .map(|t| t.map(|t| month + t.rem_euclid(28 * DAY_US)))
            .collect()
    };
    columns[ship] = Arc::new(shifted.with_timezone("UTC"));
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// Up to `limit` rows of TPC-H lineitem at scale factor `sf`, in the
/// stream's schema.
fn lineitem(catalog: &Catalog, sf: f64, limit: usize) -> Result<Vec<RecordBatch>> {
    let stream = catalog.stream("lineitem")?;
    let generator = tpchgen::generators::LineItemGenerator::new(sf, 1, 1);
    let mut out = Vec::new();
    let mut rows = 0;
    for b in tpchgen_arrow::LineItemArrow::new(generator).with_batch_size(65_536) {
        if rows >= limit {
            break;
        }
        let b = b?;
        let b = b.slice(0, b.num_rows().min(limit - rows));
        rows += b.num_rows();
        out.push(conform(&b, stream, &|_| format!("tpch lineitem SF {sf}"))?);
    }
    if out.is_empty() {
        return Err(StrataError::Usage(format!(
            "TPC-H scale factor {sf} has no lineitem rows"
        )));
    }
    Ok(out)
}
