//! Retention, as plain logic: which kept segments to remove so that recordings fit the disk quota
//! and none is older than the maximum age. **A held segment is never chosen**, whatever the quota
//! or age; if held segments alone exceed the quota, the quota is exceeded (and logged).

use std::time::Duration;

/// Retention limits; `None` means no limit.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    /// Most bytes of kept segments, all cameras together.
    pub max_bytes: Option<u64>,
    /// Oldest a segment may get (by its end).
    pub max_age: Option<Duration>,
}

/// A kept segment as retention sees it.
#[derive(Debug, Clone, Copy)]
pub struct Candidate {
    /// Index entry id.
    pub id: i64,
    /// End, Unix ms.
    pub end_ms: i64,
    /// Bytes.
    pub size: u64,
    /// Under legal hold.
    pub held: bool,
}

/// What to prune.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Entry ids to prune, oldest first.
    pub prune: Vec<i64>,
    /// Bytes kept afterwards.
    pub kept_bytes: u64,
    /// Bytes of held segments kept although the quota or age would remove them.
    pub held_over_limit_bytes: u64,
}

/// Chooses segments to prune from `kept` (oldest end first) at `now_ms`.
pub fn plan(kept: &[Candidate], limits: Limits, now_ms: i64) -> Plan {
    let mut total: u64 = kept.iter().map(|c| c.size).sum();
    let cutoff = limits
        .max_age
        .map(|a| now_ms.saturating_sub(i64::try_from(a.as_millis()).unwrap_or(i64::MAX)));
    let mut out = Plan::default();
    for c in kept {
        let too_old = cutoff.is_some_and(|cut| c.end_ms < cut);
        let over_quota = limits.max_bytes.is_some_and(|max| total > max);
        if !(too_old || over_quota) {
            continue;
        }
        if c.held {
            out.held_over_limit_bytes += c.size;
            continue;
        }
        out.prune.push(c.id);
        total -= c.size;
    }
    out.kept_bytes = total;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: i64, end_ms: i64, held: bool) -> Candidate {
        Candidate {
            id,
            end_ms,
            size: 100,
            held,
        }
    }

    #[test]
    fn the_oldest_unheld_segments_go_until_the_quota_fits() {
        let kept = [
            c(1, 10, false),
            c(2, 20, true),
            c(3, 30, false),
            c(4, 40, false),
        ];
        let limits = Limits {
            max_bytes: Some(200),
            max_age: None,
        };
        let p = plan(&kept, limits, 50);
        assert_eq!(
            p.prune,
            [1, 3],
            "the held segment 2 is skipped, 3 goes instead"
        );
        assert_eq!(p.kept_bytes, 200);
    }

    #[test]
    fn segments_past_the_age_go_unless_held_even_when_held_ones_exceed_the_quota() {
        let kept = [c(1, 1_000, true), c(2, 2_000, false), c(3, 9_000, false)];
        let p = plan(
            &kept,
            Limits {
                max_bytes: Some(0),
                max_age: Some(Duration::from_secs(5)),
            },
            10_000,
        );
        assert_eq!(p.prune, [2, 3]);
        assert_eq!((p.kept_bytes, p.held_over_limit_bytes), (100, 100));
        let none = plan(&kept, Limits::default(), 10_000);
        assert!(none.prune.is_empty());
    }
}
