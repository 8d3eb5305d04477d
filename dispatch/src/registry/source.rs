//! Where a gateway gets a camera's media: pulled from a URL with credentials, or pushed by the edge
//! box that owns the camera (DESIGN.md §3.3). Only `/internal/cameras/{id}/source` reads this; the
//! credentials never reach a log or the public API.

use serde::Serialize;
use sqlx::PgPool;

/// A camera's source, as the gateway's answer (`kind` tags it). No `Debug`: it holds a password.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Source {
    /// The gateway pulls `url` (the main stream) or `sub_stream`, logging in with the credentials.
    #[serde(rename_all = "camelCase")]
    Pull {
        camera: String,
        url: String,
        sub_stream: Option<String>,
        username: Option<String>,
        password: Option<String>,
    },
    /// The edge pushes `stream` (or `sub_stream`) on `startLive`.
    #[serde(rename_all = "camelCase")]
    Edge {
        camera: String,
        edge_id: String,
        stream: String,
        sub_stream: Option<String>,
    },
}

impl Source {
    /// `pull` or `edge`, for the audit log.
    pub fn kind(&self) -> &'static str {
        match self {
            Source::Pull { .. } => "pull",
            Source::Edge { .. } => "edge",
        }
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    town_id: String,
    edge_id: Option<String>,
    main_stream: String,
    sub_stream: Option<String>,
    pull_username: Option<String>,
    pull_password: Option<String>,
}

/// The source of camera `id` and its town, or None when no such camera exists.
pub async fn get(pool: &PgPool, id: &str) -> Result<Option<(Source, String)>, sqlx::Error> {
    let row = sqlx::query_as::<_, Row>(
        "SELECT c.id, p.town_id, c.edge_id, c.main_stream, c.sub_stream, c.pull_username, c.pull_password \
         FROM cameras c JOIN premises p ON p.id = c.premises_id WHERE c.id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| {
        let source = match r.edge_id {
            Some(edge_id) => Source::Edge {
                camera: r.id,
                edge_id,
                stream: r.main_stream,
                sub_stream: r.sub_stream,
            },
            None => Source::Pull {
                camera: r.id,
                url: r.main_stream,
                sub_stream: r.sub_stream,
                username: r.pull_username,
                password: r.pull_password,
            },
        };
        (source, r.town_id)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_pull_source_and_an_edge_source_are_tagged_by_kind_in_camel_case() {
        let pull = Source::Pull {
            camera: "c1".into(),
            url: "rtsp://10.0.0.5/main".into(),
            sub_stream: Some("rtsp://10.0.0.5/sub".into()),
            username: Some("viewer".into()),
            password: Some("pw".into()),
        };
        assert_eq!(
            serde_json::to_value(&pull).unwrap(),
            json!({"kind": "pull", "camera": "c1", "url": "rtsp://10.0.0.5/main",
                   "subStream": "rtsp://10.0.0.5/sub", "username": "viewer", "password": "pw"})
        );
        let edge = Source::Edge {
            camera: "c2".into(),
            edge_id: "zt-edge-1".into(),
            stream: "main".into(),
            sub_stream: None,
        };
        assert_eq!(
            serde_json::to_value(&edge).unwrap(),
            json!({"kind": "edge", "camera": "c2", "edgeId": "zt-edge-1", "stream": "main",
                   "subStream": null})
        );
        assert_eq!((pull.kind(), edge.kind()), ("pull", "edge"));
    }
}
