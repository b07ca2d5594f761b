//! Fuzzing that keeps running: arbitrary and mutated bytes into every
//! decoder (NDJSON, CSV, Parquet) and the SQL-definition parser. Nothing
//! may panic; a rejection is one line that names the input; an accepted
//! input conforms to the stream's schema.
//!
//! CI runs a smoke of `STRATA_FUZZ_CASES` cases per target (default 200,
//! a few seconds each); run longer locally with e.g.
//! `STRATA_FUZZ_CASES=100000 cargo test --test it fuzz`.

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::RecordBatch;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};
use strata::catalog::{Catalog, StreamDef};
use strata::log::{read_input, InputFormat, InputSource, ReadOptions};

use crate::common::{orders_ndjson, ORDERS_SQL};

fn config() -> Config {
    let cases = std::env::var("STRATA_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..Config::default()
    }
}

fn orders() -> StreamDef {
    let catalog = Catalog::from_sources(&[(PathBuf::from("orders.sql"), ORDERS_SQL.to_string())])
        .expect("the orders stream parses");
    catalog.stream("orders").unwrap().clone()
}

/// Decode `bytes` (named `name`) as `format` into `stream`'s batches.
fn read_all(
    stream: &StreamDef,
    format: InputFormat,
    name: &str,
    bytes: Vec<u8>,
) -> strata::Result<(u64, Vec<RecordBatch>)> {
    let input = InputSource::remote(name, bytes::Bytes::from(bytes), Some(format))?;
    let mut batches = Vec::new();
    let rows = read_input(
        &input,
        stream,
        ReadOptions::default(),
        &mut |b| {
            batches.push(b);
            Ok(())
        },
        &|_| {},
    )?;
    Ok((rows, batches))
}

/// Decode `bytes` as `format`; check what every outcome must satisfy.
fn decode(format: InputFormat, name: &str, bytes: Vec<u8>) -> Result<(), TestCaseError> {
    let stream = orders();
    match read_all(&stream, format, name, bytes) {
        Ok((rows, batches)) => {
            let n: usize = batches.iter().map(|b| b.num_rows()).sum();
            prop_assert_eq!(rows as usize, n);
            for b in &batches {
                prop_assert_eq!(b.schema().fields().clone(), stream.schema.fields().clone());
            }
        }
        Err(e) => {
            let text = e.to_string();
            prop_assert!(!text.is_empty());
            prop_assert!(!text.contains('\n') && !text.contains('\r'), "{}", text);
            prop_assert!(text.contains(name), "the error names the input: {}", text);
        }
    }
    Ok(())
}

/// A valid input, then random edits: flipped, inserted and removed bytes
/// and a truncation — the inputs a decoder meets in practice.
fn mutated(valid: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = valid.len();
    (
        proptest::collection::vec((0..len, any::<u8>(), 0u8..3), 0..8),
        proptest::option::of(0..=len),
    )
        .prop_map(move |(edits, keep)| {
            let mut b = valid.clone();
            for (at, byte, op) in edits {
                let at = at.min(b.len().saturating_sub(1));
                match op {
                    0 if !b.is_empty() => b[at] = byte,
                    1 => b.insert(at, byte),
                    _ if !b.is_empty() => {
                        b.remove(at);
                    }
                    _ => {}
                }
            }
            if let Some(keep) = keep {
                b.truncate(keep);
            }
            b
        })
}

fn valid_parquet() -> Vec<u8> {
    let stream = orders();
    let csv = format!(
        "order_id,ts,country,product,quantity,amount\n{}",
        (0..20)
            .map(|i| format!("{i},2026-11-01T0{}:00:00Z,US,p{i},1,{i}.50\n", i % 10))
            .collect::<String>()
    );
    let (_, batches) = read_all(&stream, InputFormat::Csv, "seed.csv", csv.into_bytes()).unwrap();
    let mut out = Vec::new();
    let mut w =
        parquet::arrow::ArrowWriter::try_new(&mut out, stream.schema.clone(), None).unwrap();
    for b in &batches {
        w.write(b).unwrap();
    }
    w.close().unwrap();
    out
}

/// A UTF-8 byte-order mark before the first line is not data.
#[test]
fn a_byte_order_mark_is_skipped() {
    let stream = orders();
    let line = r#"{"order_id":1,"ts":"2026-11-01T00:00:00Z","country":"US","product":"p","quantity":1,"amount":"2.50"}"#;
    for format in [InputFormat::Ndjson, InputFormat::Csv] {
        let body = match format {
            InputFormat::Csv => {
                "order_id,ts,country,product,quantity,amount\n1,2026-11-01T00:00:00Z,US,p,1,2.50\n"
                    .to_string()
            }
            _ => format!("{line}\n"),
        };
        let bytes = [b"\xEF\xBB\xBF".as_slice(), body.as_bytes()].concat();
        let (rows, _) = read_all(&stream, format, "bom", bytes).unwrap();
        assert_eq!(rows, 1, "{format:?}");
    }
}

/// A CSV file without a header row, or with another separator, is told
/// so (with the file and line), not which of its values is no column.
#[test]
fn a_csv_without_its_header_row_says_so() {
    let stream = orders();
    // The error reading `text` as the CSV file `name`.
    let error = |name: &str, text: &str| {
        read_all(&stream, InputFormat::Csv, name, text.as_bytes().to_vec())
            .unwrap_err()
            .to_string()
    };
    for (csv, needle) in [
        (
            "1,2026-11-01T00:00:00Z,US,p,1,2.50\n",
            "seed.csv:1: the first row names no column of stream 'orders': a CSV file needs a header row",
        ),
        (
            "order_id;ts;country;product;quantity;amount\n1;2026-11-01T00:00:00Z;US;p;1;2.50\n",
            "(its one field holds ';': strata reads comma-separated values)",
        ),
    ] {
        let e = error("seed.csv", csv);
        assert!(e.contains(needle), "{e}");
    }
    // A row with too few fields is located at its line.
    let e = error(
        "short.csv",
        "order_id,ts,country,product,quantity,amount\n1,2026-11-01T00:00:00Z,US,p,1,2.50\n2,2026-11-01T00:00:00Z,US,p,1\n",
    );
    assert!(
        e.contains("short.csv:3: incorrect number of fields, expected 6 got 5"),
        "{e}"
    );
    // A quoted field that spans lines: errors name the line a row starts
    // on, not its row number; with Windows line ends too.
    let multi = "order_id,ts,country,product,quantity,amount\n1,2026-11-01T00:00:00Z,\"U\nS\",p,1,2.50\n2,2026-11-01T00:00:00Z,\"D\nE\",p,";
    for crlf in [false, true] {
        for (tail, needle) in [
            (
                "ten,1.00\n",
                "multi.csv:4: column 'quantity': cannot read 'ten' as INT",
            ),
            (
                "1\n",
                "multi.csv:4: incorrect number of fields, expected 6 got 5",
            ),
        ] {
            let text = format!("{multi}{tail}");
            let text = if crlf {
                text.replace('\n', "\r\n")
            } else {
                text
            };
            let e = error("multi.csv", &text);
            assert!(e.contains(needle), "{e}");
        }
    }
    // A value error on the first row, CRLF: line 2, not the header's.
    let e = error(
        "first.csv",
        "order_id,ts,country,product,quantity,amount\r\n1,2026-11-01T00:00:00Z,US,p,x,2.50\r\n",
    );
    assert!(e.contains("first.csv:2: column 'quantity'"), "{e}");
    // One unknown column among declared ones is still named.
    let e = error(
        "seed.csv",
        "order_id,ts,colour\n1,2026-11-01T00:00:00Z,red\n",
    );
    assert!(e.contains("column 'colour' is not declared"), "{e}");
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn ndjson_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        decode(InputFormat::Ndjson, "fuzz.ndjson", bytes)?;
    }

    #[test]
    fn ndjson_decoder_on_mutated_input(bytes in mutated(orders_ndjson(0..6).into_bytes())) {
        decode(InputFormat::Ndjson, "fuzz.ndjson", bytes)?;
    }

    #[test]
    fn csv_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        decode(InputFormat::Csv, "fuzz.csv", bytes)?;
    }

    #[test]
    fn csv_decoder_on_mutated_input(bytes in mutated(
        b"order_id,ts,country,product,quantity,amount\n1,2026-11-01T00:00:00Z,US,p,1,2.50\n2,2026-11-01T01:00:00Z,\"D,E\",q,2,3\n".to_vec()
    )) {
        decode(InputFormat::Csv, "fuzz.csv", bytes)?;
    }

    #[test]
    fn parquet_decoder_on_mutated_input(bytes in mutated(valid_parquet())) {
        decode(InputFormat::Parquet, "fuzz.parquet", bytes)?;
    }

    #[test]
    fn definition_parser_never_panics(text in mutated_sql()) {
        let path = PathBuf::from("fuzz.sql");
        if let Err(e) = Catalog::from_sources(&[(path, text)]) {
            let msg = e.to_string();
            prop_assert!(msg.starts_with("fuzz.sql"), "names the file: {}", msg);
            prop_assert!(!msg.contains('\n'), "{}", msg);
        }
    }
}

/// The sample's definitions with random edits (as text, so it stays
/// mostly UTF-8 and reaches past the tokenizer), or arbitrary text.
fn mutated_sql() -> impl Strategy<Value = String> {
    let defs = format!(
        "{ORDERS_SQL}\n{}",
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/sql/views.sql")).unwrap()
    );
    let words = Arc::new(vec![
        "GROUP BY",
        "HAVING",
        "(",
        ")",
        ",",
        ";",
        "'",
        "\"",
        "WITH (key = 'x')",
        "DISTINCT",
        "NULL",
        "CREATE",
        "SELECT",
        "--",
        "/*",
        "\n",
        "1e400",
        "DECIMAL(99,99)",
    ]);
    prop_oneof![
        ".{0,200}".prop_map(|s: String| s),
        (
            proptest::collection::vec((0..defs.len(), 0..words.len(), any::<bool>()), 1..6),
            Just(defs)
        )
            .prop_map(move |(edits, defs)| {
                let mut s = defs;
                for (at, w, cut) in edits {
                    let mut at = at.min(s.len());
                    while !s.is_char_boundary(at) {
                        at -= 1;
                    }
                    if cut {
                        let mut end = (at + 7).min(s.len());
                        while !s.is_char_boundary(end) {
                            end -= 1;
                        }
                        s.replace_range(at..end, "");
                    } else {
                        s.insert_str(at, words[w]);
                    }
                }
                s
            }),
    ]
}
