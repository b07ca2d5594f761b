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
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;

use super::convert::{conform, sql_type_name};
use crate::catalog::StreamDef;
use crate::error::{Result, StrataError};

/// Rows per raw batch for CSV and Parquet; NDJSON batches by chunk.
const BATCH_ROWS: usize = 64 * 1024;
/// Bytes of NDJSON decoded per batch.
const NDJSON_CHUNK_BYTES: usize = 4 * 1024 * 1024;

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
    /// An object fetched from a store: its URL and bytes.
    pub remote: Option<(String, bytes::Bytes)>,
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

    /// An object read from a store (`url` names it in errors).
    pub fn remote(url: &str, bytes: bytes::Bytes, format: Option<InputFormat>) -> Result<Self> {
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
            remote: Some((url.to_string(), bytes)),
        })
    }

    /// How errors name this input.
    pub fn name(&self) -> String {
        match (&self.path, &self.remote) {
            (Some(p), _) => p.display().to_string(),
            (None, Some((url, _))) => url.clone(),
            (None, None) => "<stdin>".to_string(),
        }
    }

    /// Size in bytes, when known (for progress).
    pub fn size_bytes(&self) -> Option<u64> {
        if let Some((_, b)) = &self.remote {
            return Some(b.len() as u64);
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
            (None, Some((_, bytes))) => Ok(Box::new(std::io::Cursor::new(bytes.clone()))),
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
        Err(e) => return StrataError::input(at, format!("invalid JSON: {e}")),
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
        for raw in csv_reader {
            let raw = raw.map_err(|e| StrataError::input(name, e.to_string()))?;
            let first = self.rows;
            // Line 1 is the header; row i of the input is line i + 2.
            self.emit(&raw, &|i| format!("{name}:{}", first + i as u64 + 2))?;
        }
        Ok(())
    }
}

impl Reader<'_> {
    fn parquet(&mut self) -> Result<()> {
        if let Some((_, bytes)) = &self.input.remote {
            return self.parquet_from(bytes.clone());
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
        let (name, stream, opts) = (self.name.clone(), self.stream, self.opts);
        let name = name.as_str();
        let perr = |e: parquet::errors::ParquetError| {
            StrataError::input(name, format!("not a readable Parquet file: {e}"))
        };
        // The Parquet decoder can panic on corrupt input (found by the
        // fuzz tests): a damaged file is rejected like any bad input.
        let panicked =
            || StrataError::input(name, "corrupt Parquet data: the decoder could not read it");
        let builder = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            ParquetRecordBatchReaderBuilder::try_new(source)
        }))
        .map_err(|_| panicked())?
        .map_err(perr)?;
        let mut keep = Vec::new();
        for (i, field) in builder.schema().fields().iter().enumerate() {
            if stream.schema.field_with_name(field.name()).is_ok() {
                keep.push(i);
            } else if !opts.ignore_extra_columns {
                return Err(StrataError::input(
                    name,
                    unknown_column(stream, field.name()),
                ));
            }
        }
        let mask = ProjectionMask::roots(builder.parquet_schema(), keep);
        let mut reader = builder
            .with_projection(mask)
            .with_batch_size(BATCH_ROWS)
            .build()
            .map_err(perr)?;
        loop {
            let next = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| reader.next()))
                .map_err(|_| panicked())?;
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
