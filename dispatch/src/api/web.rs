//! The web console and the field app: the files `make web` builds into `web_dir` (`web/dist`),
//! served as they are. Public like the login page — what they show comes from `/api`, which asks
//! for a session. The console routes in the browser (history API), so a console path such as
//! `/map` or a notification's link `/incidents/{id}` answers with `index.html`.

use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

/// The console's page.
const CONSOLE: &str = "index.html";
/// The field app's page (its own entry, installable as a PWA).
const FIELD: &str = "field.html";

/// `GET /`: the console.
pub async fn console(State(app): State<Arc<AppState>>) -> Response {
    page(&app.config.web_dir, CONSOLE).await
}

/// `GET /admin/{page}`: the console opened at an admin screen (`/admin/cameras`, …).
pub async fn console_admin(
    State(app): State<Arc<AppState>>,
    Path(_page): Path<String>,
) -> Response {
    page(&app.config.web_dir, CONSOLE).await
}

/// `GET /incidents/{id}`: the console opened at one incident (the link in notifications).
pub async fn console_incident(
    State(app): State<Arc<AppState>>,
    Path(_id): Path<String>,
) -> Response {
    page(&app.config.web_dir, CONSOLE).await
}

/// `GET /field`: the field app.
pub async fn field(State(app): State<Arc<AppState>>) -> Response {
    page(&app.config.web_dir, FIELD).await
}

/// `GET /assets/{*file}`: the bundles; their names carry a content hash, so they never change.
pub async fn asset(State(app): State<Arc<AppState>>, Path(file): Path<String>) -> Response {
    let Some(rel) = safe_relative(&file) else {
        return missing();
    };
    let path = app.config.web_dir.join("assets").join(rel);
    file_response(&path, "public, max-age=31536000, immutable").await
}

/// `GET /{file}`: a top-level file (web manifest, service worker, icons), or — for a name
/// without an extension — a console path.
pub async fn top_level(State(app): State<Arc<AppState>>, Path(name): Path<String>) -> Response {
    match top_level_target(&name) {
        Target::File(rel) => file_response(&app.config.web_dir.join(rel), "no-cache").await,
        Target::Console => page(&app.config.web_dir, CONSOLE).await,
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
async fn page(dir: &FsPath, name: &str) -> Response {
    let path = dir.join(name);
    if tokio::fs::metadata(&path).await.is_err() {
        return not_built(dir);
    }
    file_response(&path, "no-cache").await
}

async fn file_response(path: &FsPath, cache: &'static str) -> Response {
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
            h.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            h.insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("same-origin"),
            );
            resp
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), err = %e, "cannot read a web file");
            missing()
        }
    }
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
    fn the_not_built_page_escapes_the_directory() {
        assert_eq!(html_escape("<a&\"b>"), "&lt;a&amp;&quot;b&gt;");
    }
}
