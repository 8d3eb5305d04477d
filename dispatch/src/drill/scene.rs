//! Scene injects (issue 8): a camsim scene played on a real camera so that the edge's **real**
//! detector raises the drill's incident through the real MQTT intake.
//!
//! **A drill scene never raises a real incident:** the scene plays only after the camera's edge
//! has reported the config revision that stages the exercise on that camera (the retained
//! [`EdgeConfig`]'s `exercises`), and the staging is taken out again only after camsim was asked
//! to stop the scene (or once the scene has ended by itself).
//!
//! The life of one staging (`drill_stagings`), each step a guarded update, so several replicas
//! may run the sweep at once:
//!
//! 1. **fire** ([`stage`], in the inject's transaction): the camera is found (the one named, or
//!    the first of the place's premises an edge box watches), the edge's desired config gets a
//!    new revision with the staging in it → `staged`. Without `[drills] camsim_url`, a camera or
//!    with the camera staged by another run → `skipped` with the reason.
//! 2. **publish** ([`sweep`]): every edge whose desired revision is ahead of the published one
//!    gets its whole config, retained.
//! 3. **play**: once the edge's state reports that revision and the camera online, camsim is
//!    asked to play the scene →
//!    `played` (its refusal → `skipped`); no confirmation within `stage_timeout_secs` → `skipped`.
//! 4. **link**: the run's first incident at the premises opened after the staging becomes the
//!    inject's incident (outcome `opened`): the expectations are judged on it.
//! 5. **clear**: after ENDEX camsim is asked to stop the scene, then the staging leaves the
//!    config (a new revision) → `cleared`; a staging past its `until` is cleared the same way.

use super::config::DrillsConfig;
use super::store::RunRow;
use bl_proto::config::{EdgeConfig, StagedExercise};
use bl_proto::{CameraId, EdgeId, V1};
use chrono::{DateTime, Duration, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// The longest a scene may play, seconds (camsim's limit too).
pub const MAX_SCENE_SECS: u64 = 3600;

/// A staging lasts this long past the scene's latest possible end: detection, the episode's
/// minimum duration and clock differences between the center and the box.
const UNTIL_SLACK_SECS: i64 = 60;

/// How long camsim has to answer.
const CAMSIM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Until when the edge marks episodes on a camera staged at `now` for a `secs` scene.
pub fn until(now: DateTime<Utc>, config: &DrillsConfig, secs: u64) -> DateTime<Utc> {
    now + Duration::seconds((config.stage_timeout_secs + secs) as i64 + UNTIL_SLACK_SECS)
}

/// The whole desired config of `edge`: no detection rules of the center's own (the box keeps its
/// own), the live stagings and the center's voice warnings for its cameras.
pub fn edge_config(
    edge: EdgeId,
    revision: u64,
    staged: Vec<StagedExercise>,
    warnings: bl_proto::voice::WarningSet,
) -> EdgeConfig {
    EdgeConfig {
        v: V1,
        edge_id: edge,
        revision,
        timezone: bl_proto::config::DEFAULT_TIMEZONE.to_owned(),
        cameras: Vec::new(),
        exercises: staged,
        warnings,
    }
}

/// What a scene inject is: its fields from the scenario.
pub struct SceneInject<'a> {
    pub inject_id: &'a str,
    pub place: &'a str,
    pub scene: &'a str,
    pub secs: u64,
    pub camera: Option<&'a str>,
}

/// Gives `edge` a new desired revision; returns it. (Also for a change of its voice warnings,
/// `crate::warning::edges::refresh`.)
pub(crate) async fn bump(conn: &mut PgConnection, edge: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO edge_configs (edge_id, revision) VALUES ($1, 1) ON CONFLICT (edge_id) \
         DO UPDATE SET revision = edge_configs.revision + 1 RETURNING revision",
    )
    .bind(edge)
    .fetch_one(conn)
    .await
}

/// Fires a scene inject in the inject's transaction: stages it (`"staged"`) or records why not
/// (`"skipped"`).
pub async fn stage(
    conn: &mut PgConnection,
    config: &DrillsConfig,
    run: &RunRow,
    inject: &SceneInject<'_>,
    now: DateTime<Utc>,
) -> Result<&'static str, sqlx::Error> {
    let Some(premises) = run.places.0.get(inject.place).copied() else {
        return Ok("notFired"); // the scenario was validated against its places
    };
    let camera: Option<(String, String)> = sqlx::query_as(
        "SELECT id, edge_id FROM cameras WHERE premises_id = $1 AND edge_id IS NOT NULL \
         AND ($2::text IS NULL OR id = $2) ORDER BY id LIMIT 1",
    )
    .bind(premises)
    .bind(inject.camera)
    .fetch_optional(&mut *conn)
    .await?;
    let busy: Option<Uuid> = match &camera {
        Some((id, _)) => {
            sqlx::query_scalar(
                "SELECT run_id FROM drill_stagings WHERE camera_id = $1 \
                 AND state IN ('staged', 'playing', 'played')",
            )
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?
        }
        None => None,
    };
    let skipped = match (&config.camsim_url, &camera, busy) {
        (None, _, _) => {
            Some("no [drills] camsim_url is configured: the scene was not played".to_owned())
        }
        (_, None, _) => Some(match inject.camera {
            Some(c) => format!("camera {c} is not a camera of the place watched by an edge box"),
            None => "the place's premises has no camera watched by an edge box".to_owned(),
        }),
        (_, Some((id, _)), Some(other)) => Some(format!(
            "camera {id} plays a scene of drill run {other} already"
        )),
        _ => None,
    };
    let until = until(now, config, inject.secs);
    let (camera_id, edge_id) = camera.unzip();
    let (state, revision, note) = match skipped {
        Some(why) => ("skipped", None, why),
        None => {
            let edge = edge_id.as_deref().expect("a camera was found");
            ("staged", Some(bump(conn, edge).await?), String::new())
        }
    };
    sqlx::query(
        "INSERT INTO drill_stagings (run_id, inject_id, edge_id, camera_id, premises_id, scene, \
         secs, staged_at, until, revision, state, note) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(run.id)
    .bind(inject.inject_id)
    .bind(edge_id.as_deref().filter(|_| revision.is_some()))
    .bind(camera_id.as_deref().filter(|_| revision.is_some()))
    .bind(premises)
    .bind(inject.scene)
    .bind(inject.secs as i32)
    .bind(now)
    .bind(until)
    .bind(revision)
    .bind(state)
    .bind(&note)
    .execute(&mut *conn)
    .await?;
    if state == "skipped" {
        tracing::warn!(run = %run.id, inject = inject.inject_id, reason = %note, "drill scene skipped");
    }
    Ok(state)
}

/// A staging as the run's page shows it: `(inject id, state, camera, note)`.
pub async fn of_run(
    conn: &mut PgConnection,
    run: Uuid,
) -> Result<Vec<(String, String, Option<String>, String)>, sqlx::Error> {
    sqlx::query_as("SELECT inject_id, state, camera_id, note FROM drill_stagings WHERE run_id = $1")
        .bind(run)
        .fetch_all(conn)
        .await
}

/// The line a scene inject shows on the run: what plays for how long, on which camera, and how
/// it went (`staging` from [`of_run`]).
pub fn describe(
    scene: &str,
    secs: u64,
    staging: Option<&(String, String, Option<String>, String)>,
) -> String {
    let head = format!("模拟场景 {scene}（{secs} 秒）");
    let Some((_, state, camera, note)) = staging else {
        return head;
    };
    let state = match state.as_str() {
        "staged" => "已下发边缘盒子，等待确认",
        "playing" => "正在请求播放",
        "played" => "已在摄像头播放",
        "skipped" => "未播放",
        _ => "已撤除",
    };
    let camera = camera
        .as_deref()
        .map(|c| format!(" 摄像头 {c}"))
        .unwrap_or_default();
    if note.is_empty() {
        format!("{head}{camera}：{state}")
    } else {
        format!("{head}{camera}：{state}（{note}）")
    }
}

/// How to reach the edges and camsim: the sweep's I/O.
pub struct SceneLinks {
    pub edges: std::sync::Arc<crate::field::recheck::EdgeLink>,
    pub http: reqwest::Client,
    pub config: DrillsConfig,
}

impl SceneLinks {
    pub fn new(
        edges: std::sync::Arc<crate::field::recheck::EdgeLink>,
        config: DrillsConfig,
    ) -> SceneLinks {
        let http = reqwest::Client::builder()
            .timeout(CAMSIM_TIMEOUT)
            .build()
            .expect("a plain HTTP client builds");
        SceneLinks {
            edges,
            http,
            config,
        }
    }

    /// Asks camsim to play `scene` on `camera` for `secs`, or (`scene` None) to stop.
    async fn camsim(&self, camera: &str, scene: Option<(&str, i32)>) -> Result<String, String> {
        let base = self
            .config
            .camsim_url
            .as_deref()
            .ok_or("no [drills] camsim_url is configured")?;
        let url = format!("{}/cameras/{camera}/scene", base.trim_end_matches('/'));
        let request = match scene {
            Some((scene, secs)) => self
                .http
                .post(&url)
                .json(&serde_json::json!({ "scene": scene, "secs": secs })),
            None => self.http.delete(&url),
        };
        let response = request
            .send()
            .await
            .map_err(|e| format!("camsim at {base} did not answer: {e}"))?;
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        if status.is_success() {
            Ok(match scene {
                Some((scene, secs)) => format!("camsim plays {scene} on {camera} for {secs} s"),
                None => format!("camsim stopped the scene on {camera}"),
            })
        } else {
            Err(format!(
                "camsim refused ({status}): {}",
                body["error"].as_str().unwrap_or("no reason given")
            ))
        }
    }
}

/// One pass over the stagings (see the module's steps 2 to 5).
pub async fn sweep(
    pool: &PgPool,
    links: &SceneLinks,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    clear(pool, links, now).await?;
    time_out(pool, links, now).await?;
    publish(pool, links).await?;
    play(pool, links, now).await?;
    link_incidents(pool).await
}

/// Marks a staging skipped (from `from` states) with `note`; the edge gets a revision without it.
async fn skip(
    pool: &PgPool,
    run: Uuid,
    inject: &str,
    from: &[&str],
    note: &str,
) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let edge: Option<String> = sqlx::query_scalar(
        "UPDATE drill_stagings SET state = 'skipped', note = $3 \
         WHERE run_id = $1 AND inject_id = $2 AND state = ANY($4) RETURNING edge_id",
    )
    .bind(run)
    .bind(inject)
    .bind(note)
    .bind(from)
    .fetch_optional(&mut *tx)
    .await?
    .flatten();
    let Some(edge) = edge else {
        return Ok(false);
    };
    bump(&mut tx, &edge).await?;
    sqlx::query(
        "UPDATE drill_injects SET outcome = 'skipped' WHERE run_id = $1 AND inject_id = $2 \
         AND outcome = 'staged'",
    )
    .bind(run)
    .bind(inject)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::warn!(run = %run, inject, reason = note, "drill scene skipped");
    Ok(true)
}

/// Step 5: stagings of ended runs, or past their `until`, leave the config; a scene still
/// playing after ENDEX is stopped first.
async fn clear(pool: &PgPool, links: &SceneLinks, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    let due: Vec<(Uuid, String, String, String, String, bool)> = sqlx::query_as(
        "SELECT s.run_id, s.inject_id, s.edge_id, s.camera_id, s.state, \
                COALESCE(s.played_at + make_interval(secs => s.secs) > $1, false) \
           FROM drill_stagings s JOIN drill_runs r ON r.id = s.run_id \
          WHERE s.state IN ('staged', 'playing', 'played') AND (r.state = 'ended' OR s.until <= $1)",
    )
    .bind(now)
    .fetch_all(pool)
    .await?;
    for (run, inject, edge, camera, state, still_playing) in due {
        if state != "staged"
            && still_playing
            && let Err(e) = links.camsim(&camera, None).await
        {
            // The staging stays: the scene ends by itself before `until`, then it is cleared.
            tracing::warn!(run = %run, camera, err = %e, "cannot stop a drill scene; keeping its staging");
            continue;
        }
        let mut tx = pool.begin().await?;
        let cleared = sqlx::query(
            "UPDATE drill_stagings SET state = 'cleared', cleared_at = $3 \
             WHERE run_id = $1 AND inject_id = $2 AND state IN ('staged', 'playing', 'played')",
        )
        .bind(run)
        .bind(&inject)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if cleared == 1 {
            bump(&mut tx, &edge).await?;
        }
        tx.commit().await?;
        tracing::info!(run = %run, inject, edge, camera, "drill staging cleared");
    }
    Ok(())
}

/// Step 3's timeout: the edge never reported the staging's revision.
async fn time_out(
    pool: &PgPool,
    links: &SceneLinks,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let late: Vec<(Uuid, String, String, i64)> = sqlx::query_as(
        "SELECT run_id, inject_id, edge_id, revision FROM drill_stagings \
          WHERE state = 'staged' AND staged_at + make_interval(secs => $2) <= $1",
    )
    .bind(now)
    .bind(links.config.stage_timeout_secs as f64)
    .fetch_all(pool)
    .await?;
    for (run, inject, edge, revision) in late {
        let note = format!(
            "edge {edge} did not report config revision {revision} with the camera online within {} s: the scene was not played",
            links.config.stage_timeout_secs
        );
        skip(pool, run, &inject, &["staged"], &note).await?;
    }
    Ok(())
}

/// Step 2: every edge whose desired config is ahead of the published one.
async fn publish(pool: &PgPool, links: &SceneLinks) -> Result<(), sqlx::Error> {
    if !links.edges.is_configured() {
        return Ok(()); // no [mqtt]: stagings time out, saying so
    }
    let behind: Vec<(String, i64)> =
        sqlx::query_as("SELECT edge_id, revision FROM edge_configs WHERE published < revision")
            .fetch_all(pool)
            .await?;
    for (edge, revision) in behind {
        let staged: Vec<(String, Uuid, DateTime<Utc>)> = sqlx::query_as(
            "SELECT s.camera_id, s.run_id, s.until FROM drill_stagings s \
              WHERE s.edge_id = $1 AND s.state IN ('staged', 'playing', 'played') ORDER BY s.camera_id",
        )
        .bind(&edge)
        .fetch_all(pool)
        .await?;
        let exercises: Vec<(String, DateTime<Utc>, CameraId)> = {
            let mut out = Vec::new();
            for (camera, run, until) in staged {
                let exercise: String =
                    sqlx::query_scalar("SELECT exercise FROM drill_runs WHERE id = $1")
                        .bind(run)
                        .fetch_one(pool)
                        .await?;
                match CameraId::new(camera.as_str()) {
                    Ok(id) => out.push((exercise, until, id)),
                    Err(e) => {
                        tracing::error!(camera, err = %e, "registry camera id is not a wire id")
                    }
                }
            }
            out
        };
        let Ok(edge_id) = EdgeId::new(edge.as_str()) else {
            tracing::error!(edge, "registry edge id is not a wire id");
            continue;
        };
        let warnings = crate::warning::edges::for_edge(&mut *pool.acquire().await?, &edge).await?;
        let config = edge_config(
            edge_id.clone(),
            revision as u64,
            exercises
                .into_iter()
                .map(|(run, until, camera_id)| StagedExercise {
                    camera_id,
                    run,
                    until: bl_proto::time::to_millis(until),
                })
                .collect(),
            warnings,
        );
        match links.edges.publish_config(&config) {
            Ok(()) => {
                sqlx::query(
                    "UPDATE edge_configs SET published = $2 WHERE edge_id = $1 AND published < $2",
                )
                .bind(&edge)
                .bind(revision)
                .execute(pool)
                .await?;
                tracing::info!(
                    edge,
                    revision,
                    stagings = config.exercises.len(),
                    "edge config published"
                );
            }
            Err(e) => {
                tracing::warn!(edge, revision, err = %e, "cannot publish an edge config; retrying")
            }
        }
    }
    Ok(())
}

/// Step 3: scenes whose staging the edge confirmed are played, once the edge also reports the
/// camera online (a scene played to a box that gets no frames would be lost).
async fn play(pool: &PgPool, links: &SceneLinks, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    let confirmed: Vec<(Uuid, String, String, String, i32)> = sqlx::query_as(
        "SELECT s.run_id, s.inject_id, s.camera_id, s.scene, s.secs \
           FROM drill_stagings s JOIN edge_status e ON e.edge_id = s.edge_id \
          WHERE s.state = 'staged' AND e.online \
            AND (e.state ->> 'configRevision')::bigint >= s.revision \
            AND EXISTS (SELECT 1 FROM jsonb_array_elements(e.state -> 'cameras') c \
                         WHERE c ->> 'cameraId' = s.camera_id AND (c ->> 'online')::boolean)",
    )
    .fetch_all(pool)
    .await?;
    for (run, inject, camera, scene, secs) in confirmed {
        let claimed = sqlx::query(
            "UPDATE drill_stagings SET state = 'playing' \
             WHERE run_id = $1 AND inject_id = $2 AND state = 'staged'",
        )
        .bind(run)
        .bind(&inject)
        .execute(pool)
        .await?
        .rows_affected();
        if claimed != 1 {
            continue; // another replica has it
        }
        match links.camsim(&camera, Some((&scene, secs))).await {
            Ok(note) => {
                let played = sqlx::query(
                    "UPDATE drill_stagings SET state = 'played', played_at = $3, note = $4 \
                     WHERE run_id = $1 AND inject_id = $2 AND state = 'playing'",
                )
                .bind(run)
                .bind(&inject)
                .bind(now)
                .bind(&note)
                .execute(pool)
                .await?
                .rows_affected();
                if played == 1 {
                    tracing::info!(run = %run, inject, camera, scene, "drill scene playing");
                } else if let Err(e) = links.camsim(&camera, None).await {
                    // cleared (ENDEX) while camsim was asked: take the scene back off
                    tracing::warn!(run = %run, camera, err = %e, "cannot stop a drill scene");
                }
            }
            Err(note) => {
                skip(pool, run, &inject, &["playing"], &note).await?;
            }
        }
    }
    Ok(())
}

/// Step 4: the run's first incident at the premises since the staging is the inject's.
async fn link_incidents(pool: &PgPool) -> Result<(), sqlx::Error> {
    let linked = sqlx::query(
        "UPDATE drill_injects j SET incident_id = i.id, outcome = 'opened' \
           FROM drill_stagings s JOIN drill_runs r ON r.id = s.run_id, \
                LATERAL (SELECT id FROM incidents \
                          WHERE exercise = r.exercise AND premises_id = s.premises_id \
                            AND opened_at >= s.staged_at ORDER BY opened_at, id LIMIT 1) i \
          WHERE j.run_id = s.run_id AND j.inject_id = s.inject_id \
            AND j.outcome = 'staged' AND j.incident_id IS NULL",
    )
    .execute(pool)
    .await?
    .rows_affected();
    if linked > 0 {
        tracing::info!(injects = linked, "drill scenes linked to their incidents");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_staging_outlasts_the_wait_for_the_edge_and_the_scene() {
        let now: DateTime<Utc> = "2026-11-24T14:00:00Z".parse().unwrap();
        let c = DrillsConfig::default();
        assert_eq!(
            until(now, &c, 40),
            now + Duration::seconds(90 + 40 + UNTIL_SLACK_SECS)
        );
    }

    #[test]
    fn the_edge_config_keeps_the_boxes_rules_and_validates() {
        let c = edge_config(
            EdgeId::new("dy-box").unwrap(),
            3,
            vec![StagedExercise {
                camera_id: CameraId::new("dy-kitchen").unwrap(),
                run: "run-1".into(),
                until: "2026-11-24T14:02:00Z".parse().unwrap(),
            }],
            Default::default(),
        );
        assert!(c.cameras.is_empty());
        let back: EdgeConfig = bl_proto::decode(&bl_proto::encode(&c)).unwrap();
        assert_eq!(back, c);
    }
}
