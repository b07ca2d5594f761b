//! Incremental state of a grouped view: DataFusion's group table and one
//! `GroupsAccumulator` per aggregate, fed the partial states of each commit
//! with `merge_batch`. A commit costs work proportional to its own state
//! rows; the history is never re-read.
//!
//! The checkpointed form of the state is the partial aggregate's own output
//! layout (group columns, then each aggregate's state fields, one row per
//! group), so restoring a checkpoint is merging it like one more commit.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{Schema, SchemaRef};
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};
use datafusion::physical_expr::GroupsAccumulatorAdapter;
use datafusion::physical_plan::aggregates::group_values::{new_group_values, GroupValues};
use datafusion::physical_plan::aggregates::order::GroupOrdering;

use crate::catalog::GroupedPlan;
use crate::error::Result;

/// Live state of a grouped view.
pub struct GroupedState {
    plan: GroupedPlan,
    state_schema: SchemaRef,
    group_schema: SchemaRef,
    groups: Box<dyn GroupValues>,
    accumulators: Vec<Box<dyn GroupsAccumulator>>,
    /// Where each aggregate's state columns sit in a state row.
    state_columns: Vec<std::ops::Range<usize>>,
    scratch: Vec<usize>,
}

impl std::fmt::Debug for GroupedState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupedState")
            .field("groups", &self.groups.len())
            .finish()
    }
}

fn accumulators(plan: &GroupedPlan) -> Result<Vec<Box<dyn GroupsAccumulator>>> {
    plan.aggregates
        .iter()
        .map(|a| {
            if a.groups_accumulator_supported() {
                Ok(a.create_groups_accumulator()?)
            } else {
                let a = a.clone();
                Ok(Box::new(GroupsAccumulatorAdapter::new(move || {
                    a.create_accumulator()
                })) as Box<dyn GroupsAccumulator>)
            }
        })
        .collect()
}

impl GroupedState {
    pub fn new(plan: &GroupedPlan) -> Result<Self> {
        let state_schema = plan.state_schema();
        let group_schema = Arc::new(Schema::new(
            state_schema.fields()[..plan.group_columns].to_vec(),
        ));
        let mut state_columns = Vec::new();
        let mut at = plan.group_columns;
        for a in &plan.aggregates {
            let n = a.state_fields()?.len();
            state_columns.push(at..at + n);
            at += n;
        }
        Ok(Self {
            groups: new_group_values(group_schema.clone(), &GroupOrdering::None)?,
            accumulators: accumulators(plan)?,
            plan: plan.clone(),
            state_schema,
            group_schema,
            state_columns,
            scratch: Vec::new(),
        })
    }

    /// Number of groups.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Bytes held.
    pub fn size(&self) -> usize {
        self.groups.size() + self.accumulators.iter().map(|a| a.size()).sum::<usize>()
    }

    /// Merge state rows (a commit's partial aggregate, or a checkpoint).
    pub fn merge(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let cols = batch.columns();
        self.scratch.clear();
        self.groups
            .intern(&cols[..self.plan.group_columns], &mut self.scratch)?;
        let total = self.groups.len();
        for (acc, range) in self.accumulators.iter_mut().zip(&self.state_columns) {
            acc.merge_batch(&cols[range.clone()], &self.scratch, total)?;
        }
        Ok(())
    }

    /// Take everything out as state rows, in group order.
    fn take(&mut self) -> Result<(Vec<ArrayRef>, Vec<Vec<ArrayRef>>)> {
        let keys = self.groups.emit(EmitTo::All)?;
        let states = self
            .accumulators
            .iter_mut()
            .map(|a| a.state(EmitTo::All))
            .collect::<datafusion::error::Result<Vec<_>>>()?;
        Ok((keys, states))
    }

    /// The state as rows (group columns, then state fields), left intact.
    pub fn snapshot(&mut self) -> Result<RecordBatch> {
        if self.is_empty() {
            return Ok(RecordBatch::new_empty(self.state_schema.clone()));
        }
        let (keys, states) = self.take()?;
        let mut columns = keys;
        for s in states {
            columns.extend(s);
        }
        let batch = RecordBatch::try_new(self.state_schema.clone(), columns)?;
        // Taking emptied the tables: put the same state back.
        self.groups = new_group_values(self.group_schema.clone(), &GroupOrdering::None)?;
        self.accumulators = accumulators(&self.plan)?;
        self.merge(&batch)?;
        Ok(batch)
    }

    /// The state as rows ([`Self::snapshot`]) and its final aggregate rows
    /// (group columns, then each result). The state holds one row per
    /// group, so each row is evaluated on its own: no second pass through
    /// a hash table.
    pub fn snapshot_and_evaluate(&mut self) -> Result<(RecordBatch, RecordBatch)> {
        let state = self.snapshot()?;
        let n = state.num_rows();
        if n == 0 {
            return Ok((
                state,
                RecordBatch::new_empty(self.plan.final_schema.clone()),
            ));
        }
        let own_group: Vec<usize> = (0..n).collect();
        let mut columns = state.columns()[..self.plan.group_columns].to_vec();
        for (mut acc, range) in accumulators(&self.plan)?
            .into_iter()
            .zip(&self.state_columns)
        {
            acc.merge_batch(&state.columns()[range.clone()], &own_group, n)?;
            columns.push(acc.evaluate(EmitTo::All)?);
        }
        let evaluated = RecordBatch::try_new(self.plan.final_schema.clone(), columns)?;
        Ok((state, evaluated))
    }

    /// The final aggregate rows (group columns, then each result) of
    /// `state` rows, evaluated without touching the live state.
    pub fn evaluate(plan: &GroupedPlan, state: &RecordBatch) -> Result<RecordBatch> {
        if state.num_rows() == 0 {
            return Ok(RecordBatch::new_empty(plan.final_schema.clone()));
        }
        let mut fresh = GroupedState::new(plan)?;
        fresh.merge(state)?;
        let mut columns = fresh.groups.emit(EmitTo::All)?;
        for acc in &mut fresh.accumulators {
            columns.push(acc.evaluate(EmitTo::All)?);
        }
        Ok(RecordBatch::try_new(plan.final_schema.clone(), columns)?)
    }
}
