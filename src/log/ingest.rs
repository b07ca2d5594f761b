//! Reading input files into batches of a stream's declared schema.
//!
//! Every format is first read "raw" (NDJSON and CSV as strings, Parquet as
//! stored), then [`conform`]ed by the one conversion rule of
//! [`super::convert`]: a value the declared type does not hold exactly is
//! reported with its file, line (or row), column and value. One mechanism
//! validates every format.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;
use object_store::{GetOptions, GetRange, ObjectMeta, ObjectStore};
use parquet::arrow::arrow_reader::{ArrowReaderBuilder, ParquetRecordBatchReaderBuilder};
use parquet::arrow::async_reader::{AsyncFileReader, ParquetRecordBatchStreamBuilder};
use parquet::arrow::ProjectionMask;

use super::convert::{conform, sql_type_name};
use crate::catalog::StreamDef;
use crate::error::{Result, StrataError};

/// Rows per raw batch for CSV and Parquet; NDJSON batches by chunk.
const BATCH_ROWS: usize = 64 * 1024;
/// Bytes of NDJSON decoded per batch.
const NDJSON_CHUNK_BYTES: usize = 4 * 1024 * 1024;
/// Bytes of a store object fetched per ranged read (NDJSON, CSV); one range
/// is decoded while the next is fetched.
const RANGE_BYTES: u64 = 8 * 1024 * 1024;

/// Input file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InputFormat {
    Ndjson,
    Csv,
    Parquet,
}

impl InputFormat {
    /// The format implied by a file name's extension.
    pub fn from_path(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "ndjson" | "jsonl" | "json" => Some(Self::Ndjson),
            "csv" => Some(Self::Csv),
            "parquet" | "pq" => Some(Self::Parquet),
            _ => None,
        }
    }
}

/// One input of an append.
#[derive(Debug, Clone)]
pub struct InputSource {
    /// `None` reads standard input (or `remote`).
    pub path: Option<PathBuf>,
    pub format: InputFormat,
    /// Bytes in memory, or an object of a store.
    pub remote: Option<Remote>,
}

/// An input that is neither a local file nor standard input.
#[derive(Debug, Clone)]
pub enum Remote {
    /// Bytes already in memory, and the name errors give them.
    Bytes(String, Bytes),
    /// An object of a store, read as it is decoded.
    Object(RemoteObject),
}

/// An object in a store to ingest: never held whole in memory. NDJSON and
/// CSV are read in ranges of [`RANGE_BYTES`] (each pinned to the object's
/// e-tag, so an object replaced mid-read fails the append rather than
/// mixing versions); Parquet through the async reader, a row group at a
/// time.
#[derive(Debug, Clone)]
pub struct RemoteObject {
    /// How errors name it, e.g. `s3://bucket/key`.
    pub url: String,
    pub store: Arc<dyn ObjectStore>,
    /// Its location, size and e-tag (from a `head`).
    pub meta: ObjectMeta,
}

impl InputSource {
    /// An input from a path or `-` (stdin), with the format given or implied.
    pub fn new(arg: &str, format: Option<InputFormat>) -> Result<Self> {
        if arg == "-" {
            return Ok(Self {
                path: None,
                format: format.unwrap_or(InputFormat::Ndjson),
                remote: None,
            });
        }
        let path = PathBuf::from(arg);
        let format =
            match format.or_else(|| InputFormat::from_path(&path)) {
                Some(f) => f,
                None => return Err(StrataError::input(
                    arg,
                    "cannot tell the format from the extension; pass --format ndjson|csv|parquet",
                )),
            };
        Ok(Self {
            path: Some(path),
            format,
            remote: None,
        })
    }

    /// Bytes in memory (`url` names them in errors).
    pub fn remote(url: &str, bytes: Bytes, format: Option<InputFormat>) -> Result<Self> {
        Self::with_remote(url, Remote::Bytes(url.to_string(), bytes), format)
    }

    /// An object of a store (`url` names it in errors), read as it is
    /// decoded: never whole in memory.
    pub fn object(
        url: &str,
        store: Arc<dyn ObjectStore>,
        meta: ObjectMeta,
        format: Option<InputFormat>,
    ) -> Result<Self> {
        let object = RemoteObject {
            url: url.to_string(),
            store,
            meta,
        };
        Self::with_remote(url, Remote::Object(object), format)
    }

    fn with_remote(url: &str, remote: Remote, format: Option<InputFormat>) -> Result<Self> {
        let format =
            match format.or_else(|| InputFormat::from_path(Path::new(url))) {
                Some(f) => f,
                None => return Err(StrataError::input(
                    url,
                    "cannot tell the format from the extension; pass --format ndjson|csv|parquet",
                )),
            };
        Ok(Self {
            path: None,
            format,
            remote: Some(remote),
        })
    }

    /// How errors name this input.
    pub fn name(&self) -> String {
        match (&self.path, &self.remote) {
            (Some(p), _) => p.display().to_string(),
            (None, Some(Remote::Bytes(name, _))) => name.clone(),
            (None, Some(Remote::Object(object))) => object.url.clone(),
            (None, None) => "<stdin>".to_string(),
        }
    }

    /// Size in bytes, when known (for progress).
    pub fn size_bytes(&self) -> Option<u64> {
        match &self.remote {
            Some(Remote::Bytes(_, bytes)) => return Some(bytes.len() as u64),
            Some(Remote::Object(object)) => return Some(object.meta.size),
            None => {}
        }
        self.path
            .as_ref()
            .and_then(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
    }

    fn open(&self) -> Result<Box<dyn Read + Send>> {
        match (&self.path, &self.remote) {
            (Some(p), _) => Ok(Box::new(File::open(p).map_err(|e| {
                StrataError::input(p.display().to_string(), format!("cannot open: {e}"))
            })?)),
            (None, Some(Remote::Bytes(_, bytes))) => {
                Ok(Box::new(std::io::Cursor::new(bytes.clone())))
            }
            (None, Some(Remote::Object(object))) => Ok(Box::new(RangeReader::new(object.clone())?)),
            (None, None) => Ok(Box::new(std::io::stdin())),
        }
    }
}

/// Options for reading input.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadOptions {
    /// Drop input columns the stream does not declare instead of rejecting them.
    pub ignore_extra_columns: bool,
}

/// Read `input`, conform every batch to `stream`'s schema and hand it to
/// `sink`. `progress` is called with the bytes (or rows, for Parquet) read.
/// Returns the number of rows read.
pub fn read_input(
    input: &InputSource,
    stream: &StreamDef,
    opts: ReadOptions,
    sink: &mut dyn FnMut(RecordBatch) -> Result<()>,
    progress: &dyn Fn(u64),
) -> Result<u64> {
    let mut reader = Reader {
        input,
        name: input.name(),
        stream,
        opts,
        sink,
        progress,
        rows: 0,
    };
    match input.format {
        InputFormat::Ndjson => reader.ndjson()?,
        InputFormat::Csv => reader.csv()?,
        InputFormat::Parquet => reader.parquet()?,
    };
    if reader.rows == 0 {
        return Err(StrataError::input(
            reader.name,
            "empty input: no rows to append",
        ));
    }
    Ok(reader.rows)
}

/// One input being read: where its rows go, and how many went.
struct Reader<'a> {
    input: &'a InputSource,
    name: String,
    stream: &'a StreamDef,
    opts: ReadOptions,
    sink: &'a mut dyn FnMut(RecordBatch) -> Result<()>,
    progress: &'a dyn Fn(u64),
    rows: u64,
}

impl<'a> Reader<'a> {
    /// Conform `raw` and pass it on; `locate(i)` names row `i` of `raw`.
    fn emit(&mut self, raw: &RecordBatch, locate: &dyn Fn(usize) -> String) -> Result<()> {
        let batch = conform(raw, self.stream, locate)?;
        self.rows += batch.num_rows() as u64;
        (self.sink)(batch)
    }

    /// The input's bytes, buffered and counted for progress.
    fn text(&self, capacity: usize) -> Result<BufReader<Counting<'a, Box<dyn Read + Send>>>> {
        Ok(BufReader::with_capacity(
            capacity,
            Counting {
                inner: self.input.open()?,
                progress: self.progress,
            },
        ))
    }

    fn io_error(&self, e: std::io::Error) -> StrataError {
        StrataError::input(self.name.clone(), format!("read error: {e}"))
    }
}

/// A CSV reader's error at `name`, located at its line when it names one
/// ("incorrect number of fields for line 3, …": the reader counts records,
/// the header as 1, so that is record 2, at the line it starts on).
fn csv_error(input: &InputSource, name: &str, message: &str) -> StrataError {
    let message = message.trim_start_matches("Csv error: ");
    let record = message
        .split("for line ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|digits| digits.parse::<u64>().ok());
    match record {
        Some(r) if r > 0 => StrataError::input(
            format!("{name}:{}", csv_record_line(input, r - 1)),
            message
                .replacen(&format!(" for line {r} and"), " in", 1)
                .replacen(&format!(" for line {r}"), "", 1),
        ),
        _ => StrataError::input(name, message),
    }
}

/// The line CSV record `record` (0 is the header) starts on: `record + 1`
/// unless a quoted field before it spans lines, which only an input that
/// can be read again (a regular local file, bytes in memory; never a pipe)
/// can tell, read again on an error's path alone.
fn csv_record_line(input: &InputSource, record: u64) -> u64 {
    let again = || -> Option<Box<dyn Read>> {
        match (&input.remote, &input.path) {
            (Some(Remote::Bytes(_, bytes)), _) => {
                Some(Box::new(std::io::Cursor::new(bytes.clone())))
            }
            (None, Some(path)) if std::fs::metadata(path).is_ok_and(|m| m.is_file()) => {
                Some(Box::new(std::fs::File::open(path).ok()?))
            }
            _ => None,
        }
    };
    let counted = || -> Option<u64> {
        // Where the record starts, in bytes…
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(again()?);
        let mut row = csv::ByteRecord::new();
        for _ in 0..=record {
            if !reader.read_byte_record(&mut row).ok()? {
                return None;
            }
        }
        let start = row.position()?.byte();
        // … and the newlines before its first byte (past the end of the
        // line before: with CRLF the reader stops at the `\r`).
        let mut newlines = 0u64;
        for (at, b) in BufReader::new(again()?).bytes().enumerate() {
            let b = b.ok()?;
            if at as u64 >= start && b != b'\r' && b != b'\n' {
                break;
            }
            newlines += u64::from(b == b'\n');
        }
        Some(newlines + 1)
    };
    counted().unwrap_or(record + 1)
}

/// All declared columns as nullable strings: the raw schema of text formats.
fn text_schema(names: &[String]) -> SchemaRef {
    Arc::new(Schema::new(
        names
            .iter()
            .map(|n| Field::new(n, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ))
}

fn unknown_column(stream: &StreamDef, column: &str) -> String {
    format!(
        "column '{column}' is not declared by stream '{}' (it has: {}); pass --ignore-extra-columns to drop it",
        stream.name,
        stream.column_names().join(", ")
    )
}

/// A reader that reports how many bytes passed through it.
struct Counting<'a, R> {
    inner: R,
    progress: &'a dyn Fn(u64),
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        (self.progress)(n as u64);
        Ok(n)
    }
}

impl Reader<'_> {
    fn ndjson(&mut self) -> Result<()> {
        let (name, stream, opts) = (self.name.clone(), self.stream, self.opts);
        let schema = text_schema(&stream.column_names());
        let mut reader = self.text(256 * 1024)?;
        let mut chunk: Vec<u8> = Vec::with_capacity(NDJSON_CHUNK_BYTES + 64 * 1024);
        // Line number of each non-blank line in `chunk`: row i of the decoded batch.
        let mut row_lines: Vec<u64> = Vec::new();
        let mut line_no: u64 = 0;
        loop {
            let start = chunk.len();
            let n = reader
                .read_until(b'\n', &mut chunk)
                .map_err(|e| self.io_error(e))?;
            if n > 0 {
                line_no += 1;
                // A byte-order mark (as some editors write UTF-8) is no data.
                if line_no == 1 && chunk[start..].starts_with(b"\xEF\xBB\xBF") {
                    chunk.drain(start..start + 3);
                }
                if !chunk[start..].iter().all(u8::is_ascii_whitespace) {
                    row_lines.push(line_no);
                }
            }
            if (n == 0 || chunk.len() >= NDJSON_CHUNK_BYTES) && !row_lines.is_empty() {
                let raw = decode_ndjson_chunk(&chunk, &row_lines, &schema, stream, opts, &name)?;
                self.emit(&raw, &|i| format!("{name}:{}", row_lines[i]))?;
                chunk.clear();
                row_lines.clear();
            }
            if n == 0 {
                return Ok(());
            }
        }
    }
}

fn json_decoder(
    schema: &SchemaRef,
    rows: usize,
    opts: ReadOptions,
) -> Result<arrow::json::reader::Decoder> {
    Ok(arrow::json::ReaderBuilder::new(schema.clone())
        .with_batch_size(rows.max(1))
        .with_coerce_primitive(true)
        .with_strict_mode(!opts.ignore_extra_columns)
        .build_decoder()?)
}

/// Decode a chunk of NDJSON lines in one go; on any error, decode line by
/// line to find and explain the first bad one.
fn decode_ndjson_chunk(
    chunk: &[u8],
    row_lines: &[u64],
    schema: &SchemaRef,
    stream: &StreamDef,
    opts: ReadOptions,
    name: &str,
) -> Result<RecordBatch> {
    let mut decoder = json_decoder(schema, row_lines.len(), opts)?;
    let fast = decoder
        .decode(chunk)
        .and_then(|consumed| {
            if consumed == chunk.len() && !decoder.has_partial_record() {
                decoder.flush()
            } else {
                Ok(None)
            }
        })
        .ok()
        .flatten();
    if let Some(batch) = fast {
        if batch.num_rows() == row_lines.len() {
            return Ok(batch);
        }
    }
    // Slow path: find the first line that does not decode alone.
    let lines = chunk
        .split_inclusive(|b| *b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace));
    for (line, &line_no) in lines.zip(row_lines) {
        let at = format!("{name}:{line_no}");
        // Room for two rows, so a second object on the line shows up.
        let mut decoder = json_decoder(schema, 2, opts)?;
        let decoded = decoder.decode(line).and_then(|consumed| {
            if line[consumed..].iter().all(u8::is_ascii_whitespace) {
                decoder.flush()
            } else {
                Ok(None)
            }
        });
        match decoded {
            Ok(Some(b)) if b.num_rows() == 1 && !decoder.has_partial_record() => continue,
            Ok(_) => {
                return Err(StrataError::input(
                    at,
                    "expected exactly one JSON object on the line",
                ))
            }
            Err(e) => return Err(explain_json_line(line, &at, stream, opts, e)),
        }
    }
    Err(StrataError::input(
        name,
        "input could not be decoded as NDJSON, but no single line fails alone",
    ))
}

fn explain_json_line(
    line: &[u8],
    at: &str,
    stream: &StreamDef,
    opts: ReadOptions,
    arrow_err: arrow::error::ArrowError,
) -> StrataError {
    let value: serde_json::Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(e) => {
            // A first line that is no JSON object at all: likely another
            // format read as NDJSON (the format of `-` and of a name
            // without a known extension).
            let text = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
            let hint = if at.ends_with(":1") && !text.trim_ascii_start().starts_with(b"{") {
                " (read as NDJSON: for CSV or Parquet, pass --format csv or --format parquet)"
            } else {
                ""
            };
            return StrataError::input(at, format!("invalid JSON: {e}{hint}"));
        }
    };
    let Some(object) = value.as_object() else {
        return StrataError::input(
            at,
            format!("expected a JSON object, found {}", json_kind(&value)),
        );
    };
    for (key, v) in object {
        match stream.schema.field_with_name(key) {
            Err(_) if !opts.ignore_extra_columns => {
                return StrataError::input(at, unknown_column(stream, key))
            }
            Ok(field) if v.is_object() || v.is_array() => {
                return StrataError::input(
                    at,
                    format!(
                        "column '{key}': expected a {} value, found {}",
                        sql_type_name(field.data_type()),
                        json_kind(v)
                    ),
                )
            }
            _ => {}
        }
    }
    StrataError::input(at, arrow_err.to_string())
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

impl Reader<'_> {
    fn csv(&mut self) -> Result<()> {
        let (name, stream, opts) = (self.name.clone(), self.stream, self.opts);
        let name = name.as_str();
        let mut reader = self.text(1024 * 1024)?;
        // Peek the header without consuming it: arrow's reader skips it, and
        // keeps line numbers that count it.
        let buf = reader.fill_buf().map_err(|e| self.io_error(e))?;
        if buf.is_empty() {
            return Err(StrataError::input(name, "empty input: no header row"));
        }
        let header_end = buf.iter().position(|b| *b == b'\n').unwrap_or(buf.len());
        let header: Vec<String> = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(&buf[..header_end])
            .records()
            .next()
            .transpose()
            .map_err(|e| {
                StrataError::input(format!("{name}:1"), format!("unreadable CSV header: {e}"))
            })?
            .map(|r| r.iter().map(|s| s.trim().to_lowercase()).collect())
            .unwrap_or_default();
        if header.iter().all(|h| h.is_empty()) {
            return Err(StrataError::input(
                format!("{name}:1"),
                "empty CSV header row",
            ));
        }
        // A file without a header row, or with another separator, names
        // no declared column at all: say that, not which value is unknown.
        if !header
            .iter()
            .any(|h| stream.schema.field_with_name(h).is_ok())
        {
            let separator = [';', '\t', '|']
                .into_iter()
                .find(|c| header.len() == 1 && header[0].contains(*c))
                .map(|c| {
                    format!(" (its one field holds {c:?}: strata reads comma-separated values)")
                })
                .unwrap_or_default();
            return Err(StrataError::input(
                format!("{name}:1"),
                format!(
                    "the first row names no column of stream '{}'{separator}: a CSV file needs a header row naming its columns (of {})",
                    stream.name,
                    stream.column_names().join(", ")
                ),
            ));
        }
        for (i, col) in header.iter().enumerate() {
            if header[..i].contains(col) {
                return Err(StrataError::input(
                    format!("{name}:1"),
                    format!("column '{col}' appears twice in the header"),
                ));
            }
            if stream.schema.field_with_name(col).is_err() && !opts.ignore_extra_columns {
                return Err(StrataError::input(
                    format!("{name}:1"),
                    unknown_column(stream, col),
                ));
            }
        }
        let schema = text_schema(&header);
        let csv_reader = arrow::csv::ReaderBuilder::new(schema)
            .with_header(true)
            .with_batch_size(BATCH_ROWS)
            .build_buffered(reader)?;
        let input = self.input;
        for raw in csv_reader {
            let raw = raw.map_err(|e| csv_error(input, name, &e.to_string()))?;
            let first = self.rows;
            // Record 0 is the header; row i of this batch is record
            // first + i + 1.
            self.emit(&raw, &|i| {
                format!("{name}:{}", csv_record_line(input, first + i as u64 + 1))
            })?;
        }
        Ok(())
    }
}

impl Reader<'_> {
    fn parquet(&mut self) -> Result<()> {
        match self.input.remote.clone() {
            Some(Remote::Bytes(_, bytes)) => return self.parquet_from(bytes),
            Some(Remote::Object(object)) => return self.parquet_remote(object),
            None => {}
        }
        match &self.input.path {
            Some(p) => {
                let file = File::open(p).map_err(|e| {
                    StrataError::input(self.name.clone(), format!("cannot open: {e}"))
                })?;
                self.parquet_from(file)
            }
            None => {
                let mut buf = Vec::new();
                std::io::stdin()
                    .read_to_end(&mut buf)
                    .map_err(|e| self.io_error(e))?;
                self.parquet_from(bytes::Bytes::from(buf))
            }
        }
    }

    fn parquet_from<T: parquet::file::reader::ChunkReader + 'static>(
        &mut self,
        source: T,
    ) -> Result<()> {
        let name = self.name.clone();
        // The Parquet decoder can panic on corrupt input (found by the
        // fuzz tests): a damaged file is rejected like any bad input.
        let builder = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            ParquetRecordBatchReaderBuilder::try_new(source)
        }))
        .map_err(|_| parquet_panicked(&name))?
        .map_err(|e| parquet_unreadable(&name, e))?;
        let mask = self.parquet_projection(&builder)?;
        let mut reader = builder
            .with_projection(mask)
            .with_batch_size(BATCH_ROWS)
            .build()
            .map_err(|e| parquet_unreadable(&name, e))?;
        self.parquet_batches(&mut || reader.next().map(|r| r.map_err(|e| e.to_string())))
    }

    /// A store object through the async reader: the footer, then one row
    /// group's projected column chunks at a time.
    fn parquet_remote(&mut self, remote: RemoteObject) -> Result<()> {
        let name = self.name.clone();
        let runtime = runtime_of(&remote)?;
        let source = ObjectReader(remote);
        let builder = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            runtime.block_on(ParquetRecordBatchStreamBuilder::new(source))
        }))
        .map_err(|_| parquet_panicked(&name))?
        .map_err(|e| parquet_unreadable(&name, e))?;
        let mask = self.parquet_projection(&builder)?;
        let mut stream = builder
            .with_projection(mask)
            .with_batch_size(BATCH_ROWS)
            .build()
            .map_err(|e| parquet_unreadable(&name, e))?;
        self.parquet_batches(&mut || {
            use futures::StreamExt;
            runtime
                .block_on(stream.next())
                .map(|r| r.map_err(|e| e.to_string()))
        })
    }

    /// The input's columns the stream declares (an undeclared one is an
    /// error unless extra columns are ignored).
    fn parquet_projection<T>(&self, builder: &ArrowReaderBuilder<T>) -> Result<ProjectionMask> {
        let mut keep = Vec::new();
        for (i, field) in builder.schema().fields().iter().enumerate() {
            if self.stream.schema.field_with_name(field.name()).is_ok() {
                keep.push(i);
            } else if !self.opts.ignore_extra_columns {
                return Err(StrataError::input(
                    self.name.clone(),
                    unknown_column(self.stream, field.name()),
                ));
            }
        }
        Ok(ProjectionMask::roots(builder.parquet_schema(), keep))
    }

    /// Conform and pass on every batch `next` decodes.
    fn parquet_batches(
        &mut self,
        next: &mut dyn FnMut() -> Option<std::result::Result<RecordBatch, String>>,
    ) -> Result<()> {
        let name = self.name.clone();
        let name = name.as_str();
        loop {
            let next = std::panic::catch_unwind(std::panic::AssertUnwindSafe(&mut *next))
                .map_err(|_| parquet_panicked(name))?;
            let Some(raw) = next else { break };
            let raw =
                raw.map_err(|e| StrataError::input(name, format!("corrupt Parquet data: {e}")))?;
            let first = self.rows;
            self.emit(&raw, &|i| format!("{name}: row {}", first + i as u64 + 1))?;
            (self.progress)(raw.num_rows() as u64);
        }
        Ok(())
    }
}

fn parquet_unreadable(name: &str, e: parquet::errors::ParquetError) -> StrataError {
    StrataError::input(name, format!("not a readable Parquet file: {e}"))
}

fn parquet_panicked(name: &str) -> StrataError {
    StrataError::input(name, "corrupt Parquet data: the decoder could not read it")
}

/// The runtime a remote input is fetched on: the one whose blocking thread
/// reads it (see `append`).
fn runtime_of(remote: &RemoteObject) -> Result<tokio::runtime::Handle> {
    tokio::runtime::Handle::try_current().map_err(|_| {
        StrataError::input(
            remote.url.clone(),
            "a store object is read on a runtime's blocking thread",
        )
    })
}

/// A byte range of `remote`, asked for with its e-tag (`If-Match`), so an
/// object replaced while it is read fails the append instead of mixing
/// versions.
async fn get_range(
    remote: &RemoteObject,
    range: std::ops::Range<u64>,
) -> object_store::Result<Bytes> {
    let options = GetOptions {
        range: Some(GetRange::Bounded(range)),
        if_match: remote.meta.e_tag.clone(),
        ..Default::default()
    };
    remote
        .store
        .get_opts(&remote.meta.location, options)
        .await?
        .bytes()
        .await
}

/// A store object for the async Parquet reader: the footer (with a 64 KiB
/// prefetch, usually one request), then the column chunks it asks for.
struct ObjectReader(RemoteObject);

impl AsyncFileReader for ObjectReader {
    fn get_bytes(
        &mut self,
        range: std::ops::Range<u64>,
    ) -> futures::future::BoxFuture<'_, parquet::errors::Result<Bytes>> {
        Box::pin(async move {
            get_range(&self.0, range)
                .await
                .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))
        })
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a parquet::arrow::arrow_reader::ArrowReaderOptions>,
    ) -> futures::future::BoxFuture<
        'a,
        parquet::errors::Result<Arc<parquet::file::metadata::ParquetMetaData>>,
    > {
        Box::pin(async move {
            let size = self.0.meta.size;
            let metadata = parquet::file::metadata::ParquetMetaDataReader::new()
                .with_arrow_reader_options(options)
                .with_prefetch_hint(Some(64 * 1024))
                .load_and_finish(self, size)
                .await?;
            Ok(Arc::new(metadata))
        })
    }
}

/// A store object as a [`Read`]: ranges of [`RANGE_BYTES`], the next one
/// fetched while the current one is consumed, so at most two ranges are in
/// memory. Each range is asked for with the object's e-tag (`If-Match`).
/// It blocks on the fetches, so it runs on a blocking thread (as
/// [`read_input`] does in an append).
struct RangeReader {
    remote: RemoteObject,
    runtime: tokio::runtime::Handle,
    /// The unread rest of the current range.
    current: Bytes,
    /// Where the next range to fetch starts.
    next: u64,
    /// The next range being fetched, and its length.
    fetching: Option<(tokio::task::JoinHandle<object_store::Result<Bytes>>, u64)>,
}

impl RangeReader {
    fn new(remote: RemoteObject) -> Result<Self> {
        let runtime = runtime_of(&remote)?;
        let mut reader = Self {
            remote,
            runtime,
            current: Bytes::new(),
            next: 0,
            fetching: None,
        };
        reader.fetch_next();
        Ok(reader)
    }

    fn fetch_next(&mut self) {
        let size = self.remote.meta.size;
        if self.next >= size {
            return;
        }
        let range = self.next..size.min(self.next + RANGE_BYTES);
        self.next = range.end;
        let len = range.end - range.start;
        let remote = self.remote.clone();
        let task = self
            .runtime
            .spawn(async move { get_range(&remote, range).await });
        self.fetching = Some((task, len));
    }
}

impl Read for RangeReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.current.is_empty() {
            let Some((task, len)) = self.fetching.take() else {
                return Ok(0);
            };
            let bytes = self
                .runtime
                .block_on(task)
                .map_err(std::io::Error::other)?
                .map_err(std::io::Error::other)?;
            if bytes.len() as u64 != len {
                return Err(std::io::Error::other(format!(
                    "the object changed while it was read: a range of {len} bytes came back with {}",
                    bytes.len()
                )));
            }
            self.fetch_next();
            self.current = bytes;
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        bytes::Buf::advance(&mut self.current, n);
        Ok(n)
    }
}

impl Drop for RangeReader {
    fn drop(&mut self) {
        if let Some((task, _)) = &self.fetching {
            task.abort();
        }
    }
}
