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
            let mut w = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .with_timestamp_tz_format(UTC_FORMAT.to_string())
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
