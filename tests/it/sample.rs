//! The sample in data/ is what the generator makes, and the demo runs on it.

use std::path::Path;

use predicates::prelude::*;
use strata::sample::{write_sample, SampleFormat, SampleOptions};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The options documented in data/README.md.
pub fn history() -> SampleOptions {
    SampleOptions::default()
}

pub fn fresh() -> SampleOptions {
    SampleOptions {
        events: 2_000,
        seed: 2,
        start_us: 1_794_009_600_000_000, // 2026-11-07T00:00:00Z
        hours: 12,
        first_order_id: 100_001,
        late_fraction: 0.02,
        ..Default::default()
    }
}

#[test]
fn data_files_are_reproduced_by_the_generator() {
    for (file, opts, format) in [
        ("orders.parquet", history(), SampleFormat::Parquet),
        ("orders-fresh.ndjson", fresh(), SampleFormat::Ndjson),
    ] {
        let mut buf = Vec::new();
        write_sample(opts, format, &mut buf).unwrap();
        let committed = std::fs::read(repo().join("data").join(file)).unwrap();
        assert!(
            buf == committed,
            "data/{file} differs from the generator's output"
        );
    }
}

#[test]
fn demo_runs_on_a_copy_of_the_sample_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["sql", "data"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        for e in std::fs::read_dir(repo().join(sub)).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), dir.path().join(sub).join(e.file_name())).unwrap();
        }
    }
    std::fs::copy(repo().join("strata.toml"), dir.path().join("strata.toml")).unwrap();
    let run = || {
        assert_cmd::Command::cargo_bin("strata")
            .unwrap()
            .current_dir(dir.path())
            .env_remove("STRATA_CONFIG")
            .arg("demo")
            .assert()
            .success()
    };
    run().stdout(
        predicate::str::contains("committed 100000 rows")
            .and(predicate::str::contains("committed 2000 rows"))
            .and(predicate::str::contains("| orders | 2       | 1")),
    );
    run().stdout(
        predicate::str::contains("already committed as commit 0")
            .and(predicate::str::contains("already committed as commit 1")),
    );
}
