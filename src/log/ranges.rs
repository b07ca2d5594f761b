//! Each file's column ranges (a zone map): the smallest and largest value of
//! every column whose Parquet statistics are exact, recorded in the commit
//! that names the file. A scan's filter then skips the files outside it
//! without opening them, on any such column and not only the event time
//! (which [`FileEntry`] records on its own).
//!
//! The ranges are taken from the statistics the Parquet writer computed
//! anyway, so writing them costs no pass over the rows. Only exact ranges
//! are kept, of the types whose order is the SQL order of their values:
//! integers, decimals, dates, times, timestamps, booleans and strings of at
//! most 64 bytes (the writer truncates longer ones). Floating-point
//! columns are left out: Parquet's statistics skip NaN, which a filter such
//! as `x > 1` keeps, and they order -0.0 and 0.0 apart.
//!
//! A value is kept as text that reads back to exactly that value (checked
//! when it is recorded), so a record stays readable JSON; a timestamp as its
//! integer count of its unit, so it reads back the same instant whether the
//! stream declares it with a zone or without (the one change of type a
//! stream may make).

use arrow::array::Array;
use arrow::datatypes::{DataType, Schema, TimeUnit};
use datafusion::common::ScalarValue;
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use parquet::file::metadata::ParquetMetaData;
use serde::{Deserialize, Serialize};

use super::FileEntry;

/// One column's range in one file: every non-null value `v` of the column
/// has `min <= v <= max`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnRange {
    pub column: String,
    pub min: String,
    pub max: String,
}

/// Whether a column of `data_type` has its range recorded.
fn ranged(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Boolean
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
            | DataType::Decimal32(_, _)
            | DataType::Decimal64(_, _)
            | DataType::Decimal128(_, _)
            | DataType::Decimal256(_, _)
            | DataType::Date32
            | DataType::Date64
            | DataType::Time32(_)
            | DataType::Time64(_)
            | DataType::Timestamp(_, _)
            | DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
    )
}

/// The ranges of a written file's columns (of `schema`, the schema it was
/// written with), from the Parquet `metadata` its writer returned, leaving
/// out `skip` (the event time, recorded apart). A column is left out where
/// a row group has no exact statistics for it, or all its values are null.
pub fn file_ranges(schema: &Schema, metadata: &ParquetMetaData, skip: &str) -> Vec<ColumnRange> {
    let row_groups = metadata.row_groups();
    let parquet_schema = metadata.file_metadata().schema_descr();
    schema
        .fields()
        .iter()
        .filter(|f| f.name() != skip && ranged(f.data_type()))
        .filter_map(|field| {
            let converter =
                StatisticsConverter::try_new(field.name(), schema, parquet_schema).ok()?;
            let mins = converter.row_group_mins(row_groups).ok()?;
            let maxes = converter.row_group_maxes(row_groups).ok()?;
            let min_exact = converter.row_group_is_min_value_exact(row_groups).ok()?;
            let max_exact = converter.row_group_is_max_value_exact(row_groups).ok()?;
            let nulls = converter.row_group_null_counts(row_groups).ok()?;
            let mut range: Option<(ScalarValue, ScalarValue)> = None;
            for (i, group) in row_groups.iter().enumerate() {
                if mins.is_null(i) || maxes.is_null(i) {
                    // Only a group of nulls alone may lack a range.
                    let all_null = !nulls.is_null(i) && nulls.value(i) == group.num_rows() as u64;
                    if all_null {
                        continue;
                    }
                    return None;
                }
                if !(min_exact.value(i) && max_exact.value(i)) {
                    return None;
                }
                let min = ScalarValue::try_from_array(&mins, i).ok()?;
                let max = ScalarValue::try_from_array(&maxes, i).ok()?;
                range = Some(match range {
                    None => (min, max),
                    Some((lo, hi)) => (
                        if min < lo { min } else { lo },
                        if max > hi { max } else { hi },
                    ),
                });
            }
            let (min, max) = range?;
            Some(ColumnRange {
                column: field.name().clone(),
                min: encode(&min)?,
                max: encode(&max)?,
            })
        })
        .collect()
}

/// `value` as text that [`decode`] reads back to it, or `None`.
fn encode(value: &ScalarValue) -> Option<String> {
    if value.is_null() {
        return None;
    }
    let text = match value {
        ScalarValue::TimestampSecond(Some(v), _)
        | ScalarValue::TimestampMillisecond(Some(v), _)
        | ScalarValue::TimestampMicrosecond(Some(v), _)
        | ScalarValue::TimestampNanosecond(Some(v), _) => v.to_string(),
        other => other.to_string(),
    };
    (decode(&text, &value.data_type()).as_ref() == Some(value)).then_some(text)
}

/// The value `text` holds, as `data_type`; `None` if it does not read as
/// one.
fn decode(text: &str, data_type: &DataType) -> Option<ScalarValue> {
    match data_type {
        DataType::Timestamp(unit, zone) => {
            let v = Some(text.parse::<i64>().ok()?);
            let zone = zone.clone();
            Some(match unit {
                TimeUnit::Second => ScalarValue::TimestampSecond(v, zone),
                TimeUnit::Millisecond => ScalarValue::TimestampMillisecond(v, zone),
                TimeUnit::Microsecond => ScalarValue::TimestampMicrosecond(v, zone),
                TimeUnit::Nanosecond => ScalarValue::TimestampNanosecond(v, zone),
            })
        }
        DataType::Utf8 => Some(ScalarValue::Utf8(Some(text.to_string()))),
        DataType::LargeUtf8 => Some(ScalarValue::LargeUtf8(Some(text.to_string()))),
        DataType::Utf8View => Some(ScalarValue::Utf8View(Some(text.to_string()))),
        other if ranged(other) => ScalarValue::try_from_string(text.to_string(), other).ok(),
        _ => None,
    }
}

impl FileEntry {
    /// The file's recorded range of `column`, as values of `data_type` (the
    /// type a scan reads it as), if it has one: its event-time range if
    /// `column` is `event_time` (the stream's declared event time) and the
    /// range is of it, else the column's range.
    pub fn range(
        &self,
        column: &str,
        data_type: &DataType,
        event_time: &str,
    ) -> Option<(ScalarValue, ScalarValue)> {
        if column == event_time {
            if let (Some((min, max)), DataType::Timestamp(TimeUnit::Microsecond, zone)) =
                (self.event_time_range(event_time), data_type)
            {
                let at = |us| ScalarValue::TimestampMicrosecond(Some(us), zone.clone());
                return Some((at(min), at(max)));
            }
        }
        self.column_range(column, data_type)
    }

    /// The file's recorded range of `column`, as values of `data_type`, if
    /// it has one.
    pub fn column_range(
        &self,
        column: &str,
        data_type: &DataType,
    ) -> Option<(ScalarValue, ScalarValue)> {
        let range = self.ranges.iter().find(|r| r.column == column)?;
        Some((
            decode(&range.min, data_type)?,
            decode(&range.max, data_type)?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{
        ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int64Array,
        RecordBatch, StringArray, TimestampMicrosecondArray,
    };
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;

    use super::*;

    fn ranges_of(columns: Vec<(&str, ArrayRef)>, row_group_rows: usize) -> Vec<ColumnRange> {
        let batch = RecordBatch::try_from_iter(columns).unwrap();
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(row_group_rows))
            .build();
        let mut writer = ArrowWriter::try_new(Vec::new(), batch.schema(), Some(props)).unwrap();
        writer.write(&batch).unwrap();
        let metadata = writer.close().unwrap();
        file_ranges(&batch.schema(), &metadata, "ts")
    }

    fn range<'a>(ranges: &'a [ColumnRange], column: &str) -> Option<(&'a str, &'a str)> {
        ranges
            .iter()
            .find(|r| r.column == column)
            .map(|r| (r.min.as_str(), r.max.as_str()))
    }

    #[test]
    fn ranges_span_every_row_group_and_leave_out_what_cannot_bound() {
        let long = "x".repeat(65);
        let ranges = ranges_of(
            vec![
                (
                    "id",
                    Arc::new(Int64Array::from(vec![Some(5), None, Some(-3), Some(9)])) as ArrayRef,
                ),
                (
                    "amount",
                    Arc::new(
                        Decimal128Array::from(vec![1050, 99, 123456, 700])
                            .with_precision_and_scale(12, 2)
                            .unwrap(),
                    ),
                ),
                (
                    "day",
                    Arc::new(Date32Array::from(vec![9000, 9500, 8999, 9001])),
                ),
                (
                    "name",
                    Arc::new(StringArray::from(vec!["b", "a", "c", "bb"])),
                ),
                (
                    "note",
                    Arc::new(StringArray::from(vec!["a", "b", long.as_str(), "c"])),
                ),
                (
                    "flag",
                    Arc::new(BooleanArray::from(vec![true, true, true, true])),
                ),
                (
                    "score",
                    Arc::new(Float64Array::from(vec![1.0, f64::NAN, 2.0, 3.0])),
                ),
                ("nothing", Arc::new(Int64Array::from(vec![None::<i64>; 4]))),
                (
                    "ts",
                    Arc::new(
                        TimestampMicrosecondArray::from(vec![1, 2, 3, 4]).with_timezone("UTC"),
                    ),
                ),
                (
                    "at",
                    Arc::new(
                        TimestampMicrosecondArray::from(vec![7, -2, 5, 3]).with_timezone("UTC"),
                    ),
                ),
            ],
            2,
        );
        assert_eq!(range(&ranges, "id"), Some(("-3", "9")));
        assert_eq!(range(&ranges, "amount"), Some(("0.99", "1234.56")));
        assert_eq!(range(&ranges, "day"), Some(("1994-08-22", "1996-01-05")));
        assert_eq!(range(&ranges, "name"), Some(("a", "c")));
        assert_eq!(range(&ranges, "flag"), Some(("true", "true")));
        assert_eq!(range(&ranges, "at"), Some(("-2", "7")));
        // A string longer than the writer keeps, a float, all nulls and the
        // event time (recorded apart): no range.
        for column in ["note", "score", "nothing", "ts"] {
            assert_eq!(range(&ranges, column), None, "{column}");
        }
    }

    #[test]
    fn a_range_reads_back_as_the_scan_type() {
        let f = FileEntry {
            path: "p".into(),
            rows: 4,
            bytes: 1,
            min_event_time_us: 0,
            max_event_time_us: 1,
            sha256: "x".into(),
            event_time: None,
            ranges: vec![
                ColumnRange {
                    column: "at".into(),
                    min: "-2".into(),
                    max: "7".into(),
                },
                ColumnRange {
                    column: "name".into(),
                    min: "a".into(),
                    max: "c".into(),
                },
                ColumnRange {
                    column: "amount".into(),
                    min: "0.99".into(),
                    max: "1234.56".into(),
                },
            ],
        };
        let at =
            |zone: Option<&str>| DataType::Timestamp(TimeUnit::Microsecond, zone.map(Into::into));
        // The same instants with a zone or without.
        assert_eq!(
            f.column_range("at", &at(None)),
            Some((
                ScalarValue::TimestampMicrosecond(Some(-2), None),
                ScalarValue::TimestampMicrosecond(Some(7), None)
            ))
        );
        assert_eq!(
            f.column_range("at", &at(Some("UTC"))).map(|r| r.1),
            Some(ScalarValue::TimestampMicrosecond(
                Some(7),
                Some("UTC".into())
            ))
        );
        assert_eq!(
            f.column_range("name", &DataType::Utf8View).map(|r| r.0),
            Some(ScalarValue::Utf8View(Some("a".into())))
        );
        assert_eq!(
            f.column_range("amount", &DataType::Decimal128(12, 2))
                .map(|r| r.1),
            Some(ScalarValue::Decimal128(Some(123456), 12, 2))
        );
        assert_eq!(f.column_range("amount", &DataType::Float64), None);
        assert_eq!(f.column_range("missing", &DataType::Utf8), None);
    }
}
