//! Criterion: one append of 100k sample events (decode + validate + Parquet
//! write + commit), from NDJSON, CSV and Parquet input.
//!
//! cargo bench --bench ingest

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use strata::config::Config;
use strata::log::{AppendRequest, InputSource};
use strata::sample::{write_sample, SampleFormat, SampleOptions};
use strata::Strata;

const EVENTS: u64 = 100_000;
const ORDERS_SQL: &str = include_str!("../sql/orders.sql");

fn project() -> (tempfile::TempDir, Strata) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("sql")).unwrap();
    std::fs::write(dir.path().join("sql/orders.sql"), ORDERS_SQL).unwrap();
    std::fs::write(dir.path().join("strata.toml"), "store = 'file://store'\n").unwrap();
    let strata =
        Strata::open(Config::load(&dir.path().join("strata.toml"), true).unwrap()).unwrap();
    (dir, strata)
}

fn bench_ingest(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let inputs = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("ingest_100k");
    group.throughput(Throughput::Elements(EVENTS));
    group.sample_size(10);
    for (name, format) in [
        ("ndjson", SampleFormat::Ndjson),
        ("csv", SampleFormat::Csv),
        ("parquet", SampleFormat::Parquet),
    ] {
        let path = inputs.path().join(format!("orders.{name}"));
        let opts = SampleOptions {
            events: EVENTS,
            ..Default::default()
        };
        write_sample(opts, format, std::fs::File::create(&path).unwrap()).unwrap();
        group.bench_function(name, |b| {
            b.iter_batched(
                project,
                |(_dir, mut strata)| {
                    let req = AppendRequest {
                        inputs: vec![InputSource::new(path.to_str().unwrap(), None).unwrap()],
                        ..Default::default()
                    };
                    rt.block_on(strata.append("orders", req, Arc::new(|_| {})))
                        .unwrap()
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench_ingest);
criterion_main!(benches);
