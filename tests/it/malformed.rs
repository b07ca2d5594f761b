//! Invariant 1 (log): an append is all-or-nothing. Each malformed input is
//! rejected with one clear line naming where and why, a non-zero exit, and
//! the store byte-for-byte unchanged.

use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};

use crate::common::{orders_ndjson, Project};

const GOOD: &str = r#"{"order_id":1,"ts":"2026-11-01T10:00:00Z","country":"US","product":"phone","quantity":1,"amount":"10.00"}"#;

fn line(overrides: &str) -> String {
    // GOOD with some fields replaced: `overrides` is `"key":value,…`.
    let mut v: serde_json::Map<String, serde_json::Value> = serde_json::from_str(GOOD).unwrap();
    let o: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&format!("{{{overrides}}}")).unwrap();
    for (k, val) in o {
        v.insert(k, val);
    }
    serde_json::to_string(&v).unwrap()
}

fn without(key: &str) -> String {
    let mut v: serde_json::Map<String, serde_json::Value> = serde_json::from_str(GOOD).unwrap();
    v.remove(key);
    serde_json::to_string(&v).unwrap()
}

fn parquet_bytes(batch: &RecordBatch) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, batch.schema(), None).unwrap();
    w.write(batch).unwrap();
    w.close().unwrap();
    buf
}

struct Case {
    name: &'static str,
    file: &'static str,
    contents: Vec<u8>,
    extra_args: Vec<&'static str>,
    /// Substrings the one-line error must contain.
    expect: Vec<&'static str>,
}

fn case(
    name: &'static str,
    file: &'static str,
    contents: impl Into<Vec<u8>>,
    expect: &[&'static str],
) -> Case {
    Case {
        name,
        file,
        contents: contents.into(),
        extra_args: vec![],
        expect: expect.to_vec(),
    }
}

fn cases() -> Vec<Case> {
    let good = format!("{GOOD}\n");
    let valid_parquet = {
        let schema = Arc::new(Schema::new(vec![
            Field::new("order_id", DataType::Int64, false),
            Field::new("ts", DataType::Utf8, false),
            Field::new("country", DataType::Utf8, false),
            Field::new("product", DataType::Utf8, false),
            Field::new("quantity", DataType::Utf8, false),
            Field::new("amount", DataType::Utf8, false),
        ]));
        let cols = |q: &str| -> Vec<arrow::array::ArrayRef> {
            vec![
                Arc::new(Int64Array::from(vec![1, 2])),
                Arc::new(StringArray::from(vec!["2026-11-01T10:00:00Z"; 2])),
                Arc::new(StringArray::from(vec!["US"; 2])),
                Arc::new(StringArray::from(vec!["phone"; 2])),
                Arc::new(StringArray::from(vec!["1", q])),
                Arc::new(StringArray::from(vec!["1.00"; 2])),
            ]
        };
        (
            parquet_bytes(&RecordBatch::try_new(schema.clone(), cols("2")).unwrap()),
            parquet_bytes(&RecordBatch::try_new(schema, cols("many")).unwrap()),
        )
    };
    let with_extra = {
        let b = RecordBatch::try_from_iter(vec![
            ("order_id", Arc::new(Int64Array::from(vec![1])) as _),
            ("coupon", Arc::new(StringArray::from(vec!["X"])) as _),
        ])
        .unwrap();
        parquet_bytes(&b)
    };
    let truncated = valid_parquet.0[..valid_parquet.0.len() / 2].to_vec();
    let mut garbage = Vec::new();
    for i in 0..4096u32 {
        garbage.push((i.wrapping_mul(2_654_435_761) >> 13) as u8);
    }
    vec![
        case("invalid JSON", "bad.ndjson", format!("{good}{good}{{\"order_id\": 3, \"ts\"\n"), &["bad.ndjson:3", "invalid JSON"]),
        case("wrong integer", "bad.ndjson", format!("{good}{}\n", line(r#""order_id":"abc""#)), &["bad.ndjson:2", "column 'order_id'", "'abc'", "BIGINT"]),
        case("fractional integer", "bad.ndjson", format!("{}\n", line(r#""quantity":1.5"#)), &["bad.ndjson:1", "column 'quantity'", "'1.5'", "INT"]),
        case("NULL in NOT NULL", "bad.ndjson", format!("{good}{good}{good}{}\n", line(r#""country":null"#)), &["bad.ndjson:4", "column 'country'", "NOT NULL"]),
        case("missing NOT NULL column", "bad.ndjson", format!("{}\n", without("product")), &["bad.ndjson:1", "column 'product'", "NOT NULL"]),
        case("unparseable timestamp", "bad.ndjson", format!("{good}\n{}\n", line(r#""ts":"yesterday""#)), &["bad.ndjson:3", "column 'ts'", "'yesterday'", "TIMESTAMP"]),
        case("impossible date", "bad.ndjson", format!("{}\n", line(r#""ts":"2026-02-30T10:00:00Z""#)), &["bad.ndjson:1", "column 'ts'"]),
        case("extra column", "bad.ndjson", format!("{}\n", line(r#""coupon":"X""#)), &["bad.ndjson:1", "'coupon' is not declared", "--ignore-extra-columns"]),
        case("not an object", "bad.ndjson", format!("{good}[1,2,3]\n"), &["bad.ndjson:2", "expected a JSON object"]),
        case("nested value", "bad.ndjson", format!("{}\n", line(r#""country":{"code":"US"}"#)), &["bad.ndjson:1", "column 'country'", "found an object"]),
        case("decimal overflow", "bad.ndjson", format!("{}\n", line(r#""amount":"12345678901234.5""#)), &["bad.ndjson:1", "column 'amount'", "DECIMAL(12,2)"]),
        case("two objects on a line", "bad.ndjson", format!("{GOOD} {GOOD}\n"), &["bad.ndjson:1", "one JSON object"]),
        case("empty ndjson", "empty.ndjson", "", &["empty.ndjson", "empty input"]),
        case("blank lines only", "blank.ndjson", "\n\n  \n", &["blank.ndjson", "empty input"]),
        case("binary garbage", "garbage.ndjson", garbage.clone(), &["garbage.ndjson:1"]),
        case("csv field count", "bad.csv", "order_id,ts,country,product,quantity,amount\n1,2026-11-01T10:00:00Z,US,phone,1,1.00\n2,2026-11-01T10:00:00Z,US\n", &["bad.csv:3: ", "incorrect number of fields"]),
        case("csv bad integer", "bad.csv", "order_id,ts,country,product,quantity,amount\n1,2026-11-01T10:00:00Z,US,phone,1,1.00\n2,2026-11-01T10:00:00Z,US,phone,two,1.00\n", &["bad.csv:3", "column 'quantity'", "'two'"]),
        case("csv unknown header", "bad.csv", "order_id,ts,country,product,quantity,amount,coupon\n", &["bad.csv:1", "'coupon' is not declared"]),
        case("csv duplicate header", "bad.csv", "order_id,order_id\n1,2\n", &["bad.csv:1", "appears twice"]),
        case("csv empty", "empty.csv", "", &["empty.csv", "empty input"]),
        case("csv header only", "header.csv", "order_id,ts,country,product,quantity,amount\n", &["header.csv", "empty input"]),
        case("csv bad timestamp", "bad.csv", "order_id,ts,country,product,quantity,amount\n1,2026-13-01T00:00:00Z,US,phone,1,1.00\n", &["bad.csv:2", "column 'ts'", "'2026-13-01T00:00:00Z'"]),
        case("truncated parquet", "cut.parquet", truncated, &["cut.parquet", "not a readable Parquet file"]),
        case("text as parquet", "text.parquet", good.clone(), &["text.parquet", "not a readable Parquet file"]),
        case("parquet bad value", "bad.parquet", valid_parquet.1, &["bad.parquet: row 2", "column 'quantity'", "'many'"]),
        case("parquet extra column", "extra.parquet", with_extra, &["extra.parquet", "'coupon' is not declared"]),
        case("garbage as csv", "garbage.csv", garbage, &["garbage.csv"]),
        case("unknown extension", "orders.txt", good.clone(), &["orders.txt", "--format"]),
        Case {
            name: "unknown stream",
            file: "ok.ndjson",
            contents: good.clone().into(),
            extra_args: vec!["--stream-override", "nope"],
            expect: vec!["unknown stream 'nope'", "orders"],
        },
        Case {
            name: "bad row after many good ones (one whole 4 MiB chunk)",
            file: "late.ndjson",
            contents: format!("{}{}\n", orders_ndjson(0..40_000), line(r#""amount":"ten""#)).into(),
            extra_args: vec![],
            expect: vec!["late.ndjson:40001", "column 'amount'", "'ten'"],
        },
    ]
}

#[test]
fn malformed_inputs_are_rejected_whole_and_leave_the_store_unchanged() {
    let p = Project::orders();
    // Start from a non-empty log.
    let seed = p.write("seed.ndjson", orders_ndjson(0..10));
    p.cmd()
        .args(["ingest", "orders", seed.to_str().unwrap()])
        .assert()
        .success();
    let before = p.store_tree();
    let cases = cases();
    assert!(cases.len() >= 20);
    for c in cases {
        let path = p.write(c.file, &c.contents);
        let mut stream = "orders";
        let mut args = Vec::new();
        let mut it = c.extra_args.iter();
        while let Some(a) = it.next() {
            if *a == "--stream-override" {
                stream = it.next().unwrap();
            } else {
                args.push(*a);
            }
        }
        let out = p
            .cmd()
            .arg("ingest")
            .arg(stream)
            .arg(&path)
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{}: accepted", c.name);
        assert_eq!(out.status.code(), Some(1), "{}: {stderr}", c.name);
        assert!(!stderr.contains("panicked"), "{}: {stderr}", c.name);
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{}: one line expected: {stderr}", c.name);
        assert!(lines[0].starts_with("Error: "), "{}: {stderr}", c.name);
        for needle in &c.expect {
            assert!(
                stderr.contains(needle),
                "{}: missing {needle:?} in: {stderr}",
                c.name
            );
        }
        assert_eq!(p.store_tree(), before, "{}: store changed", c.name);
    }
}

#[test]
fn stdin_is_read_with_the_given_format() {
    let p = Project::orders();
    p.cmd()
        .args(["ingest", "orders", "-", "--format", "csv"])
        .write_stdin(
            "order_id,ts,country,product,quantity,amount\n1,2026-11-01T10:00:00Z,US,phone,x,1.00\n",
        )
        .assert()
        .code(1)
        .stderr(predicates::str::contains("<stdin>:2: column 'quantity'"));
    p.cmd()
        .args(["ingest", "orders"])
        .write_stdin(orders_ndjson(0..7))
        .assert()
        .success()
        .stdout(predicates::str::contains("committed 7 rows"));
}

#[test]
fn ignore_extra_columns_drops_them() {
    let p = Project::orders();
    let path = p.write("extra.ndjson", format!("{}\n", line(r#""coupon":"X""#)));
    p.cmd()
        .args([
            "ingest",
            "orders",
            path.to_str().unwrap(),
            "--ignore-extra-columns",
        ])
        .assert()
        .success();
    p.cmd()
        .args([
            "query",
            "SELECT count(*) AS n FROM orders",
            "--format",
            "csv",
        ])
        .assert()
        .success()
        .stdout("n\n1\n");
}
