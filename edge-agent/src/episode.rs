//! Violation episodes (like a Frigate review item): detections, frame by frame, become one episode
//! per violation — `start` once it has persisted, `update` when clearly better evidence comes, `end`
//! once it has been gone for a while — so an uncovered head is one case, not six hundred detections.
//! Plain logic over the frame times the caller passes in; one [`Episodes`] per camera.

use crate::detect::Detection;
use bl_proto::event::{EpisodePhase, ViolationKind};
use std::collections::HashMap;
use uuid::Uuid;

/// How detections turn into episodes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpisodeRules {
    /// Seen (with gaps shorter than `clear_after_ms`) for this long before an episode starts.
    /// Default 2 s (rodents need less: see [`EpisodeRules::for_kind`]).
    pub min_duration_ms: u64,
    /// Not seen for this long: the episode ends. Default 10 s.
    pub clear_after_ms: u64,
    /// After an end, no new episode of the same kind starts for this long. Default 60 s.
    pub cooldown_ms: u64,
    /// An update is sent only for confidence this much higher than the last one sent. Default 0.1.
    pub update_margin: f32,
    /// And at most this often. Default 5 s.
    pub update_every_ms: u64,
}

impl Default for EpisodeRules {
    fn default() -> Self {
        Self {
            min_duration_ms: 2_000,
            clear_after_ms: 10_000,
            cooldown_ms: 60_000,
            update_margin: 0.1,
            update_every_ms: 5_000,
        }
    }
}

impl EpisodeRules {
    /// The defaults for a kind: a rodent crossing the floor is visible for a second or two, so it
    /// starts at once; behaviour (no hat, smoking) must persist.
    pub fn for_kind(kind: ViolationKind) -> Self {
        match kind {
            ViolationKind::Rodent => Self {
                min_duration_ms: 0,
                ..Self::default()
            },
            _ => Self::default(),
        }
    }
}

/// An episode changed; the caller turns it into a `DetectionEvent`.
#[derive(Debug, Clone, PartialEq)]
pub struct EpisodeChange {
    pub episode_id: Uuid,
    pub phase: EpisodePhase,
    pub at_ms: u64,
    /// The evidence the change reports: the best detection so far (for `end`, the last one seen).
    pub detection: Detection,
}

#[derive(Debug, Clone)]
enum State {
    /// Seen since `since`, not long enough yet.
    Pending {
        since: u64,
        last_seen: u64,
        best: Detection,
    },
    Open {
        id: Uuid,
        last_seen: u64,
        last: Detection,
        reported_confidence: f32,
        reported_at: u64,
    },
    /// Ended at `ended`; quiet until the cooldown passes.
    Cooling { ended: u64 },
}

/// The episodes of one camera.
#[derive(Debug, Clone, Default)]
pub struct Episodes {
    states: HashMap<ViolationKind, State>,
    rules: HashMap<ViolationKind, EpisodeRules>,
}

impl Episodes {
    pub fn new() -> Self {
        Self::default()
    }

    /// Overrides the rules of one kind (e.g. from the center's config).
    pub fn set_rules(&mut self, kind: ViolationKind, rules: EpisodeRules) {
        self.rules.insert(kind, rules);
    }

    fn rules(&self, kind: ViolationKind) -> EpisodeRules {
        self.rules
            .get(&kind)
            .copied()
            .unwrap_or_else(|| EpisodeRules::for_kind(kind))
    }

    /// One frame's detections (all of them, possibly none) at `at_ms`; returns what changed.
    pub fn observe(&mut self, at_ms: u64, detections: &[Detection]) -> Vec<EpisodeChange> {
        let mut changes = Vec::new();
        let mut seen: HashMap<ViolationKind, &Detection> = HashMap::new();
        for d in detections {
            let best = seen.entry(d.kind).or_insert(d);
            if d.confidence > best.confidence {
                *best = d;
            }
        }
        let kinds: Vec<ViolationKind> = self.states.keys().chain(seen.keys()).copied().collect();
        let mut done = std::collections::HashSet::new();
        for kind in kinds {
            if done.insert(kind) {
                let rules = self.rules(kind);
                let state = self.states.remove(&kind);
                let next = step(state, rules, at_ms, seen.get(&kind).copied(), &mut changes);
                if let Some(next) = next {
                    self.states.insert(kind, next);
                }
            }
        }
        changes
    }
}

/// One kind's next state; pushes the change it causes, if any.
fn step(
    state: Option<State>,
    rules: EpisodeRules,
    now: u64,
    seen: Option<&Detection>,
    changes: &mut Vec<EpisodeChange>,
) -> Option<State> {
    let start = |best: &Detection, changes: &mut Vec<EpisodeChange>| {
        let id = Uuid::now_v7();
        changes.push(EpisodeChange {
            episode_id: id,
            phase: EpisodePhase::Start,
            at_ms: now,
            detection: best.clone(),
        });
        State::Open {
            id,
            last_seen: now,
            last: best.clone(),
            reported_confidence: best.confidence,
            reported_at: now,
        }
    };
    match (state, seen) {
        (None, None) => None,
        (None, Some(d)) => {
            if rules.min_duration_ms == 0 {
                Some(start(d, changes))
            } else {
                Some(State::Pending {
                    since: now,
                    last_seen: now,
                    best: d.clone(),
                })
            }
        }
        (
            Some(State::Pending {
                since,
                last_seen,
                best,
            }),
            seen,
        ) => {
            if now.saturating_sub(last_seen) > rules.clear_after_ms {
                // it went away before it counted; start over from this frame
                return step(None, rules, now, seen, changes);
            }
            let (last_seen, best) = match seen {
                Some(d) if d.confidence > best.confidence => (now, d.clone()),
                Some(_) => (now, best),
                None => (last_seen, best),
            };
            if seen.is_some() && now.saturating_sub(since) >= rules.min_duration_ms {
                Some(start(&best, changes))
            } else {
                Some(State::Pending {
                    since,
                    last_seen,
                    best,
                })
            }
        }
        (
            Some(State::Open {
                id,
                last_seen,
                last,
                reported_confidence,
                reported_at,
            }),
            seen,
        ) => match seen {
            Some(d) => {
                let better = d.confidence >= reported_confidence + rules.update_margin;
                let due = now.saturating_sub(reported_at) >= rules.update_every_ms;
                let (reported_confidence, reported_at) = if better && due {
                    changes.push(EpisodeChange {
                        episode_id: id,
                        phase: EpisodePhase::Update,
                        at_ms: now,
                        detection: d.clone(),
                    });
                    (d.confidence, now)
                } else {
                    (reported_confidence, reported_at)
                };
                Some(State::Open {
                    id,
                    last_seen: now,
                    last: d.clone(),
                    reported_confidence,
                    reported_at,
                })
            }
            None if now.saturating_sub(last_seen) >= rules.clear_after_ms => {
                changes.push(EpisodeChange {
                    episode_id: id,
                    phase: EpisodePhase::End,
                    at_ms: now,
                    detection: last,
                });
                Some(State::Cooling { ended: now })
            }
            None => Some(State::Open {
                id,
                last_seen,
                last,
                reported_confidence,
                reported_at,
            }),
        },
        (Some(State::Cooling { ended }), seen) => {
            if now.saturating_sub(ended) < rules.cooldown_ms {
                Some(State::Cooling { ended })
            } else {
                step(None, rules, now, seen, changes)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use EpisodePhase::*;

    fn seen(kind: ViolationKind, confidence: f32) -> Detection {
        Detection {
            kind,
            boxes: Vec::new(),
            confidence,
        }
    }

    /// Feeds 5 fps frames from `from` to `to` ms, with `kind` visible where `visible(t)` holds.
    fn run(
        e: &mut Episodes,
        from: u64,
        to: u64,
        visible: impl Fn(u64) -> Option<Detection>,
    ) -> Vec<(EpisodePhase, u64)> {
        let mut out = Vec::new();
        for t in (from..=to).step_by(200) {
            let d: Vec<Detection> = visible(t).into_iter().collect();
            out.extend(e.observe(t, &d).into_iter().map(|c| (c.phase, c.at_ms)));
        }
        out
    }

    #[test]
    fn a_head_without_a_hat_for_a_minute_is_one_episode_not_three_hundred_detections() {
        let mut e = Episodes::new();
        let phases = run(&mut e, 0, 90_000, |t| {
            (t < 60_000).then(|| seen(ViolationKind::NoChefHat, 0.6))
        });
        assert_eq!(phases, vec![(Start, 2_000), (End, 69_800)]);
    }

    #[test]
    fn a_flicker_shorter_than_the_minimum_starts_nothing() {
        let mut e = Episodes::new();
        let phases = run(&mut e, 0, 30_000, |t| {
            (t < 1_000).then(|| seen(ViolationKind::Smoking, 0.9))
        });
        assert!(phases.is_empty(), "{phases:?}");
    }

    #[test]
    fn a_rodent_starts_at_once_and_short_gaps_do_not_split_it() {
        let mut e = Episodes::new();
        let phases = run(&mut e, 0, 30_000, |t| {
            // visible 0–3 s, hidden behind a leg 3–6 s, visible again 6–8 s
            ((t < 3_000) || (6_000..8_000).contains(&t)).then(|| seen(ViolationKind::Rodent, 0.7))
        });
        assert_eq!(phases, vec![(Start, 0), (End, 17_800)]);
    }

    #[test]
    fn clearly_better_evidence_is_sent_as_an_update_but_not_too_often() {
        let mut e = Episodes::new();
        let phases = run(&mut e, 0, 20_000, |t| {
            let confidence = 0.5 + (t as f32 / 40_000.0); // rises slowly to 1.0
            (t < 20_000).then(|| seen(ViolationKind::NoMask, confidence))
        });
        let updates: Vec<u64> = phases
            .iter()
            .filter(|(p, _)| *p == Update)
            .map(|(_, t)| *t)
            .collect();
        assert!(!updates.is_empty(), "{phases:?}");
        assert!(
            updates.windows(2).all(|w| w[1] - w[0] >= 5_000),
            "{updates:?}"
        );
    }

    #[test]
    fn after_an_end_the_same_kind_waits_out_the_cooldown() {
        let mut e = Episodes::new();
        let phases = run(&mut e, 0, 200_000, |t| {
            ((t < 5_000) || (30_000..35_000).contains(&t) || (100_000..105_000).contains(&t))
                .then(|| seen(ViolationKind::Rodent, 0.7))
        });
        // 30 s is inside the 60 s cooldown after the end at 14.8 s; 100 s is not.
        assert_eq!(
            phases,
            vec![(Start, 0), (End, 14_800), (Start, 100_000), (End, 114_800)]
        );
    }

    #[test]
    fn kinds_are_independent() {
        let mut e = Episodes::new();
        let phases = run(&mut e, 0, 4_000, |_| Some(seen(ViolationKind::Rodent, 0.7)));
        assert_eq!(phases, vec![(Start, 0)]);
        let changes = e.observe(
            4_200,
            &[
                seen(ViolationKind::Rodent, 0.7),
                seen(ViolationKind::NoChefHat, 0.6),
            ],
        );
        assert!(changes.is_empty());
    }
}
