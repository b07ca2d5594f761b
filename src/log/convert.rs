//! The one conversion rule: how a decoded value becomes a value of its
//! column's declared type. Every ingest path decodes first (NDJSON and CSV
//! as text, Parquet as stored, a shell `INSERT` as DataFusion typed it) and
//! then calls [`conform`], so the same value is taken or refused the same
//! way whichever way it came.
//!
//! The rule: a value is converted only if the declared type holds it
//! exactly; nothing is rounded or truncated. A refused value rejects the
//! whole append, named by file and line (or row), column and value.
//!
//! - `DECIMAL(p,s)`: text parsed exactly, numbers by their decimal text
//!   (a float's shortest round-trip text); at most `s` digits after the
//!   point and `p-s` before it. `1.005` into `DECIMAL(12,2)` is refused.
//! - integers: integral and in range (`1.0` → 1; `1.7` refused).
//! - `DOUBLE`, `REAL`: the nearest value; past the range refused.
//! - `TIMESTAMP`: RFC 3339 text, or a timestamp of any unit, exactly
//!   (sub-microsecond digits refused); a number is refused (no unit).
//! - `DATE`: `YYYY-MM-DD` text, or a time at midnight; a number is refused.
//! - `BOOLEAN`: arrow's spellings as text; numbers 0 and 1.
//! - `VARCHAR`: anything, as its text.
//!
//! README.md ("How values are converted") has the table.
//!
//! The checks are vectorised: cast with arrow's kernels, cast back and
//! compare; only the rows that fail the fast check are looked at one by one
//! (to decide exactly, and to explain). Text into `DECIMAL` is parsed by
//! [`parse_exact`]: arrow's parser rounds.

use std::sync::Arc;

use arrow::array::{
    new_null_array, Array, ArrayRef, AsArray, BooleanArray, Decimal128Array, PrimitiveArray,
    RecordBatch, StringArray,
};
use arrow::buffer::{BooleanBuffer, NullBuffer};
use arrow::compute::kernels::cast_utils::string_to_datetime;
use arrow::compute::kernels::cmp::eq;
use arrow::compute::{cast_with_options, CastOptions};
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type,
    Int32Type, Int64Type, Int8Type, TimeUnit, TimestampMicrosecondType,
};
use arrow::error::ArrowError;
use arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::catalog::StreamDef;
use crate::error::{escape_control, Result, StrataError};

/// Cast `raw` (columns by name, any subset of the declared ones) to the
/// stream's schema by the conversion rule. `locate(i)` names row `i` of
/// `raw` in error messages.
pub fn conform(
    raw: &RecordBatch,
    stream: &StreamDef,
    locate: &dyn Fn(usize) -> String,
) -> Result<RecordBatch> {
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(stream.schema.fields().len());
    for field in stream.schema.fields() {
        let name = field.name();
        let column = match raw.column_by_name(name) {
            None => new_null_array(field.data_type(), raw.num_rows()),
            Some(col) => convert(col, field.data_type()).map_err(|r| {
                StrataError::input(
                    locate(r.row),
                    describe(name, col.as_ref(), field.data_type(), &r),
                )
            })?,
        };
        if name == &stream.event_time {
            check_event_time(&column, name, locate)?;
        }
        if !field.is_nullable() && column.null_count() > 0 {
            let i = (0..column.len()).find(|&i| column.is_null(i)).unwrap_or(0);
            return Err(StrataError::input(
                locate(i),
                if name == &stream.event_time {
                    format!("column '{name}' is missing or NULL, but it is the stream's event time, which every event needs")
                } else {
                    format!("column '{name}' is missing or NULL, but is declared NOT NULL")
                },
            ));
        }
        columns.push(column);
    }
    Ok(RecordBatch::try_new(stream.schema.clone(), columns)?)
}

/// A refused value: its row, and why, when there is more to say than
/// "cannot read".
#[derive(Debug)]
struct Reject {
    row: usize,
    reason: Option<String>,
}

impl Reject {
    fn at(row: usize, reason: impl Into<String>) -> Self {
        Self {
            row,
            reason: Some(reason.into()),
        }
    }
}

type Converted = std::result::Result<ArrayRef, Reject>;

const TIMESTAMP_HINT: &str =
    "give an RFC 3339 string such as '2026-11-01T10:00:00Z' or a Parquet TIMESTAMP column";
const NUMBER_TO_TIMESTAMP: &str = "a number has no declared unit; give an RFC 3339 string such as '2026-11-01T10:00:00Z' or a Parquet TIMESTAMP column";
const NUMBER_TO_DATE: &str =
    "a number has no declared unit; give a 'YYYY-MM-DD' string or a Parquet DATE column";
const SUB_MICROS: &str = "sub-microsecond precision would be lost (TIMESTAMP holds microseconds)";
const DATE_HINT: &str = "give a 'YYYY-MM-DD' string";
const TIME_OF_DAY: &str = "a time of day would be lost (DATE holds dates only)";

/// The message for a refused value of column `name`.
fn describe(name: &str, col: &dyn Array, to: &DataType, r: &Reject) -> String {
    let from = match col.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => String::new(),
        DataType::Dictionary(_, v)
            if matches!(
                **v,
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
            ) =>
        {
            String::new()
        }
        t => format!(" ({})", source_type_name(t)),
    };
    let mut msg = format!(
        "column '{name}': cannot read {}{from} as {}",
        show_value(col, r.row),
        sql_type_name(to)
    );
    if let Some(reason) = &r.reason {
        msg.push_str(": ");
        msg.push_str(reason);
    }
    msg
}

fn source_type_name(t: &DataType) -> String {
    match t {
        DataType::Timestamp(unit, _) => format!("TIMESTAMP in {}", unit_name(unit)),
        DataType::Dictionary(_, v) => source_type_name(v),
        t => sql_type_name(t),
    }
}

fn unit_name(unit: &TimeUnit) -> &'static str {
    match unit {
        TimeUnit::Second => "seconds",
        TimeUnit::Millisecond => "milliseconds",
        TimeUnit::Microsecond => "microseconds",
        TimeUnit::Nanosecond => "nanoseconds",
    }
}

/// What a source column holds, for choosing the conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Int,
    Float,
    Decimal,
    Bool,
    Timestamp,
    Date,
    Other,
}

fn kind(t: &DataType) -> Kind {
    use DataType::*;
    match t {
        Utf8 => Kind::Text,
        Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 => Kind::Int,
        Float32 | Float64 => Kind::Float,
        Decimal32(..) | Decimal64(..) | Decimal128(..) | Decimal256(..) => Kind::Decimal,
        Boolean => Kind::Bool,
        Timestamp(..) => Kind::Timestamp,
        Date32 | Date64 => Kind::Date,
        _ => Kind::Other,
    }
}

fn is_exact_numeric(t: &DataType) -> bool {
    use DataType::*;
    matches!(t, Int8 | Int16 | Int32 | Int64 | Decimal128(..))
}

fn safe_cast(a: &dyn Array, to: &DataType) -> std::result::Result<ArrayRef, ArrowError> {
    let opts = CastOptions {
        safe: true,
        ..Default::default()
    };
    cast_with_options(a, to, &opts)
}

/// The first row of `col` holding a value: where a column that cannot be
/// converted at all is refused.
fn first_value(col: &dyn Array) -> usize {
    (0..col.len()).find(|&i| col.is_valid(i)).unwrap_or(0)
}

fn refuse_all(col: &dyn Array, reason: impl Into<String>) -> Reject {
    Reject::at(first_value(col), reason)
}

/// Convert one column to `to` by the rule.
fn convert(col: &ArrayRef, to: &DataType) -> Converted {
    if col.data_type() == to {
        return Ok(col.clone());
    }
    if col.logical_null_count() == col.len() {
        return Ok(new_null_array(to, col.len()));
    }
    // Encodings that change no value: dictionaries, other string layouts,
    // half floats.
    let normal = match col.data_type() {
        DataType::Dictionary(_, v) => safe_cast(col, v),
        DataType::LargeUtf8 | DataType::Utf8View => safe_cast(col, &DataType::Utf8),
        DataType::Float16 => safe_cast(col, &DataType::Float32),
        _ => Ok(col.clone()),
    };
    let col = &normal.map_err(|e| refuse_all(col, e.to_string()))?;
    if col.data_type() == to {
        return Ok(col.clone());
    }
    let from = kind(col.data_type());
    use DataType as T;
    match (from, to) {
        (_, T::Utf8) => to_text(col),
        (Kind::Text, _) => text_to(col, to),
        (Kind::Int | Kind::Float | Kind::Decimal, t) if is_exact_numeric(t) => {
            number_to_exact(col, to)
        }
        (Kind::Int | Kind::Float | Kind::Decimal, T::Float32 | T::Float64) => {
            number_to_float(col, to)
        }
        (Kind::Int | Kind::Float | Kind::Decimal, T::Timestamp(..)) => {
            Err(refuse_all(col, NUMBER_TO_TIMESTAMP))
        }
        (Kind::Int | Kind::Float | Kind::Decimal, T::Date32) => {
            Err(refuse_all(col, NUMBER_TO_DATE))
        }
        (Kind::Int | Kind::Float, T::Boolean) => {
            round_trip(col, to, |_| "only 0 and 1 are booleans".into())
        }
        (Kind::Timestamp | Kind::Date, T::Timestamp(TimeUnit::Microsecond, _)) => {
            to_timestamp(col, to)
        }
        (Kind::Timestamp | Kind::Date, T::Date32) => round_trip(col, to, |_| TIME_OF_DAY.into()),
        (Kind::Bool | Kind::Timestamp | Kind::Date, _) => Err(refuse_all(col, "not a number")),
        (Kind::Int | Kind::Float | Kind::Decimal | Kind::Other, _) => Err(refuse_all(
            col,
            format!(
                "cannot convert {} to {}",
                col.data_type(),
                sql_type_name(to)
            ),
        )),
    }
}

/// Rows that hold a value in `src` but not in `out`.
fn lost(src: &dyn Array, out: &dyn Array) -> BooleanBuffer {
    match out.logical_nulls() {
        None => BooleanBuffer::new_unset(src.len()),
        Some(out_nulls) => {
            let missing = !out_nulls.inner();
            match src.logical_nulls() {
                Some(n) => &missing & n.inner(),
                None => missing,
            }
        }
    }
}

/// Rows that hold a value in `src`.
fn valid_rows(src: &dyn Array) -> BooleanBuffer {
    match src.logical_nulls() {
        Some(n) => n.inner().clone(),
        None => BooleanBuffer::new_set(src.len()),
    }
}

/// Rows that hold a value in `src` and whose `ok` is not true.
fn failing(src: &dyn Array, ok: &BooleanArray) -> BooleanBuffer {
    // A NULL comparison (the value did not come back) is a failure.
    let ok = match ok.nulls() {
        Some(n) => ok.values() & n.inner(),
        None => ok.values().clone(),
    };
    let bad = !&ok;
    match src.logical_nulls() {
        Some(n) => &bad & n.inner(),
        None => bad,
    }
}

/// A cast that may drop values (they become NULL, and are refused).
fn checked_cast(col: &ArrayRef, to: &DataType, reason: Option<&str>) -> Converted {
    let out = safe_cast(col, to).map_err(|e| refuse_all(col, e.to_string()))?;
    match lost(col, &out).set_indices().next() {
        None => Ok(out),
        Some(row) => Err(Reject {
            row,
            reason: reason.map(str::to_string),
        }),
    }
}

/// Cast to `to`, cast back and compare: a value that does not come back
/// unchanged was not held exactly, and is refused with `why(row)`.
fn round_trip(col: &ArrayRef, to: &DataType, why: impl Fn(usize) -> String) -> Converted {
    let (out, same) = cast_and_back(col, to).map_err(|e| refuse_all(col, e.to_string()))?;
    match failing(col, &same).set_indices().next() {
        None => Ok(out),
        Some(row) => Err(Reject::at(row, why(row))),
    }
}

/// `col` cast to `to`, and which rows come back unchanged.
fn cast_and_back(
    col: &ArrayRef,
    to: &DataType,
) -> std::result::Result<(ArrayRef, BooleanArray), ArrowError> {
    let out = safe_cast(col, to)?;
    let back = safe_cast(&out, col.data_type())?;
    let same = eq(&back, col)?;
    Ok((out, same))
}

/// Anything into VARCHAR: its text (bytes must be UTF-8).
fn to_text(col: &ArrayRef) -> Converted {
    checked_cast(col, &DataType::Utf8, Some("not valid UTF-8 text"))
}

/// Integers, floats and decimals into an integer or DECIMAL type: only
/// values held exactly. Fast path: cast, cast back, compare. Rows that
/// fail it are decided by their decimal text (the shortest round-trip text
/// for floats), which is the rule itself.
fn number_to_exact(col: &ArrayRef, to: &DataType) -> Converted {
    let (out, same) = cast_and_back(col, to).map_err(|e| refuse_all(col, e.to_string()))?;
    let mut suspects = failing(col, &same);
    if kind(col.data_type()) == Kind::Float {
        // A float's value is its shortest round-trip text. Arrow's cast
        // (round(float × 10^s)) gives exactly that, and the round trip
        // proves it, only for results below 2^50 (2^21 for REAL) and small
        // enough scales: past them, decide row by row.
        let (bits, max_scale) = match col.data_type() {
            DataType::Float32 => (21, 8),
            _ => (50, 22),
        };
        let scale = match to {
            DataType::Decimal128(_, s) => *s,
            _ => 0,
        };
        if !(0..=max_scale).contains(&scale) {
            suspects = valid_rows(col.as_ref());
        } else if let Some(large) = at_least(&out, 1 << bits) {
            suspects = &suspects | &(&large & &valid_rows(col.as_ref()));
        }
    }
    if suspects.count_set_bits() == 0 {
        return Ok(out);
    }
    let mut patches = Vec::new();
    for row in suspects.set_indices() {
        let text = number_text(col.as_ref(), row);
        let exact = parse_exact(&text).ok_or(Reject { row, reason: None })?;
        let v = fit(&exact, to).map_err(|reason| Reject::at(row, reason))?;
        patches.push((row, v));
    }
    Ok(patch(&out, col.logical_nulls(), to, &patches))
}

/// Rows of `out` (an integer or DECIMAL array) whose unscaled magnitude is
/// at least `limit`; `None` if its type cannot hold such a value.
fn at_least(out: &ArrayRef, limit: i128) -> Option<BooleanBuffer> {
    fn rows<T: ArrowPrimitiveType>(
        out: &ArrayRef,
        big: impl Fn(T::Native) -> bool,
    ) -> BooleanBuffer {
        let v = out.as_primitive::<T>().values();
        BooleanBuffer::collect_bool(v.len(), |i| big(v[i]))
    }
    let limit_u = limit.unsigned_abs();
    match out.data_type() {
        DataType::Int32 if limit_u <= i32::MAX as u128 => Some(rows::<Int32Type>(out, |x| {
            x.unsigned_abs() as u128 >= limit_u
        })),
        DataType::Int64 => Some(rows::<Int64Type>(out, |x| {
            x.unsigned_abs() as u128 >= limit_u
        })),
        DataType::Decimal128(p, _) if 10u128.pow(*p as u32) > limit_u => {
            Some(rows::<Decimal128Type>(out, |x| x.unsigned_abs() >= limit_u))
        }
        _ => None,
    }
}

/// The decimal text of a number: Rust's shortest round-trip text for
/// floats, arrow's exact text for integers and decimals.
fn number_text(col: &dyn Array, row: usize) -> String {
    match col.data_type() {
        DataType::Float64 => col.as_primitive::<Float64Type>().value(row).to_string(),
        DataType::Float32 => col.as_primitive::<Float32Type>().value(row).to_string(),
        _ => ArrayFormatter::try_new(col, &FormatOptions::default())
            .map(|f| f.value(row).to_string())
            .unwrap_or_default(),
    }
}

/// `out` (of type `to`) with the values of some rows replaced and the
/// validity of `nulls` (the source's: every value the source held is held).
fn patch(
    out: &ArrayRef,
    nulls: Option<NullBuffer>,
    to: &DataType,
    patches: &[(usize, i128)],
) -> ArrayRef {
    fn with<T: ArrowPrimitiveType>(
        out: &ArrayRef,
        nulls: Option<NullBuffer>,
        to: &DataType,
        patches: &[(usize, i128)],
        native: impl Fn(i128) -> T::Native,
    ) -> ArrayRef {
        let mut values = out.as_primitive::<T>().values().to_vec();
        for &(i, v) in patches {
            values[i] = native(v);
        }
        Arc::new(PrimitiveArray::<T>::new(values.into(), nulls).with_data_type(to.clone()))
    }
    match to {
        DataType::Int8 => with::<Int8Type>(out, nulls, to, patches, |v| v as i8),
        DataType::Int16 => with::<Int16Type>(out, nulls, to, patches, |v| v as i16),
        DataType::Int32 => with::<Int32Type>(out, nulls, to, patches, |v| v as i32),
        DataType::Int64 => with::<Int64Type>(out, nulls, to, patches, |v| v as i64),
        DataType::Decimal128(..) => with::<Decimal128Type>(out, nulls, to, patches, |v| v),
        other => unreachable!("patch into {other}"),
    }
}

/// Integers and decimals into DOUBLE or REAL: the nearest value (decimals
/// through their text, so a value converts as its text would).
fn number_to_float(col: &ArrayRef, to: &DataType) -> Converted {
    match kind(col.data_type()) {
        Kind::Decimal => {
            let text =
                safe_cast(col, &DataType::Utf8).map_err(|e| refuse_all(col, e.to_string()))?;
            text_to_float(col, &text, to)
        }
        Kind::Float => {
            let out = checked_cast(col, to, None)?;
            refuse_overflow(out, |row| match col.data_type() {
                DataType::Float64 => col.as_primitive::<Float64Type>().value(row).is_finite(),
                _ => col.as_primitive::<Float32Type>().value(row).is_finite(),
            })
        }
        _ => checked_cast(col, to, None),
    }
}

/// Refuse rows that became infinite where `finite(row)`: values out of
/// the range of the float type.
fn refuse_overflow(out: ArrayRef, finite: impl Fn(usize) -> bool) -> Converted {
    let infinite = |i: usize| match out.data_type() {
        DataType::Float64 => out.as_primitive::<Float64Type>().value(i).is_infinite(),
        DataType::Float32 => out.as_primitive::<Float32Type>().value(i).is_infinite(),
        _ => false,
    };
    let any = match out.data_type() {
        DataType::Float64 => out
            .as_primitive::<Float64Type>()
            .values()
            .iter()
            .any(|x| x.is_infinite()),
        DataType::Float32 => out
            .as_primitive::<Float32Type>()
            .values()
            .iter()
            .any(|x| x.is_infinite()),
        _ => false,
    };
    if any {
        if let Some(row) = (0..out.len()).find(|&i| out.is_valid(i) && infinite(i) && finite(i)) {
            let reason = format!("out of range for {}", sql_type_name(out.data_type()));
            return Err(Reject::at(row, reason));
        }
    }
    Ok(out)
}

/// Text into any type but VARCHAR.
fn text_to(col: &ArrayRef, to: &DataType) -> Converted {
    match to {
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => {
            text_to_int(col, to)
        }
        DataType::Decimal128(..) => text_to_decimal(col, to),
        DataType::Float32 | DataType::Float64 => text_to_float(col, col, to),
        DataType::Timestamp(TimeUnit::Microsecond, _) => text_to_timestamp(col, to),
        DataType::Date32 => text_to_date(col),
        _ => checked_cast(col, to, None),
    }
}

/// Integers parse with arrow's kernel; what it refuses is read exactly
/// ("1.0" and "1e3" are integers, "1.5" is not).
fn text_to_int(col: &ArrayRef, to: &DataType) -> Converted {
    let out = safe_cast(col, to).map_err(|e| refuse_all(col, e.to_string()))?;
    let suspects = lost(col, &out);
    if suspects.count_set_bits() == 0 {
        return Ok(out);
    }
    let text = col.as_string::<i32>();
    let mut patches = Vec::new();
    for row in suspects.set_indices() {
        let exact = parse_exact(text.value(row)).ok_or(Reject { row, reason: None })?;
        let v = fit(&exact, to).map_err(|reason| Reject::at(row, reason))?;
        patches.push((row, v));
    }
    Ok(patch(&out, col.logical_nulls(), to, &patches))
}

/// Decimals are parsed exactly (arrow's parser rounds to the scale).
fn text_to_decimal(col: &ArrayRef, to: &DataType) -> Converted {
    let text = col.as_string::<i32>();
    let mut values = Vec::with_capacity(text.len());
    for row in 0..text.len() {
        if text.is_null(row) {
            values.push(0);
            continue;
        }
        let exact = parse_exact(text.value(row)).ok_or(Reject { row, reason: None })?;
        values.push(fit(&exact, to).map_err(|reason| Reject::at(row, reason))?);
    }
    Ok(Arc::new(
        Decimal128Array::new(values.into(), text.nulls().cloned()).with_data_type(to.clone()),
    ))
}

/// Floats parse to the nearest value; a finite text that overflows is
/// refused. `col` is the source (for messages), `text` its text.
fn text_to_float(col: &ArrayRef, text: &ArrayRef, to: &DataType) -> Converted {
    let out = safe_cast(text, to).map_err(|e| refuse_all(col, e.to_string()))?;
    if let Some(row) = lost(text, &out).set_indices().next() {
        return Err(Reject { row, reason: None });
    }
    let strings = text.as_string::<i32>();
    refuse_overflow(out, |row| {
        let s = strings.value(row).trim().trim_start_matches(['+', '-']);
        !(s.eq_ignore_ascii_case("inf") || s.eq_ignore_ascii_case("infinity"))
    })
}

/// RFC 3339 text (no zone = UTC) into microseconds; more digits than
/// microseconds are refused unless they are zeros.
fn text_to_timestamp(col: &ArrayRef, to: &DataType) -> Converted {
    let out = safe_cast(col, to).map_err(|e| refuse_all(col, e.to_string()))?;
    if let Some(row) = lost(col, &out).set_indices().next() {
        return Err(Reject::at(row, TIMESTAMP_HINT));
    }
    let text = col.as_string::<i32>();
    // One pass over the bytes: is there a '.' followed by 7 digits at all?
    let long_fraction = text
        .value_data()
        .windows(8)
        .any(|w| w[0] == b'.' && w[1..].iter().all(u8::is_ascii_digit));
    if long_fraction {
        if let Some(row) = (0..text.len()).find(|&i| text.is_valid(i) && sub_micros(text.value(i)))
        {
            return Err(Reject::at(row, SUB_MICROS));
        }
    }
    Ok(out)
}

/// Does a time's text carry a non-zero digit beyond microseconds?
fn sub_micros(s: &str) -> bool {
    let Some(dot) = s.find('.') else { return false };
    s[dot + 1..]
        .bytes()
        .take_while(u8::is_ascii_digit)
        .skip(6)
        .any(|d| d != b'0')
}

/// `YYYY-MM-DD` text; a date-time is taken only at midnight UTC.
fn text_to_date(col: &ArrayRef) -> Converted {
    let out = checked_cast(col, &DataType::Date32, Some(DATE_HINT))?;
    let text: &StringArray = col.as_string::<i32>();
    let offsets = text.value_offsets();
    let long = (0..text.len()).filter(|&i| offsets[i + 1] - offsets[i] > 10 && text.is_valid(i));
    for row in long {
        let s = text.value(row).trim();
        if s.starts_with(['+', '-']) {
            continue;
        }
        if let Ok(t) = string_to_datetime(&chrono::Utc, s) {
            if t.naive_utc().time() != chrono::NaiveTime::MIN {
                return Err(Reject::at(row, TIME_OF_DAY));
            }
        }
    }
    Ok(out)
}

/// Timestamps of any unit (and dates) into microseconds UTC, exactly.
fn to_timestamp(col: &ArrayRef, to: &DataType) -> Converted {
    // A zoned timestamp holds UTC instants: read it as naive UTC, whatever
    // the zone (no cast may shift it to local time).
    let unzoned;
    let col = match col.data_type() {
        DataType::Timestamp(unit, Some(_)) => {
            let data = col
                .to_data()
                .into_builder()
                .data_type(DataType::Timestamp(*unit, None))
                .build()
                .map_err(|e| refuse_all(col, e.to_string()))?;
            unzoned = arrow::array::make_array(data);
            &unzoned
        }
        _ => col,
    };
    if let DataType::Timestamp(TimeUnit::Microsecond, _) = col.data_type() {
        // Same instants, another zone label (or none, read as UTC).
        let v = col.as_primitive::<TimestampMicrosecondType>();
        return Ok(Arc::new(
            PrimitiveArray::<TimestampMicrosecondType>::new(v.values().clone(), v.nulls().cloned())
                .with_data_type(to.clone()),
        ));
    }
    if let DataType::Date32 = col.data_type() {
        // Arrow multiplies without a check: keep days in the range first.
        const MAX_DAYS: i32 = 106_751_990;
        let days = col.as_primitive::<Date32Type>();
        if let Some(row) = (0..days.len())
            .find(|&i| days.is_valid(i) && days.value(i).unsigned_abs() > MAX_DAYS as u32)
        {
            return Err(Reject::at(row, "out of range for TIMESTAMP"));
        }
    }
    let nanos = matches!(
        col.data_type(),
        DataType::Timestamp(TimeUnit::Nanosecond, _)
    );
    round_trip(col, to, |row| {
        let sub = nanos
            && col
                .as_primitive::<arrow::datatypes::TimestampNanosecondType>()
                .value(row)
                % 1000
                != 0;
        if sub {
            SUB_MICROS.into()
        } else {
            "out of range for TIMESTAMP".into()
        }
    })
}

/// A number read exactly from its decimal text: `±mant × 10^exp`, with
/// `digits` significant digits and no trailing zeros in `mant`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Exact {
    neg: bool,
    mant: u128,
    digits: u32,
    exp: i64,
}

/// Most significant digits kept: a DECIMAL holds at most 38.
const MAX_DIGITS: u32 = 38;

/// Read a decimal number exactly: an optional sign, digits with an
/// optional point, an optional exponent (`1.5`, `-.5`, `1e3`, `2.50E-1`);
/// surrounding ASCII whitespace is ignored. `None` if it is not a number.
/// A number with more than 38 significant digits keeps their count and
/// position (so it can be refused with the right reason) but not their
/// value.
pub(crate) fn parse_exact(s: &str) -> Option<Exact> {
    let b = s.trim_ascii().as_bytes();
    let (neg, b) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    let (mut mant, mut digits, mut zeros, mut frac) = (0u128, 0u32, 0i64, 0i64);
    let (mut seen, mut dot) = (false, false);
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            c @ b'0'..=b'9' => {
                seen = true;
                if dot {
                    frac += 1;
                }
                if c == b'0' {
                    // Leading zeros count for nothing; others wait for a
                    // non-zero digit (or become the exponent).
                    if digits > 0 {
                        zeros += 1;
                    }
                } else {
                    let n = digits as i64 + zeros + 1;
                    if n <= MAX_DIGITS as i64 {
                        for _ in 0..zeros {
                            mant *= 10;
                        }
                        mant = mant * 10 + (c - b'0') as u128;
                    }
                    digits = n.min(u32::MAX as i64) as u32;
                    zeros = 0;
                }
            }
            b'.' if !dot => dot = true,
            _ => break,
        }
        i += 1;
    }
    if !seen {
        return None;
    }
    let mut exponent: i64 = 0;
    if i < b.len() {
        if !matches!(b[i], b'e' | b'E') {
            return None;
        }
        let rest = &b[i + 1..];
        let (eneg, rest) = match rest.first() {
            Some(b'-') => (true, &rest[1..]),
            Some(b'+') => (false, &rest[1..]),
            _ => (false, rest),
        };
        if rest.is_empty() || !rest.iter().all(u8::is_ascii_digit) {
            return None;
        }
        for d in rest {
            exponent = (exponent * 10 + (d - b'0') as i64).min(1_000_000_000);
        }
        if eneg {
            exponent = -exponent;
        }
    }
    Some(Exact {
        neg,
        mant,
        digits,
        exp: exponent - frac + zeros,
    })
}

/// Why an exact number does not fit.
enum Unfit {
    /// Digits below the scale.
    Scale,
    /// Too many digits above it.
    Range,
}

impl Exact {
    /// The value × 10^scale as an integer, if that is exact and has at most
    /// 38 digits.
    fn scaled(&self, scale: i64) -> std::result::Result<i128, Unfit> {
        if self.digits == 0 {
            return Ok(0);
        }
        let e = self.exp + scale;
        if e < 0 {
            return Err(Unfit::Scale);
        }
        if self.digits as i64 + e > MAX_DIGITS as i64 {
            return Err(Unfit::Range);
        }
        let v = self.mant as i128 * 10i128.pow(e as u32);
        Ok(if self.neg { -v } else { v })
    }
}

/// `x` as a value of `to` (an integer type or DECIMAL): its integer or
/// unscaled decimal value, or why it does not fit.
fn fit(x: &Exact, to: &DataType) -> std::result::Result<i128, String> {
    let out_of_range = || format!("out of range for {}", sql_type_name(to));
    match to {
        DataType::Decimal128(p, s) => {
            let before = || {
                format!(
                    "more than {} digits before the decimal point",
                    *p as i64 - *s as i64
                )
            };
            let v = x.scaled(*s as i64).map_err(|u| match u {
                Unfit::Scale if *s <= 0 => "not a whole number".to_string(),
                Unfit::Scale => format!("more than {s} digits after the decimal point"),
                Unfit::Range => before(),
            })?;
            if v.unsigned_abs() >= 10u128.pow(*p as u32) {
                return Err(before());
            }
            Ok(v)
        }
        _ => {
            let v = x.scaled(0).map_err(|u| match u {
                Unfit::Scale => "not a whole number".to_string(),
                Unfit::Range => out_of_range(),
            })?;
            let (lo, hi) = match to {
                DataType::Int8 => (i8::MIN as i128, i8::MAX as i128),
                DataType::Int16 => (i16::MIN as i128, i16::MAX as i128),
                DataType::Int32 => (i32::MIN as i128, i32::MAX as i128),
                _ => (i64::MIN as i128, i64::MAX as i128),
            };
            if v < lo || v > hi {
                return Err(out_of_range());
            }
            Ok(v)
        }
    }
}

/// Event times must be dates a calendar can show: they name the partition
/// directory of their file.
fn check_event_time(column: &ArrayRef, name: &str, locate: &dyn Fn(usize) -> String) -> Result<()> {
    const DAY_US: i64 = 86_400_000_000;
    let values = column.as_primitive::<TimestampMicrosecondType>();
    for (i, v) in values.iter().enumerate() {
        let Some(v) = v else { continue };
        // A day of margin keeps partition arithmetic inside the range too.
        let shown = v
            .checked_sub(DAY_US)
            .zip(v.checked_add(DAY_US))
            .and_then(|(lo, hi)| {
                chrono::DateTime::from_timestamp_micros(lo)
                    .zip(chrono::DateTime::from_timestamp_micros(hi))
            });
        if shown.is_none() {
            return Err(StrataError::input(
                locate(i),
                format!("column '{name}': event time {v} µs since 1970 is out of range"),
            ));
        }
    }
    Ok(())
}

/// A value for an error message: quoted, cut if long, control characters
/// escaped so the message stays on one line.
fn show_value(array: &dyn Array, i: usize) -> String {
    let options = FormatOptions::default();
    let text = ArrayFormatter::try_new(array, &options)
        .map(|f| f.value(i).to_string())
        .unwrap_or_else(|_| "?".to_string());
    let mut shown: String = text.chars().take(60).collect();
    let cut = shown.len() < text.len();
    shown = escape_control(&shown).into_owned();
    if cut {
        shown.push('…');
    }
    format!("'{shown}'")
}

/// The SQL spelling of an arrow type, for messages.
pub fn sql_type_name(t: &DataType) -> String {
    match t {
        DataType::Int8 => "TINYINT".into(),
        DataType::Int16 => "SMALLINT".into(),
        DataType::Int32 => "INT".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::Float32 => "REAL".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => "VARCHAR".into(),
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Date32 => "DATE".into(),
        DataType::Timestamp(_, _) => "TIMESTAMP".into(),
        DataType::Decimal128(p, s) => format!("DECIMAL({p},{s})"),
        other => other.to_string(),
    }
}
