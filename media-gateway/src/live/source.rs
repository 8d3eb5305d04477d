//! Where a camera's media comes from ([`Sources`]): pulled from an RTSP URL with credentials, or
//! pushed by the edge box that owns it. Two implementations: the gateway's config file
//! ([`ConfigSources`]) and dispatch's internal API ([`HttpSources`],
//! `GET /internal/cameras/{id}/source`). `crate::live::sources` is the one line that picks.
//!
//! A [`Source`] holds a password: it has no `Debug` and its URL is logged only through
//! `bl_service::secret::redact_url`.

use std::collections::HashMap;
use std::sync::Arc;

use bl_proto::stream::Stream;
use bl_proto::{CameraId, GatewayNodeId};
use serde::Deserialize;

/// How to reach one camera. No `Debug`: it may hold a password.
#[derive(Clone)]
pub enum Source {
    /// The gateway pulls the camera over RTSP.
    Pull {
        /// Main stream URL.
        url: String,
        /// Sub-stream URL; without one the main stream serves both.
        sub_url: Option<String>,
        /// RTSP login, if any.
        username: Option<String>,
        /// RTSP password, if any.
        password: Option<String>,
    },
    /// The owning edge pushes on `startLive` (not built yet: answered 409 `push_not_supported`).
    Edge {
        /// The edge box that owns the camera.
        edge_id: String,
    },
}

impl Source {
    /// The URL to pull for `stream`, or None for an edge-pushed camera.
    pub fn pull_url(&self, stream: Stream) -> Option<&str> {
        match self {
            Source::Pull { url, sub_url, .. } => Some(match stream {
                Stream::Main => url,
                Stream::Sub => sub_url.as_deref().unwrap_or(url),
            }),
            Source::Edge { .. } => None,
        }
    }
}

/// Why a source could not be looked up (the camera being unknown is `Ok(None)`, not an error).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Dispatch could not be reached or answered something unexpected.
    #[error("dispatch's source API failed: {0}")]
    Upstream(String),
    /// Dispatch says another gateway node owns this camera.
    #[error("dispatch says another gateway node owns this camera")]
    NotOwner,
}

/// Looks up how to reach a camera.
#[async_trait::async_trait]
pub trait Sources: Send + Sync {
    /// The source of `camera`, or None when no such camera is known.
    async fn source(&self, camera: &CameraId) -> Result<Option<Source>, SourceError>;
}

/// Sources from the gateway's config file (`[[camera]]`).
pub struct ConfigSources(HashMap<CameraId, Source>);

impl ConfigSources {
    /// Sources for the listed cameras.
    pub fn new(cameras: impl IntoIterator<Item = (CameraId, Source)>) -> Self {
        Self(cameras.into_iter().collect())
    }
}

#[async_trait::async_trait]
impl Sources for ConfigSources {
    async fn source(&self, camera: &CameraId) -> Result<Option<Source>, SourceError> {
        Ok(self.0.get(camera).cloned())
    }
}

/// Sources from dispatch's `GET /internal/cameras/{id}/source`, authenticated with this node's
/// service token and `X-BL-Node`. Answers are never cached or logged.
pub struct HttpSources {
    base: String,
    token: Arc<str>,
    node: GatewayNodeId,
    http: reqwest::Client,
}

impl HttpSources {
    /// A client for dispatch at `base` (e.g. `http://dispatch:8080`).
    pub fn new(base: &str, token: &str, node: GatewayNodeId) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            token: token.into(),
            node,
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
        }
    }
}

/// The `[[camera]]` tables first, then dispatch: a camera the file lists is served from it even
/// when dispatch knows it too.
pub struct FileThenDispatch {
    /// The config file's cameras.
    pub file: ConfigSources,
    /// Dispatch, for every other camera.
    pub dispatch: HttpSources,
}

#[async_trait::async_trait]
impl Sources for FileThenDispatch {
    async fn source(&self, camera: &CameraId) -> Result<Option<Source>, SourceError> {
        match self.file.source(camera).await? {
            Some(s) => Ok(Some(s)),
            None => self.dispatch.source(camera).await,
        }
    }
}

/// Dispatch's answer (`dispatch/src/registry/source.rs`).
#[derive(Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
enum Wire {
    Pull {
        url: String,
        sub_stream: Option<String>,
        username: Option<String>,
        password: Option<String>,
    },
    Edge {
        edge_id: String,
    },
}

#[async_trait::async_trait]
impl Sources for HttpSources {
    async fn source(&self, camera: &CameraId) -> Result<Option<Source>, SourceError> {
        let url = format!("{}/internal/cameras/{camera}/source", self.base);
        let response = self
            .http
            .get(&url)
            .bearer_auth(&*self.token)
            .header("X-BL-Node", self.node.as_str())
            .send()
            .await
            .map_err(|e| SourceError::Upstream(e.without_url().to_string()))?;
        match response.status().as_u16() {
            200 => {}
            404 => return Ok(None),
            403 => return Err(SourceError::NotOwner),
            s => return Err(SourceError::Upstream(format!("answered {s}"))),
        }
        let wire: Wire = response.json().await.map_err(|e| {
            SourceError::Upstream(format!("unreadable answer: {}", e.without_url()))
        })?;
        Ok(Some(match wire {
            Wire::Pull {
                url,
                sub_stream,
                username,
                password,
            } => Source::Pull {
                url,
                sub_url: sub_stream,
                username,
                password,
            },
            Wire::Edge { edge_id } => Source::Edge { edge_id },
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_camera_without_a_sub_stream_serves_its_main_stream_for_both() {
        let s = Source::Pull {
            url: "rtsp://a/main".into(),
            sub_url: None,
            username: None,
            password: None,
        };
        assert_eq!(s.pull_url(Stream::Sub), Some("rtsp://a/main"));
    }

    #[tokio::test]
    async fn dispatch_is_asked_with_the_service_token_and_node_and_its_statuses_are_read() {
        use axum::http::{HeaderMap, StatusCode};
        use axum::routing::get;
        async fn source(
            axum::extract::Path(id): axum::extract::Path<String>,
            headers: HeaderMap,
        ) -> (StatusCode, String) {
            let authorized =
                headers["authorization"] == "Bearer svc-token" && headers["x-bl-node"] == "gw-1";
            match (authorized, id.as_str()) {
                (false, _) => (StatusCode::UNAUTHORIZED, String::new()),
                (true, "cam-1") => (
                    StatusCode::OK,
                    r#"{"kind":"pull","camera":"cam-1","url":"rtsp://u:p@x/main","subStream":null,"username":"u","password":"p"}"#.into(),
                ),
                (true, "cam-2") => (StatusCode::FORBIDDEN, String::new()),
                _ => (StatusCode::NOT_FOUND, String::new()),
            }
        }
        let app = axum::Router::new().route("/internal/cameras/{id}/source", get(source));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let sources = HttpSources::new(&base, "svc-token", "gw-1".parse().unwrap());
        let got = sources
            .source(&"cam-1".parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.pull_url(Stream::Sub), Some("rtsp://u:p@x/main"));
        assert!(matches!(
            sources.source(&"cam-2".parse().unwrap()).await,
            Err(SourceError::NotOwner)
        ));
        assert!(
            sources
                .source(&"cam-3".parse().unwrap())
                .await
                .unwrap()
                .is_none()
        );
        let wrong = HttpSources::new(&base, "other", "gw-1".parse().unwrap());
        assert!(matches!(
            wrong.source(&"cam-1".parse().unwrap()).await,
            Err(SourceError::Upstream(_))
        ));
    }

    #[test]
    fn dispatchs_answer_is_read_in_camel_case() {
        let w: Wire = serde_json::from_str(
            r#"{"kind":"pull","camera":"c1","url":"rtsp://x/main","subStream":"rtsp://x/sub","username":"v","password":"p"}"#,
        )
        .unwrap();
        assert!(matches!(
            w,
            Wire::Pull {
                sub_stream: Some(_),
                ..
            }
        ));
        let w: Wire = serde_json::from_str(
            r#"{"kind":"edge","camera":"c2","edgeId":"e1","stream":"main","subStream":null}"#,
        )
        .unwrap();
        assert!(matches!(w, Wire::Edge { .. }));
    }
}
