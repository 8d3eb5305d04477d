//! Which commands run: a plain decision over an untrusted payload, the time and the ids seen lately.
//! No I/O, no clock of its own, so it is tested on its own.
//!
//! Commands arrive at least once (QoS 1): a repeat of a command still running is dropped (its
//! answer follows), a repeat of a finished one gets the first answer again, never a second run.

use bl_proto::command::{Command, Outcome, codes};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, VecDeque};
use uuid::Uuid;

/// How many command ids are remembered; dispatch resends within seconds, so this is plenty.
pub const REMEMBERED: usize = 1024;

/// What to do with one payload.
#[derive(Debug, Clone, PartialEq)]
pub enum Admission {
    /// Run it; it is remembered as running until [`Recent::finish`].
    Run(Box<Command>),
    /// Answer `outcome` without running (a refusal, or a repeat of a finished command).
    Answer { cmd_id: Uuid, outcome: Outcome },
    /// Nothing to send: a repeat of a command still running, or garbage without a `cmdId`.
    Drop(String),
}

/// The commands seen lately, oldest first, with their answers once known.
#[derive(Debug)]
pub struct Recent {
    order: VecDeque<Uuid>,
    answers: HashMap<Uuid, Option<Outcome>>,
    capacity: usize,
}

impl Default for Recent {
    fn default() -> Self {
        Self::with_capacity(REMEMBERED)
    }
}

impl Recent {
    pub fn with_capacity(capacity: usize) -> Self {
        Recent {
            order: VecDeque::new(),
            answers: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    /// Decides what `payload`, received at `now`, gets.
    pub fn admit(&mut self, payload: &[u8], now: DateTime<Utc>) -> Admission {
        let command: Command = match bl_proto::decode(payload) {
            Ok(c) => c,
            Err(e) => {
                let Some(cmd_id) = cmd_id_of(payload) else {
                    return Admission::Drop(format!("not a command, and no cmdId to answer: {e}"));
                };
                return self.refuse(
                    cmd_id,
                    codes::INVALID,
                    format!("the command is invalid: {e}"),
                );
            }
        };
        match self.answers.get(&command.cmd_id) {
            Some(Some(outcome)) => {
                return Admission::Answer {
                    cmd_id: command.cmd_id,
                    outcome: outcome.clone(),
                };
            }
            Some(None) => {
                return Admission::Drop(format!(
                    "command {} is a repeat of one still running",
                    command.cmd_id
                ));
            }
            None => {}
        }
        if command.is_expired(now) {
            let expires = command.expires_at.expect("expired means it has a deadline");
            return self.refuse(
                command.cmd_id,
                codes::EXPIRED,
                format!(
                    "arrived at {} after its expiresAt {}",
                    now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    expires.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                ),
            );
        }
        self.remember(command.cmd_id, None);
        Admission::Run(Box::new(command))
    }

    /// Records the answer of a command that ran, for its repeats.
    pub fn finish(&mut self, cmd_id: Uuid, outcome: &Outcome) {
        self.remember(cmd_id, Some(outcome.clone()));
    }

    fn refuse(&mut self, cmd_id: Uuid, code: &str, message: String) -> Admission {
        if let Some(Some(outcome)) = self.answers.get(&cmd_id) {
            return Admission::Answer {
                cmd_id,
                outcome: outcome.clone(),
            };
        }
        let outcome = error(code, message);
        self.remember(cmd_id, Some(outcome.clone()));
        Admission::Answer { cmd_id, outcome }
    }

    fn remember(&mut self, cmd_id: Uuid, outcome: Option<Outcome>) {
        if self.answers.insert(cmd_id, outcome).is_none() {
            self.order.push_back(cmd_id);
        }
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.answers.remove(&old);
            }
        }
    }
}

/// An error outcome, its message cut to what the result may carry.
pub fn error(code: &str, message: impl Into<String>) -> Outcome {
    Outcome::Error {
        code: code.to_owned(),
        message: cut(message.into()),
    }
}

/// A success, with an optional detail cut to what the result may carry.
pub fn ok(detail: impl Into<String>) -> Outcome {
    Outcome::Ok {
        detail: Some(cut(detail.into())),
    }
}

fn cut(mut text: String) -> String {
    const MAX: usize = 1000;
    if text.chars().count() > MAX {
        text = text.chars().take(MAX - 1).collect();
        text.push('…');
    }
    text
}

/// The `cmdId` of a payload that does not decode as a command, if it names one.
fn cmd_id_of(payload: &[u8]) -> Option<Uuid> {
    if payload.len() > bl_proto::decode::MAX_PAYLOAD_BYTES {
        return None;
    }
    let value: serde_json::Value = serde_json::from_slice(payload).ok()?;
    value.get("cmdId")?.as_str()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn snapshot(id: Uuid, issued: DateTime<Utc>, expires: Option<DateTime<Utc>>) -> Vec<u8> {
        bl_proto::encode(&Command {
            v: bl_proto::V1,
            cmd_id: id,
            issued_at: issued,
            expires_at: expires,
            action: bl_proto::command::CommandAction::Snapshot(bl_proto::command::SnapshotCmd {
                camera_id: bl_proto::CameraId::new("cam-1").unwrap(),
            }),
        })
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_764_000_000_000).unwrap()
    }

    #[test]
    fn a_redelivered_command_runs_once_and_its_repeat_after_the_end_gets_the_first_answer() {
        let mut recent = Recent::default();
        let id = Uuid::now_v7();
        let payload = snapshot(id, now(), Some(now() + Duration::seconds(30)));
        assert!(matches!(recent.admit(&payload, now()), Admission::Run(c) if c.cmd_id == id));
        assert!(matches!(recent.admit(&payload, now()), Admission::Drop(_)));
        let first = ok("abc");
        recent.finish(id, &first);
        // Even past its deadline: the repeat is answered, not refused, and not run.
        let later = now() + Duration::seconds(60);
        assert_eq!(
            recent.admit(&payload, later),
            Admission::Answer {
                cmd_id: id,
                outcome: first
            }
        );
    }

    #[test]
    fn a_command_past_its_expiry_is_refused_with_the_expired_code() {
        let mut recent = Recent::default();
        let id = Uuid::now_v7();
        let payload = snapshot(id, now(), Some(now() + Duration::seconds(30)));
        let Admission::Answer { cmd_id, outcome } =
            recent.admit(&payload, now() + Duration::seconds(30))
        else {
            panic!("an expired command ran")
        };
        assert_eq!(cmd_id, id);
        assert!(matches!(outcome, Outcome::Error { code, .. } if code == codes::EXPIRED));
        let no_deadline = snapshot(Uuid::now_v7(), now(), None);
        assert!(matches!(
            recent.admit(&no_deadline, now() + Duration::days(9)),
            Admission::Run(_)
        ));
    }

    #[test]
    fn a_bad_command_with_an_id_is_answered_invalid_naming_the_field_and_garbage_is_dropped() {
        let mut recent = Recent::default();
        let id = Uuid::now_v7();
        let bad = serde_json::to_vec(&serde_json::json!({
            "v": 1, "type": "recheck", "cmdId": id, "issuedAt": "2025-03-01T08:16:00.000Z",
            "cameraId": "cam-1",
            "kind": "rodent", "forSecs": 0,
        }))
        .unwrap();
        match recent.admit(&bad, now()) {
            Admission::Answer {
                cmd_id,
                outcome: Outcome::Error { code, message },
            } => {
                assert_eq!(cmd_id, id);
                assert_eq!(code, codes::INVALID);
                assert!(message.contains("forSecs"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        for garbage in [&b"not json"[..], b"{}", b"[1,2]", br#"{"cmdId":"nope"}"#] {
            assert!(matches!(recent.admit(garbage, now()), Admission::Drop(_)));
        }
    }

    #[test]
    fn only_the_newest_ids_are_remembered() {
        let mut recent = Recent::with_capacity(2);
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        for id in &ids {
            let p = snapshot(*id, now(), None);
            assert!(matches!(recent.admit(&p, now()), Admission::Run(_)));
            recent.finish(*id, &ok("x"));
        }
        let oldest = snapshot(ids[0], now(), None);
        assert!(matches!(recent.admit(&oldest, now()), Admission::Run(_)));
        let newest = snapshot(ids[2], now(), None);
        assert!(matches!(
            recent.admit(&newest, now()),
            Admission::Answer { .. }
        ));
    }

    #[test]
    fn long_messages_are_cut_to_what_a_result_may_carry() {
        let Outcome::Error { message, .. } = error(codes::INTERNAL, "x".repeat(5000)) else {
            unreachable!()
        };
        assert!(message.chars().count() <= 1000);
    }
}
