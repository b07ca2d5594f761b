//! One conversion rule on every ingest path: the same value into the same
//! declared type is taken, or refused, the same way from NDJSON, CSV,
//! Parquet and a shell `INSERT` — no rounding, no truncation, no guessed
//! units. A refusal is one line naming the input, the column and the value,
//! and leaves the store unchanged; an accepted value reads back as stated.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Decimal128Array, Float32Array, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray, TimestampMillisecondArray, TimestampNanosecondArray,
    TimestampSecondArray,
};

use crate::common::Project;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    Ndjson,
    Csv,
    Parquet,
    Insert,
}
use Path::*;

const ALL: &[Path] = &[Ndjson, Csv, Parquet, Insert];
const FILES: &[Path] = &[Ndjson, Csv, Parquet];

#[derive(Clone, Copy)]
enum Input {
    /// A number as written: a JSON number, a bare CSV field, a Parquet
    /// INT64 (an integer) or DOUBLE (otherwise), an SQL number literal.
    Num(&'static str),
    /// A string: a JSON string, a quoted CSV field, a Parquet UTF8 value,
    /// an SQL string literal.
    Str(&'static str),
    /// No value: JSON null, an empty CSV field, a Parquet null, SQL NULL.
    Null,
    /// A Parquet column of a given type (Parquet only).
    Pq(fn() -> ArrayRef),
    /// An SQL expression (INSERT only).
    Sql(&'static str),
}

#[derive(Clone, Copy)]
enum Expect {
    /// Accepted; `strata query --format csv` shows this.
    Value(&'static str),
    /// Accepted as NULL.
    IsNull,
    /// Refused; the one-line error contains each of these.
    Error(&'static [&'static str]),
}
use Expect::*;

struct Case {
    ty: &'static str,
    input: Input,
    paths: &'static [Path],
    expect: Expect,
}

const DEC: &str = "DECIMAL(12,2)";
const NOT_EXACT_2: &[&str] = &[
    "DECIMAL(12,2)",
    "more than 2 digits after the decimal point",
];

fn case(ty: &'static str, input: Input, paths: &'static [Path], expect: Expect) -> Case {
    Case {
        ty,
        input,
        paths,
        expect,
    }
}

fn decimal(v: i128, p: u8, s: i8) -> ArrayRef {
    Arc::new(
        Decimal128Array::from(vec![v])
            .with_precision_and_scale(p, s)
            .unwrap(),
    )
}

// 2025-11-01T12:26:40Z
const T0: i64 = 1_762_000_000;

fn cases() -> Vec<Case> {
    vec![
        // DECIMAL: the scale must hold every digit; nothing is rounded.
        case(
            DEC,
            Input::Num("1.005"),
            ALL,
            Error(&[
                "'1.005'",
                "DECIMAL(12,2)",
                "more than 2 digits after the decimal point",
            ]),
        ),
        case(DEC, Input::Str("1.005"), ALL, Error(NOT_EXACT_2)),
        case(
            DEC,
            Input::Pq(|| decimal(1005, 10, 3)),
            &[Parquet],
            Error(NOT_EXACT_2),
        ),
        case(
            DEC,
            Input::Sql("CAST(1.005 AS DECIMAL(10,3))"),
            &[Insert],
            Error(NOT_EXACT_2),
        ),
        case(DEC, Input::Num("1.5"), ALL, Value("1.50")),
        case(DEC, Input::Str("1.5"), ALL, Value("1.50")),
        case(DEC, Input::Str("1.50"), ALL, Value("1.50")),
        case(DEC, Input::Num("1.0"), ALL, Value("1.00")),
        case(DEC, Input::Num("1"), ALL, Value("1.00")),
        case(DEC, Input::Num("1.1"), ALL, Value("1.10")),
        case(DEC, Input::Num("-0.07"), ALL, Value("-0.07")),
        case(
            DEC,
            Input::Pq(|| decimal(1500, 10, 3)),
            &[Parquet],
            Value("1.50"),
        ),
        case(
            DEC,
            Input::Num("12345678901.5"),
            ALL,
            Error(&[
                "DECIMAL(12,2)",
                "more than 10 digits before the decimal point",
            ]),
        ),
        case(
            DEC,
            Input::Str("ten"),
            ALL,
            Error(&["'ten'", "DECIMAL(12,2)"]),
        ),
        // A float's shortest round-trip text is its value, also past 2^53.
        case(
            "DECIMAL(38,17)",
            Input::Num("0.30000000000000004"),
            ALL,
            Value("0.30000000000000004"),
        ),
        case(
            "BIGINT",
            Input::Num("1.2345678901234568e18"),
            ALL,
            Value("1234567890123456800"),
        ),
        case(
            "DECIMAL(38,0)",
            Input::Num("1.2345678901234568e18"),
            ALL,
            Value("1234567890123456800"),
        ),
        case(
            "DECIMAL(38,10)",
            Input::Pq(|| Arc::new(Float32Array::from(vec![0.1f32]))),
            &[Parquet],
            Value("0.1000000000"),
        ),
        case(
            "BIGINT",
            Input::Pq(|| Arc::new(Float32Array::from(vec![1e18f32]))),
            &[Parquet],
            Value("1000000000000000000"),
        ),
        case(
            "INT",
            Input::Pq(|| Arc::new(Float32Array::from(vec![1.5f32]))),
            &[Parquet],
            Error(&["'1.5' (REAL)", "not a whole number"]),
        ),
        // Integers: a float only if integral and in range.
        case(
            "INT",
            Input::Num("1.7"),
            ALL,
            Error(&["'1.7'", "as INT", "not a whole number"]),
        ),
        case("INT", Input::Num("1.0"), ALL, Value("1")),
        case("INT", Input::Num("1e3"), ALL, Value("1000")),
        case("INT", Input::Num("-0.0"), ALL, Value("0")),
        case(
            "INT",
            Input::Num("3000000000"),
            ALL,
            Error(&["'3000000000'", "out of range for INT"]),
        ),
        case(
            "SMALLINT",
            Input::Num("-40000"),
            ALL,
            Error(&["'-40000'", "out of range for SMALLINT"]),
        ),
        case("TINYINT", Input::Num("127"), ALL, Value("127")),
        case(
            "BIGINT",
            Input::Num("9223372036854775807"),
            ALL,
            Value("9223372036854775807"),
        ),
        case(
            "BIGINT",
            Input::Str("12abc"),
            ALL,
            Error(&["'12abc'", "BIGINT"]),
        ),
        // A bad field with a newline in it: the error is still one line.
        case(
            "INT",
            Input::Str("1\n2"),
            ALL,
            Error(&["'1\\n2'", "as INT"]),
        ),
        case(
            "INT",
            Input::Str("x\ty\r"),
            FILES,
            Error(&["'x\\ty\\r'", "as INT"]),
        ),
        // TIMESTAMP: an integer has no unit, so it is refused everywhere.
        case(
            "TIMESTAMP",
            Input::Num("1762000000"),
            ALL,
            Error(&["'1762000000'", "TIMESTAMP", "RFC 3339"]),
        ),
        case(
            "TIMESTAMP",
            Input::Str("2026-11-01T10:00:00.123456Z"),
            ALL,
            Value("2026-11-01T10:00:00.123456Z"),
        ),
        case(
            "TIMESTAMP",
            Input::Str("2026-11-01T12:00:00+02:00"),
            ALL,
            Value("2026-11-01T10:00:00Z"),
        ),
        case(
            "TIMESTAMP",
            Input::Str("2026-11-01T10:00:00.123456000Z"),
            ALL,
            Value("2026-11-01T10:00:00.123456Z"),
        ),
        case(
            "TIMESTAMP",
            Input::Str("2026-11-01T10:00:00.1234567Z"),
            ALL,
            Error(&["TIMESTAMP", "sub-microsecond"]),
        ),
        case(
            "TIMESTAMP",
            Input::Str("yesterday"),
            ALL,
            Error(&["'yesterday'", "TIMESTAMP", "RFC 3339"]),
        ),
        case(
            "TIMESTAMP",
            Input::Pq(|| {
                Arc::new(
                    TimestampNanosecondArray::from(vec![T0 * 1_000_000_000 + 123_456_000])
                        .with_timezone("UTC"),
                )
            }),
            &[Parquet],
            Value("2025-11-01T12:26:40.123456Z"),
        ),
        case(
            "TIMESTAMP",
            Input::Pq(|| {
                Arc::new(TimestampNanosecondArray::from(vec![
                    T0 * 1_000_000_000 + 123_456_789,
                ]))
            }),
            &[Parquet],
            Error(&["TIMESTAMP", "sub-microsecond"]),
        ),
        case(
            "TIMESTAMP",
            Input::Pq(|| Arc::new(TimestampMillisecondArray::from(vec![T0 * 1000 + 123]))),
            &[Parquet],
            Value("2025-11-01T12:26:40.123Z"),
        ),
        case(
            "TIMESTAMP",
            Input::Pq(|| Arc::new(TimestampSecondArray::from(vec![T0]).with_timezone("+02:00"))),
            &[Parquet],
            Value("2025-11-01T12:26:40Z"),
        ),
        case(
            "TIMESTAMP",
            Input::Pq(|| Arc::new(TimestampMicrosecondArray::from(vec![T0 * 1_000_000]))),
            &[Parquet],
            Value("2025-11-01T12:26:40Z"),
        ),
        case(
            "TIMESTAMP",
            Input::Sql("TIMESTAMP '2026-11-01 10:00:00.123456789'"),
            &[Insert],
            Error(&["TIMESTAMP", "sub-microsecond"]),
        ),
        case(
            "TIMESTAMP",
            Input::Sql("TIMESTAMP '2026-11-01 10:00:00.5'"),
            &[Insert],
            Value("2026-11-01T10:00:00.500Z"),
        ),
        // DATE: a date-time only at midnight; a number has no unit.
        case("DATE", Input::Str("2026-03-01"), ALL, Value("2026-03-01")),
        case(
            "DATE",
            Input::Str("2026-03-01T00:00:00Z"),
            ALL,
            Value("2026-03-01"),
        ),
        case(
            "DATE",
            Input::Str("2026-03-01T10:00:00Z"),
            ALL,
            Error(&["DATE", "time of day"]),
        ),
        case(
            "DATE",
            Input::Num("20000"),
            ALL,
            Error(&["'20000'", "DATE", "YYYY-MM-DD"]),
        ),
        // BOOLEAN: numbers 0 and 1 only.
        case("BOOLEAN", Input::Num("1"), ALL, Value("true")),
        case("BOOLEAN", Input::Num("2"), ALL, Error(&["'2'", "BOOLEAN"])),
        // Floats: the nearest value; past the range is refused.
        case("DOUBLE", Input::Num("1.7"), ALL, Value("1.7")),
        case("DOUBLE", Input::Num("3"), ALL, Value("3.0")),
        case(
            "REAL",
            Input::Num("1e300"),
            ALL,
            Error(&["'1e300'", "out of range for REAL"]),
        ),
        // NULL into NOT NULL.
        case(
            "INT NOT NULL",
            Input::Null,
            ALL,
            Error(&["column 'v'", "NOT NULL"]),
        ),
        case("INT", Input::Null, ALL, IsNull),
    ]
}

/// The input file (or INSERT statement) of one case.
fn render(input: Input, path: Path, table: &str, id: u64) -> Option<(String, Vec<u8>)> {
    const TS: &str = "2026-11-01T00:00:00Z";
    let quote = |s: &str, q: char| format!("{q}{}{q}", s.replace(q, &format!("{q}{q}")));
    Some(match path {
        Ndjson => {
            let v = match input {
                Input::Num(n) => n.to_string(),
                Input::Str(s) => serde_json::to_string(s).unwrap(),
                Input::Null => "null".into(),
                Input::Pq(_) | Input::Sql(_) => return None,
            };
            (
                format!("c{id}.ndjson"),
                format!("{{\"id\":{id},\"ts\":\"{TS}\",\"v\":{v}}}\n").into_bytes(),
            )
        }
        Csv => {
            let v = match input {
                Input::Num(n) => n.to_string(),
                Input::Str(s) => quote(s, '"'),
                Input::Null => String::new(),
                Input::Pq(_) | Input::Sql(_) => return None,
            };
            (
                format!("c{id}.csv"),
                format!("id,ts,v\n{id},{TS},{v}\n").into_bytes(),
            )
        }
        Parquet => {
            let v: ArrayRef = match input {
                Input::Num(n) => match n.parse::<i64>() {
                    Ok(i) => Arc::new(Int64Array::from(vec![i])),
                    Err(_) => Arc::new(Float64Array::from(vec![n.parse::<f64>().unwrap()])),
                },
                Input::Str(s) => Arc::new(StringArray::from(vec![s])),
                Input::Null => Arc::new(Int64Array::from(vec![None])),
                Input::Pq(f) => f(),
                Input::Sql(_) => return None,
            };
            let batch = RecordBatch::try_from_iter(vec![
                (
                    "id",
                    Arc::new(Int64Array::from(vec![id as i64])) as ArrayRef,
                ),
                ("ts", Arc::new(StringArray::from(vec![TS])) as ArrayRef),
                ("v", v),
            ])
            .unwrap();
            let mut buf = Vec::new();
            let mut w =
                parquet::arrow::ArrowWriter::try_new(&mut buf, batch.schema(), None).unwrap();
            w.write(&batch).unwrap();
            w.close().unwrap();
            (format!("c{id}.parquet"), buf)
        }
        Insert => {
            let v = match input {
                Input::Num(n) => n.to_string(),
                Input::Str(s) => quote(s, '\''),
                Input::Null => "NULL".into(),
                Input::Sql(e) => e.to_string(),
                Input::Pq(_) => return None,
            };
            (
                String::new(),
                format!("INSERT INTO {table} VALUES ({id}, '{TS}', {v});").into_bytes(),
            )
        }
    })
}

#[test]
fn every_ingest_path_converts_values_by_one_rule() {
    let cases = cases();
    // One stream per declared type.
    let mut tables: BTreeMap<&str, String> = BTreeMap::new();
    for c in &cases {
        let n = tables.len();
        tables.entry(c.ty).or_insert_with(|| format!("t{n}"));
    }
    let sql: String = tables
        .iter()
        .map(|(ty, t)| {
            format!("CREATE TABLE {t} (id BIGINT NOT NULL, ts TIMESTAMP NOT NULL, v {ty}) WITH (event_time = 'ts', partition = 'day');\n")
        })
        .collect();
    let p = Project::new(&sql);
    let mut failures = Vec::new();
    let mut id = 0u64;
    for c in &cases {
        let table = &tables[c.ty];
        for &path in c.paths {
            id += 1;
            let what = format!("{} <- {} via {path:?}", c.ty, show(c.input));
            let (file, contents) =
                render(c.input, path, table, id).unwrap_or_else(|| panic!("{what}: no input"));
            let before = p.store_tree();
            let out = if path == Insert {
                p.cmd()
                    .args(["shell", "-c", std::str::from_utf8(&contents).unwrap()])
                    .output()
                    .unwrap()
            } else {
                let f = p.write(&file, &contents);
                p.cmd()
                    .args(["ingest", table, f.to_str().unwrap()])
                    .output()
                    .unwrap()
            };
            let stderr: String = String::from_utf8_lossy(&out.stderr)
                .chars()
                .take(400)
                .collect();
            match c.expect {
                IsNull => {
                    if !out.status.success() {
                        failures.push(format!("{what}: refused: {stderr}"));
                        continue;
                    }
                    let got = p.run(&[
                        "query",
                        &format!("SELECT v IS NULL AS n FROM {table} WHERE id = {id}"),
                        "--format",
                        "csv",
                    ]);
                    if got != "n\ntrue\n" {
                        failures.push(format!("{what}: want NULL, read back {got:?}"));
                    }
                }
                Value(want) => {
                    if !out.status.success() {
                        failures.push(format!("{what}: refused: {stderr}"));
                        continue;
                    }
                    let got = p.run(&[
                        "query",
                        &format!("SELECT v FROM {table} WHERE id = {id}"),
                        "--format",
                        "csv",
                    ]);
                    if got != format!("v\n{want}\n") {
                        failures.push(format!("{what}: want {want:?}, read back {got:?}"));
                    }
                }
                Error(needles) => {
                    if out.status.code() != Some(1) {
                        failures.push(format!(
                            "{what}: accepted or crashed ({:?}): {stderr}",
                            out.status.code()
                        ));
                        continue;
                    }
                    let lines: Vec<&str> = stderr.lines().collect();
                    if lines.len() != 1 || !lines[0].starts_with("Error: ") {
                        failures.push(format!("{what}: not one error line: {stderr:?}"));
                    }
                    let at = match path {
                        Ndjson => format!("{file}:1"),
                        Csv => format!("{file}:2"),
                        Parquet => format!("{file}: row 1"),
                        Insert => "row 1".to_string(),
                    };
                    for needle in needles.iter().copied().chain([at.as_str(), "column 'v'"]) {
                        if !stderr.contains(needle) {
                            failures.push(format!("{what}: {needle:?} missing in {stderr:?}"));
                        }
                    }
                    if p.store_tree() != before {
                        failures.push(format!("{what}: the store changed"));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {id} conversions wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn show(input: Input) -> String {
    match input {
        Input::Num(n) => n.to_string(),
        Input::Str(s) => format!("{s:?}"),
        Input::Null => "NULL".into(),
        Input::Pq(f) => format!("Parquet {}", f().data_type()),
        Input::Sql(e) => e.to_string(),
    }
}
