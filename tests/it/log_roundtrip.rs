//! Invariant 1 (log): every value round-trips through an append, from each
//! input format; files land Hive-partitioned by event time; scans read
//! exactly the committed files, pruned by event time.

use std::sync::Arc;

use arrow::array::*;
use arrow::compute::concat_batches;
use arrow::datatypes::{DataType, Field, Schema};
use chrono::{NaiveDate, TimeZone, Utc};
use strata::log::{AppendOutcome, LogTable};

use crate::common::Project;

const ALL_TYPES: &str = "CREATE TABLE events (
  id BIGINT NOT NULL, ts TIMESTAMP NOT NULL, i INT, s SMALLINT, t TINYINT,
  d DOUBLE, r REAL, amount DECIMAL(10,3), name VARCHAR, flag BOOLEAN, day DATE
) WITH (event_time = 'ts', partition = 'hour');";

const NDJSON: &str = r#"{"id":1,"ts":"2026-03-01T10:00:00+02:00","i":-5,"s":300,"t":-7,"d":1.5,"r":2.25,"amount":"12.345","name":"héllo","flag":true,"day":"2026-03-01"}
{"id":2,"ts":"2026-03-01 10:30:00","i":null,"s":null,"t":null,"d":null,"r":null,"amount":null,"name":null,"flag":null,"day":null}

{"id":3,"ts":"2026-03-02T23:59:59.123456Z","i":2147483647,"s":-32768,"t":127,"d":-0.0001,"r":1e10,"amount":-9999999.999,"name":"","flag":false,"day":"1970-01-01"}
{"id":4,"ts":"2026-03-01T09:15:00-05:00"}
"#;

const CSV: &str = "id,ts,i,s,t,d,r,amount,name,flag,day
1,2026-03-01T10:00:00+02:00,-5,300,-7,1.5,2.25,12.345,héllo,true,2026-03-01
2,2026-03-01 10:30:00,,,,,,,,,
3,2026-03-02T23:59:59.123456Z,2147483647,-32768,127,-0.0001,1e10,-9999999.999,\"\",false,1970-01-01
4,2026-03-01T09:15:00-05:00,,,,,,,,,
";

fn micros(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, us: u32) -> i64 {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
        .unwrap()
        .timestamp_micros()
        + us as i64
}

fn days(y: i32, m: u32, d: u32) -> i32 {
    (NaiveDate::from_ymd_opt(y, m, d).unwrap() - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap())
        .num_days() as i32
}

/// The rows of NDJSON/CSV above, as the stream's schema should hold them.
fn expected(empty_name_is_null: bool) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("ts", strata::catalog::timestamp_type(), false),
        Field::new("i", DataType::Int32, true),
        Field::new("s", DataType::Int16, true),
        Field::new("t", DataType::Int8, true),
        Field::new("d", DataType::Float64, true),
        Field::new("r", DataType::Float32, true),
        Field::new("amount", DataType::Decimal128(10, 3), true),
        Field::new("name", DataType::Utf8View, true),
        Field::new("flag", DataType::Boolean, true),
        Field::new("day", DataType::Date32, true),
    ]));
    let name3 = if empty_name_is_null { None } else { Some("") };
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![1, 2, 3, 4])),
            Arc::new(TimestampMicrosecondArray::from(vec![
                micros(2026, 3, 1, 8, 0, 0, 0),
                micros(2026, 3, 1, 10, 30, 0, 0),
                micros(2026, 3, 2, 23, 59, 59, 123_456),
                micros(2026, 3, 1, 14, 15, 0, 0),
            ])),
            Arc::new(Int32Array::from(vec![Some(-5), None, Some(i32::MAX), None])),
            Arc::new(Int16Array::from(vec![
                Some(300),
                None,
                Some(i16::MIN),
                None,
            ])),
            Arc::new(Int8Array::from(vec![Some(-7), None, Some(127), None])),
            Arc::new(Float64Array::from(vec![
                Some(1.5),
                None,
                Some(-0.0001),
                None,
            ])),
            Arc::new(Float32Array::from(vec![Some(2.25), None, Some(1e10), None])),
            Arc::new(
                Decimal128Array::from(vec![Some(12_345), None, Some(-9_999_999_999), None])
                    .with_precision_and_scale(10, 3)
                    .unwrap(),
            ),
            Arc::new(StringViewArray::from(vec![
                Some("héllo"),
                None,
                name3,
                None,
            ])),
            Arc::new(BooleanArray::from(vec![
                Some(true),
                None,
                Some(false),
                None,
            ])),
            Arc::new(Date32Array::from(vec![
                Some(days(2026, 3, 1)),
                None,
                Some(0),
                None,
            ])),
        ],
    )
    .unwrap()
}

async fn ingest_and_read(project: &Project, file: &str, contents: &[u8]) -> RecordBatch {
    let path = project.write(file, contents);
    let mut strata = project.strata();
    let out = crate::common::append_file(&mut strata, "events", &path).await;
    assert!(
        matches!(
            out,
            AppendOutcome::Committed {
                commit: 0,
                rows: 4,
                ..
            }
        ),
        "{out:?}"
    );
    let (schema, batches) = strata
        .query("SELECT * FROM events ORDER BY id")
        .await
        .unwrap();
    concat_batches(&schema, &batches).unwrap()
}

#[tokio::test]
async fn ndjson_values_round_trip() {
    let p = Project::new(ALL_TYPES);
    let got = ingest_and_read(&p, "in.ndjson", NDJSON.as_bytes()).await;
    assert_eq!(got, expected(false));
}

#[tokio::test]
async fn csv_values_round_trip() {
    // In CSV an empty field is NULL, quoted or not.
    let p = Project::new(ALL_TYPES);
    let got = ingest_and_read(&p, "in.csv", CSV.as_bytes()).await;
    assert_eq!(got, expected(true));
}

#[tokio::test]
async fn parquet_values_round_trip() {
    let p = Project::new(ALL_TYPES);
    let mut buf = Vec::new();
    let want = expected(false);
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, want.schema(), None).unwrap();
    w.write(&want).unwrap();
    w.close().unwrap();
    let got = ingest_and_read(&p, "in.parquet", &buf).await;
    assert_eq!(got, want);
}

#[tokio::test]
async fn files_are_partitioned_by_event_time_and_scans_are_pruned() {
    // Every append partitioned, however small (see the small-append tests).
    let p = Project::new(ALL_TYPES).with_config("[log]\nsmall_append_rows = 0\n");
    let path = p.write("in.ndjson", NDJSON);
    let mut strata = p.strata();
    crate::common::append_file(&mut strata, "events", &path).await;
    let snap = strata.snapshots().await.unwrap().remove("events").unwrap();
    let mut dirs: Vec<String> = snap
        .files()
        .map(|f| f.path.rsplit_once('/').unwrap().0.to_string())
        .collect();
    dirs.sort();
    assert_eq!(
        dirs,
        [
            "date=2026-03-01/hour=08",
            "date=2026-03-01/hour=10",
            "date=2026-03-01/hour=14",
            "date=2026-03-02/hour=23"
        ]
    );
    for f in snap.files() {
        let file = p.store_dir().join("log/events").join(&f.path);
        assert!(f.min_event_time_us <= f.max_event_time_us);
        // Log files are LZ4 (LZ4_RAW), every column.
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let reader = SerializedFileReader::new(std::fs::File::open(&file).unwrap()).unwrap();
        for rg in reader.metadata().row_groups() {
            for c in rg.columns() {
                assert_eq!(c.compression(), parquet::basic::Compression::LZ4_RAW);
            }
        }
    }
    // A filter on event time prunes files before any is opened.
    let ctx = strata.session().await.unwrap();
    let table = LogTable::new(
        strata.catalog.stream("events").unwrap().clone(),
        &snap,
        datafusion::execution::object_store::ObjectStoreUrl::parse(strata::STORE_URL).unwrap(),
    );
    let filter = datafusion::prelude::col("ts").gt_eq(datafusion::prelude::lit(
        datafusion::common::ScalarValue::TimestampMicrosecond(
            Some(micros(2026, 3, 1, 12, 0, 0, 0)),
            None,
        ),
    ));
    let kept = table.prune(&ctx.state(), &[filter]).unwrap();
    let mut kept: Vec<&str> = kept.iter().map(|f| &f.path[..23]).collect();
    kept.sort();
    assert_eq!(kept, ["date=2026-03-01/hour=14", "date=2026-03-02/hour=23"]);
    // And the query answer is the same as without pruning.
    let n = crate::common::count(
        &mut strata,
        "SELECT count(*) FROM events WHERE ts >= TIMESTAMP '2026-03-01T12:00:00Z'",
    )
    .await;
    assert_eq!(n, 2);
}

#[tokio::test]
async fn a_reader_sees_exactly_the_commits_it_pinned() {
    let p = Project::orders();
    let mut strata = p.strata();
    for i in 0..3 {
        let path = p.write(
            &format!("c{i}.ndjson"),
            crate::common::orders_ndjson(i * 10..i * 10 + 10),
        );
        crate::common::append_file(&mut strata, "orders", &path).await;
    }
    let head = strata.snapshots().await.unwrap().remove("orders").unwrap();
    assert_eq!(head.head(), Some(2));
    let pinned = head.at(Some(1)).await.unwrap();
    assert_eq!(
        pinned.steps().iter().map(|c| c.commit).collect::<Vec<_>>(),
        [0, 1]
    );
    assert_eq!(pinned.files().map(|f| f.rows).sum::<u64>(), 20);
    assert_eq!(head.steps_between(1, 3).await.unwrap().len(), 2);
    // A stray file that no commit names is invisible.
    let stray = p
        .store_dir()
        .join("log/orders/date=2026-11-01/hour=00/stray.parquet");
    std::fs::copy(
        p.store_dir()
            .join("log/orders")
            .join(&head.files().next().unwrap().path),
        &stray,
    )
    .unwrap();
    assert_eq!(
        crate::common::count(&mut strata, "SELECT count(*) FROM orders").await,
        30
    );
}

/// 10 orders over 3 hours (08:00..10:08): hour 8 + i % 3, minute i.
fn ten_orders_over_three_hours() -> String {
    (0..10)
        .map(|i| {
            format!(
                "{{\"order_id\":{i},\"ts\":\"2026-11-01T{:02}:{i:02}:00Z\",\"country\":\"US\",\"product\":\"p\",\"quantity\":1,\"amount\":\"1.00\"}}\n",
                8 + i % 3
            )
        })
        .collect()
}

/// The files commit `n` of `orders` names, from its record in the store.
fn committed_files(p: &Project, n: u64) -> Vec<serde_json::Value> {
    let record = p
        .store_dir()
        .join(format!("log/orders/_commits/{n:020}.json"));
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(record).unwrap()).unwrap();
    record["files"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_small_append_writes_one_file_whatever_hours_it_spans() {
    let p = Project::orders();
    let path = p.write("small.ndjson", ten_orders_over_three_hours());
    let mut strata = p.strata();
    let out = crate::common::append_file(&mut strata, "orders", &path).await;
    assert!(
        matches!(
            out,
            AppendOutcome::Committed {
                files: 1,
                rows: 10,
                ..
            }
        ),
        "{out:?}"
    );
    let files = committed_files(&p, 0);
    assert_eq!(files.len(), 1, "{files:?}");
    let f = &files[0];
    // In the directory of its earliest event time, with exact bounds.
    let path = f["path"].as_str().unwrap();
    assert!(path.starts_with("date=2026-11-01/hour=08/"), "{path}");
    assert_eq!(f["rows"], 10);
    assert_eq!(f["min_event_time_us"], micros(2026, 11, 1, 8, 0, 0, 0));
    assert_eq!(f["max_event_time_us"], micros(2026, 11, 1, 10, 8, 0, 0));
    // Every row reads back, also through a filter that prunes by event time.
    let count = |sql: &'static str| {
        let mut strata = p.strata();
        async move { crate::common::count(&mut strata, sql).await }
    };
    assert_eq!(count("SELECT count(*) FROM orders").await, 10);
    assert_eq!(
        count("SELECT count(*) FROM orders WHERE ts >= TIMESTAMP '2026-11-01T10:00:00Z'").await,
        3
    );
    assert_eq!(
        count("SELECT count(*) FROM orders WHERE ts < TIMESTAMP '2026-11-01T08:00:00Z'").await,
        0
    );
    // A shell INSERT of rows over several hours is one file too.
    p.run(&[
        "shell",
        "-c",
        "INSERT INTO orders VALUES (100, '2026-11-02T01:00:00Z', 'DE', 'p', 1, 1.00), \
         (101, '2026-11-02T05:00:00Z', 'DE', 'p', 1, 1.00)",
    ]);
    let files = committed_files(&p, 1);
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0]["path"]
        .as_str()
        .unwrap()
        .starts_with("date=2026-11-02/hour=01/"));
    assert_eq!(count("SELECT count(*) FROM orders").await, 12);
}

#[tokio::test]
async fn an_append_past_small_append_rows_is_partitioned_by_event_time() {
    let p = Project::orders().with_config("[log]\nsmall_append_rows = 9\n");
    let path = p.write("large.ndjson", ten_orders_over_three_hours());
    let mut strata = p.strata();
    crate::common::append_file(&mut strata, "orders", &path).await;
    let files = committed_files(&p, 0);
    let mut dirs: Vec<(String, u64)> = files
        .iter()
        .map(|f| {
            let path = f["path"].as_str().unwrap();
            let hour: u32 = path[21..23].parse().unwrap();
            // Each file lies within its hour.
            assert!(f["min_event_time_us"].as_i64().unwrap() >= micros(2026, 11, 1, hour, 0, 0, 0));
            assert!(
                f["max_event_time_us"].as_i64().unwrap() < micros(2026, 11, 1, hour + 1, 0, 0, 0)
            );
            (path[..23].to_string(), f["rows"].as_u64().unwrap())
        })
        .collect();
    dirs.sort();
    assert_eq!(
        dirs,
        [
            ("date=2026-11-01/hour=08".to_string(), 4),
            ("date=2026-11-01/hour=09".to_string(), 3),
            ("date=2026-11-01/hour=10".to_string(), 3),
        ]
    );
    assert_eq!(
        crate::common::count(&mut strata, "SELECT count(*) FROM orders").await,
        10
    );
}
