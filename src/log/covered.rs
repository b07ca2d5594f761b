//! [`Covered`]: how much of a stream's log something reflects.

use serde::{Deserialize, Serialize};

/// Commits `0..n` of a stream: what a batch version, a Kappa checkpoint or
/// a replay reflects, and where the speed layer starts. The one convention
/// for "commits covered": a count, never a last commit number off by one.
/// A watermark (the last commit covered, `None` for none, as records and
/// output show it) converts through [`Covered::through`] and
/// [`Covered::watermark`] only.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Covered(pub u64);

impl Covered {
    /// No commit.
    pub const NONE: Covered = Covered(0);

    /// Commits `0..=watermark` (`None`: no commit).
    pub fn through(watermark: Option<u64>) -> Self {
        Covered(watermark.map_or(0, |w| w + 1))
    }

    /// The last commit covered (`None`: no commit).
    pub fn watermark(self) -> Option<u64> {
        self.0.checked_sub(1)
    }

    /// How many commits: also the number of the first commit not covered.
    pub fn count(self) -> u64 {
        self.0
    }

    /// Commits of `0..=head` not covered.
    pub fn behind(self, head: Option<u64>) -> u64 {
        Covered::through(head).0.saturating_sub(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::Covered;

    #[test]
    fn a_watermark_is_the_last_commit_covered() {
        assert_eq!(Covered::through(None), Covered::NONE);
        assert_eq!(Covered::through(Some(0)).count(), 1);
        assert_eq!(Covered::through(Some(41)).watermark(), Some(41));
        assert_eq!(Covered::NONE.watermark(), None);
        assert_eq!(Covered(3).behind(Some(9)), 7);
        assert_eq!(Covered(3).behind(None), 0);
        assert_eq!(Covered::NONE.behind(Some(0)), 1);
    }
}
