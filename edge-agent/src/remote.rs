//! The center's desired configuration (the retained `bl/v1/edge/{edge}/config`): which rules run
//! on which camera. A new revision is checked as a whole; if any part is wrong the agent keeps the
//! rules it has and says why, so a typo at the center never switches a kitchen's detection off.

use crate::detect::{DetectError, Detector, RodentConfig, RodentDetector};
use crate::episode::{EpisodeRules, Episodes};
use crate::evidence::Rolls;
use crate::exercise::Staging;
use crate::watch::CameraWatch;
use bl_proto::config::EdgeConfig;
use bl_proto::event::ViolationKind;
use bl_proto::{CameraId, DecodeError, EdgeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// The revision in force, for the retained state.
pub type AppliedRevision = Arc<Mutex<Option<u64>>>;

/// A revision's camera watches, ready to replace the old ones, and its drill stagings, which
/// replace all the earlier ones.
pub struct Update {
    pub revision: u64,
    pub cameras: HashMap<CameraId, CameraWatch>,
    pub exercises: HashMap<CameraId, Staging>,
}

/// Why a revision was refused.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("not a valid edge config: {0}")]
    Payload(#[from] DecodeError),
    #[error("the config is for edge {0}, not this one")]
    OtherEdge(EdgeId),
    #[error("revision {got} is older than the one in force ({applied})")]
    Stale { got: u64, applied: u64 },
    #[error("camera {0} is not connected to this box")]
    UnknownCamera(CameraId),
    #[error("camera {camera}: {error}")]
    Detector {
        camera: CameraId,
        error: DetectError,
    },
}

/// Checks a config and builds its watches (plain logic plus detector construction, no I/O).
/// Cameras the config does not name keep what they have; kinds this box has no detector for yet
/// are skipped with a warning (the center may run a newer rule set than the box).
pub fn build(
    edge: &EdgeId,
    local: &[CameraId],
    applied: Option<u64>,
    payload: &[u8],
) -> Result<Update, Refused> {
    let config: EdgeConfig = bl_proto::decode(payload)?;
    if &config.edge_id != edge {
        return Err(Refused::OtherEdge(config.edge_id));
    }
    if let Some(applied) = applied
        && config.revision < applied
    {
        return Err(Refused::Stale {
            got: config.revision,
            applied,
        });
    }
    let mut cameras = HashMap::new();
    for camera in &config.cameras {
        if !local.contains(&camera.camera_id) {
            return Err(Refused::UnknownCamera(camera.camera_id.clone()));
        }
        let mut detectors: Vec<Box<dyn Detector>> = Vec::new();
        let mut episodes = Episodes::new();
        for rule in camera.rules.iter().filter(|r| r.enabled) {
            match rule.kind {
                ViolationKind::Rodent => {
                    let detector = RodentConfig::from_rule(rule)
                        .and_then(RodentDetector::new)
                        .map_err(|error| Refused::Detector {
                            camera: camera.camera_id.clone(),
                            error,
                        })?;
                    detectors.push(Box::new(detector));
                }
                other => {
                    tracing::warn!(camera = %camera.camera_id, kind = ?other, "no detector for this kind on this box yet; rule skipped");
                    continue;
                }
            }
            episodes.set_rules(
                rule.kind,
                EpisodeRules {
                    min_duration_ms: u64::from(rule.min_duration_secs) * 1000,
                    cooldown_ms: u64::from(rule.cooldown_secs) * 1000,
                    ..EpisodeRules::for_kind(rule.kind)
                },
            );
        }
        cameras.insert(
            camera.camera_id.clone(),
            CameraWatch {
                detectors,
                episodes,
                rolls: Some(Rolls {
                    pre_ms: i64::from(camera.pre_roll_secs) * 1000,
                    post_ms: i64::from(camera.post_roll_secs) * 1000,
                }),
            },
        );
    }
    let mut exercises = HashMap::new();
    for staged in &config.exercises {
        if !local.contains(&staged.camera_id) {
            return Err(Refused::UnknownCamera(staged.camera_id.clone()));
        }
        exercises.insert(staged.camera_id.clone(), Staging::of(staged));
    }
    Ok(Update {
        revision: config.revision,
        cameras,
        exercises,
    })
}

/// Applies each config the uplink receives: builds it, hands it to the detection worker, and
/// records the revision. Runs until `shutdown` or until the uplink closes the channel.
pub async fn run(
    edge: EdgeId,
    local: Vec<CameraId>,
    applied: AppliedRevision,
    mut payloads: watch::Receiver<Vec<u8>>,
    updates: mpsc::Sender<Update>,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = payloads.changed() => if changed.is_err() { return },
        }
        let payload = payloads.borrow_and_update().clone();
        if payload.is_empty() {
            continue; // the retained config was cleared: keep what is in force
        }
        let current = *applied.lock().expect("applied revision");
        match build(&edge, &local, current, &payload) {
            Ok(update) if Some(update.revision) == current => {} // the retained copy again
            Ok(update) => {
                let revision = update.revision;
                if updates.send(update).await.is_err() {
                    return;
                }
                *applied.lock().expect("applied revision") = Some(revision);
                tracing::info!(revision, "center config applied");
            }
            Err(reason) => {
                tracing::error!(reason = %reason, kept = ?current, "center config refused; keeping the rules in force");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(edge: &str, revision: u64, camera: &str, zone: &str) -> Vec<u8> {
        format!(
            r#"{{"type":"edgeConfig","v":1,"edgeId":"{edge}","revision":{revision},"cameras":[{{"cameraId":"{camera}","preRollSecs":5,"postRollSecs":5,"rules":[{{"kind":"rodent","enabled":true,"minDurationSecs":0,"cooldownSecs":30,"activeHours":{{"from":"22:00","to":"06:00"}},"zones":[{zone}]}},{{"kind":"noChefHat","enabled":true,"minDurationSecs":5,"cooldownSecs":60,"activeHours":null,"zones":[]}}]}}]}}"#
        )
        .into_bytes()
    }

    const FLOOR: &str =
        r#"[{"x":0.0,"y":0.5},{"x":1.0,"y":0.5},{"x":1.0,"y":1.0},{"x":0.0,"y":1.0}]"#;

    fn ids() -> (EdgeId, Vec<CameraId>) {
        (
            EdgeId::new("box-1").unwrap(),
            vec![CameraId::new("cam-1").unwrap()],
        )
    }

    #[test]
    fn a_valid_config_builds_the_rodent_detector_and_skips_kinds_without_one() {
        let (edge, local) = ids();
        let update = build(&edge, &local, None, &config("box-1", 3, "cam-1", FLOOR)).unwrap();
        assert_eq!(update.revision, 3);
        assert_eq!(update.cameras[&local[0]].detectors.len(), 1);
    }

    #[test]
    fn configs_for_another_edge_older_revisions_and_unknown_cameras_are_refused() {
        let (edge, local) = ids();
        let refused = |payload: Vec<u8>, applied| {
            build(&edge, &local, applied, &payload)
                .err()
                .unwrap()
                .to_string()
        };
        assert!(refused(config("box-2", 3, "cam-1", FLOOR), None).contains("box-2"));
        assert!(refused(config("box-1", 2, "cam-1", FLOOR), Some(3)).contains("older"));
        assert!(refused(config("box-1", 4, "cam-9", FLOOR), Some(3)).contains("cam-9"));
        assert!(refused(b"{".to_vec(), None).contains("not a valid edge config"));
    }

    #[test]
    fn a_staged_exercise_is_taken_for_a_known_camera_and_refused_for_another() {
        let (edge, local) = ids();
        let staged = |camera: &str| {
            format!(
                r#"{{"type":"edgeConfig","v":1,"edgeId":"box-1","revision":5,"cameras":[],"exercises":[{{"cameraId":"{camera}","run":"run-1","until":"2026-11-24T05:00:00.000Z"}}]}}"#
            )
            .into_bytes()
        };
        let update = build(&edge, &local, None, &staged("cam-1")).unwrap();
        assert!(update.cameras.is_empty(), "the rules in force stay");
        assert_eq!(update.exercises[&local[0]].run, "run-1");
        let e = build(&edge, &local, None, &staged("cam-9")).err().unwrap();
        assert!(e.to_string().contains("cam-9"), "{e}");
    }

    #[test]
    fn a_malformed_zone_is_refused_naming_where_it_is() {
        let (edge, local) = ids();
        let bad = r#"[{"x":0.0,"y":0.5},{"x":1.0,"y":0.5},{"x":1.0,"y":1.0}],[{"x":0.1,"y":0.1}]"#;
        let e = build(&edge, &local, None, &config("box-1", 3, "cam-1", bad))
            .err()
            .unwrap();
        assert!(
            e.to_string().contains("cameras[0].rules[0].zones[1]"),
            "{e}"
        );
    }
}
