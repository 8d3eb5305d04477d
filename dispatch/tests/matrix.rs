//! The authorisation matrix, generated from the policy table: every role × every route × an object
//! of the caller's own town, of another town, and a missing one, against the real server. Each
//! caller is scoped to 斋堂镇 (zhaitang); "other" is 清水镇 (qingshui). 斋堂镇's incidents are routed
//! to its team on duty, which the field user belongs to; a field user of another team of the same
//! town is refused on every team-scoped route.

mod common;

use common::*;
use dispatch::auth::Role;
use dispatch::auth::policy::{Access, POLICY, Rule, ScopeRule};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Target {
    Own,
    Other,
    Missing,
}

const OWN: &str = "zhaitang";
/// The service token of the matrix's one gateway node, gw-1.
const SERVICE_TOKEN: &str = "matrix-gw-1-service-token-0123456789abcdef";
const OTHER: &str = "qingshui";

fn town(t: Target) -> &'static str {
    match t {
        Target::Own => OWN,
        Target::Other => OTHER,
        Target::Missing => "nowhere",
    }
}

/// The request that exercises `rule` for `target`, and the status an allowed caller gets for an
/// object of its own town. Panics for a route without a fixture: add one when adding a route.
fn fixture(
    rule: &Rule,
    target: Target,
    ids: &Ids,
    n: usize,
    role: Role,
) -> (Option<(&'static str, String)>, String, StatusCode) {
    let json_body = |v: serde_json::Value| Some(("application/json", v.to_string()));
    match (rule.method, rule.path) {
        ("GET", "/healthz") => (None, rule.path.into(), StatusCode::OK),
        ("POST", "/api/session") => (None, rule.path.into(), StatusCode::OK),
        ("GET", "/api/session") => (None, rule.path.into(), StatusCode::OK),
        ("DELETE", "/api/session") => (None, rule.path.into(), StatusCode::NO_CONTENT),
        ("POST", "/api/session/totp") => (json_body(json!({})), rule.path.into(), StatusCode::OK),
        // an allowed caller gets past authorisation and fails on the wrong code
        ("PUT", "/api/session/totp") => (
            json_body(json!({"code": "000000"})),
            rule.path.into(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "GET",
            "/api/towns" | "/api/premises" | "/api/cameras" | "/api/edges" | "/api/teams"
            | "/api/users",
        )
        | ("GET", "/api/notify/channels") => (None, rule.path.into(), StatusCode::OK),
        ("POST", "/api/premises") => (
            json_body(premises_body(town(target), &format!("矩阵餐馆{n}"))),
            rule.path.into(),
            StatusCode::CREATED,
        ),
        ("GET", "/api/premises/{id}") => {
            let id = match target {
                Target::Own => ids.own_premises.clone(),
                Target::Other => ids.other_premises.clone(),
                Target::Missing => uuid::Uuid::now_v7().to_string(),
            };
            (None, format!("/api/premises/{id}"), StatusCode::OK)
        }
        ("POST", "/api/premises/import") => {
            let csv = format!(
                "name,licence_no,kind,address,town,risk_grade,person_in_charge,phone\n\
                 矩阵药店{n},JYMATRIX{n},pharmacy,北京市门头沟区1号,{},A,李强,13800000002\n",
                town(target)
            );
            (
                Some(("text/csv", csv)),
                rule.path.into(),
                StatusCode::CREATED,
            )
        }
        ("POST", "/api/users") => {
            let body = json!({"username": format!("made-{n}"), "displayName": "新用户", "role": "field",
                              "scopeTowns": [town(target)], "password": USER_PASSWORD});
            (json_body(body), rule.path.into(), StatusCode::CREATED)
        }
        // cameras of both towns can talk, so an allowed caller gets a token for its own one (a
        // field user may watch it: its premises has an open incident of the field user's team)
        ("POST", "/api/cameras/{id}/live" | "/api/cameras/{id}/talk") => {
            let id = match target {
                Target::Own => "cam-own",
                Target::Other => "cam-other",
                Target::Missing => "cam-missing",
            };
            let action = rule.path.rsplit('/').next().unwrap();
            (
                json_body(json!({})),
                format!("/api/cameras/{id}/{action}"),
                StatusCode::OK,
            )
        }
        // releasing a floor one does not hold is a no-op, still 204
        ("DELETE", "/api/cameras/{id}/talk") => (
            None,
            format!("/api/cameras/{}/talk", camera(target)),
            StatusCode::NO_CONTENT,
        ),
        // group broadcast: to the own camera (a pulled one: it is reported noSpeaker, its floor
        // stays free for talk); a town outside the scope, or none, is refused
        ("POST", "/api/broadcasts") => {
            let body = match target {
                Target::Own => json!({"cameras": ["cam-own"]}),
                t => json!({"town": town(t)}),
            };
            (json_body(body), rule.path.into(), StatusCode::CREATED)
        }
        ("GET", "/api/broadcasts/{id}") => (
            None,
            format!("/api/broadcasts/{}", broadcast(target, ids)),
            StatusCode::OK,
        ),
        ("GET", "/api/broadcasts") => (None, rule.path.into(), StatusCode::OK),
        ("POST", "/api/broadcasts/{id}/voice-recordings") => (
            json_body(json!({})),
            format!(
                "/api/broadcasts/{}/voice-recordings",
                broadcast(target, ids)
            ),
            StatusCode::OK,
        ),
        // the admin's broadcast: only a supervisor may end another's
        ("DELETE", "/api/broadcasts/{id}") => (
            None,
            format!("/api/broadcasts/{}", broadcast(target, ids)),
            if role == Role::Supervisor {
                StatusCode::NO_CONTENT
            } else {
                StatusCode::FORBIDDEN
            },
        ),
        // consult rooms: rows of the own and the other incident made in setup (a second pair for
        // closing, so that later roles still join the first); the floor is taken on each role's
        // own dispatched incident, so no role finds it held by another
        ("POST", "/api/incidents/{id}/rooms") => (
            None,
            format!("/api/incidents/{}/rooms", incident(target, ids)),
            StatusCode::CREATED,
        ),
        ("GET", "/api/incidents/{id}/rooms") => (
            None,
            format!("/api/incidents/{}/rooms", incident(target, ids)),
            StatusCode::OK,
        ),
        ("POST", "/api/rooms/{id}/join") => (
            None,
            format!("/api/rooms/{}/join", room(target, "")),
            StatusCode::OK,
        ),
        ("POST", "/api/rooms/{id}/invites") => (
            json_body(json!({"name": "区疾控王专家", "validMins": 60})),
            format!("/api/rooms/{}/invites", room(target, "")),
            StatusCode::CREATED,
        ),
        ("PUT", "/api/rooms/{id}/share") => (
            json_body(json!({"cameraId": null})),
            format!("/api/rooms/{}/share", room(target, "")),
            StatusCode::OK,
        ),
        // nothing plays in the room: the handler says so, past the policy
        ("POST", "/api/rooms/{id}/clip") => (
            json_body(json!({"step": "stop"})),
            format!("/api/rooms/{}/clip", room(target, "")),
            StatusCode::CONFLICT,
        ),
        ("POST", "/api/rooms/{id}/recording") => (
            json_body(json!({"record": false})),
            format!("/api/rooms/{}/recording", room(target, "")),
            StatusCode::OK,
        ),
        ("DELETE", "/api/rooms/{id}") => (
            None,
            format!("/api/rooms/{}", room(target, "-close")),
            StatusCode::NO_CONTENT,
        ),
        // public: a forged invite is refused by the handler, for everyone alike
        ("POST", "/api/room-invites/join") => (
            json_body(json!({"invite": "eyJyb29tIjoieCJ9.AAAA"})),
            rule.path.into(),
            StatusCode::UNAUTHORIZED,
        ),
        // public: an unsigned fetch is refused by the handler, for everyone alike
        ("GET", "/api/edge-voice/{sha256}") => (
            None,
            format!("/api/edge-voice/{}", "ab".repeat(32)),
            StatusCode::UNAUTHORIZED,
        ),
        ("GET", "/rooms/{id}") => (
            None,
            format!("/rooms/{}", room(target, "")),
            StatusCode::SERVICE_UNAVAILABLE,
        ),
        ("GET", "/join/{invite}") => (
            None,
            "/join/eyJyb29tIjoieCJ9.AAAA".into(),
            StatusCode::SERVICE_UNAVAILABLE,
        ),
        ("POST", "/api/incidents/{id}/voice" | "/api/incidents/{id}/voice/floor") => {
            let id = match target {
                Target::Own => {
                    ids.dispatched[Role::ALL.iter().position(|r| *r == role).unwrap()].clone()
                }
                _ => incident(target, ids),
            };
            (None, rule.path.replace("{id}", &id), StatusCode::OK)
        }
        ("DELETE", "/api/incidents/{id}/voice/floor") => (
            None,
            format!("/api/incidents/{}/voice/floor", incident(target, ids)),
            StatusCode::NO_CONTENT,
        ),
        ("GET", "/api/incidents") => (None, rule.path.into(), StatusCode::OK),
        ("POST", "/api/incidents") => {
            let body = json!({"source": "manual", "townId": town(target), "address": format!("北京市门头沟区矩阵路{n}号"),
                              "kind": "complaint", "description": "矩阵测试"});
            (json_body(body), rule.path.into(), StatusCode::CREATED)
        }
        ("GET", "/api/incidents/{id}") => {
            let id = match target {
                Target::Own => ids.own_incident.clone(),
                Target::Other => ids.other_incident.clone(),
                Target::Missing => uuid::Uuid::now_v7().to_string(),
            };
            (None, format!("/api/incidents/{id}"), StatusCode::OK)
        }
        // each role acknowledges a dispatched incident of its own town, once
        ("POST", "/api/incidents/{id}/transition") => {
            let id = match target {
                Target::Own => {
                    ids.dispatched[Role::ALL.iter().position(|r| *r == role).unwrap()].clone()
                }
                Target::Other => ids.other_incident.clone(),
                Target::Missing => uuid::Uuid::now_v7().to_string(),
            };
            (
                json_body(json!({"to": "acknowledged"})),
                format!("/api/incidents/{id}/transition"),
                StatusCode::OK,
            )
        }
        // a box for a premises of the target town ("missing" = a town the caller lacks too)
        ("POST", "/api/edges") => {
            let premises = match target {
                Target::Own => &ids.own_premises,
                Target::Other | Target::Missing => &ids.other_premises,
            };
            let body = json!({"id": format!("m-edge-{n}"), "premisesId": premises});
            (json_body(body), rule.path.into(), StatusCode::CREATED)
        }
        ("POST", "/api/edges/{id}/enrolment-code") => {
            let id = match target {
                Target::Own => "edge-own",
                Target::Other => "edge-other",
                Target::Missing => "edge-missing",
            };
            (
                json_body(json!({})),
                format!("/api/edges/{id}/enrolment-code"),
                StatusCode::OK,
            )
        }
        // the matrix's dispatch has no [enrolment]: everyone reaches the handler and hears so
        ("POST", "/api/enrol") => {
            let body = json!({"edgeId": "edge-own", "code": "x", "publicKey": "y"});
            (
                json_body(body),
                rule.path.into(),
                StatusCode::SERVICE_UNAVAILABLE,
            )
        }
        ("GET", "/api/audit") => (None, rule.path.into(), StatusCode::OK),
        // the only gateway, gw-1, owns every camera
        ("GET", "/internal/cameras/{id}/source") => {
            let id = match target {
                Target::Own => "cam-own",
                Target::Other => "cam-other",
                Target::Missing => "cam-missing",
            };
            let ok = match target {
                Target::Missing => StatusCode::NOT_FOUND,
                _ => StatusCode::OK,
            };
            (None, format!("/internal/cameras/{id}/source"), ok)
        }
        // edge-own is enrolled (has a key), edge-other is not
        ("GET", "/internal/edges/{id}/key") => {
            let (id, ok) = match target {
                Target::Own => ("edge-own", StatusCode::OK),
                Target::Other => ("edge-other", StatusCode::NOT_FOUND),
                Target::Missing => ("edge-missing", StatusCode::NOT_FOUND),
            };
            (None, format!("/internal/edges/{id}/key"), ok)
        }
        // the matrix's cameras are pulled, so the owning gateway is told `not_pushed`
        // (tests/live_push.rs drives an edge camera through the broker)
        ("POST", "/internal/cameras/{id}/live-start" | "/internal/cameras/{id}/live-stop") => {
            let id = match target {
                Target::Own => "cam-own",
                Target::Other => "cam-other",
                Target::Missing => "cam-missing",
            };
            let ok = match target {
                Target::Missing => StatusCode::NOT_FOUND,
                _ => StatusCode::CONFLICT,
            };
            let action = rule.path.rsplit('/').next().unwrap_or_default();
            let body =
                json!({"stream": "sub", "pushUrl": format!("rtsp://gw-1.test:8554/push/{id}/sub")});
            (
                json_body(body),
                format!("/internal/cameras/{id}/{action}"),
                ok,
            )
        }
        // the same for talk: a pulled camera has no edge box to play the voice (`no_edge`)
        ("POST", "/internal/cameras/{id}/talk-start" | "/internal/cameras/{id}/talk-stop") => {
            let id = camera(target);
            let ok = match target {
                Target::Missing => StatusCode::NOT_FOUND,
                _ => StatusCode::CONFLICT,
            };
            let action = rule.path.rsplit('/').next().unwrap_or_default();
            let body = json!({"pullUrl": format!("rtsp://gw-1.test:8554/talk/{id}")});
            (
                json_body(body),
                format!("/internal/cameras/{id}/{action}"),
                ok,
            )
        }
        ("POST", "/api/incidents/{id}/health-report") => {
            let id = match target {
                Target::Own => ids.own_incident.clone(),
                Target::Other => ids.other_incident.clone(),
                Target::Missing => uuid::Uuid::now_v7().to_string(),
            };
            (
                json_body(json!({"note": "电话报告区卫健委"})),
                format!("/api/incidents/{id}/health-report"),
                StatusCode::CREATED,
            )
        }
        ("GET", "/api/field/incidents") => (None, rule.path.into(), StatusCode::OK),
        ("POST", "/api/incidents/{id}/notes") => (
            json_body(json!({"text": format!("矩阵备注{n}")})),
            format!("/api/incidents/{}/notes", incident(target, ids)),
            StatusCode::CREATED,
        ),
        // an allowed caller gets past authorisation and fails on the bytes, which are no PNG
        ("POST", "/api/incidents/{id}/photos") => (
            Some(("image/png", "not a png".into())),
            format!("/api/incidents/{}/photos", incident(target, ids)),
            StatusCode::BAD_REQUEST,
        ),
        ("GET", "/api/photos/{sha256}") => {
            let sha = match target {
                Target::Own => ids.own_photo.clone(),
                Target::Other => ids.other_photo.clone(),
                Target::Missing => "0".repeat(64),
            };
            (None, format!("/api/photos/{sha}"), StatusCode::OK)
        }
        // the own incident is new, so an allowed caller is told a re-check cannot resolve it yet
        ("POST", "/api/incidents/{id}/recheck") => (
            json_body(json!({"forSecs": 60})),
            format!("/api/incidents/{}/recheck", incident(target, ids)),
            StatusCode::CONFLICT,
        ),
        // talk and broadcast recordings: each call reports a new blob (gw-1 owns every camera);
        // the own incident has none, so no token is needed to list them
        ("POST", "/internal/voice-recordings") => {
            let ok = match target {
                Target::Missing => StatusCode::NOT_FOUND,
                _ => StatusCode::CREATED,
            };
            let body = json!({"v": 1, "sha256": format!("{n:064x}"), "size": 10,
                "contentType": "audio/webm", "kind": "talk", "talker": "matrix",
                "cameras": [camera(target)], "broadcast": null,
                "startedAt": "2026-11-24T08:00:00Z", "endedAt": "2026-11-24T08:00:05Z",
                "directions": ["center"], "premisesNote": "the camera has no audio"});
            (json_body(body), rule.path.into(), ok)
        }
        ("POST", "/api/incidents/{id}/voice-recordings") => (
            None,
            format!("/api/incidents/{}/voice-recordings", incident(target, ids)),
            StatusCode::OK,
        ),
        // the own incident has no edge events: no evidence, so no token is needed
        ("POST", "/api/incidents/{id}/evidence") => (
            None,
            format!("/api/incidents/{}/evidence", incident(target, ids)),
            StatusCode::OK,
        ),
        // a plain GET: an allowed caller gets past authorisation and is told it is no handshake
        // (tests/ws.rs covers the handshake itself)
        ("GET", "/api/ws") => (None, rule.path.into(), StatusCode::BAD_REQUEST),
        // the web files: the tests' working directory has no web/dist, so pages say it is not
        // built and files are missing (tests/web.rs serves a real directory)
        ("GET", "/" | "/field") => (None, rule.path.into(), StatusCode::SERVICE_UNAVAILABLE),
        ("GET", "/incidents/{id}") => (
            None,
            format!("/incidents/{}", incident(target, ids)),
            StatusCode::SERVICE_UNAVAILABLE,
        ),
        ("GET", "/assets/{*file}") => (None, "/assets/index.js".into(), StatusCode::NOT_FOUND),
        ("GET", "/{file}") => (None, "/field.webmanifest".into(), StatusCode::NOT_FOUND),
        ("GET", "/api/openapi.json") => (None, rule.path.into(), StatusCode::OK),
        // the dashboard's statistics: counted within the caller's towns, whatever they are
        ("GET", "/api/stats/incidents" | "/api/stats/incidents.csv") => {
            (None, rule.path.into(), StatusCode::OK)
        }
        ("GET", "/api/walls/{id}") => (None, "/api/walls/matrix".into(), StatusCode::OK),
        // a layout naming a camera of the target town ("missing" = a town the caller lacks too)
        ("PUT", "/api/walls/{id}") => {
            let camera = match target {
                Target::Own => "cam-own",
                Target::Other | Target::Missing => "cam-other",
            };
            (
                json_body(json!({"tiles": [camera, null, null, null]})),
                "/api/walls/matrix".into(),
                StatusCode::OK,
            )
        }
        // the admin screens' writes
        ("POST", "/api/cameras") => {
            let premises = match target {
                Target::Own => &ids.own_premises,
                Target::Other | Target::Missing => &ids.other_premises,
            };
            let body = json!({"id": format!("m-cam-{n}"), "premisesId": premises, "name": "矩阵摄像机",
                              "source": "pull", "mainStream": "rtsp://10.0.0.9/main"});
            (json_body(body), rule.path.into(), StatusCode::CREATED)
        }
        // the own camera stays as it was (live and talk run on it for later roles)
        ("PUT", "/api/cameras/{id}") => {
            let id = camera(target);
            let body = json!({"premisesId": ids.own_premises, "name": "cam-own", "source": "pull",
                              "mainStream": "rtsp://10.0.0.5/main", "subStream": "rtsp://10.0.0.5/sub", "talk": true});
            (
                json_body(body),
                format!("/api/cameras/{id}"),
                StatusCode::OK,
            )
        }
        // a spare camera of the own town, so that live and talk keep theirs
        ("DELETE", "/api/cameras/{id}") => {
            let id = match target {
                Target::Own => "cam-spare",
                t => camera(t),
            };
            (None, format!("/api/cameras/{id}"), StatusCode::NO_CONTENT)
        }
        ("PUT", "/api/users/{id}") => {
            let id = match target {
                Target::Own => ids.own_user.clone(),
                Target::Other => ids.other_user.clone(),
                Target::Missing => uuid::Uuid::now_v7().to_string(),
            };
            let body = json!({"displayName": "矩阵用户", "role": "operator", "scopeTowns": [OWN]});
            (json_body(body), format!("/api/users/{id}"), StatusCode::OK)
        }
        ("POST", "/api/teams") => (
            json_body(json!({"townId": town(target), "name": format!("矩阵组{n}")})),
            rule.path.into(),
            StatusCode::CREATED,
        ),
        // the own team keeps its name and its round-the-clock shift
        ("PUT", "/api/teams/{id}" | "/api/teams/{id}/roster") => {
            let id = match target {
                Target::Own => ids.own_team.to_string(),
                Target::Other => ids.other_team.to_string(),
                Target::Missing => uuid::Uuid::now_v7().to_string(),
            };
            if rule.path.ends_with("/roster") {
                let body = json!({"shifts": [{"weekdays": 127, "starts": "00:00:00", "ends": "00:00:00"}]});
                (
                    json_body(body),
                    format!("/api/teams/{id}/roster"),
                    StatusCode::OK,
                )
            } else {
                let body = json!({"name": "斋堂镇全天组"});
                (json_body(body), format!("/api/teams/{id}"), StatusCode::OK)
            }
        }
        ("GET", "/api/escalation/policies") => (None, rule.path.into(), StatusCode::OK),
        // the policies are district-wide and the matrix's admin is a town's: refused after the
        // role check (tests/admin.rs changes them as a district admin)
        ("PUT" | "DELETE", "/api/escalation/policies/{tier}") => {
            let body = json!({"steps": [{"step": "notify", "target": "team"}]});
            let body = (rule.method == "PUT").then(|| ("application/json", body.to_string()));
            (
                body,
                "/api/escalation/policies/routine".into(),
                StatusCode::FORBIDDEN,
            )
        }
        // the voice warning's messages and rules are district-wide too: read by any admin, changed
        // by a district admin only (tests/voice.rs)
        ("GET", "/api/voice-messages" | "/api/warning-rules") => {
            (None, rule.path.into(), StatusCode::OK)
        }
        ("GET", "/api/voice-messages/{id}/audio") => (
            None,
            "/api/voice-messages/wear-hat-zh/audio".into(),
            StatusCode::NOT_FOUND,
        ),
        ("PUT" | "DELETE", "/api/voice-messages/{id}") => {
            let body = json!({"name": "请戴厨师帽", "text": "请戴好厨师帽"});
            let body = (rule.method == "PUT").then(|| ("application/json", body.to_string()));
            (
                body,
                "/api/voice-messages/wear-hat-zh".into(),
                StatusCode::FORBIDDEN,
            )
        }
        ("PUT", "/api/warning-rules") => (
            json_body(json!({"rules": []})),
            rule.path.into(),
            StatusCode::FORBIDDEN,
        ),
        ("GET", "/admin/{page}") => (
            None,
            "/admin/cameras".into(),
            StatusCode::SERVICE_UNAVAILABLE,
        ),
        // drills: the own town's run is paused once (only coordinators get that far); its report
        // is written at ENDEX, so an allowed reader gets 409 before it
        ("GET", "/api/drills/scenarios" | "/api/drills/runs") => {
            (None, rule.path.into(), StatusCode::OK)
        }
        ("POST", "/api/drills/scenarios/{id}/runs") => {
            let (id, body) = match target {
                Target::Own => (
                    "zhaitang-school-poisoning",
                    json!({"places": {"school": ids.own_premises}}),
                ),
                Target::Other => ("adr-pharmacy-cluster", json!({})),
                Target::Missing => ("no-such-scenario", json!({})),
            };
            (
                json_body(body),
                format!("/api/drills/scenarios/{id}/runs"),
                StatusCode::CREATED,
            )
        }
        ("GET", "/api/drills/runs/{id}") => (
            None,
            format!("/api/drills/runs/{}", run(target, ids)),
            StatusCode::OK,
        ),
        ("POST", "/api/drills/runs/{id}/control") => (
            json_body(json!({"action": "pause"})),
            format!("/api/drills/runs/{}/control", run(target, ids)),
            StatusCode::OK,
        ),
        ("POST", "/api/drills/runs/{id}/observations") => (
            json_body(json!({"text": format!("观察{n}")})),
            format!("/api/drills/runs/{}/observations", run(target, ids)),
            StatusCode::CREATED,
        ),
        ("GET", "/api/drills/runs/{id}/report") => (
            None,
            format!("/api/drills/runs/{}/report", run(target, ids)),
            StatusCode::CONFLICT,
        ),
        ("GET", "/api/drills/runs/{id}/report.pdf") => (
            None,
            format!("/api/drills/runs/{}/report.pdf", run(target, ids)),
            StatusCode::CONFLICT,
        ),
        // lists and the history are filtered by scope, whatever the target
        ("GET", "/api/drills/improvements") => (None, rule.path.into(), StatusCode::OK),
        ("GET", "/api/drills/scenarios/{id}/history") => (
            None,
            "/api/drills/scenarios/zhaitang-school-poisoning/history".into(),
            StatusCode::OK,
        ),
        ("POST", "/api/drills/runs/{id}/improvements") => (
            json_body(
                json!({"problem": format!("问题{n}"), "action": "整改", "owner": "斋堂镇",
                             "dueDate": "2030-01-01"}),
            ),
            format!("/api/drills/runs/{}/improvements", run(target, ids)),
            StatusCode::CREATED,
        ),
        // an open item cannot be verified: an allowed caller gets that far and no further
        ("POST", "/api/drills/improvements/{id}/state") => {
            let item = match target {
                Target::Own => ids.own_item,
                Target::Other => ids.other_item,
                Target::Missing => uuid::Uuid::now_v7(),
            };
            (
                json_body(json!({"state": "verified"})),
                format!("/api/drills/improvements/{item}/state"),
                StatusCode::CONFLICT,
            )
        }
        (m, p) => panic!("no matrix fixture for {m} {p}: add one in tests/matrix.rs"),
    }
}

fn camera(target: Target) -> &'static str {
    match target {
        Target::Own => "cam-own",
        Target::Other => "cam-other",
        Target::Missing => "cam-missing",
    }
}

fn run(target: Target, ids: &Ids) -> String {
    match target {
        Target::Own => ids.own_run.to_string(),
        Target::Other => ids.other_run.to_string(),
        Target::Missing => uuid::Uuid::now_v7().to_string(),
    }
}

/// A drill run of `scenario` at `premises` (its one place), straight through the store.
async fn drill_run(pool: &sqlx::PgPool, scenario: &str, premises: &str) -> uuid::Uuid {
    use dispatch::drill::{scenario, store};
    let (s, text) = scenario::find(scenario).unwrap();
    let by: uuid::Uuid = sqlx::query_scalar("SELECT id FROM users WHERE username = 'admin'")
        .fetch_one(pool)
        .await
        .unwrap();
    let places = s
        .places
        .keys()
        .map(|k| (k.clone(), premises.parse().unwrap()))
        .collect();
    let mut tx = pool.begin().await.unwrap();
    let id = store::start(&mut tx, s, text, &places, by, chrono::Utc::now())
        .await
        .unwrap();
    // its injects stay unfired: the matrix is about access, not about the script
    sqlx::query("UPDATE drill_injects SET outcome = 'notFired' WHERE run_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    id
}

/// An open improvement item of `run`, straight through the store.
async fn improvement_item(pool: &sqlx::PgPool, run: uuid::Uuid) -> uuid::Uuid {
    use dispatch::drill::improvement::{self, Draft};
    let draft = Draft {
        expectation_id: None,
        problem: "矩阵问题".into(),
        action: "矩阵整改".into(),
        owner: "矩阵责任方".into(),
        due_date: chrono::NaiveDate::from_ymd_opt(2030, 1, 1).unwrap(),
    };
    let mut conn = pool.acquire().await.unwrap();
    improvement::insert(&mut conn, run, &draft, "admin", chrono::Utc::now())
        .await
        .unwrap()
}

fn broadcast(target: Target, ids: &Ids) -> uuid::Uuid {
    match target {
        Target::Own => ids.own_broadcast,
        Target::Other => ids.other_broadcast,
        Target::Missing => uuid::Uuid::now_v7(),
    }
}

/// A broadcast by the admin to `camera` (of `town`), straight in the database.
async fn broadcast_to(pool: &sqlx::PgPool, camera: &str, town: &str) -> uuid::Uuid {
    let id = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO broadcasts (id, user_id, username, display_name, selection, started_at) \
         SELECT $1, id, username, display_name, '{}', now() FROM users WHERE username = 'admin'",
    )
    .bind(id)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO broadcast_targets (broadcast_id, camera_id, town_id, state, updated_at) \
         VALUES ($1, $2, $3, 'connecting', now())",
    )
    .bind(id)
    .bind(camera)
    .bind(town)
    .execute(pool)
    .await
    .unwrap();
    id
}

/// A consult room of the target town's incident (`suffix` "-close": the pair made for closing).
fn room(target: Target, suffix: &str) -> String {
    match target {
        Target::Own => format!("room-m-own{suffix}"),
        Target::Other => format!("room-m-other{suffix}"),
        Target::Missing => "room-m-missing".into(),
    }
}

/// Makes the consult rooms [`room`] names.
async fn insert_rooms(pool: &sqlx::PgPool, own_incident: &str, other_incident: &str) {
    for (id, incident) in [
        ("room-m-own", own_incident),
        ("room-m-own-close", own_incident),
        ("room-m-other", other_incident),
        ("room-m-other-close", other_incident),
    ] {
        sqlx::query(
            "INSERT INTO rooms (id, incident_id, kind, title, created_at) \
             VALUES ($1, $2::uuid, 'consult', '矩阵会商', now())",
        )
        .bind(id)
        .bind(incident)
        .execute(pool)
        .await
        .unwrap();
    }
}

fn incident(target: Target, ids: &Ids) -> String {
    match target {
        Target::Own => ids.own_incident.clone(),
        Target::Other => ids.other_incident.clone(),
        Target::Missing => uuid::Uuid::now_v7().to_string(),
    }
}

/// What the table says a caller of `role`, scoped to its own town, gets.
fn expected(rule: &Rule, role: Role, target: Target, ok: StatusCode) -> StatusCode {
    if rule.access == Access::Public {
        return ok;
    }
    // a user session is no service credential
    if rule.access == Access::Service {
        return StatusCode::UNAUTHORIZED;
    }
    if !rule.allows(role) {
        return StatusCode::FORBIDDEN;
    }
    match (rule.scope, target) {
        (ScopeRule::None | ScopeRule::List, _) | (_, Target::Own) => ok,
        (ScopeRule::Object | ScopeRule::Team, Target::Missing) => StatusCode::NOT_FOUND,
        (ScopeRule::Object | ScopeRule::Body | ScopeRule::Team, _) => StatusCode::FORBIDDEN,
    }
}

async fn insert_edge(db: &TestDb, premises_id: &str, id: &str) {
    sqlx::query("INSERT INTO edges (id, premises_id) VALUES ($1, $2::uuid)")
        .bind(id)
        .bind(premises_id)
        .execute(&db.pool().await)
        .await
        .unwrap();
}

struct Ids {
    own_premises: String,
    other_premises: String,
    own_incident: String,
    other_incident: String,
    /// One dispatched incident of the own town per role, in `Role::ALL` order.
    dispatched: Vec<String>,
    /// Photos (sha256) of the own and the other incident.
    own_photo: String,
    other_photo: String,
    /// Users scoped to the own and the other town, for the admin's user changes.
    own_user: String,
    other_user: String,
    /// The own town's team on duty and a team of the other town.
    own_team: uuid::Uuid,
    other_team: uuid::Uuid,
    /// Drill runs of the own town and of other towns.
    own_run: uuid::Uuid,
    other_run: uuid::Uuid,
    /// An improvement item of each run.
    own_item: uuid::Uuid,
    other_item: uuid::Uuid,
    /// Broadcasts (by the admin) to a camera of the own and of the other town.
    own_broadcast: uuid::Uuid,
    other_broadcast: uuid::Uuid,
}

/// Attaches a photo with these bytes to `incident` straight through the store; returns its sha256.
async fn photo(pool: &sqlx::PgPool, incident: &str, bytes: &[u8]) -> String {
    use dispatch::field::photos;
    let sha = photos::sha256_hex(bytes);
    let by: uuid::Uuid = sqlx::query_scalar("SELECT id FROM users WHERE username = 'admin'")
        .fetch_one(pool)
        .await
        .unwrap();
    let mut tx = pool.begin().await.unwrap();
    let now = chrono::Utc::now();
    photos::store_blob(&mut tx, &sha, "image/png", bytes, now)
        .await
        .unwrap();
    let a = photos::Attachment {
        incident: incident.parse().unwrap(),
        sha256: &sha,
        by,
        at: now,
        lat: None,
        lon: None,
        caption: "",
    };
    photos::attach(&mut tx, &a).await.unwrap();
    tx.commit().await.unwrap();
    sha
}

/// Reports an incident at a free address in `town` as `client`; returns its id.
async fn report(client: &mut Client, town: &str, n: usize) -> String {
    let (status, body) = client
        .post(
            "/api/incidents",
            json!({"source": "manual", "townId": town, "address": format!("北京市门头沟区准备路{n}号"),
                   "kind": "complaint"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn incidents(
    admin: &mut Client,
    server: &Server,
    own_premises: &str,
) -> (String, String, Vec<String>) {
    create_user(admin, "m-setup", "operator", None).await;
    let mut op = server.client();
    assert_eq!(op.login("m-setup", USER_PASSWORD).await.0, StatusCode::OK);
    // an open incident at the own premises, routed to the own team: its field user may watch the
    // premises' cameras
    let (status, body) = op
        .post(
            "/api/incidents",
            json!({"source": "manual", "premisesId": own_premises, "kind": "complaint"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let own = report(&mut op, OWN, 0).await;
    let other = report(&mut op, OTHER, 1).await;
    let mut dispatched = Vec::new();
    for i in 0..Role::ALL.len() {
        let id = report(&mut op, OWN, 2 + i).await;
        for to in ["triaged", "dispatched"] {
            let (status, body) = op
                .post(
                    &format!("/api/incidents/{id}/transition"),
                    json!({ "to": to }),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
        dispatched.push(id);
    }
    (own, other, dispatched)
}

#[tokio::test]
async fn every_role_gets_exactly_what_the_policy_table_says_on_every_route() {
    let (db, _dir, server, mut admin) = setup_with(|c| {
        let mut media = media_config(&[("gw-1", "http://127.0.0.1:8090")]);
        media.gateway[0].service_token =
            Some(dispatch::auth::service::ServiceToken::from_secret(SERVICE_TOKEN).unwrap());
        c.media = Some(media);
    })
    .await;
    let (_, own) = create_premises(&mut admin, OWN, "斋堂镇中心小学食堂").await;
    let (_, other) = create_premises(&mut admin, OTHER, "清水镇中心小学食堂").await;
    insert_camera(&db, own["id"].as_str().unwrap(), "cam-own", true).await;
    insert_camera(&db, other["id"].as_str().unwrap(), "cam-other", true).await;
    insert_camera(&db, own["id"].as_str().unwrap(), "cam-spare", false).await;
    insert_edge(&db, own["id"].as_str().unwrap(), "edge-own").await;
    insert_edge(&db, other["id"].as_str().unwrap(), "edge-other").await;
    let pool = db.pool().await;
    sqlx::query("UPDATE edges SET public_key = $1, enrolled_at = now() WHERE id = 'edge-own'")
        .bind(vec![7u8; 32])
        .execute(&pool)
        .await
        .unwrap();
    let own_team = team_on_duty(&pool, OWN, "斋堂镇全天组").await;
    let other_team = team_on_duty(&pool, OTHER, "清水镇全天组").await;
    let own_user = create_user(&mut admin, "m-target-own", "operator", Some(&[OWN])).await;
    let other_user = create_user(&mut admin, "m-target-other", "operator", Some(&[OTHER])).await;
    let (own_incident, other_incident, dispatched) =
        incidents(&mut admin, &server, own["id"].as_str().unwrap()).await;
    insert_rooms(&pool, &own_incident, &other_incident).await;
    let png = |tag: &str| [&b"\x89PNG\r\n\x1a\n"[..], tag.as_bytes()].concat();
    let own_photo = photo(&pool, &own_incident, &png("own")).await;
    let other_photo = photo(&pool, &other_incident, &png("other")).await;
    let own_run = drill_run(
        &pool,
        "zhaitang-school-poisoning",
        own["id"].as_str().unwrap(),
    )
    .await;
    let other_run = drill_run(&pool, "adr-pharmacy-cluster", other["id"].as_str().unwrap()).await;
    let ids = Ids {
        own_item: improvement_item(&pool, own_run).await,
        other_item: improvement_item(&pool, other_run).await,
        own_broadcast: broadcast_to(&pool, "cam-own", OWN).await,
        other_broadcast: broadcast_to(&pool, "cam-other", OTHER).await,
        own_premises: own["id"].as_str().unwrap().into(),
        other_premises: other["id"].as_str().unwrap().into(),
        own_incident,
        other_incident,
        dispatched,
        own_photo,
        other_photo,
        own_user,
        other_user,
        own_team,
        other_team,
        own_run,
        other_run,
    };
    for role in Role::ALL {
        create_user(
            &mut admin,
            &format!("m-{}", role.as_str().to_lowercase()),
            role.as_str(),
            Some(&[OWN]),
        )
        .await;
    }
    sqlx::query("UPDATE users SET team_id = $1 WHERE username = 'm-field'")
        .bind(own_team)
        .execute(&pool)
        .await
        .unwrap();
    let mut failures = Vec::new();
    let mut n = 0;
    for role in Role::ALL {
        let username = format!("m-{}", role.as_str().to_lowercase());
        let mut client = server.client();
        assert_eq!(
            client.login(&username, USER_PASSWORD).await.0,
            StatusCode::OK
        );
        for rule in POLICY {
            for target in [Target::Own, Target::Other, Target::Missing] {
                n += 1;
                let (body, path, ok) = fixture(rule, target, &ids, n, role);
                let want = expected(rule, role, target, ok);
                let method = Method::from_bytes(rule.method.as_bytes()).unwrap();
                // routes that end or replace the session get a session of their own
                let fresh = rule.path == "/api/session" && rule.method != "GET";
                let (got, answer) = if fresh {
                    let mut c = server.client();
                    let (status, _) = c.login(&username, USER_PASSWORD).await;
                    assert_eq!(status, StatusCode::OK);
                    if rule.method == "POST" {
                        c.cookie = None;
                        c.csrf = None;
                        let login =
                            json!({"username": username, "password": USER_PASSWORD}).to_string();
                        c.send(method, &path, Some(("application/json", login)))
                            .await
                    } else {
                        c.send(method, &path, body).await
                    }
                } else {
                    client.send(method, &path, body).await
                };
                if got != want {
                    failures.push(format!(
                        "{:<16} {:<6} {:<32} {:?}: expected {want}, got {got} {answer}",
                        role.as_str(),
                        rule.method,
                        rule.path,
                        target
                    ));
                }
            }
        }
    }
    // A gateway's service token opens the service routes and nothing that takes a session.
    let http = reqwest::Client::new();
    for rule in POLICY.iter().filter(|r| r.access != Access::Public) {
        for target in [Target::Own, Target::Other, Target::Missing] {
            n += 1;
            let (body, path, ok) = fixture(rule, target, &ids, n, Role::Admin);
            let want = match rule.access {
                Access::Service => ok,
                _ => StatusCode::UNAUTHORIZED,
            };
            let method = Method::from_bytes(rule.method.as_bytes()).unwrap();
            let mut req = http
                .request(method, format!("http://{}{path}", server.addr))
                .bearer_auth(SERVICE_TOKEN)
                .header("x-bl-node", "gw-1");
            if let Some((content_type, text)) = body {
                req = req.header("content-type", content_type).body(text);
            }
            let got = req.send().await.unwrap().status();
            if got != want {
                failures.push(format!(
                    "{:<16} {:<6} {:<32} {target:?}: expected {want}, got {got}",
                    "gateway:gw-1", rule.method, rule.path
                ));
            }
        }
    }
    // A field user of another team of the same town: refused on every team-scoped route, and the
    // lists hold none of the first team's incidents.
    let second_team = team_on_duty(&pool, OWN, "斋堂镇备勤组").await;
    create_user(&mut admin, "m-field-b", "field", Some(&[OWN])).await;
    sqlx::query("UPDATE users SET team_id = $1 WHERE username = 'm-field-b'")
        .bind(second_team)
        .execute(&pool)
        .await
        .unwrap();
    let mut field_b = server.client();
    assert_eq!(
        field_b.login("m-field-b", USER_PASSWORD).await.0,
        StatusCode::OK
    );
    for rule in POLICY
        .iter()
        .filter(|r| r.scope == ScopeRule::Team && r.allows(Role::Field))
    {
        n += 1;
        let (body, path, _) = fixture(rule, Target::Own, &ids, n, Role::Field);
        let method = Method::from_bytes(rule.method.as_bytes()).unwrap();
        let (got, answer) = field_b.send(method, &path, body).await;
        if (got, answer["error"]["code"].as_str()) != (StatusCode::FORBIDDEN, Some("not_your_team"))
        {
            failures.push(format!(
                "field of another team {:<6} {:<32}: expected 403 not_your_team, got {got} {answer}",
                rule.method, rule.path
            ));
        }
    }
    for list in ["/api/incidents", "/api/field/incidents"] {
        let (status, page) = field_b.get(list).await;
        assert_eq!(
            (status, page["total"].as_i64()),
            (StatusCode::OK, Some(0)),
            "{list}: {page}"
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {n} cases differ from the policy table:\n{}",
        failures.len(),
        failures.join("\n")
    );
    pool.close().await;
    server.stop().await;
    db.drop_now().await;
}
