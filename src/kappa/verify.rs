//! `strata verify`: [`run`] replays each view to its served batch
//! version's watermark and compares the Kappa result with that version,
//! row by row in canonical order: exact for every column but floating
//! point ones, which compare within a relative tolerance (and the report
//! says which they were).

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::{cast, concat_batches, SortOptions};
use arrow::datatypes::{DataType, Float64Type};
use arrow::row::{RowConverter, Rows, SortField};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::ViewProcessor;
use crate::catalog::{Verdict, ViewDef};
use crate::engine::Strata;
use crate::error::Result;

/// Differing rows shown per view.
const SHOWN: usize = 5;

/// One side of a comparison.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Side {
    pub rows: u64,
    /// SHA-256 over the rows in canonical order (arrow's row format).
    pub hash: String,
}

/// What `verify` says of one view (serialized as it is printed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum VerifyVerdict {
    /// Kappa and batch have the same rows.
    #[serde(rename = "match")]
    Match,
    /// They differ, and the view is exact: a bug.
    #[serde(rename = "MISMATCH")]
    Mismatch,
    /// They differ, and the view has aggregates that depend on how the log
    /// is split into commits: not required to match.
    #[serde(rename = "approximate")]
    Approximate,
    /// No batch version of the current definition to compare with.
    #[serde(rename = "no batch")]
    NoBatch,
}

impl VerifyVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Match => "match",
            Self::Mismatch => "MISMATCH",
            Self::Approximate => "approximate",
            Self::NoBatch => "no batch",
        }
    }
}

impl std::fmt::Display for VerifyVerdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What `verify` found for one view.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub view: String,
    pub verdict: VerifyVerdict,
    /// The batch version and the snapshot it was computed at.
    pub batch_version: Option<u64>,
    pub watermark: Option<u64>,
    pub batch: Option<Side>,
    pub kappa: Option<Side>,
    /// Columns compared within `tolerance` (relative; absolute for values
    /// below 1) rather than exactly. Infinities must be equal.
    pub float_columns: Vec<String>,
    pub tolerance: f64,
    /// The checkpoint the Kappa side resumed from (commits it reflected).
    pub resumed_at_commits: Option<u64>,
    /// The first differing rows, described.
    pub differences: Vec<String>,
    pub note: Option<String>,
}

impl VerifyReport {
    pub fn matched(&self) -> bool {
        matches!(
            self.verdict,
            VerifyVerdict::Match | VerifyVerdict::Approximate
        )
    }
}

fn is_float(t: &DataType) -> bool {
    matches!(t, DataType::Float16 | DataType::Float32 | DataType::Float64)
}

/// The result of comparing two canonically ordered sides.
pub struct Comparison {
    pub batch: Side,
    pub kappa: Side,
    pub float_columns: Vec<String>,
    pub differences: Vec<String>,
}

fn describe(batch: &RecordBatch, row: usize) -> Result<String> {
    let options = FormatOptions::default().with_null("NULL");
    let mut parts = Vec::new();
    for (f, c) in batch.schema().fields().iter().zip(batch.columns()) {
        let fmt = ArrayFormatter::try_new(c.as_ref(), &options)?;
        parts.push(format!("{}={}", f.name(), fmt.value(row)));
    }
    Ok(format!("({})", parts.join(", ")))
}

fn side_hash(rows: &Rows) -> String {
    let mut h = Sha256::new();
    for r in rows.iter() {
        let bytes = r.as_ref();
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    hex::encode(h.finalize())
}

/// Compare `batch` and `kappa` (each in the canonical order of `view`).
pub fn compare(
    view: &ViewDef,
    batch: &[RecordBatch],
    kappa: &[RecordBatch],
    tolerance: f64,
) -> Result<Comparison> {
    let schema = view.schema.clone();
    let b = concat_batches(&schema, batch)?;
    let k = concat_batches(&schema, kappa)?;
    let sort = SortOptions {
        descending: false,
        nulls_first: false,
    };
    // Rows are matched by key (every exact column for a keyless view), in
    // the canonical order; then compared on every column.
    let key: Vec<usize> = if view.key.is_empty() {
        (0..schema.fields().len())
            .filter(|&i| !is_float(schema.field(i).data_type()))
            .collect()
    } else {
        view.key_indices()
    };
    let exact: Vec<usize> = (0..schema.fields().len())
        .filter(|&i| !is_float(schema.field(i).data_type()))
        .collect();
    let floats: Vec<usize> = (0..schema.fields().len())
        .filter(|i| !exact.contains(i))
        .collect();
    let converter = |idx: &[usize]| {
        RowConverter::new(
            idx.iter()
                .map(|&i| SortField::new_with_options(schema.field(i).data_type().clone(), sort))
                .collect(),
        )
    };
    let pick = |batch: &RecordBatch, idx: &[usize]| -> Vec<_> {
        idx.iter().map(|&i| batch.column(i).clone()).collect()
    };
    let all_idx: Vec<usize> = (0..schema.fields().len()).collect();
    let rows = |idx: &[usize]| -> Result<(Rows, Rows)> {
        let c = converter(idx)?;
        Ok((
            c.convert_columns(&pick(&b, idx))?,
            c.convert_columns(&pick(&k, idx))?,
        ))
    };
    let (b_all, k_all) = rows(&all_idx)?;
    let (b_key, k_key) = rows(&key)?;
    let (b_ex, k_ex) = rows(&exact)?;
    let to_f64 = |batch: &RecordBatch| -> Result<Vec<arrow::array::Float64Array>> {
        floats
            .iter()
            .map(|&i| {
                Ok(cast(batch.column(i), &DataType::Float64)?
                    .as_primitive::<Float64Type>()
                    .clone())
            })
            .collect()
    };
    let (b_f, k_f) = (to_f64(&b)?, to_f64(&k)?);
    let close = |i: usize, j: usize| {
        b_f.iter()
            .zip(&k_f)
            .all(|(x, y)| match (x.is_null(i), y.is_null(j)) {
                (true, true) => true,
                (false, false) => {
                    let (x, y) = (x.value(i), y.value(j));
                    x == y
                        || (x.is_nan() && y.is_nan())
                        || (x.is_finite()
                            && y.is_finite()
                            && (x - y).abs() <= tolerance * x.abs().max(y.abs()).max(1.0))
                }
                _ => false,
            })
    };
    let mut differences = Vec::new();
    let (mut i, mut j) = (0, 0);
    while (i < b.num_rows() || j < k.num_rows()) && differences.len() < SHOWN {
        let order = match (i < b.num_rows(), j < k.num_rows()) {
            (true, true) => b_key.row(i).cmp(&k_key.row(j)),
            (true, false) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        match order {
            std::cmp::Ordering::Equal => {
                if b_ex.row(i) != k_ex.row(j) || !close(i, j) {
                    differences.push(format!(
                        "differs:     batch {}  kappa {}",
                        describe(&b, i)?,
                        describe(&k, j)?
                    ));
                }
                i += 1;
                j += 1;
            }
            std::cmp::Ordering::Less => {
                differences.push(format!("only batch:  {}", describe(&b, i)?));
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                differences.push(format!("only kappa:  {}", describe(&k, j)?));
                j += 1;
            }
        }
    }
    Ok(Comparison {
        batch: Side {
            rows: b.num_rows() as u64,
            hash: side_hash(&b_all),
        },
        kappa: Side {
            rows: k.num_rows() as u64,
            hash: side_hash(&k_all),
        },
        float_columns: floats
            .iter()
            .map(|&i| schema.field(i).name().clone())
            .collect(),
        differences,
    })
}

/// Compare each view's Kappa result with its served batch version, at
/// that version's snapshot: replay (from the newest checkpoint within it,
/// or from scratch) to the version's watermark and compare rows.
pub async fn run(
    strata: &mut Strata,
    views: &[String],
    from_scratch: bool,
) -> Result<Vec<VerifyReport>> {
    let plans = strata.compiled_views(views)?;
    let ctx = strata.new_session()?;
    let store = strata.store().clone();
    // Versions first, then the log: a snapshot read after a version was
    // published holds every commit that version covers.
    let mut states = Vec::new();
    for plan in &plans {
        states.push(strata.view_state(&plan.view).await?);
    }
    let snapshots = strata.snapshots().await?;
    let tolerance = strata.config.kappa.float_tolerance;
    let mut out = Vec::new();
    for (plan, state) in plans.into_iter().zip(states) {
        let view = plan.view.clone();
        let Some(version) = state.served else {
            out.push(VerifyReport {
                view: view.name.clone(),
                verdict: VerifyVerdict::NoBatch,
                batch_version: None,
                watermark: None,
                batch: None,
                kappa: None,
                float_columns: Vec::new(),
                tolerance,
                resumed_at_commits: None,
                differences: Vec::new(),
                note: Some(format!(
                    "no batch version of the current definition: run `strata batch {}` first",
                    view.name
                )),
            });
            continue;
        };
        let limit = version.covered().count();
        let snapshot = strata.pinned(&snapshots, &view.stream)?;
        let mut p = ViewProcessor::start(&store, plan, from_scratch, Some(limit)).await?;
        for step in snapshot.steps_between(p.commits, limit).await? {
            p.apply(&ctx, &step).await?;
        }
        p.reach(limit);
        let kappa_rows = p.output(&ctx, &store).await?;
        let batch_rows = strata.version_rows(&view.name, &version).await?;
        let cmp = compare(&view, &batch_rows, &kappa_rows, tolerance)?;
        let same = cmp.differences.is_empty() && cmp.batch.rows == cmp.kappa.rows;
        out.push(VerifyReport {
            view: view.name.clone(),
            verdict: match (&p.plan.verdict, same) {
                (_, true) => VerifyVerdict::Match,
                (Verdict::Approximate(_), false) => VerifyVerdict::Approximate,
                (Verdict::Exact, false) => VerifyVerdict::Mismatch,
            },
            batch_version: Some(version.version),
            watermark: version.watermark,
            batch: Some(cmp.batch),
            kappa: Some(cmp.kappa),
            float_columns: cmp.float_columns,
            tolerance,
            resumed_at_commits: p.resumed.as_ref().map(|r| r.commits),
            differences: cmp.differences,
            note: {
                let approximate = match &p.plan.verdict {
                    Verdict::Approximate(fs) => Some(format!(
                        "{} depend on how the log is split into commits: compared, not required to match",
                        fs.join(", ")
                    )),
                    Verdict::Exact => None,
                };
                // What was proved is the batch's snapshot, not the head.
                let behind = version.covered().behind(snapshot.head());
                let behind = (behind > 0).then(|| {
                    format!(
                        "checked at the batch's snapshot, {behind} commit{} behind the head: `strata batch {}` first to check the head",
                        if behind == 1 { "" } else { "s" },
                        view.name
                    )
                });
                let notes: Vec<String> = approximate.into_iter().chain(behind).collect();
                (!notes.is_empty()).then(|| notes.join("; "))
            },
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Float64Array, Int64Array};
    use arrow::datatypes::{Field, Schema};

    use super::*;
    use crate::catalog::{SourceLocation, ViewDef};

    fn view() -> ViewDef {
        ViewDef {
            name: "v".into(),
            query: String::new(),
            materialized: true,
            stream: "s".into(),
            schema: Arc::new(Schema::new(vec![
                Field::new("k", DataType::Int64, false),
                Field::new("x", DataType::Float64, true),
            ])),
            key: vec!["k".into()],
            declared_key: None,
            serving: Default::default(),
            definition_hash: String::new(),
            defined_at: SourceLocation {
                path: "v.sql".into(),
                line: 1,
            },
        }
    }

    fn rows(k: &[i64], x: &[f64]) -> RecordBatch {
        RecordBatch::try_new(
            view().schema,
            vec![
                Arc::new(Int64Array::from(k.to_vec())),
                Arc::new(Float64Array::from(x.to_vec())),
            ],
        )
        .unwrap()
    }

    fn differences(a: RecordBatch, b: RecordBatch) -> Vec<String> {
        compare(&view(), &[a], &[b], 1e-9).unwrap().differences
    }

    #[test]
    fn floats_match_within_tolerance_and_infinities_only_exactly() {
        assert!(differences(
            rows(&[1, 2], &[1.0, 0.0]),
            rows(&[1, 2], &[1.0 + 1e-12, 1e-12])
        )
        .is_empty());
        assert_eq!(
            differences(rows(&[1], &[1.0]), rows(&[1], &[1.001])).len(),
            1
        );
        let d = differences(rows(&[1], &[f64::INFINITY]), rows(&[1], &[1.0]));
        assert!(d[0].starts_with("differs:"), "{d:?}");
        assert!(differences(rows(&[1], &[f64::INFINITY]), rows(&[1], &[f64::INFINITY])).is_empty());
    }

    #[test]
    fn a_missing_key_is_reported_on_its_side() {
        let d = differences(
            rows(&[1, 2, 3], &[1.0, 2.0, 3.0]),
            rows(&[1, 3], &[1.0, 3.0]),
        );
        assert_eq!(d.len(), 1);
        assert!(
            d[0].starts_with("only batch:") && d[0].contains("k=2"),
            "{d:?}"
        );
    }
}
