//! The web console and the field app: the files `make web` builds into `web_dir` (`web/dist`),
//! served as they are. Public like the login page — what they show comes from `/api`, which asks
//! for a session. The console routes in the browser (history API), so a console path such as
//! `/map` or a notification's link `/incidents/{id}` answers with `index.html`.
//!
//! Every file goes out with the security headers of [`security_headers`]: a Content-Security-Policy
//! that allows scripts only from this origin (the build has no inline script), media, pictures and
//! requests from this origin and the configured media gateways (evidence blobs, WHEP/WHIP), and no
//! framing.

use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

/// The console's page.
const CONSOLE: &str = "index.html";
/// The field app's page (its own entry, installable as a PWA).
const FIELD: &str = "field.html";

/// `GET /`: the console.
pub async fn console(State(app): State<Arc<AppState>>) -> Response {
    page(&app, CONSOLE).await
}

/// `GET /admin/{page}`: the console opened at an admin screen (`/admin/cameras`, …).
pub async fn console_admin(
    State(app): State<Arc<AppState>>,
    Path(_page): Path<String>,
) -> Response {
    page(&app, CONSOLE).await
}

/// `GET /rooms/{id}` and `GET /join/{invite}`: the console opened at a consult room, for a member
/// or an invited guest (no login; the page checks the invite and shows why it is expired or
/// forged).
pub async fn console_room(
    State(app): State<Arc<AppState>>,
    Path(_room_or_invite): Path<String>,
) -> Response {
    page(&app, CONSOLE).await
}

/// `GET /incidents/{id}`: the console opened at one incident (the link in notifications).
pub async fn console_incident(
    State(app): State<Arc<AppState>>,
    Path(_id): Path<String>,
) -> Response {
    page(&app, CONSOLE).await
}

/// `GET /field`: the field app.
pub async fn field(State(app): State<Arc<AppState>>) -> Response {
    page(&app, FIELD).await
}

/// `GET /assets/{*file}`: the bundles; their names carry a content hash, so they never change.
pub async fn asset(State(app): State<Arc<AppState>>, Path(file): Path<String>) -> Response {
    let Some(rel) = safe_relative(&file) else {
        return missing();
    };
    let path = app.config.web_dir.join("assets").join(rel);
    file_response(&app, &path, "public, max-age=31536000, immutable").await
}

/// `GET /{file}`: a top-level file (web manifest, service worker, icons), or — for a name
/// without an extension — a console path.
pub async fn top_level(State(app): State<Arc<AppState>>, Path(name): Path<String>) -> Response {
    match top_level_target(&name) {
        Target::File(rel) => file_response(&app, &app.config.web_dir.join(rel), "no-cache").await,
        Target::Console => page(&app, CONSOLE).await,
        Target::Missing => missing(),
    }
}

/// What a top-level request names.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    File(PathBuf),
    Console,
    Missing,
}

/// A name with an extension is a file; one without is a console route (`map`, `dashboard`).
fn top_level_target(name: &str) -> Target {
    match safe_relative(name) {
        None => Target::Missing,
        Some(_) if !name.contains('.') => Target::Console,
        Some(rel) => Target::File(rel),
    }
}

/// `path` as a relative path inside the web directory, or `None` when it could leave it or name
/// a hidden file: every segment non-empty, no `.`/`..`, no leading dot, no backslash or NUL.
fn safe_relative(path: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for segment in path.split('/') {
        if segment.is_empty() || segment.starts_with('.') || segment.contains(['\\', '\0', ':']) {
            return None;
        }
        out.push(segment);
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// The `Content-Type` of a file by its extension (only what Vite emits and the app ships).
fn content_type(path: &FsPath) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "webmanifest" => "application/manifest+json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "ttf" => "font/ttf",
        "map" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// An HTML page of the build; when the build is missing, a page that says how to make it.
async fn page(app: &AppState, name: &str) -> Response {
    let dir = &app.config.web_dir;
    let path = dir.join(name);
    if tokio::fs::metadata(&path).await.is_err() {
        return not_built(dir);
    }
    file_response(app, &path, "no-cache").await
}

async fn file_response(app: &AppState, path: &FsPath, cache: &'static str) -> Response {
    match tokio::fs::metadata(path).await {
        Ok(m) if m.is_file() => {}
        _ => return missing(),
    }
    match tokio::fs::read(path).await {
        Ok(bytes) => {
            let mut resp = bytes.into_response();
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(content_type(path)),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
            security_headers(h, &gateway_urls(app));
            resp
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), err = %e, "cannot read a web file");
            missing()
        }
    }
}

/// The base URLs of the configured media gateways (browsers fetch evidence and video from them).
fn gateway_urls(app: &AppState) -> Vec<&str> {
    app.config
        .media
        .iter()
        .flat_map(|m| m.gateway.iter().map(|g| g.url.as_str()))
        .collect()
}

/// The headers that keep the pages from being framed, sniffed or fed foreign scripts.
fn security_headers(h: &mut HeaderMap, gateways: &[&str]) {
    match HeaderValue::from_str(&content_security_policy(gateways)) {
        Ok(csp) => {
            h.insert(header::CONTENT_SECURITY_POLICY, csp);
        }
        Err(e) => tracing::error!(err = %e, "the content security policy is not a header value"),
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    // the field app asks for the location (arrival) and the camera (photos); talk asks for the
    // microphone; nothing else
    h.insert(
        "permissions-policy",
        HeaderValue::from_static(
            "camera=(self), microphone=(self), geolocation=(self), payment=(), usb=(), \
             accelerometer=(), gyroscope=(), magnetometer=()",
        ),
    );
}

/// The Content-Security-Policy of the web apps. Scripts: this origin only (Vite emits module files,
/// no inline script, no eval). Styles: this origin and inline (Vue and Element Plus set `style`
/// attributes; no script can run from them). Pictures, video and requests (fetch, WebSocket, WHEP):
/// this origin and the media gateways; `blob:`/`data:` for photos taken on the phone and icons.
/// A gateway URL that is not a plain origin is left out (logged), never spliced in.
fn content_security_policy(gateways: &[&str]) -> String {
    let mut sources = String::new();
    for url in gateways {
        match origin(url) {
            Some(o) => {
                sources.push(' ');
                sources.push_str(o);
            }
            None => tracing::warn!(
                url,
                "media gateway url left out of the content security policy"
            ),
        }
    }
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data: blob:{sources}; media-src 'self' blob:{sources}; \
         connect-src 'self'{sources}; font-src 'self' data:; worker-src 'self'; manifest-src 'self'; \
         object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// `scheme://host[:port]` of an http(s) URL, or `None` when it has anything a policy could
/// misread (spaces, semicolons, quotes…).
fn origin(url: &str) -> Option<&str> {
    let (scheme, rest) = url.split_once("://")?;
    if !matches!(scheme, "http" | "https") {
        return None;
    }
    let host = rest.split(['/', '?', '#']).next()?;
    let ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    ok.then(|| &url[..scheme.len() + 3 + host.len()])
}

fn missing() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "not found\n",
    )
        .into_response()
}

/// 503 with a page naming the directory and the command that fills it.
fn not_built(dir: &FsPath) -> Response {
    let dir = html_escape(&dir.display().to_string());
    let body = format!(
        "<!doctype html><html lang=\"zh-CN\"><meta charset=\"utf-8\"><title>Brightline</title>\
         <body style=\"font:20px/1.5 sans-serif;margin:3em\"><h1>控制台尚未构建 · The web console is not built</h1>\
         <p>dispatch serves the console from <code>{dir}</code> (config <code>web_dir</code>), which has no \
         <code>index.html</code>.</p><p>Run <code>make web</code> in the repository root to build it, then reload. \
         The API is under <code>/api</code>.</p></body></html>"
    );
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_web_directory() {
        assert_eq!(
            safe_relative("index-Ab12.js"),
            Some(PathBuf::from("index-Ab12.js"))
        );
        assert_eq!(safe_relative("a/b.css"), Some(PathBuf::from("a/b.css")));
        for bad in [
            "",
            "..",
            "../etc/passwd",
            "a/../../b",
            "./a",
            ".env",
            "a//b",
            "a\\b",
            "c:x",
            "/abs",
            "a\0b",
        ] {
            assert_eq!(safe_relative(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn top_level_names_with_an_extension_are_files_and_others_console_routes() {
        assert_eq!(
            top_level_target("field.webmanifest"),
            Target::File("field.webmanifest".into())
        );
        assert_eq!(top_level_target("map"), Target::Console);
        assert_eq!(top_level_target("dashboard"), Target::Console);
        assert_eq!(top_level_target(".git"), Target::Missing);
    }

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(
            content_type(FsPath::new("x/index.html")),
            "text/html; charset=utf-8"
        );
        assert_eq!(
            content_type(FsPath::new("a-1.js")),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(
            content_type(FsPath::new("field.webmanifest")),
            "application/manifest+json"
        );
        assert_eq!(
            content_type(FsPath::new("unknown.bin")),
            "application/octet-stream"
        );
    }

    #[test]
    fn the_policy_allows_this_origin_and_the_gateways_and_no_inline_script() {
        let csp = content_security_policy(&["http://127.0.0.1:8090/", "https://gw.example/base"]);
        assert!(csp.contains("script-src 'self';"), "{csp}");
        assert!(!csp.contains("unsafe-eval"), "{csp}");
        assert!(
            csp.contains("media-src 'self' blob: http://127.0.0.1:8090 https://gw.example;"),
            "{csp}"
        );
        assert!(
            csp.contains("connect-src 'self' http://127.0.0.1:8090 https://gw.example;"),
            "{csp}"
        );
        assert!(csp.ends_with("frame-ancestors 'none'"), "{csp}");
    }

    #[test]
    fn a_gateway_url_that_is_not_a_plain_origin_stays_out_of_the_policy() {
        assert_eq!(origin("http://[::1]:8090/x"), Some("http://[::1]:8090"));
        for bad in [
            "gw.example",
            "ftp://gw.example",
            "http://gw.example; script-src *",
            "http:// x",
            "http://",
        ] {
            assert_eq!(origin(bad), None, "{bad:?}");
        }
        let csp = content_security_policy(&["http://a.example 'unsafe-inline'"]);
        assert!(csp.contains("connect-src 'self';"), "{csp}");
    }

    #[test]
    fn the_not_built_page_escapes_the_directory() {
        assert_eq!(html_escape("<a&\"b>"), "&lt;a&amp;&quot;b&gt;");
    }
}
