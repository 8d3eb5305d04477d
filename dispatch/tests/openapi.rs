//! The OpenAPI document against the real server and PostgreSQL: it is served without a session, and
//! what real requests get back — successes and errors — has exactly the shape the document gives
//! for that route and status (every required field present, no field it does not name, the types
//! and enum values it states).

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Resolves `{"$ref": "#/components/schemas/X"}` (other schemas as they are).
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => resolve(
            doc,
            &doc["components"]["schemas"][r.rsplit('/').next().unwrap()],
        ),
        None => schema,
    }
}

fn type_matches(name: &str, value: &Value) -> bool {
    match name {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "string" => value.is_string(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => true,
    }
}

/// The problems of `value` against `schema`: a small validator for the keywords the document uses.
fn check(doc: &Value, schema: &Value, value: &Value, at: &str, problems: &mut Vec<String>) {
    let schema = resolve(doc, schema);
    if let Some(branches) = schema["oneOf"].as_array() {
        let fits = branches.iter().any(|b| {
            let mut p = Vec::new();
            check(doc, b, value, at, &mut p);
            p.is_empty()
        });
        if !fits {
            problems.push(format!("{at}: {value} fits no branch of oneOf"));
        }
        return;
    }
    // allOf (a flattened struct): one object with the properties of every part.
    let parts: Vec<&Value> = match schema["allOf"].as_array() {
        Some(parts) => parts.iter().map(|p| resolve(doc, p)).collect(),
        None => vec![schema],
    };
    for part in &parts {
        let types: Vec<&str> = match &part["type"] {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !types.is_empty() && !types.iter().any(|t| type_matches(t, value)) {
            problems.push(format!("{at}: {value} is not {types:?}"));
            return;
        }
        if let Some(allowed) = part["enum"].as_array()
            && !value.is_null()
            && !allowed.contains(value)
        {
            problems.push(format!("{at}: {value} is not one of {allowed:?}"));
        }
        if let (Some(items), Some(values)) = (part.get("items"), value.as_array()) {
            for (i, v) in values.iter().enumerate() {
                check(doc, items, v, &format!("{at}[{i}]"), problems);
            }
        }
    }
    let Some(object) = value.as_object() else {
        return;
    };
    let mut known = serde_json::Map::new();
    for part in &parts {
        if let Some(props) = part["properties"].as_object() {
            known.extend(props.clone());
        }
        for name in part["required"].as_array().into_iter().flatten() {
            if !object.contains_key(name.as_str().unwrap()) {
                problems.push(format!("{at}: required {name} is missing"));
            }
        }
    }
    if known.is_empty() {
        return;
    }
    for (key, v) in object {
        match known.get(key) {
            Some(s) => check(doc, s, v, &format!("{at}.{key}"), problems),
            None => problems.push(format!("{at}: {key:?} is not in the schema")),
        }
    }
}

/// Asserts that `body`, answered with `status` to `method path`, is what the document says.
fn conforms(doc: &Value, method: &str, path: &str, status: StatusCode, body: &Value) {
    let op = &doc["paths"][path][method.to_ascii_lowercase()];
    assert!(op.is_object(), "{method} {path} is not documented");
    let responses = &op["responses"];
    let response = responses
        .get(status.as_str())
        .or_else(|| responses.get("default").filter(|_| status.as_u16() >= 400))
        .unwrap_or_else(|| panic!("{method} {path} does not document {status}"));
    let schema = &response["content"]["application/json"]["schema"];
    assert!(
        schema.is_object(),
        "{method} {path} {status}: no JSON schema"
    );
    let mut problems = Vec::new();
    check(doc, schema, body, "body", &mut problems);
    assert!(
        problems.is_empty(),
        "{method} {path} {status}: {problems:#?}\n{body:#}"
    );
}

#[tokio::test]
async fn the_document_is_served_without_a_session_and_is_the_one_the_code_generates() {
    let (db, _dir, server, _admin) = setup().await;
    let resp = reqwest::get(format!("http://{}/api/openapi.json", server.addr))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let served: Value = resp.json().await.unwrap();
    assert_eq!(served, dispatch::api::openapi::document());
    assert_eq!(served["openapi"], "3.1.0");
    server.stop().await;
    db.drop_now().await;
}

#[tokio::test]
async fn real_answers_and_errors_have_the_documented_shape() {
    let (db, _dir, server, mut admin) = setup().await;
    let doc = dispatch::api::openapi::document();
    let call = async |client: &mut Client,
                      method: Method,
                      template: &str,
                      path: &str,
                      body: Option<Value>| {
        let sent = body.map(|b| ("application/json", b.to_string()));
        let (status, answer) = client.send(method.clone(), path, sent).await;
        conforms(&doc, method.as_str(), template, status, &answer);
        (status, answer)
    };

    let (s, me) = call(
        &mut admin,
        Method::GET,
        "/api/session",
        "/api/session",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{me}");
    call(&mut admin, Method::GET, "/api/towns", "/api/towns", None).await;
    let (s, p) = call(
        &mut admin,
        Method::POST,
        "/api/premises",
        "/api/premises",
        Some(premises_body("zhaitang", "斋堂镇老王饭店")),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let premises = p["id"].as_str().unwrap().to_owned();
    call(
        &mut admin,
        Method::GET,
        "/api/premises",
        "/api/premises?town=zhaitang",
        None,
    )
    .await;
    let one = format!("/api/premises/{premises}");
    call(&mut admin, Method::GET, "/api/premises/{id}", &one, None).await;
    let (s, e) = call(
        &mut admin,
        Method::POST,
        "/api/edges",
        "/api/edges",
        Some(json!({"id": "zt-box-1", "premisesId": premises})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{e}");
    call(&mut admin, Method::GET, "/api/edges", "/api/edges", None).await;
    call(
        &mut admin,
        Method::GET,
        "/api/cameras",
        "/api/cameras",
        None,
    )
    .await;
    call(&mut admin, Method::GET, "/api/teams", "/api/teams", None).await;
    let (s, u) = call(
        &mut admin,
        Method::POST,
        "/api/users",
        "/api/users",
        Some(
            json!({"username": "op1", "displayName": "值班员", "role": "operator",
                    "scopeTowns": null, "password": USER_PASSWORD}),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{u}");
    call(&mut admin, Method::GET, "/api/users", "/api/users", None).await;
    call(
        &mut admin,
        Method::GET,
        "/api/notify/channels",
        "/api/notify/channels",
        None,
    )
    .await;

    // The admin screens' writes, and an error that names its field.
    let camera = json!({"id": "zt-c1", "premisesId": premises, "name": "后厨", "source": "pull",
                        "mainStream": "rtsp://192.0.2.7/101", "credentials": {"username": "u", "password": "p"}});
    let (s, c) = call(
        &mut admin,
        Method::POST,
        "/api/cameras",
        "/api/cameras",
        Some(camera.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let (s, c) = call(
        &mut admin,
        Method::PUT,
        "/api/cameras/{id}",
        "/api/cameras/zt-c1",
        Some(camera),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    let bad = json!({"id": "zt-c2", "premisesId": premises, "name": "后厨", "source": "pull", "mainStream": "http://x"});
    let (s, e) = call(
        &mut admin,
        Method::POST,
        "/api/cameras",
        "/api/cameras",
        Some(bad),
    )
    .await;
    assert_eq!(
        (s, e["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("mainStream"))
    );
    let change = json!({"displayName": "值班员", "role": "operator", "phone": "13800000003"});
    let (s, u2) = call(
        &mut admin,
        Method::PUT,
        "/api/users/{id}",
        &format!("/api/users/{}", u["id"].as_str().unwrap()),
        Some(change),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{u2}");
    let (s, team) = call(
        &mut admin,
        Method::POST,
        "/api/teams",
        "/api/teams",
        Some(json!({"townId": "zhaitang", "name": "斋堂镇白班"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{team}");
    let team = format!("/api/teams/{}", team["id"].as_str().unwrap());
    let roster = json!({"shifts": [{"weekdays": 31, "starts": "08:00:00", "ends": "18:00:00"}]});
    let (s, r) = call(
        &mut admin,
        Method::PUT,
        "/api/teams/{id}/roster",
        &format!("{team}/roster"),
        Some(roster),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let (s, r) = call(
        &mut admin,
        Method::PUT,
        "/api/teams/{id}",
        &team,
        Some(json!({"name": "斋堂镇日班"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    call(
        &mut admin,
        Method::GET,
        "/api/escalation/policies",
        "/api/escalation/policies",
        None,
    )
    .await;

    // Errors: a missing object, a bad body, a role that may not, no session.
    let missing = format!("/api/premises/{}", uuid::Uuid::now_v7());
    let (s, _) = call(
        &mut admin,
        Method::GET,
        "/api/premises/{id}",
        &missing,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = call(
        &mut admin,
        Method::POST,
        "/api/premises",
        "/api/premises",
        Some(json!({"name": 1})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let report = json!({"source": "manual", "townId": "zhaitang", "address": "斋堂镇东街12号", "kind": "rodent"});
    let (s, _) = call(
        &mut admin,
        Method::POST,
        "/api/incidents",
        "/api/incidents",
        Some(report.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let mut anonymous = server.client();
    let (s, _) = call(
        &mut anonymous,
        Method::GET,
        "/api/incidents",
        "/api/incidents",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // An incident's life through the operator's hands.
    let mut operator = server.client();
    let (s, _) = operator.login("op1", USER_PASSWORD).await;
    assert_eq!(s, StatusCode::OK);
    let (s, i) = call(
        &mut operator,
        Method::POST,
        "/api/incidents",
        "/api/incidents",
        Some(report),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{i}");
    let incident = i["id"].as_str().unwrap().to_owned();
    let path = |tail: &str| format!("/api/incidents/{incident}{tail}");
    call(
        &mut operator,
        Method::GET,
        "/api/incidents/{id}",
        &path(""),
        None,
    )
    .await;
    call(
        &mut operator,
        Method::GET,
        "/api/incidents",
        "/api/incidents",
        None,
    )
    .await;
    let (s, n) = call(
        &mut operator,
        Method::POST,
        "/api/incidents/{id}/notes",
        &path("/notes"),
        Some(json!({"text": "电话联系负责人"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{n}");
    let (s, t) = call(
        &mut operator,
        Method::POST,
        "/api/incidents/{id}/transition",
        &path("/transition"),
        Some(json!({"to": "triaged", "note": "属实"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    let (s, _) = call(
        &mut operator,
        Method::POST,
        "/api/incidents/{id}/transition",
        &path("/transition"),
        Some(json!({"to": "closed"})),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, a) = call(&mut admin, Method::GET, "/api/audit", "/api/audit", None).await;
    assert_eq!(s, StatusCode::OK, "{a}");

    server.stop().await;
    db.drop_now().await;
}

#[test]
fn the_shape_check_finds_a_missing_field_an_unnamed_field_and_a_wrong_type() {
    let doc = dispatch::api::openapi::document();
    let schema = json!({ "$ref": "#/components/schemas/Town" });
    let good = json!({"id": "zhaitang", "nameZh": "斋堂镇", "nameEn": "Zhaitang", "kind": "town", "lat": null, "lon": 115.6});
    let mut problems = Vec::new();
    check(&doc, &schema, &good, "town", &mut problems);
    assert!(problems.is_empty(), "{problems:?}");
    let bad = json!({"id": 7, "name_zh": "斋堂镇", "nameEn": "Zhaitang", "kind": "town", "lat": null, "lon": null});
    check(&doc, &schema, &bad, "town", &mut problems);
    let text = problems.join("\n");
    assert!(text.contains("town.id: 7 is not"), "{text}");
    assert!(text.contains("required \"nameZh\" is missing"), "{text}");
    assert!(text.contains("\"name_zh\" is not in the schema"), "{text}");
}
