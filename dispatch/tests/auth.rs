//! Authentication against the real server and the dev stack's PostgreSQL: login, sessions, CSRF,
//! throttling, TOTP and the first admin.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn health_is_ok_without_a_session_and_everything_else_needs_one() {
    let (db, _dir, server, _admin) = setup().await;
    let mut anon = server.client();
    let (status, body) = anon.get("/healthz").await;
    assert_eq!((status, body), (StatusCode::OK, json!("ok")));
    for path in ["/api/session", "/api/towns", "/api/premises", "/api/users"] {
        let (status, body) = anon.get(path).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(body["error"]["code"], "unauthenticated");
    }
    let (status, body) = anon.get("/api/nothing-here").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "no_route");
    server.stop().await;
    db.drop_now().await;
}

#[tokio::test]
async fn login_sets_a_host_prefixed_strict_cookie_and_returns_the_user_and_a_csrf_token() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(&db, &dir)).await;
    let resp = reqwest::Client::new()
        .post(format!("http://{}/api/session", server.addr))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("__Host-bl_session="), "{cookie}");
    for attr in ["Path=/", "Secure", "HttpOnly", "SameSite=Strict"] {
        assert!(cookie.contains(attr), "{cookie} lacks {attr}");
    }
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["user"]["username"], "admin");
    assert_eq!(body["user"]["role"], "admin");
    assert_eq!(body["user"]["scopeTowns"], serde_json::Value::Null);
    assert_eq!(body["csrfToken"].as_str().unwrap().len(), 43);
    assert!(body["user"].get("passwordHash").is_none());
    server.stop().await;
    db.drop_now().await;
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_get_the_same_generic_answer() {
    let (db, _dir, server, _admin) = setup().await;
    let mut c = server.client();
    let (s1, b1) = c.login("admin", "not-the-password").await;
    let (s2, b2) = c.login("nobody", "not-the-password").await;
    assert_eq!(
        (s1, s2),
        (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED)
    );
    assert_eq!(b1, b2);
    assert_eq!(b1["error"]["code"], "login_failed");
    assert!(c.cookie.is_none());
    server.stop().await;
    db.drop_now().await;
}

#[tokio::test]
async fn login_gives_a_new_session_id_and_logout_ends_the_session() {
    let (db, _dir, server, mut admin) = setup().await;
    let first = admin.cookie.clone().unwrap();
    let (status, _) = admin.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
    let second = admin.cookie.clone().unwrap();
    assert_ne!(first, second);
    // the session presented at login is ended, not kept beside the new one
    let mut old = server.client();
    old.cookie = Some(first);
    assert_eq!(old.get("/api/session").await.0, StatusCode::UNAUTHORIZED);
    let (status, _) = admin.send(Method::DELETE, "/api/session", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(admin.cookie.is_none(), "logout clears the cookie");
    let mut replay = server.client();
    replay.cookie = Some(second);
    assert_eq!(replay.get("/api/session").await.0, StatusCode::UNAUTHORIZED);
    server.stop().await;
    db.drop_now().await;
}

#[tokio::test]
async fn an_unsafe_request_without_the_csrf_token_is_refused_with_403() {
    let (db, _dir, server, mut admin) = setup().await;
    let token = admin.csrf.take();
    let (status, body) = create_premises(&mut admin, "zhaitang", "无令牌餐馆").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "csrf_failed");
    admin.csrf = Some("x".repeat(43));
    assert_eq!(
        create_premises(&mut admin, "zhaitang", "错令牌餐馆")
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    admin.csrf = token;
    assert_eq!(
        create_premises(&mut admin, "zhaitang", "有令牌餐馆")
            .await
            .0,
        StatusCode::CREATED
    );
    // GET /api/session hands out the same token
    let (_, me) = admin.get("/api/session").await;
    assert_eq!(me["csrfToken"].as_str(), admin.csrf.as_deref());
    server.stop().await;
    db.drop_now().await;
}

#[tokio::test]
async fn a_session_idle_longer_than_the_idle_timeout_is_over() {
    let (db, _dir, server, mut admin) = setup_with(|c| {
        c.session.idle_timeout_secs = 2;
        c.session.absolute_timeout_secs = 4;
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert_eq!(
        admin.get("/api/session").await.0,
        StatusCode::OK,
        "used within the idle time"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert_eq!(
        admin.get("/api/session").await.0,
        StatusCode::OK,
        "each use restarts the idle timer"
    );
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (status, body) = admin.get("/api/session").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "idle too long");
    assert_eq!(body["error"]["code"], "unauthenticated");
    server.stop().await;
    db.drop_now().await;
}

#[tokio::test]
async fn a_session_in_constant_use_still_ends_at_the_absolute_timeout() {
    let (db, _dir, server, mut admin) = setup_with(|c| {
        c.session.idle_timeout_secs = 2;
        c.session.absolute_timeout_secs = 3;
    })
    .await;
    for _ in 0..2 {
        tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
        assert_eq!(admin.get("/api/session").await.0, StatusCode::OK);
    }
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert_eq!(admin.get("/api/session").await.0, StatusCode::UNAUTHORIZED);
    server.stop().await;
    db.drop_now().await;
}

#[tokio::test]
async fn five_failures_lock_the_user_name_even_for_the_right_password_then_it_unlocks() {
    let (db, _dir, server, _admin) = setup_with(|c| {
        c.login.max_failures = 5;
        c.login.lockout_base_secs = 2;
    })
    .await;
    let mut c = server.client();
    for i in 0..5 {
        assert_eq!(
            c.login("admin", "guess").await.0,
            StatusCode::UNAUTHORIZED,
            "attempt {i}"
        );
    }
    let (status, body) = c.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["code"], "login_throttled");
    // another user name from the same address is not locked by these five
    assert_eq!(
        c.login("someone", "guess").await.0,
        StatusCode::UNAUTHORIZED
    );
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    assert_eq!(c.login("admin", ADMIN_PASSWORD).await.0, StatusCode::OK);
    server.stop().await;
    db.drop_now().await;
}

#[tokio::test]
async fn a_failure_after_a_lock_out_locks_for_twice_as_long() {
    let (db, _dir, server, _admin) = setup_with(|c| {
        c.login.max_failures = 2;
        c.login.lockout_base_secs = 1;
    })
    .await;
    let mut c = server.client();
    c.login("admin", "guess").await;
    c.login("admin", "guess").await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(c.login("admin", "guess").await.0, StatusCode::UNAUTHORIZED);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        c.login("admin", ADMIN_PASSWORD).await.0,
        StatusCode::TOO_MANY_REQUESTS,
        "2 s lock"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(c.login("admin", ADMIN_PASSWORD).await.0, StatusCode::OK);
    server.stop().await;
    db.drop_now().await;
}

#[tokio::test]
async fn many_failures_from_one_address_lock_that_address_for_every_user_name() {
    let (db, _dir, server, _admin) = setup_with(|c| {
        c.login.max_failures = 3;
        c.login.ip_max_failures = 4;
        c.login.lockout_base_secs = 60;
    })
    .await;
    let mut c = server.client();
    for name in ["a1", "a2", "a3", "a4"] {
        assert_eq!(c.login(name, "guess").await.0, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        c.login("admin", ADMIN_PASSWORD).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    server.stop().await;
    db.drop_now().await;
}

#[tokio::test]
async fn with_totp_enabled_a_login_needs_a_fresh_code() {
    use dispatch::auth::totp;
    let (db, _dir, server, mut admin) = setup().await;
    let (status, setup) = admin.post("/api/session/totp", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{setup}");
    let secret = totp::base32_decode(setup["secret"].as_str().unwrap()).unwrap();
    assert!(
        setup["uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/Brightline:admin?")
    );
    // Codes below are computed for "now": keep clear of a 30 s step boundary so that the server's
    // clock is in the same step when it checks them.
    let into_step = chrono::Utc::now().timestamp().rem_euclid(30);
    if into_step > 24 {
        tokio::time::sleep(std::time::Duration::from_secs((31 - into_step) as u64)).await;
    }
    let now = totp::step_of(chrono::Utc::now().timestamp());
    let (status, body) = admin
        .send(
            Method::PUT,
            "/api/session/totp",
            Some(("application/json", json!({"code": "000000"}).to_string())),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // confirm with the next step's code, so that the login below can use the current one
    let code = |s| format!("{:06}", totp::code_at(&secret, s));
    let (status, _) = admin
        .send(
            Method::PUT,
            "/api/session/totp",
            Some((
                "application/json",
                json!({"code": code(now - 1)}).to_string(),
            )),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let mut c = server.client();
    let (status, body) = c.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::UNAUTHORIZED, &json!("totp_required"))
    );
    let login =
        |code: String| json!({"username": "admin", "password": ADMIN_PASSWORD, "totp": code});
    let (status, _) = c.post("/api/session", login("123456".into())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = c.post("/api/session", login(code(now))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["totpEnabled"], true);
    let (status, _) = server.client().post("/api/session", login(code(now))).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a used code cannot be replayed"
    );
    server.stop().await;
    db.drop_now().await;
}

#[tokio::test]
async fn the_first_start_creates_admin_once_and_a_restart_does_not_again() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&db, &dir);
    c.admin_password_file = None;
    let pool = dispatch::db::connect(&c.database).await.unwrap();
    dispatch::db::migrate(&pool).await.unwrap();
    let first = dispatch::auth::bootstrap::ensure_admin(&pool, &c)
        .await
        .unwrap();
    let dispatch::auth::bootstrap::Outcome::Random(password) = first else {
        panic!("expected a random password, got {first:?}")
    };
    assert_eq!(password.len(), 20);
    let second = dispatch::auth::bootstrap::ensure_admin(&pool, &c)
        .await
        .unwrap();
    assert_eq!(second, dispatch::auth::bootstrap::Outcome::Existing);
    pool.close().await;

    // a full start and restart keep the random password working and make no second admin
    for _ in 0..2 {
        let server = Server::start(c.clone()).await;
        assert_eq!(
            server.client().login("admin", &password).await.0,
            StatusCode::OK
        );
        server.stop().await;
    }
    let pool = db.pool().await;
    let admins: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(admins, 1);
    pool.close().await;
    db.drop_now().await;
}

#[tokio::test]
async fn the_admin_password_file_is_used_only_when_there_is_no_user_yet() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let c = config(&db, &dir);
    let server = Server::start(c.clone()).await;
    assert_eq!(
        server.client().login("admin", ADMIN_PASSWORD).await.0,
        StatusCode::OK
    );
    server.stop().await;
    std::fs::write(
        c.admin_password_file.as_ref().unwrap(),
        "a-different-password-1",
    )
    .unwrap();
    let server = Server::start(c).await;
    assert_eq!(
        server
            .client()
            .login("admin", "a-different-password-1")
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        server.client().login("admin", ADMIN_PASSWORD).await.0,
        StatusCode::OK
    );
    server.stop().await;
    db.drop_now().await;
}
