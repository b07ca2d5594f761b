//! Output formats for query results and status, built on arrow's writers.

use std::io::Write;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::util::display::FormatOptions;

use crate::error::Result;

/// Timestamps print as UTC instants: strata's `TIMESTAMP` is naive UTC.
const UTC_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.fZ";

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    /// An aligned table.
    #[default]
    Table,
    /// CSV with a header row.
    Csv,
    /// One JSON array of objects.
    Json,
    /// One JSON object per line.
    Ndjson,
}

/// Print `batches` (of `schema`) to `out` in `format`.
pub fn print_batches(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<()> {
    match format {
        OutputFormat::Table => {
            let options = FormatOptions::default()
                .with_null("NULL")
                .with_timestamp_format(Some(UTC_FORMAT));
            let table = if batches.iter().all(|b| b.num_rows() == 0) {
                // Show the columns even when there are no rows.
                arrow::util::pretty::pretty_format_batches_with_options(
                    &[RecordBatch::new_empty(schema.clone())],
                    &options,
                )?
            } else {
                arrow::util::pretty::pretty_format_batches_with_options(batches, &options)?
            };
            writeln!(out, "{table}")?;
        }
        OutputFormat::Csv => {
            // A timestamp with a time zone prints in its zone, with its
            // offset (Z for UTC), as in every other format.
            let mut w = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .with_timestamp_format(UTC_FORMAT.to_string())
                .build(&mut *out);
            if batches.is_empty() {
                w.write(&RecordBatch::new_empty(schema.clone()))?;
            }
            for b in batches {
                w.write(b)?;
            }
        }
        OutputFormat::Json => {
            let mut w = arrow::json::WriterBuilder::new()
                .with_timestamp_format(UTC_FORMAT.to_string())
                .build::<_, arrow::json::writer::JsonArray>(&mut *out);
            for b in batches {
                w.write(b)?;
            }
            w.finish()?;
            if batches.iter().all(|b| b.num_rows() == 0) {
                write!(out, "[]")?;
            }
            writeln!(out)?;
        }
        OutputFormat::Ndjson => {
            let mut w = arrow::json::WriterBuilder::new()
                .with_timestamp_format(UTC_FORMAT.to_string())
                .build::<_, arrow::json::writer::LineDelimited>(&mut *out);
            for b in batches {
                w.write(b)?;
            }
            w.finish()?;
        }
    }
    out.flush()?;
    Ok(())
}

/// Total rows in `batches`.
pub fn row_count(batches: &[RecordBatch]) -> usize {
    batches.iter().map(|b| b.num_rows()).sum()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::TimestampMicrosecondArray;
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

    use super::*;

    /// One instant, 2026-11-01T06:00:00Z, naive, in a zone two hours east
    /// and in UTC, printed in `format`.
    fn printed(format: OutputFormat) -> String {
        let micros = 1_793_512_800_000_000;
        let schema = Arc::new(Schema::new(vec![
            Field::new(
                "naive",
                DataType::Timestamp(TimeUnit::Microsecond, None),
                false,
            ),
            Field::new(
                "zoned",
                DataType::Timestamp(TimeUnit::Microsecond, Some("+02:00".into())),
                false,
            ),
            Field::new(
                "utc",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                false,
            ),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(TimestampMicrosecondArray::from(vec![micros])),
                Arc::new(TimestampMicrosecondArray::from(vec![micros]).with_timezone("+02:00")),
                Arc::new(TimestampMicrosecondArray::from(vec![micros]).with_timezone("UTC")),
            ],
        )
        .unwrap();
        let mut out = Vec::new();
        print_batches(&schema, &[batch], format, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_format_prints_the_same_instant() {
        for format in [
            OutputFormat::Table,
            OutputFormat::Csv,
            OutputFormat::Json,
            OutputFormat::Ndjson,
        ] {
            let out = printed(format);
            assert_eq!(
                out.matches("2026-11-01T06:00:00Z").count(),
                2,
                "{format:?}: {out}"
            );
            assert!(
                out.contains("2026-11-01T08:00:00+02:00"),
                "{format:?}: {out}"
            );
        }
    }
}
