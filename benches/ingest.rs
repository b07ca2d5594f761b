//! Criterion: one append of 100k sample events (decode + validate + Parquet
//! write + commit), from NDJSON, CSV and Parquet input.
//!
//! cargo bench --bench ingest

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use strata::log::{AppendRequest, InputSource};
use strata::sample::{write_sample, SampleFormat, SampleOptions};

const EVENTS: u64 = 100_000;
mod common;
use common::project;

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
                || project("store = 'file://store'\n"),
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
