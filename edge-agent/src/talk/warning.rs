//! The automatic voice warning: which message fits an episode's start (plain rules over kind,
//! premises kind, camera and the local time of day, `[[talk.warning]]`, first match wins), and
//! [`Talk::warn`], which plays it and reports what became of it to the center as a
//! [`WarningEvent`] (played, or why not: no speaker, an operator talking, a failed backchannel),
//! so the incident's timeline says whether the kitchen was warned.

use super::config::{TalkConfig, WarningRule};

use super::{Talk, TalkError};
use bl_proto::command::Outcome;
use bl_proto::event::{DetectionEvent, EpisodePhase, ViolationKind, WarningEvent};
use bl_proto::{CameraId, V1};
use std::future::Future;

/// The rules that apply to this box (its premises kind already chosen), and the center's.
#[derive(Debug, Clone, Default)]
pub struct Warnings {
    rules: Vec<WarningRule>,
    /// From the center's EdgeConfig: for a (camera, kind) they name, they win over `rules`.
    center: Vec<bl_proto::voice::WarningRule>,
}

impl Warnings {
    /// Keeps the rules for the box's premises kind (a rule naming no kind is for every kind).
    pub fn new(config: &TalkConfig) -> Warnings {
        let kind = config.premises_kind.as_deref();
        let rules = config
            .warning
            .iter()
            .filter(|r| {
                r.premises.is_empty() || kind.is_some_and(|k| r.premises.iter().any(|p| p == k))
            })
            .cloned()
            .collect();
        Warnings {
            rules,
            center: Vec::new(),
        }
    }

    /// The box's own rules with the center's `center` rules over them.
    pub fn with_center(&self, center: Vec<bl_proto::voice::WarningRule>) -> Warnings {
        Warnings {
            rules: self.rules.clone(),
            center,
        }
    }

    /// The message of the rule for `kind` at `camera` whose hours hold `minute_of_day`: the
    /// center's rule for that camera and kind if there is one (outside its hours: none), else the
    /// first of the box's own.
    pub fn pick(&self, kind: ViolationKind, camera: &CameraId, minute_of_day: u16) -> Option<&str> {
        if let Some(r) = self
            .center
            .iter()
            .find(|r| r.kind == kind && r.cameras.contains(camera))
        {
            return r
                .active_hours
                .is_none_or(|h| h.contains(minute_of_day))
                .then_some(r.message.as_str());
        }
        self.rules
            .iter()
            .find(|r| {
                r.kind == kind
                    && (r.cameras.is_empty() || r.cameras.contains(camera))
                    && r.hours.is_none_or(|h| h.contains(minute_of_day))
            })
            .map(|r| r.message.as_str())
    }
}

impl Talk {
    /// The automatic voice warning for a detection event: when a rule matches an episode's start
    /// (kind, premises, camera, local `minute_of_day`), returns the future that plays the message
    /// to its end (or finds it cannot) and yields the [`WarningEvent`] to send; `None` when no rule
    /// applies. The caller runs it in the background, so detection never waits for a speaker.
    pub fn warn(
        &self,
        event: &DetectionEvent,
        minute_of_day: u16,
    ) -> Option<impl Future<Output = WarningEvent> + Send + 'static> {
        if event.phase != EpisodePhase::Start {
            return None;
        }
        let Some(message) = self
            .current()
            .warnings
            .pick(event.kind, &event.camera_id, minute_of_day)
            .map(str::to_string)
        else {
            tracing::debug!(camera = %event.camera_id, kind = ?event.kind, minute_of_day, "no voice warning rule applies");
            return None;
        };
        tracing::info!(camera = %event.camera_id, message = %message, "voice warning starting");
        let talk = self.clone();
        let event = event.clone();
        Some(async move {
            let output = talk.message_output(&event.camera_id).ok();
            let outcome = match talk.play_warning(&event.camera_id, &message).await {
                Ok(played) => {
                    tracing::info!(camera = %event.camera_id, message = %message, took = ?played.took, "voice warning played");
                    Outcome::Ok { detail: None }
                }
                Err(e) => {
                    tracing::warn!(camera = %event.camera_id, message = %message, err = %e, "the voice warning could not be played");
                    Outcome::Error {
                        code: e.code().to_string(),
                        message: e.to_string(),
                    }
                }
            };
            WarningEvent {
                v: V1,
                event_id: uuid::Uuid::now_v7(),
                episode_id: event.episode_id,
                edge_id: event.edge_id.clone(),
                camera_id: event.camera_id.clone(),
                kind: event.kind,
                at: chrono::Utc::now(),
                message,
                output,
                outcome,
                exercise: event.exercise.clone(),
            }
        })
    }

    /// Plays a warning unless the camera's speaker is in use (an operator's talk or another
    /// message is never interrupted by a warning).
    async fn play_warning(
        &self,
        camera: &CameraId,
        message: &str,
    ) -> Result<super::Played, TalkError> {
        self.message_output(camera)?;
        if self.status(camera).is_some() {
            return Err(TalkError::Busy(
                "the speaker is in use (an operator or another message)".into(),
            ));
        }
        self.play(camera, message).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bl_proto::config::HoursRange;

    fn rules(text: &str) -> Warnings {
        #[derive(serde::Deserialize)]
        struct File {
            talk: TalkConfig,
        }
        let file: File = toml::from_str(text).unwrap();
        Warnings::new(&file.talk)
    }

    const RULES: &str = r#"
        [talk]
        premises_kind = "schoolCanteen"
        [[talk.message]]
        id = "hat"
        text = "请戴好厨师帽"
        [[talk.message]]
        id = "hat-restaurant"
        text = "请戴帽"
        [[talk.warning]]
        kind = "noChefHat"
        message = "hat-restaurant"
        premises = ["restaurant"]
        [[talk.warning]]
        kind = "noChefHat"
        message = "hat"
        premises = ["schoolCanteen", "centralKitchen"]
        hours = { from = "06:00", to = "20:00" }
    "#;

    #[test]
    fn a_no_hat_episode_in_a_school_canteen_during_opening_hours_gets_the_canteens_message() {
        let cam = CameraId::new("k1").unwrap();
        let w = rules(RULES);
        assert_eq!(w.pick(ViolationKind::NoChefHat, &cam, 9 * 60), Some("hat"));
    }

    #[test]
    fn outside_opening_hours_or_for_another_kind_no_warning_is_played() {
        let cam = CameraId::new("k1").unwrap();
        let w = rules(RULES);
        assert_eq!(w.pick(ViolationKind::NoChefHat, &cam, 21 * 60), None);
        assert_eq!(w.pick(ViolationKind::Rodent, &cam, 9 * 60), None);
    }

    #[test]
    fn the_centers_rule_for_a_camera_and_kind_wins_over_the_boxs_own_even_outside_its_hours() {
        let (k1, k2) = (CameraId::new("k1").unwrap(), CameraId::new("k2").unwrap());
        let w = rules(RULES).with_center(vec![bl_proto::voice::WarningRule {
            cameras: vec![k1.clone()],
            kind: ViolationKind::NoChefHat,
            message: "center-hat".into(),
            active_hours: Some(HoursRange {
                from: "10:00".parse().unwrap(),
                to: "14:00".parse().unwrap(),
            }),
        }]);
        assert_eq!(
            w.pick(ViolationKind::NoChefHat, &k1, 11 * 60),
            Some("center-hat")
        );
        assert_eq!(w.pick(ViolationKind::NoChefHat, &k1, 9 * 60), None);
        assert_eq!(
            w.pick(ViolationKind::NoChefHat, &k2, 9 * 60),
            Some("hat"),
            "another camera keeps the box's rule"
        );
    }

    #[test]
    fn a_restaurant_box_uses_the_restaurant_rule() {
        let cam = CameraId::new("k1").unwrap();
        let w = rules(&RULES.replace("schoolCanteen\"\n", "restaurant\"\n"));
        assert_eq!(
            w.pick(ViolationKind::NoChefHat, &cam, 21 * 60),
            Some("hat-restaurant")
        );
    }
}
