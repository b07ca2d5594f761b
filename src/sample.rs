//! The sample event generator: e-commerce orders, deterministic for a seed.
//! It made the files in `data/` (see `data/README.md`) and feeds the
//! benchmarks at any scale.
//!
//! Events are spread evenly over the requested hours with a few seconds of
//! jitter (so they arrive slightly out of order), and a small fraction is
//! *late*: stamped up to half a day before its neighbours.

use std::io::Write;
use std::sync::Arc;

use arrow::array::{
    Decimal128Builder, Int32Builder, Int64Builder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::catalog::timestamp_type;
use crate::error::Result;

const HOUR_US: i64 = 3_600_000_000;

/// (country, weight)
const COUNTRIES: &[(&str, u32)] = &[
    ("US", 30),
    ("DE", 15),
    ("GB", 12),
    ("FR", 10),
    ("JP", 10),
    ("BR", 8),
    ("IN", 8),
    ("AU", 7),
];

/// (product, unit price in cents)
const PRODUCTS: &[(&str, i64)] = &[
    ("laptop", 129_900),
    ("phone", 79_900),
    ("tablet", 49_900),
    ("monitor", 27_900),
    ("headphones", 14_900),
    ("keyboard", 8_900),
    ("mouse", 3_900),
    ("charger", 2_500),
];

/// What to generate.
#[derive(Debug, Clone)]
pub struct SampleOptions {
    pub events: u64,
    pub seed: u64,
    /// First event time, microseconds since the epoch (UTC).
    pub start_us: i64,
    /// Hours the events are spread over.
    pub hours: u32,
    pub first_order_id: i64,
    /// Fraction of events stamped late (0.0–1.0).
    pub late_fraction: f64,
    pub batch_rows: usize,
}

impl Default for SampleOptions {
    fn default() -> Self {
        Self {
            events: 100_000,
            seed: 1,
            start_us: 1_793_491_200_000_000, // 2026-11-01T00:00:00Z
            hours: 144,
            first_order_id: 1,
            late_fraction: 0.005,
            batch_rows: 65_536,
        }
    }
}

/// The schema of the `orders` sample stream (see `sql/orders.sql`).
pub fn orders_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("order_id", DataType::Int64, false),
        Field::new("ts", timestamp_type(), false),
        Field::new("country", DataType::Utf8, false),
        Field::new("product", DataType::Utf8, false),
        Field::new("quantity", DataType::Int32, false),
        Field::new("amount", DataType::Decimal128(12, 2), false),
    ]))
}

/// An iterator of sample batches.
pub struct SampleGenerator {
    opts: SampleOptions,
    rng: ChaCha8Rng,
    produced: u64,
}

impl SampleGenerator {
    pub fn new(opts: SampleOptions) -> Self {
        let rng = ChaCha8Rng::seed_from_u64(opts.seed);
        Self {
            opts,
            rng,
            produced: 0,
        }
    }
}

impl Iterator for SampleGenerator {
    type Item = RecordBatch;

    fn next(&mut self) -> Option<RecordBatch> {
        let remaining = self.opts.events - self.produced;
        if remaining == 0 {
            return None;
        }
        let n = remaining.min(self.opts.batch_rows as u64) as usize;
        let mut order_id = Int64Builder::with_capacity(n);
        let mut ts = TimestampMicrosecondBuilder::with_capacity(n);
        let mut country = StringBuilder::with_capacity(n, n * 2);
        let mut product = StringBuilder::with_capacity(n, n * 8);
        let mut quantity = Int32Builder::with_capacity(n);
        let mut amount = Decimal128Builder::with_capacity(n)
            .with_precision_and_scale(12, 2)
            .ok()?;
        let span = self.opts.hours as i64 * HOUR_US;
        let total_weight: u32 = COUNTRIES.iter().map(|c| c.1).sum();
        for _ in 0..n {
            let i = self.produced as i64;
            let rng = &mut self.rng;
            let mut t =
                self.opts.start_us + (span as i128 * i as i128 / self.opts.events as i128) as i64;
            t += rng.random_range(-30_000_000..30_000_000);
            if rng.random_bool(self.opts.late_fraction) {
                t -= rng.random_range(HOUR_US..12 * HOUR_US);
            }
            let mut pick = rng.random_range(0..total_weight);
            let c = COUNTRIES
                .iter()
                .find(|(_, w)| {
                    if pick < *w {
                        true
                    } else {
                        pick -= w;
                        false
                    }
                })
                .map_or("US", |c| c.0);
            // Cheap items sell more often.
            let p = (rng.random_range(0.0f64..1.0).powi(2) * PRODUCTS.len() as f64) as usize;
            let (name, price) = PRODUCTS[PRODUCTS.len() - 1 - p.min(PRODUCTS.len() - 1)];
            let q: i32 = [1, 1, 1, 1, 2, 2, 3, 4][rng.random_range(0..8)];
            let unit = price * rng.random_range(80..=120) / 100;
            order_id.append_value(self.opts.first_order_id + i);
            ts.append_value(t);
            country.append_value(c);
            product.append_value(name);
            quantity.append_value(q);
            amount.append_value((unit * q as i64) as i128);
            self.produced += 1;
        }
        RecordBatch::try_new(
            orders_schema(),
            vec![
                Arc::new(order_id.finish()),
                Arc::new(ts.finish()),
                Arc::new(country.finish()),
                Arc::new(product.finish()),
                Arc::new(quantity.finish()),
                Arc::new(amount.finish()),
            ],
        )
        .ok()
    }
}

/// Output formats of the generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleFormat {
    Parquet,
    Ndjson,
    Csv,
}

/// Write generated events to `out` in `format`.
pub fn write_sample(
    opts: SampleOptions,
    format: SampleFormat,
    out: impl Write + Send,
) -> Result<u64> {
    let mut rows = 0u64;
    match format {
        SampleFormat::Parquet => {
            let props = parquet::file::properties::WriterProperties::builder()
                .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
                .build();
            let mut w = parquet::arrow::ArrowWriter::try_new(out, orders_schema(), Some(props))?;
            for b in SampleGenerator::new(opts) {
                rows += b.num_rows() as u64;
                w.write(&b)?;
            }
            w.close()?;
        }
        SampleFormat::Ndjson | SampleFormat::Csv => {
            let mut out = std::io::BufWriter::new(out);
            if format == SampleFormat::Csv {
                writeln!(out, "order_id,ts,country,product,quantity,amount")?;
            }
            for b in SampleGenerator::new(opts) {
                use arrow::array::AsArray;
                use arrow::datatypes::{
                    Decimal128Type, Int32Type, Int64Type, TimestampMicrosecondType,
                };
                let id = b.column(0).as_primitive::<Int64Type>();
                let ts = b.column(1).as_primitive::<TimestampMicrosecondType>();
                let country = b.column(2).as_string::<i32>();
                let product = b.column(3).as_string::<i32>();
                let qty = b.column(4).as_primitive::<Int32Type>();
                let amount = b.column(5).as_primitive::<Decimal128Type>();
                for i in 0..b.num_rows() {
                    let t = crate::status::iso_micros(ts.value(i));
                    let a = amount.value(i);
                    let a = format!("{}.{:02}", a / 100, a % 100);
                    if format == SampleFormat::Csv {
                        writeln!(
                            out,
                            "{},{t},{},{},{},{a}",
                            id.value(i),
                            country.value(i),
                            product.value(i),
                            qty.value(i)
                        )?;
                    } else {
                        writeln!(
                            out,
                            r#"{{"order_id":{},"ts":"{t}","country":"{}","product":"{}","quantity":{},"amount":{a}}}"#,
                            id.value(i),
                            country.value(i),
                            product.value(i),
                            qty.value(i)
                        )?;
                    }
                }
                rows += b.num_rows() as u64;
            }
            out.flush()?;
        }
    }
    Ok(rows)
}
