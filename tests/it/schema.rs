//! Invariant 8 (schema evolution) through the real binary: a stream with
//! commits may gain nullable columns — older commits read them as NULL,
//! batch versions and Kappa checkpoints stay valid — and any other change
//! is refused when its log is read, naming the column and the first commit
//! whose schema differs, with the store untouched while the project's other
//! stream keeps answering. A commit's recorded fingerprint is checked too.

use std::path::PathBuf;

use crate::common::Project;

/// Two streams, a view on each. `orders` has one nullable column.
const SQL: &str = "CREATE TABLE orders (
  order_id BIGINT NOT NULL,
  ts TIMESTAMP NOT NULL,
  country VARCHAR NOT NULL,
  amount DECIMAL(12,2) NOT NULL,
  quantity INT NOT NULL,
  coupon VARCHAR
) WITH (event_time = 'ts', partition = 'hour');
CREATE TABLE clicks (
  id BIGINT NOT NULL,
  ts TIMESTAMP NOT NULL,
  page VARCHAR NOT NULL
) WITH (event_time = 'ts', partition = 'hour');
CREATE MATERIALIZED VIEW by_country AS
SELECT country, count(*) AS n, sum(amount) AS revenue FROM orders GROUP BY country;
CREATE MATERIALIZED VIEW by_page AS SELECT page, count(*) AS n FROM clicks GROUP BY page;
";

fn orders(ids: std::ops::Range<i64>) -> String {
    ids.map(|i| {
        format!(
            "{{\"order_id\":{i},\"ts\":\"2026-11-01T10:{:02}:00Z\",\"country\":\"{}\",\"amount\":\"{i}.50\",\"quantity\":1}}\n",
            i % 60,
            ["NZ", "US"][(i % 2) as usize]
        )
    })
    .collect()
}

fn clicks(ids: std::ops::Range<i64>) -> String {
    ids.map(|i| {
        format!(
            "{{\"id\":{i},\"ts\":\"2026-11-01T10:{:02}:00Z\",\"page\":\"p{}\"}}\n",
            i % 60,
            i % 3
        )
    })
    .collect()
}

fn ingest(p: &Project, stream: &str, lines: &str) {
    let f = p.write("in.ndjson", lines);
    p.run(&["ingest", stream, f.to_str().unwrap()]);
}

fn csv(p: &Project, sql: &str) -> String {
    p.csv(sql)
}

/// Replace `from` with `to` in the definitions (which must contain it).
fn redefine(p: &Project, from: &str, to: &str) {
    let path = p.path().join("sql/defs.sql");
    let sql = std::fs::read_to_string(&path).unwrap();
    assert!(sql.contains(from), "{from}");
    std::fs::write(&path, sql.replace(from, to)).unwrap();
}

/// Orders commits 0 and 1, clicks commit 0.
fn project() -> Project {
    let p = Project::new(SQL);
    ingest(&p, "orders", &orders(0..5));
    ingest(&p, "orders", &orders(5..8));
    ingest(&p, "clicks", &clicks(0..6));
    p
}

/// Run `args`; fails expected: its stderr.
fn refused(p: &Project, args: &[&str]) -> String {
    let out = p.cmd().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !out.status.success(),
        "strata {args:?} succeeded: {}{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

/// The definitions changed by `from` → `to` are refused wherever the
/// orders log is read, with `expected` in the message; nothing is written;
/// clicks and its view keep answering.
fn assert_refused(p: &Project, from: &str, to: &str, expected: &str) {
    let before = p.store_tree();
    redefine(p, from, to);
    let more = p.write("more.ndjson", orders(100..101));
    let more = more.to_str().unwrap();
    for args in [
        &["query", "SELECT count(*) FROM orders"][..],
        &["query", "SELECT * FROM by_country"],
        &["ingest", "orders", more],
        &["batch", "by_country"],
        &["replay", "by_country"],
    ] {
        let err = refused(p, args);
        assert!(err.contains(expected), "strata {args:?}: {err}");
        assert!(
            err.contains("a stream with commits may only gain nullable columns"),
            "{err}"
        );
    }
    // `status` reports the refused stream and goes on with the others.
    let out = p.cmd().args(["status"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains(expected));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("clicks") && stdout.contains("by_page"),
        "{stdout}"
    );
    // … and lists it as refused, with why, in the output itself.
    assert!(stdout.contains("| stream  | orders |"), "{stdout}");
    let v: serde_json::Value =
        serde_json::from_str(&p.run(&["status", "--format", "json"])).unwrap();
    assert_eq!(v["refused"][0]["what"], "stream", "{v}");
    assert_eq!(v["refused"][0]["name"], "orders", "{v}");
    assert!(
        v["refused"][0]["reason"]
            .as_str()
            .unwrap()
            .contains(expected),
        "{v}"
    );
    // The other stream and its view are served.
    assert_eq!(csv(p, "SELECT count(*) AS n FROM clicks"), "n\n6\n");
    assert_eq!(
        csv(p, "SELECT page, n FROM by_page ORDER BY page"),
        "page,n\np0,2\np1,2\np2,2\n"
    );
    assert!(p.store_tree() == before, "the store changed");
}

#[test]
fn a_dropped_column_is_refused() {
    let p = project();
    assert_refused(
        &p,
        "  quantity INT NOT NULL,\n",
        "",
        "stream 'orders': column 'quantity' was dropped since commit 0 (first commit with the old schema)",
    );
}

#[test]
fn a_renamed_column_is_refused() {
    let p = project();
    assert_refused(
        &p,
        "quantity INT NOT NULL",
        "qty INT NOT NULL",
        "stream 'orders': column 'quantity' was renamed to 'qty' or dropped since commit 0",
    );
}

#[test]
fn a_retyped_column_is_refused() {
    let p = project();
    assert_refused(
        &p,
        "amount DECIMAL(12,2) NOT NULL",
        "amount DOUBLE NOT NULL",
        "stream 'orders': column 'amount' changed type from DECIMAL(12,2) to DOUBLE since commit 0",
    );
}

#[test]
fn a_column_made_not_null_is_refused() {
    let p = project();
    assert_refused(
        &p,
        "coupon VARCHAR\n",
        "coupon VARCHAR NOT NULL\n",
        "stream 'orders': column 'coupon' became NOT NULL since commit 0",
    );
}

#[test]
fn an_added_not_null_column_is_refused() {
    let p = project();
    assert_refused(
        &p,
        "coupon VARCHAR\n",
        "coupon VARCHAR,\n  channel VARCHAR NOT NULL\n",
        "stream 'orders': column 'channel' was added NOT NULL",
    );
}

/// The commit named is the first whose schema the change breaks: here a
/// column added (nullable) after commit 1, then retyped.
#[test]
fn the_first_commit_with_the_old_schema_is_named() {
    let p = project();
    redefine(&p, "coupon VARCHAR\n", "coupon VARCHAR,\n  note VARCHAR\n");
    let with_note = "{\"order_id\":9,\"ts\":\"2026-11-01T11:00:00Z\",\"country\":\"NZ\",\"amount\":\"1.00\",\"quantity\":1,\"note\":\"gift\"}\n";
    ingest(&p, "orders", with_note);
    assert_eq!(
        csv(&p, "SELECT count(note) AS notes, count(*) AS n FROM orders"),
        "notes,n\n1,9\n"
    );
    // Commits 0 and 1 have no `note`: an INT one is still only added to them.
    assert_refused(
        &p,
        "note VARCHAR\n",
        "note INT\n",
        "stream 'orders': column 'note' changed type from VARCHAR to INT since commit 2",
    );
}

/// Commits from before commits recorded their columns: the schema comes
/// from the footer of the commit's first file.
#[test]
fn commits_without_recorded_columns_are_checked_from_their_files() {
    let p = project();
    for n in 0..2 {
        let path = commit_record(&p, "orders", n);
        let mut record = read_json(&path);
        assert!(record["columns"].is_array(), "{record}");
        record.as_object_mut().unwrap().remove("columns");
        std::fs::write(&path, serde_json::to_vec_pretty(&record).unwrap()).unwrap();
    }
    // A nullable column added: read from the footer, accepted.
    redefine(&p, "coupon VARCHAR\n", "coupon VARCHAR,\n  note VARCHAR\n");
    assert_eq!(
        csv(&p, "SELECT count(*) AS n, count(note) AS notes FROM orders"),
        "n,notes\n8,0\n"
    );
    assert_refused(
        &p,
        "amount DECIMAL(12,2) NOT NULL",
        "amount DECIMAL(14,2) NOT NULL",
        "stream 'orders': column 'amount' changed type from DECIMAL(12,2) to DECIMAL(14,2) since commit 0",
    );
}

#[test]
fn a_tampered_commit_fingerprint_is_reported() {
    for recorded_columns in [true, false] {
        let p = project();
        let path = commit_record(&p, "orders", 1);
        let mut record = read_json(&path);
        record["schema_fingerprint"] = "00000000deadbeef".into();
        if !recorded_columns {
            record.as_object_mut().unwrap().remove("columns");
        }
        std::fs::write(&path, serde_json::to_vec_pretty(&record).unwrap()).unwrap();
        let before = p.store_tree();
        let err = refused(&p, &["query", "SELECT count(*) FROM orders"]);
        let from = if recorded_columns {
            "the schema it records"
        } else {
            "its files' schema"
        };
        assert!(
            err.contains("log of stream 'orders' is corrupt at commit 1: it records schema fingerprint 00000000deadbeef, but ")
                && err.contains(from),
            "{err}"
        );
        let more = p.write("more.ndjson", orders(100..101));
        let err = refused(&p, &["ingest", "orders", more.to_str().unwrap()]);
        assert!(err.contains("corrupt at commit 1"), "{err}");
        assert_eq!(csv(&p, "SELECT count(*) AS n FROM clicks"), "n\n6\n");
        assert!(p.store_tree() == before, "the store changed");
    }
}

/// A nullable column the view does not read: its batch version stays
/// current and `replay` resumes from its checkpoint.
#[test]
fn an_added_nullable_column_keeps_checkpoints_and_batch_versions() {
    let p = project();
    p.run(&["batch"]);
    let replayed = p.run(&["replay", "by_country"]);
    assert!(
        replayed.contains("by_country: 2 commits replayed"),
        "{replayed}"
    );
    let status = |p: &Project| -> serde_json::Value {
        let out = p.run(&["status", "--format", "json"]);
        let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
        doc["views"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["view"] == "by_country")
            .unwrap()
            .clone()
    };
    let before = status(&p);
    assert_eq!(before["batch_state"], "current", "{before}");
    assert_eq!(before["kappa_commits"], 2, "{before}");

    redefine(&p, "coupon VARCHAR\n", "coupon VARCHAR,\n  note VARCHAR\n");
    let after = status(&p);
    assert_eq!(after["batch_state"], "current", "{after}");
    assert_eq!(after["batch_version"], before["batch_version"], "{after}");
    assert_eq!(
        after["kappa_checkpoint"], before["kappa_checkpoint"],
        "{after}"
    );
    assert_eq!(after["kappa_commits"], 2, "{after}");

    let with_note = "{\"order_id\":9,\"ts\":\"2026-11-01T11:00:00Z\",\"country\":\"FR\",\"amount\":\"1.00\",\"quantity\":1,\"note\":\"gift\"}\n";
    ingest(&p, "orders", with_note);
    let replayed = p.run(&["replay", "by_country"]);
    assert!(
        replayed.contains("by_country: 1 commits replayed")
            && replayed.contains("resumed after 2 commits"),
        "{replayed}"
    );
    let verified = p.run(&["verify", "by_country"]);
    assert!(
        verified.contains("resumed from a checkpoint after 2 commits"),
        "{verified}"
    );
    let now = status(&p);
    assert_eq!(now["batch_state"], "current", "{now}");
    assert_eq!(now["batch_version"], before["batch_version"], "{now}");
    assert_eq!(now["speed_commits"], 1, "{now}");
    // Served: batch (commits 0..1) and speed (commit 2, the new schema).
    assert_eq!(
        csv(
            &p,
            "SELECT country, n, revenue FROM by_country ORDER BY country"
        ),
        "country,n,revenue\nFR,1,1.00\nNZ,4,14.00\nUS,4,18.00\n"
    );
    assert_eq!(
        csv(
            &p,
            "SELECT order_id, note FROM orders WHERE order_id IN (0, 9) ORDER BY order_id"
        ),
        "order_id,note\n0,\n9,gift\n"
    );
}

fn commit_record(p: &Project, stream: &str, n: u64) -> PathBuf {
    p.store_dir()
        .join(format!("log/{stream}/_commits/{n:020}.json"))
}

fn read_json(path: &PathBuf) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Rewrite `stream`'s log as strata wrote it before `TIMESTAMP` was naive
/// UTC: files and recorded columns typed `Timestamp(µs, "UTC")`, with
/// sizes, checksums and fingerprints to match.
fn age_timestamps(p: &Project, stream: &str) {
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use sha2::{Digest, Sha256};
    use std::sync::Arc;
    let old = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let mut n = 0;
    while commit_record(p, stream, n).is_file() {
        let path = commit_record(p, stream, n);
        let mut record = read_json(&path);
        for f in record["files"].as_array_mut().unwrap() {
            let file = p
                .store_dir()
                .join(format!("log/{stream}/{}", f["path"].as_str().unwrap()));
            let bytes = bytes::Bytes::from(std::fs::read(&file).unwrap());
            let reader =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
                    .unwrap()
                    .build()
                    .unwrap();
            let batches: Vec<arrow::array::RecordBatch> = reader.map(|b| b.unwrap()).collect();
            let schema = batches[0].schema();
            let fields: Vec<Field> = schema
                .fields()
                .iter()
                .map(|f| match f.data_type() {
                    DataType::Timestamp(..) => f.as_ref().clone().with_data_type(old.clone()),
                    _ => f.as_ref().clone(),
                })
                .collect();
            let aged = Arc::new(Schema::new(fields));
            let mut w =
                parquet::arrow::ArrowWriter::try_new(Vec::new(), aged.clone(), None).unwrap();
            for b in &batches {
                let columns = b
                    .columns()
                    .iter()
                    .map(|c| arrow::compute::cast(c, old_or(c.data_type(), &old)).unwrap())
                    .collect();
                w.write(&arrow::array::RecordBatch::try_new(aged.clone(), columns).unwrap())
                    .unwrap();
            }
            let out = w.into_inner().unwrap();
            f["bytes"] = out.len().into();
            f["sha256"] = hex::encode(Sha256::digest(&out)).into();
            std::fs::write(&file, out).unwrap();
        }
        let mut columns = record["columns"].as_array().unwrap().clone();
        for c in &mut columns {
            if c["type"].as_str().unwrap().starts_with("Timestamp") {
                c["type"] = old.to_string().into();
            }
        }
        let records: Vec<strata::log::ColumnRecord> =
            serde_json::from_value(columns.clone().into()).unwrap();
        record["columns"] = columns.into();
        record["schema_fingerprint"] = strata::log::schema::fingerprint(&records).into();
        record["bytes"] = record["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["bytes"].as_u64().unwrap())
            .sum::<u64>()
            .into();
        std::fs::write(&path, serde_json::to_vec_pretty(&record).unwrap()).unwrap();
        n += 1;
    }
}

fn old_or<'a>(
    t: &'a arrow::datatypes::DataType,
    old: &'a arrow::datatypes::DataType,
) -> &'a arrow::datatypes::DataType {
    match t {
        arrow::datatypes::DataType::Timestamp(..) => old,
        _ => t,
    }
}

#[test]
fn a_log_written_with_zoned_timestamps_still_opens_and_serves() {
    let p = project();
    let naive = read_json(&commit_record(&p, "orders", 0))["schema_fingerprint"].clone();
    age_timestamps(&p, "orders");
    let zoned = read_json(&commit_record(&p, "orders", 0))["schema_fingerprint"].clone();
    assert_ne!(naive, zoned);
    p.run(&["check"]);
    // New commits are naive; old and new read as the same instants.
    ingest(&p, "orders", &orders(8..10));
    assert_eq!(
        csv(
            &p,
            "SELECT count(*) AS n, min(ts) AS first, max(ts) AS last FROM orders"
        ),
        "n,first,last\n10,2026-11-01T10:00:00Z,2026-11-01T10:09:00Z\n"
    );
    // Zone-qualified literals compare as instants.
    assert_eq!(
        csv(
            &p,
            "SELECT count(*) AS n FROM orders WHERE ts >= '2026-11-01T12:05:00+02:00'"
        ),
        "n\n5\n"
    );
    // Batch, speed, Kappa and verify over both kinds of files.
    p.run(&["batch"]);
    ingest(&p, "orders", &orders(10..12));
    assert_eq!(
        csv(&p, "SELECT country, n FROM by_country ORDER BY country"),
        "country,n\nNZ,5\nUS,5\n"
    );
    p.run(&["replay"]);
    p.run(&["verify"]);
    // Compaction leaves the zoned commits alone (another schema) and
    // changes no answer.
    p.run(&["compact"]);
    assert_eq!(
        csv(
            &p,
            "SELECT count(*) AS n, count(DISTINCT order_id) AS ids FROM orders"
        ),
        "n,ids\n12,12\n"
    );
    p.run(&["check"]);
}

/// A file's recorded event-time range is of the column that was the event
/// time when it was written: declared on another column later, it prunes
/// nothing and rewrites nothing (queries and views read every file).
#[test]
fn a_changed_event_time_does_not_prune_by_the_old_ranges() {
    let p = Project::new(
        "CREATE TABLE ev (id BIGINT NOT NULL, ts TIMESTAMP NOT NULL, t2 TIMESTAMP NOT NULL) WITH (event_time = 'ts', partition = 'day');\n\
         CREATE MATERIALIZED VIEW recent AS SELECT id, t2 FROM ev WHERE t2 >= TIMESTAMP '2026-01-01T00:00:00Z';\n\
         CREATE MATERIALIZED VIEW old AS SELECT id FROM ev WHERE t2 < TIMESTAMP '2026-01-01T00:00:00Z';\n",
    );
    // One file per commit, each of one event time (ts) and one t2.
    for (id, t2) in [
        (1, "2026-03-01"),
        (2, "2025-03-01"),
        (3, "2026-02-01"),
        (4, "2026-02-02"),
    ] {
        let events = format!(
            "{{\"id\":{id},\"ts\":\"2026-01-05T10:00:00Z\",\"t2\":\"{t2}T00:00:00Z\"}}\n{{\"id\":{id}0,\"ts\":\"2026-01-05T11:00:00Z\",\"t2\":\"{t2}T00:00:00Z\"}}\n"
        );
        ingest(&p, "ev", &events);
    }
    redefine(&p, "event_time = 'ts'", "event_time = 't2'");
    p.cmd().args(["batch"]).assert().success();
    assert_eq!(
        csv(&p, "SELECT id, t2 FROM recent ORDER BY id"),
        "id,t2\n1,2026-03-01T00:00:00Z\n3,2026-02-01T00:00:00Z\n4,2026-02-02T00:00:00Z\n10,2026-03-01T00:00:00Z\n30,2026-02-01T00:00:00Z\n40,2026-02-02T00:00:00Z\n"
    );
    assert_eq!(csv(&p, "SELECT id FROM old ORDER BY id"), "id\n2\n20\n");
    assert_eq!(
        csv(
            &p,
            "SELECT count(*) AS n FROM ev WHERE t2 < TIMESTAMP '2026-01-01T00:00:00Z'"
        ),
        "n\n2\n"
    );
}
