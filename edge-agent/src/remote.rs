//! The center's desired configuration (the retained `bl/v1/edge/{edge}/config`): which rules run
//! on which camera, drill stagings and the center's voice warnings. A new revision is checked as
//! a whole; if any part is wrong the agent keeps the rules it has and says why, so a typo at the
//! center never switches a kitchen's detection off. A revision whose voice recordings cannot be
//! fetched and checked yet is not put in force (retried with backoff until it can, or until a
//! newer revision comes), so the previous set stays whole.

use crate::detect::person::HatMaskDetector;
use crate::detect::{DetectError, Detector, RodentConfig, RodentDetector};
use crate::episode::{EpisodeRules, Episodes};
use crate::evidence::Rolls;
use crate::exercise::Staging;
use crate::talk::Talk;
use crate::talk::center::{self, Fetcher};
use crate::watch::CameraWatch;
use bl_proto::config::EdgeConfig;
use bl_proto::event::ViolationKind;
use bl_proto::voice::WarningSet;
use bl_proto::{CameraId, DecodeError, EdgeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, mpsc, watch};
use tokio_util::sync::CancellationToken;

/// The revision in force, for the retained state. It is set only once every detection worker
/// applies the revision (the center waits for it before playing a drill scene), and the uplink
/// is told at once so the state reports it without waiting for the next interval.
#[derive(Debug, Clone, Default)]
pub struct AppliedRevision {
    revision: Arc<Mutex<Option<u64>>>,
    changed: Arc<Notify>,
}

impl AppliedRevision {
    pub fn get(&self) -> Option<u64> {
        *self.revision.lock().expect("applied revision")
    }

    pub fn set(&self, revision: u64) {
        *self.revision.lock().expect("applied revision") = Some(revision);
        self.changed.notify_one();
    }

    /// Resolves after the next [`set`](Self::set) (or at once if one came since the last call).
    pub async fn changed(&self) {
        self.changed.notified().await
    }
}

/// A revision's camera watches, ready to replace the old ones, and its drill stagings, which
/// replace all the earlier ones.
pub struct Update {
    pub revision: u64,
    pub cameras: HashMap<CameraId, CameraWatch>,
    pub exercises: HashMap<CameraId, Staging>,
    /// The center's voice warnings (put in force by [`run`] through [`Talk::apply_center`]).
    pub warnings: WarningSet,
    /// Dropped by each worker once it applied its part (see [`InForce`]).
    pub in_force: InForce,
}

/// A token carried by an update and each of its parts: when the last one is dropped, every
/// worker has applied the revision. A worker that is gone drops its part too, so waiting on
/// it never hangs.
#[derive(Debug, Clone)]
pub struct InForce {
    _held: mpsc::Sender<()>,
}

impl InForce {
    /// A token and the receiver whose `recv()` answers `None` once all its copies are dropped.
    pub fn new() -> (InForce, mpsc::Receiver<()>) {
        let (tx, rx) = mpsc::channel(1);
        (InForce { _held: tx }, rx)
    }
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
        let (mut hat, mut mask) = (false, false);
        for rule in camera.rules.iter().filter(|r| r.enabled) {
            match rule.kind {
                // One person detector serves both rules; built after the loop.
                ViolationKind::NoChefHat => hat = true,
                ViolationKind::NoMask => mask = true,
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
        if hat || mask {
            let detector =
                HatMaskDetector::for_rules(hat, mask).map_err(|error| Refused::Detector {
                    camera: camera.camera_id.clone(),
                    error,
                })?;
            detectors.push(Box::new(detector));
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
        warnings: config.warnings,
        in_force: InForce::new().0, // nobody waits on it; [`run`] gives it one it waits on
    })
}

/// What puts the center's voice warnings in force: the box's talk-down and, with `[center]`, the
/// fetcher of their recordings.
#[derive(Clone)]
pub struct CenterVoice {
    pub talk: Talk,
    pub fetcher: Option<Fetcher>,
}

/// First and longest wait before a revision whose recordings could not be fetched is tried again.
const RETRY_FIRST: std::time::Duration = std::time::Duration::from_secs(2);
const RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(300);

/// Applies each config the uplink receives: builds it, fetches its voice recordings, hands it to
/// the detection workers and the talk-down, and records the revision once all applied it. Runs
/// until `shutdown` or until the uplink closes the channel.
pub async fn run(
    edge: EdgeId,
    local: Vec<CameraId>,
    applied: AppliedRevision,
    mut payloads: watch::Receiver<Vec<u8>>,
    updates: mpsc::Sender<Update>,
    voice: Option<CenterVoice>,
    shutdown: CancellationToken,
) {
    // Set while a revision waits for its recordings: the wait before trying it again.
    let mut retry: Option<std::time::Duration> = None;
    loop {
        match retry {
            None => tokio::select! {
                _ = shutdown.cancelled() => return,
                changed = payloads.changed() => if changed.is_err() { return },
            },
            Some(wait) => tokio::select! {
                _ = shutdown.cancelled() => return,
                changed = payloads.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep(wait) => {}
            },
        }
        let payload = payloads.borrow_and_update().clone();
        if payload.is_empty() {
            retry = None;
            continue; // the retained config was cleared: keep what is in force
        }
        let current = applied.get();
        match build(&edge, &local, current, &payload) {
            Ok(update) if Some(update.revision) == current => retry = None, // the retained copy again
            Ok(mut update) => {
                let revision = update.revision;
                if let Some(voice) = &voice {
                    let prepared = tokio::select! {
                        _ = shutdown.cancelled() => return,
                        prepared = center::prepare(&update.warnings, voice.fetcher.as_ref()) => prepared,
                    };
                    match prepared {
                        Ok(ready) => voice.talk.apply_center(ready).await,
                        Err(e) => {
                            let wait = retry.map_or(RETRY_FIRST, |w| (w * 2).min(RETRY_MAX));
                            tracing::error!(revision, reason = %e, kept = ?current, retry_in = ?wait, "center config not ready: its voice warnings are incomplete; keeping the config in force");
                            retry = Some(wait);
                            continue;
                        }
                    }
                }
                retry = None;
                let (in_force, mut all_applied) = InForce::new();
                update.in_force = in_force;
                if updates.send(update).await.is_err() {
                    return;
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = all_applied.recv() => {}
                }
                applied.set(revision);
                tracing::info!(revision, "center config applied");
            }
            Err(reason) => {
                retry = None;
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
            r#"{{"type":"edgeConfig","v":1,"edgeId":"{edge}","revision":{revision},"cameras":[{{"cameraId":"{camera}","preRollSecs":5,"postRollSecs":5,"rules":[{{"kind":"rodent","enabled":true,"minDurationSecs":0,"cooldownSecs":30,"activeHours":{{"from":"22:00","to":"06:00"}},"zones":[{zone}]}},{{"kind":"smoking","enabled":true,"minDurationSecs":5,"cooldownSecs":60,"activeHours":null,"zones":[]}}]}}]}}"#
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
    fn no_chef_hat_and_no_mask_share_one_person_detector_on_colour_frames() {
        let (edge, local) = ids();
        let payload = String::from_utf8(config("box-1", 3, "cam-1", FLOOR))
            .unwrap()
            .replace(
                r#"{"kind":"smoking""#,
                r#"{"kind":"noMask","enabled":true,"minDurationSecs":5,"cooldownSecs":60},{"kind":"noChefHat""#,
            );
        match build(&edge, &local, None, payload.as_bytes()) {
            Ok(update) => {
                let d = &update.cameras[&local[0]].detectors;
                assert_eq!(d.len(), 2, "rodent + one hat/mask detector");
                assert_eq!(
                    d.iter().map(|d| d.wants_colour()).collect::<Vec<_>>(),
                    vec![false, true]
                );
            }
            // Without the installed model the revision is refused, naming what to do.
            Err(e) => assert!(e.to_string().contains("install-models.sh"), "{e}"),
        }
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
