//! The web console's files: served from `web_dir` with their types, console paths answer the
//! console page, nothing outside the directory is reachable, a missing build says how to make it,
//! and `/api` is untouched.
mod common;

use common::{Server, TestDb, config};
use reqwest::StatusCode;

async fn get(server: &Server, path: &str) -> (StatusCode, String, String) {
    let resp = reqwest::get(format!("http://{}{path}", server.addr))
        .await
        .unwrap();
    let status = resp.status();
    let ctype = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, ctype, resp.text().await.unwrap())
}

#[tokio::test]
async fn serves_the_built_console_and_field_app() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("dist");
    std::fs::create_dir_all(web.join("assets")).unwrap();
    std::fs::write(web.join("index.html"), "<html>console</html>").unwrap();
    std::fs::write(web.join("field.html"), "<html>field</html>").unwrap();
    std::fs::write(web.join("field.webmanifest"), "{}").unwrap();
    std::fs::write(web.join("assets/index-a1.js"), "export {}").unwrap();
    std::fs::write(dir.path().join("secret.txt"), "outside").unwrap();
    let mut c = config(&db, &dir);
    c.web_dir = web;
    let server = Server::start(c).await;

    for (path, body) in [
        ("/", "console"),
        ("/map", "console"),
        ("/incidents/0190a1b2-0000-7000-8000-000000000000", "console"),
        ("/field", "field"),
    ] {
        let (status, ctype, text) = get(&server, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(ctype, "text/html; charset=utf-8", "{path}");
        assert!(text.contains(body), "{path}: {text}");
    }
    let (status, ctype, _) = get(&server, "/assets/index-a1.js").await;
    assert_eq!(
        (status, ctype.as_str()),
        (StatusCode::OK, "text/javascript; charset=utf-8")
    );
    let (status, ctype, _) = get(&server, "/field.webmanifest").await;
    assert_eq!(
        (status, ctype.as_str()),
        (StatusCode::OK, "application/manifest+json")
    );
    for path in [
        "/assets/missing.js",
        "/nothing.png",
        "/assets/..%2F..%2Fsecret.txt",
        "/assets/%2E%2E/secret.txt",
        "/.env",
    ] {
        assert_eq!(get(&server, path).await.0, StatusCode::NOT_FOUND, "{path}");
    }
    // /api keeps its JSON errors
    let (status, ctype, text) = get(&server, "/api/nothing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(ctype, "application/json");
    assert!(text.contains("no_route"), "{text}");
    server.stop().await;
    db.drop_now().await;
}

#[tokio::test]
async fn a_missing_build_says_how_to_make_it() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&db, &dir);
    c.web_dir = dir.path().join("no-such-dist");
    let server = Server::start(c).await;
    for path in ["/", "/field", "/dashboard"] {
        let (status, _, text) = get(&server, path).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert!(text.contains("make web"), "{text}");
    }
    server.stop().await;
    db.drop_now().await;
}

#[tokio::test]
async fn pages_carry_a_content_security_policy_that_allows_the_media_gateways() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("dist");
    std::fs::create_dir_all(&web).unwrap();
    std::fs::write(web.join("index.html"), "<html>console</html>").unwrap();
    std::fs::write(web.join("field.html"), "<html>field</html>").unwrap();
    let mut c = config(&db, &dir);
    c.web_dir = web;
    c.media = Some(common::media_config(&[("gw-1", "http://127.0.0.1:8090")]));
    let server = Server::start(c).await;
    for path in ["/", "/field"] {
        let resp = reqwest::get(format!("http://{}{path}", server.addr))
            .await
            .unwrap();
        let h = resp.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self';"), "{path}: {csp}");
        assert!(
            csp.contains("media-src 'self' blob: http://127.0.0.1:8090;"),
            "{path}: {csp}"
        );
        assert!(
            csp.contains("connect-src 'self' http://127.0.0.1:8090;"),
            "{path}: {csp}"
        );
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "same-origin", "{path}");
    }
    server.stop().await;
    db.drop_now().await;
}
