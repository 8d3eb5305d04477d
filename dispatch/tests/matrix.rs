//! The authorisation matrix, generated from the policy table: every role × every route × an object
//! of the caller's own town, of another town, and a missing one, against the real server. Each
//! caller is scoped to 斋堂镇 (zhaitang); "other" is 清水镇 (qingshui).

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
        ("GET", "/api/towns" | "/api/premises" | "/api/cameras" | "/api/teams" | "/api/users") => {
            (None, rule.path.into(), StatusCode::OK)
        }
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
        // cameras of both towns can talk, so an allowed caller gets a token for its own one
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
        // a plain GET: an allowed caller gets past authorisation and is told it is no handshake
        // (tests/ws.rs covers the handshake itself)
        ("GET", "/api/ws") => (None, rule.path.into(), StatusCode::BAD_REQUEST),
        (m, p) => panic!("no matrix fixture for {m} {p}: add one in tests/matrix.rs"),
    }
}

/// What the table says a caller of `role`, scoped to its own town, gets.
fn expected(rule: &Rule, role: Role, target: Target, ok: StatusCode) -> StatusCode {
    if rule.access == Access::Public {
        return ok;
    }
    if !rule.allows(role) {
        return StatusCode::FORBIDDEN;
    }
    match (rule.scope, target) {
        (ScopeRule::None | ScopeRule::List, _) | (_, Target::Own) => ok,
        (ScopeRule::Object, Target::Missing) => StatusCode::NOT_FOUND,
        (ScopeRule::Object | ScopeRule::Body, _) => StatusCode::FORBIDDEN,
    }
}

struct Ids {
    own_premises: String,
    other_premises: String,
    own_incident: String,
    other_incident: String,
    /// One dispatched incident of the own town per role, in `Role::ALL` order.
    dispatched: Vec<String>,
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

async fn incidents(admin: &mut Client, server: &Server) -> (String, String, Vec<String>) {
    create_user(admin, "m-setup", "operator", None).await;
    let mut op = server.client();
    assert_eq!(op.login("m-setup", USER_PASSWORD).await.0, StatusCode::OK);
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
        c.media = Some(media_config(&[("gw-1", "http://127.0.0.1:8090")]));
    })
    .await;
    let (_, own) = create_premises(&mut admin, OWN, "斋堂镇中心小学食堂").await;
    let (_, other) = create_premises(&mut admin, OTHER, "清水镇中心小学食堂").await;
    insert_camera(&db, own["id"].as_str().unwrap(), "cam-own", true).await;
    insert_camera(&db, other["id"].as_str().unwrap(), "cam-other", true).await;
    let (own_incident, other_incident, dispatched) = incidents(&mut admin, &server).await;
    let ids = Ids {
        own_premises: own["id"].as_str().unwrap().into(),
        other_premises: other["id"].as_str().unwrap().into(),
        own_incident,
        other_incident,
        dispatched,
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
    assert!(
        failures.is_empty(),
        "{} of {n} cases differ from the policy table:\n{}",
        failures.len(),
        failures.join("\n")
    );
    server.stop().await;
    db.drop_now().await;
}
