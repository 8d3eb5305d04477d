//! Drill scenes staged by the center (`EdgeConfig.exercises`, DESIGN §5): which detections are
//! an exercise. Plain logic over the events the detection worker makes.
//!
//! Marking goes by episode: an episode that **starts** on a staged camera before the staging's
//! `until` is the drill's, and so are its updates and its end, whenever they come (a rodent seen
//! at 21:59:58 in a staging that ends at 22:00 stays one drill case, never half a real one). An
//! episode that starts later, or on another camera, is real.

use bl_proto::CameraId;
use bl_proto::config::StagedExercise;
use bl_proto::event::{DetectionEvent, EpisodePhase};
use std::collections::HashMap;
use uuid::Uuid;

/// One camera's staging: the run id its episodes carry, until when (UTC ms, the box's clock).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staging {
    pub run: String,
    pub until_ms: i64,
}

impl Staging {
    pub fn of(x: &StagedExercise) -> Staging {
        Staging {
            run: x.run.clone(),
            until_ms: x.until.timestamp_millis(),
        }
    }
}

/// The stagings in force and the episodes they marked.
#[derive(Debug, Default)]
pub struct Exercises {
    staged: HashMap<CameraId, Staging>,
    episodes: HashMap<Uuid, String>,
}

impl Exercises {
    /// A new revision's stagings replace all the earlier ones; episodes already marked stay so.
    pub fn replace(&mut self, staged: HashMap<CameraId, Staging>) {
        self.staged = staged;
    }

    /// Sets `exercise` on a detection event of `camera`: the run of its episode, if any.
    pub fn mark(&mut self, event: &mut DetectionEvent) {
        if event.phase == EpisodePhase::Start
            && let Some(s) = self.staged.get(&event.camera_id)
            && event.at.timestamp_millis() < s.until_ms
        {
            self.episodes.insert(event.episode_id, s.run.clone());
        }
        event.exercise = match event.phase {
            EpisodePhase::End => self.episodes.remove(&event.episode_id),
            _ => self.episodes.get(&event.episode_id).cloned(),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bl_proto::V1;
    use bl_proto::event::{ModelInfo, ViolationKind};

    fn event(camera: &str, episode: u128, phase: EpisodePhase, at_ms: i64) -> DetectionEvent {
        DetectionEvent {
            v: V1,
            event_id: Uuid::now_v7(),
            episode_id: Uuid::from_u128(episode),
            phase,
            edge_id: "box".parse().unwrap(),
            camera_id: camera.parse().unwrap(),
            kind: ViolationKind::Rodent,
            at: chrono::DateTime::from_timestamp_millis(at_ms).unwrap(),
            confidence: 0.9,
            boxes: vec![],
            snapshot: None,
            clip: None,
            model: ModelInfo {
                name: "m".into(),
                version: "1".into(),
            },
            exercise: None,
        }
    }

    fn staged(camera: &str, until_ms: i64) -> HashMap<CameraId, Staging> {
        HashMap::from([(
            camera.parse().unwrap(),
            Staging {
                run: "run-1".into(),
                until_ms,
            },
        )])
    }

    fn marked(x: &mut Exercises, mut e: DetectionEvent) -> Option<String> {
        x.mark(&mut e);
        e.exercise
    }

    #[test]
    fn an_episode_started_while_staged_is_the_drills_to_its_end_even_after_until() {
        let mut x = Exercises::default();
        x.replace(staged("cam-1", 10_000));
        let run = Some("run-1".to_owned());
        assert_eq!(
            marked(&mut x, event("cam-1", 1, EpisodePhase::Start, 9_000)),
            run
        );
        assert_eq!(
            marked(&mut x, event("cam-1", 1, EpisodePhase::Update, 12_000)),
            run
        );
        x.replace(HashMap::new()); // ENDEX cleared the staging meanwhile
        assert_eq!(
            marked(&mut x, event("cam-1", 1, EpisodePhase::End, 20_000)),
            run
        );
    }

    #[test]
    fn other_cameras_later_episodes_and_cleared_stagings_stay_real() {
        let mut x = Exercises::default();
        x.replace(staged("cam-1", 10_000));
        assert_eq!(
            marked(&mut x, event("cam-2", 1, EpisodePhase::Start, 1_000)),
            None
        );
        assert_eq!(
            marked(&mut x, event("cam-1", 2, EpisodePhase::Start, 10_000)),
            None
        );
        assert_eq!(
            marked(&mut x, event("cam-1", 2, EpisodePhase::End, 11_000)),
            None
        );
        x.replace(HashMap::new());
        assert_eq!(
            marked(&mut x, event("cam-1", 3, EpisodePhase::Start, 5_000)),
            None
        );
    }
}
