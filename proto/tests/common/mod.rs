//! Realistic messages shared by the integration tests: a school canteen edge in Mentougou with two
//! kitchen cameras. One place, so every test speaks about the same premises.
#![allow(dead_code)] // each test binary uses a different subset

use bl_proto::command::{
    Command, CommandAction, CommandResult, Outcome, PlayMessage, Recheck, SnapshotCmd, StartLive,
    StartTalk, StopLive, StopTalk, TalkOutput, codes,
};
use bl_proto::config::{
    CameraRules, EdgeConfig, HoursRange, NormPoint, Polygon, Rule, StagedExercise,
};
use bl_proto::event::{
    CameraEvent, CameraEventKind, DetectionEvent, EdgeEvent, EpisodePhase, ModelInfo, NormBox,
    ViolationKind, WarningEvent,
};
use bl_proto::evidence::{BlobRef, EvidenceKind, EvidenceMeta, Sha256Hex};
use bl_proto::state::{CameraHealth, CameraProblem, DiskUsage, EdgeState};
use bl_proto::stream::Stream;
use bl_proto::token::MediaToken;
use bl_proto::{CameraId, EdgeId, V1};
use chrono::{DateTime, Utc};
use uuid::Uuid;

pub fn t(s: &str) -> DateTime<Utc> {
    bl_proto::time::parse(s).unwrap()
}

pub fn edge() -> EdgeId {
    "mtg-dyl-school-03".parse().unwrap()
}

pub fn cam(n: u8) -> CameraId {
    format!("mtg-dyl-school-03-cam{n}").parse().unwrap()
}

pub fn uuid(s: &str) -> Uuid {
    Uuid::parse_str(s).unwrap()
}

pub const SNAPSHOT_SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
pub const CLIP_SHA: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

pub fn edge_state() -> EdgeState {
    EdgeState {
        v: V1,
        edge_id: edge(),
        online: true,
        agent_version: "0.1.0".into(),
        at: t("2025-03-01T08:15:30.123Z"),
        cameras: vec![
            CameraHealth {
                camera_id: cam(1),
                online: true,
                fps: 12.5,
                bitrate_kbps: 2048,
                last_frame_at: Some(t("2025-03-01T08:15:30.040Z")),
                problem: None,
            },
            CameraHealth {
                camera_id: cam(2),
                online: false,
                fps: 0.0,
                bitrate_kbps: 0,
                last_frame_at: None,
                problem: Some(CameraProblem::AuthFailed),
            },
        ],
        disk: DiskUsage {
            total_bytes: 256_000_000_000,
            free_bytes: 118_500_000_000,
        },
        outbox_depth: 3,
        config_revision: Some(42),
    }
}

pub fn snapshot_ref() -> BlobRef {
    BlobRef {
        sha256: Sha256Hex::new(SNAPSHOT_SHA).unwrap(),
        size: 184_321,
        content_type: "image/jpeg".into(),
        from: None,
        to: None,
    }
}

pub fn clip_ref() -> BlobRef {
    BlobRef {
        sha256: Sha256Hex::new(CLIP_SHA).unwrap(),
        size: 7_340_032,
        content_type: "video/mp4".into(),
        from: Some(t("2025-03-01T08:14:50.000Z")),
        to: Some(t("2025-03-01T08:16:10.500Z")),
    }
}

pub fn detection(phase: EpisodePhase) -> DetectionEvent {
    DetectionEvent {
        v: V1,
        event_id: uuid("01955a3c-6f1e-7b2a-9c4d-1e2f3a4b5c6d"),
        episode_id: uuid("01955a3c-5a00-7000-8000-00000000beef"),
        phase,
        edge_id: edge(),
        camera_id: cam(1),
        kind: ViolationKind::NoChefHat,
        at: t("2025-03-01T08:15:30.123Z"),
        confidence: 0.87,
        boxes: vec![NormBox {
            x: 0.412,
            y: 0.18,
            w: 0.09,
            h: 0.14,
            label: Some("head".into()),
            confidence: Some(0.87),
        }],
        snapshot: Some(snapshot_ref()),
        clip: (phase == EpisodePhase::End).then(clip_ref),
        model: ModelInfo {
            name: "kitchen-ppe".into(),
            version: "2025.02.1".into(),
        },
        exercise: None,
    }
}

pub fn camera_event(kind: CameraEventKind) -> CameraEvent {
    CameraEvent {
        v: V1,
        event_id: uuid("01955a3d-0000-7c00-8a00-0000000000c1"),
        edge_id: edge(),
        camera_id: cam(2),
        at: t("2025-03-01T08:20:00.000Z"),
        kind,
        detail: Some("rtsp: 401 Unauthorized".into()),
        exercise: None,
    }
}

/// Every event variant and phase/kind worth telling apart.
pub fn all_events() -> Vec<EdgeEvent> {
    let mut v: Vec<EdgeEvent> = [EpisodePhase::Start, EpisodePhase::Update, EpisodePhase::End]
        .into_iter()
        .map(|p| EdgeEvent::Detection(detection(p)))
        .collect();
    for kind in ViolationKind::ALL {
        let mut d = detection(EpisodePhase::Start);
        d.kind = kind;
        d.exercise = Some("drill-2025-03-school-fire".into());
        if kind == ViolationKind::PersonAbsent {
            d.boxes.clear();
        }
        v.push(EdgeEvent::Detection(d));
    }
    for kind in [
        CameraEventKind::Offline,
        CameraEventKind::Online,
        CameraEventKind::Frozen,
        CameraEventKind::Covered,
        CameraEventKind::SceneChanged,
    ] {
        v.push(EdgeEvent::Camera(camera_event(kind)));
    }
    v.push(EdgeEvent::Warning(warning_played()));
    v.push(EdgeEvent::Warning(warning_failed()));
    v
}

/// The canteen's hat warning, played through the camera's speaker.
pub fn warning_played() -> WarningEvent {
    WarningEvent {
        v: V1,
        event_id: uuid("01955a3d-0000-7c00-8a00-0000000000d1"),
        episode_id: uuid("01955a3c-5a00-7000-8000-00000000beef"),
        edge_id: edge(),
        camera_id: cam(1),
        kind: ViolationKind::NoChefHat,
        at: t("2025-03-01T08:15:36.500Z"),
        message: "wear-hat-zh".into(),
        output: Some(TalkOutput::Backchannel),
        outcome: Outcome::Ok { detail: None },
        exercise: None,
    }
}

/// The same warning at a camera without a speaker on a box without one.
pub fn warning_failed() -> WarningEvent {
    WarningEvent {
        event_id: uuid("01955a3d-0000-7c00-8a00-0000000000d2"),
        camera_id: cam(2),
        output: None,
        outcome: Outcome::Error {
            code: codes::UNSUPPORTED.into(),
            message: "camera has no speaker (no backchannel_url) and the box has none".into(),
        },
        ..warning_played()
    }
}

pub const TOKEN: &str = "eyJzdWIiOiJ1c2VyLTEifQ.c2lnbmF0dXJlLWJ5dGVzLWhlcmU";

pub fn command(action: CommandAction) -> Command {
    Command {
        v: V1,
        cmd_id: uuid("01955a3e-1111-7222-8333-444455556666"),
        issued_at: t("2025-03-01T08:16:00.000Z"),
        expires_at: Some(t("2025-03-01T08:16:30.000Z")),
        action,
    }
}

/// One command of every action.
pub fn all_commands() -> Vec<Command> {
    let actions = vec![
        CommandAction::StartLive(StartLive {
            camera_id: cam(1),
            stream: Stream::Sub,
            push_url: "rtsp://gw-1.bl.internal:8554/live/mtg-dyl-school-03-cam1/sub".into(),
            token: MediaToken::new(TOKEN),
        }),
        CommandAction::StopLive(StopLive {
            camera_id: cam(1),
            stream: Stream::Main,
        }),
        CommandAction::StartTalk(StartTalk {
            camera_id: cam(1),
            pull_url: "rtsp://gw-1.bl.internal:8554/talk/01955a3e".into(),
            token: MediaToken::new(TOKEN),
            output: TalkOutput::Backchannel,
        }),
        CommandAction::StopTalk(StopTalk { camera_id: cam(1) }),
        CommandAction::Snapshot(SnapshotCmd { camera_id: cam(2) }),
        CommandAction::Recheck(Recheck {
            camera_id: cam(1),
            kind: ViolationKind::NoChefHat,
            for_secs: 600,
        }),
        CommandAction::PlayMessage(PlayMessage {
            camera_id: cam(1),
            message_id: "wear-hat-zh".into(),
            exercise: None,
        }),
    ];
    let mut cmds: Vec<Command> = actions.into_iter().map(command).collect();
    cmds[0].expires_at = None;
    cmds
}

pub fn result_ok() -> CommandResult {
    CommandResult {
        v: V1,
        cmd_id: uuid("01955a3e-1111-7222-8333-444455556666"),
        edge_id: edge(),
        at: t("2025-03-01T08:16:01.250Z"),
        outcome: Outcome::Ok { detail: None },
    }
}

pub fn result_error() -> CommandResult {
    CommandResult {
        outcome: Outcome::Error {
            code: codes::CAMERA_OFFLINE.into(),
            message: "camera mtg-dyl-school-03-cam2 has sent no frame for 95 s".into(),
        },
        ..result_ok()
    }
}

pub fn square(x: f32, y: f32, side: f32) -> Polygon {
    Polygon(vec![
        NormPoint { x, y },
        NormPoint { x: x + side, y },
        NormPoint {
            x: x + side,
            y: y + side,
        },
        NormPoint { x, y: y + side },
    ])
}

pub fn edge_config() -> EdgeConfig {
    EdgeConfig {
        v: V1,
        edge_id: edge(),
        revision: 42,
        timezone: "Asia/Shanghai".into(),
        cameras: vec![
            CameraRules {
                camera_id: cam(1),
                pre_roll_secs: 10,
                post_roll_secs: 20,
                rules: vec![
                    Rule {
                        kind: ViolationKind::NoChefHat,
                        enabled: true,
                        min_duration_secs: 5,
                        cooldown_secs: 300,
                        active_hours: None,
                        zones: vec![square(0.1, 0.2, 0.5)],
                    },
                    Rule {
                        kind: ViolationKind::Rodent,
                        enabled: true,
                        min_duration_secs: 1,
                        cooldown_secs: 60,
                        active_hours: Some(HoursRange {
                            from: "22:00".parse().unwrap(),
                            to: "06:00".parse().unwrap(),
                        }),
                        zones: vec![],
                    },
                ],
            },
            CameraRules {
                camera_id: cam(2),
                pre_roll_secs: 5,
                post_roll_secs: 10,
                rules: vec![Rule {
                    kind: ViolationKind::PersonAbsent,
                    enabled: false,
                    min_duration_secs: 120,
                    cooldown_secs: 900,
                    active_hours: Some(HoursRange {
                        from: "08:00".parse().unwrap(),
                        to: "20:30".parse().unwrap(),
                    }),
                    zones: vec![],
                }],
            },
        ],
        exercises: vec![StagedExercise {
            camera_id: cam(1),
            run: "0195a1b2-0000-7000-8000-00000000d811".into(),
            until: "2025-03-01T22:40:00.000Z".parse().unwrap(),
        }],
        warnings: warning_set(),
    }
}

/// The center's warnings: a recorded message for school canteens' no-hat rule during opening
/// hours and a text for rodents.
pub fn warning_set() -> bl_proto::voice::WarningSet {
    use bl_proto::voice::{VoiceContent, VoiceMessage, WarningRule, WarningSet};
    WarningSet {
        messages: vec![
            VoiceMessage {
                id: "wear-hat-zh".into(),
                content: VoiceContent::Audio {
                    sha256: Sha256Hex::new(SNAPSHOT_SHA).unwrap(),
                    size: 64_044,
                },
            },
            VoiceMessage {
                id: "rodent-zh".into(),
                content: VoiceContent::Text {
                    text: "发现鼠迹，请立即处理。".into(),
                },
            },
        ],
        rules: vec![
            WarningRule {
                cameras: vec![cam(1), cam(2)],
                kind: ViolationKind::NoChefHat,
                message: "wear-hat-zh".into(),
                active_hours: Some(HoursRange {
                    from: "06:00".parse().unwrap(),
                    to: "20:00".parse().unwrap(),
                }),
            },
            WarningRule {
                cameras: vec![cam(1)],
                kind: ViolationKind::Rodent,
                message: "rodent-zh".into(),
                active_hours: None,
            },
        ],
    }
}

pub fn evidence_meta() -> EvidenceMeta {
    EvidenceMeta {
        sha256: Sha256Hex::new(CLIP_SHA).unwrap(),
        size: 7_340_032,
        edge_id: edge(),
        camera_id: cam(1),
        kind: EvidenceKind::Clip,
        content_type: "video/mp4".into(),
        captured_at: t("2025-03-01T08:14:50.000Z"),
    }
}
