//! Cameras as an admin writes them: the body of `POST /api/cameras` and `PUT /api/cameras/{id}`,
//! its rules (plain), and the rows. **Pull credentials are write-only: stored for the gateways'
//! `/internal` source answer, never returned by the public API, never logged or audited.**

use super::cameras::{self, NewCamera};
use super::premises::FieldProblem;
use serde::Deserialize;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

/// Write-only login of a pull camera. Both empty clears stored credentials.
#[derive(Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

// Never print a password, even in a debug log of the request.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .finish()
    }
}

/// A camera to create (`id` required) or the new state of one (`id` absent or equal to the path's).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CameraInput {
    /// Lowercase letters, digits, `-`, `_` (1–64); it names MQTT topics and media paths.
    #[serde(default)]
    pub id: Option<String>,
    pub premises_id: Uuid,
    pub name: String,
    /// `edge` (the premises' edge box pushes it) or `pull` (the gateway pulls `mainStream`).
    pub source: String,
    /// Required for `edge`, absent for `pull`; a box of the same premises.
    #[serde(default)]
    pub edge_id: Option<String>,
    /// `edge`: the stream name the box pushes (e.g. `main`); `pull`: an `rtsp://` or `rtsps://` URL
    /// without credentials.
    pub main_stream: String,
    /// As `mainStream`, for small tiles; optional.
    #[serde(default)]
    pub sub_stream: Option<String>,
    /// Whether the camera (or the box's speaker) can play talk-down audio.
    #[serde(default)]
    pub talk: bool,
    /// `pull` only. Absent keeps the stored credentials (on update); both fields empty clears them.
    #[serde(default)]
    pub credentials: Option<Credentials>,
    /// Where talk-down and voice messages play: `backchannel` (the camera's own speaker, ONVIF
    /// audio backchannel) or `speaker` (the edge box's speaker; edge cameras only). Absent: the
    /// stored value (`backchannel` for a new camera).
    #[serde(default)]
    pub talk_output: Option<String>,
}

fn problem(field: &'static str, message: impl Into<String>) -> FieldProblem {
    FieldProblem {
        field,
        message: message.into(),
    }
}

/// Checks a stream URL a gateway pulls: rtsp(s), a host, and no user or password in it.
fn check_url(field: &'static str, url: &str) -> Result<(), FieldProblem> {
    let rest = url
        .strip_prefix("rtsp://")
        .or_else(|| url.strip_prefix("rtsps://"))
        .ok_or_else(|| problem(field, "must be an rtsp:// or rtsps:// URL"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Err(problem(
            field,
            "must not hold a user or password; put them in credentials, which are never shown",
        ));
    }
    if authority.is_empty() || authority.starts_with(':') {
        return Err(problem(field, "has no host"));
    }
    if url.len() > 1024 || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(problem(
            field,
            "must be at most 1024 characters without spaces",
        ));
    }
    Ok(())
}

/// Checks a stream name an edge box pushes (it becomes part of a media path).
fn check_stream_name(field: &'static str, name: &str) -> Result<(), FieldProblem> {
    bl_proto::id::validate_id("stream name", name).map_err(|e| problem(field, e.to_string()))
}

impl CameraInput {
    /// Every rule that needs no database; the first problem, naming the JSON field.
    pub fn validate(&self) -> Result<(), FieldProblem> {
        if let Some(id) = &self.id {
            bl_proto::id::validate_id("camera id", id).map_err(|e| problem("id", e.to_string()))?;
        }
        if self.name.trim().is_empty() || self.name.chars().count() > 100 {
            return Err(problem("name", "must be 1-100 characters"));
        }
        match self.source.as_str() {
            "edge" => {
                let edge = self
                    .edge_id
                    .as_deref()
                    .ok_or_else(|| problem("edgeId", "is required for an edge camera"))?;
                bl_proto::id::validate_id("edge id", edge)
                    .map_err(|e| problem("edgeId", e.to_string()))?;
                check_stream_name("mainStream", &self.main_stream)?;
                if let Some(sub) = self.sub_stream.as_deref().filter(|s| !s.is_empty()) {
                    check_stream_name("subStream", sub)?;
                }
                if self.credentials.is_some() {
                    return Err(problem(
                        "credentials",
                        "an edge camera has none: its box logs in to the camera",
                    ));
                }
            }
            "pull" => {
                if self.edge_id.is_some() {
                    return Err(problem("edgeId", "must be absent for a pull camera"));
                }
                check_url("mainStream", &self.main_stream)?;
                if let Some(sub) = self.sub_stream.as_deref().filter(|s| !s.is_empty()) {
                    check_url("subStream", sub)?;
                }
                if let Some(c) = &self.credentials {
                    if c.username.is_empty() != c.password.is_empty() {
                        return Err(problem(
                            "credentials",
                            "give both user name and password, or neither to clear them",
                        ));
                    }
                    if c.username.chars().count() > 128 || c.password.chars().count() > 128 {
                        return Err(problem(
                            "credentials",
                            "must be at most 128 characters each",
                        ));
                    }
                }
            }
            other => {
                return Err(problem(
                    "source",
                    format!("{other:?} is not `edge` or `pull`"),
                ));
            }
        }
        match self.talk_output.as_deref() {
            None | Some("backchannel") => {}
            Some("speaker") if self.source == "edge" => {}
            Some("speaker") => {
                return Err(problem(
                    "talkOutput",
                    "`speaker` is the edge box's speaker; a pull camera has no box",
                ));
            }
            Some(other) => {
                return Err(problem(
                    "talkOutput",
                    format!("{other:?} is not `backchannel` or `speaker`"),
                ));
            }
        }
        Ok(())
    }

    fn as_new<'a>(&'a self, id: &'a str) -> NewCamera<'a> {
        NewCamera {
            id,
            premises_id: self.premises_id,
            name: self.name.trim(),
            edge_id: self.edge_id.as_deref(),
            main_stream: &self.main_stream,
            sub_stream: self.sub_stream.as_deref().filter(|s| !s.is_empty()),
            talk: self.talk,
        }
    }
}

/// The problem with the input's edge, if any: it must exist and belong to the same premises.
pub async fn check_edge(
    pool: &PgPool,
    c: &CameraInput,
) -> Result<Option<FieldProblem>, sqlx::Error> {
    let Some(edge) = &c.edge_id else {
        return Ok(None);
    };
    let premises: Option<Uuid> = sqlx::query_scalar("SELECT premises_id FROM edges WHERE id = $1")
        .bind(edge)
        .fetch_optional(pool)
        .await?;
    Ok(match premises {
        None => Some(problem(
            "edgeId",
            format!("no edge box {edge:?}; register it first"),
        )),
        Some(p) if p != c.premises_id => Some(problem(
            "edgeId",
            format!("edge box {edge:?} belongs to another premises"),
        )),
        Some(_) => None,
    })
}

/// Stores (or, for `None`, keeps) the credentials of camera `id`; both empty clears them.
async fn set_credentials(
    tx: &mut Transaction<'_, Postgres>,
    id: &str,
    credentials: Option<&Credentials>,
) -> Result<(), sqlx::Error> {
    let Some(c) = credentials else {
        return Ok(());
    };
    let (user, pass) = if c.username.is_empty() {
        (None, None)
    } else {
        (Some(c.username.as_str()), Some(c.password.as_str()))
    };
    sqlx::query("UPDATE cameras SET pull_username = $2, pull_password = $3 WHERE id = $1")
        .bind(id)
        .bind(user)
        .bind(pass)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Stores (or, for `None`, keeps) where camera `id` plays talk audio.
async fn set_talk_output(
    tx: &mut Transaction<'_, Postgres>,
    id: &str,
    output: Option<&str>,
) -> Result<(), sqlx::Error> {
    if let Some(output) = output {
        sqlx::query("UPDATE cameras SET talk_output = $2 WHERE id = $1")
            .bind(id)
            .bind(output)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Creates the camera `id` (validated before).
pub async fn create(
    tx: &mut Transaction<'_, Postgres>,
    id: &str,
    c: &CameraInput,
) -> Result<(), crate::error::Error> {
    cameras::insert(tx, &c.as_new(id)).await?;
    set_credentials(tx, id, c.credentials.as_ref()).await?;
    set_talk_output(tx, id, c.talk_output.as_deref()).await?;
    Ok(())
}

/// Replaces camera `id` with `c` (validated before); a pull camera that becomes an edge camera
/// loses its credentials. False when no such camera exists.
pub async fn update(
    tx: &mut Transaction<'_, Postgres>,
    id: &str,
    c: &CameraInput,
) -> Result<bool, sqlx::Error> {
    let n = c.as_new(id);
    let done = sqlx::query(
        "UPDATE cameras SET premises_id = $2, name = $3, source = $4, edge_id = $5, main_stream = $6, \
         sub_stream = $7, talk = $8, \
         pull_username = CASE WHEN $4 = 'edge' THEN NULL ELSE pull_username END, \
         pull_password = CASE WHEN $4 = 'edge' THEN NULL ELSE pull_password END, \
         talk_output = CASE WHEN $4 = 'pull' THEN 'backchannel' ELSE COALESCE($9, talk_output) END \
         WHERE id = $1",
    )
    .bind(id)
    .bind(n.premises_id)
    .bind(n.name)
    .bind(if n.edge_id.is_some() { "edge" } else { "pull" })
    .bind(n.edge_id)
    .bind(n.main_stream)
    .bind(n.sub_stream)
    .bind(n.talk)
    .bind(c.talk_output.as_deref())
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1;
    if done {
        set_credentials(tx, id, c.credentials.as_ref()).await?;
    }
    Ok(done)
}

/// Deletes camera `id`. `Ok(false)` when events, photos or re-checks refer to it (they are
/// evidence and stay); the caller answers 409.
pub async fn delete(tx: &mut Transaction<'_, Postgres>, id: &str) -> Result<bool, sqlx::Error> {
    match sqlx::query("DELETE FROM cameras WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await
    {
        Ok(_) => Ok(true),
        Err(sqlx::Error::Database(d)) if d.is_foreign_key_violation() => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pull(url: &str) -> CameraInput {
        CameraInput {
            id: Some("cam-1".into()),
            premises_id: Uuid::nil(),
            name: "营业厅".into(),
            source: "pull".into(),
            edge_id: None,
            main_stream: url.into(),
            sub_stream: None,
            talk: false,
            credentials: None,
            talk_output: None,
        }
    }

    #[test]
    fn talk_output_is_the_cameras_backchannel_or_an_edge_boxs_speaker() {
        let mut c = pull("rtsp://192.0.2.1/101");
        c.talk_output = Some("backchannel".into());
        assert_eq!(field_of(&c), None);
        c.talk_output = Some("speaker".into());
        assert_eq!(field_of(&c), Some("talkOutput"), "a pull camera has no box");
        c.source = "edge".into();
        c.edge_id = Some("zt-e01".into());
        c.main_stream = "main".into();
        assert_eq!(field_of(&c), None);
        c.talk_output = Some("loudspeaker".into());
        assert_eq!(field_of(&c), Some("talkOutput"));
    }

    fn field_of(c: &CameraInput) -> Option<&'static str> {
        c.validate().err().map(|p| p.field)
    }

    #[test]
    fn a_pull_url_is_rtsp_with_a_host_and_no_credentials_in_it() {
        assert_eq!(
            field_of(&pull("rtsp://192.0.2.1/Streaming/Channels/101")),
            None
        );
        assert_eq!(field_of(&pull("rtsps://cam.example.cn:322/live")), None);
        assert_eq!(field_of(&pull("http://192.0.2.1/live")), Some("mainStream"));
        assert_eq!(
            field_of(&pull("rtsp://admin:secret@192.0.2.1/live")),
            Some("mainStream")
        );
        assert_eq!(field_of(&pull("rtsp:///live")), Some("mainStream"));
        let mut c = pull("rtsp://192.0.2.1/101");
        c.sub_stream = Some("rtsp://u:p@192.0.2.1/102".into());
        assert_eq!(field_of(&c), Some("subStream"));
    }

    #[test]
    fn credentials_come_in_pairs_and_only_for_pull_cameras() {
        let mut c = pull("rtsp://192.0.2.1/101");
        c.credentials = Some(Credentials {
            username: "admin".into(),
            password: String::new(),
        });
        assert_eq!(field_of(&c), Some("credentials"));
        c.credentials = Some(Credentials {
            username: String::new(),
            password: String::new(),
        });
        assert_eq!(field_of(&c), None, "both empty clears them");
        c.source = "edge".into();
        c.edge_id = Some("zt-e01".into());
        c.main_stream = "main".into();
        assert_eq!(field_of(&c), Some("credentials"));
        c.credentials = None;
        assert_eq!(field_of(&c), None);
    }

    #[test]
    fn an_edge_camera_names_its_box_and_a_stream_name() {
        let mut c = pull("main");
        c.source = "edge".into();
        assert_eq!(field_of(&c), Some("edgeId"));
        c.edge_id = Some("zt-e01".into());
        assert_eq!(field_of(&c), None);
        c.main_stream = "rtsp://192.0.2.1/101".into();
        assert_eq!(field_of(&c), Some("mainStream"));
        c.source = "cloud".into();
        assert_eq!(field_of(&c), Some("source"));
    }

    #[test]
    fn debug_never_shows_a_password() {
        let c = Credentials {
            username: "admin".into(),
            password: "hunter2-secret".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
