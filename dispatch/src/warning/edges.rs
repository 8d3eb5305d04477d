//! The center's warnings as each edge box gets them: the `warnings` of its retained EdgeConfig
//! (issue 7 item 4). An edge gets the rules of the premises kinds of its cameras, each naming the
//! cameras it holds for, and the messages those rules play (a text, or a recording by SHA-256 and
//! size, which the box fetches from `GET /api/edge-voice/{sha256}`, `crate::api::edge_voice`).
//!
//! [`refresh`] runs in the transaction of every change that can alter a set (a message, the rule
//! set, a camera's edge or premises, a premises' kind): each edge whose set changed gets a new
//! desired revision in `edge_configs`, which the drill worker's publish step sends retained, whole
//! (`crate::drill::scene::sweep`). A set is compared by the hash of its JSON, so an unrelated
//! change publishes nothing.

use super::store::WarningRule as StoredRule;
use bl_proto::CameraId;
use bl_proto::config::{ClockTime, HoursRange};
use bl_proto::event::ViolationKind;
use bl_proto::evidence::Sha256Hex;
use bl_proto::voice::{VoiceContent, VoiceMessage, WarningRule, WarningSet};
use sqlx::PgConnection;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A stored message as the boxes need it: its text, or its recording's hash and size.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MessageRow {
    pub id: String,
    pub text: Option<String>,
    pub sha256: Option<String>,
    pub size: Option<i64>,
}

/// The set for one edge whose cameras are `cameras` (id, premises kind): plain logic.
/// Rules of other premises kinds are left out, and so are messages no rule plays.
pub fn set_for(
    cameras: &[(CameraId, String)],
    rules: &[StoredRule],
    messages: &[MessageRow],
) -> WarningSet {
    let mut out = Vec::new();
    let mut used = BTreeSet::new();
    for rule in rules {
        let on: Vec<CameraId> = cameras
            .iter()
            .filter(|(_, kind)| *kind == rule.premises_kind)
            .map(|(id, _)| id.clone())
            .collect();
        if on.is_empty() {
            continue;
        }
        let Ok(kind) =
            serde_json::from_value::<ViolationKind>(serde_json::Value::String(rule.kind.clone()))
        else {
            tracing::error!(kind = %rule.kind, "a stored warning rule names an unknown violation; left out");
            continue;
        };
        let clock = |v: &Option<String>| v.as_deref().and_then(|v| v.parse::<ClockTime>().ok());
        let active_hours = match (clock(&rule.from), clock(&rule.to)) {
            (Some(from), Some(to)) => Some(HoursRange { from, to }),
            _ => None,
        };
        used.insert(rule.message_id.as_str());
        out.push(WarningRule {
            cameras: on,
            kind,
            message: rule.message_id.clone(),
            active_hours,
        });
    }
    let messages = messages
        .iter()
        .filter(|m| used.contains(m.id.as_str()))
        .filter_map(|m| {
            let content = match (&m.text, &m.sha256, m.size) {
                (Some(text), _, _) => VoiceContent::Text { text: text.clone() },
                (None, Some(sha), Some(size)) => VoiceContent::Audio {
                    sha256: Sha256Hex::new(sha.as_str()).ok()?,
                    size: u64::try_from(size).ok()?,
                },
                _ => return None,
            };
            Some(VoiceMessage {
                id: m.id.clone(),
                content,
            })
        })
        .collect();
    WarningSet {
        messages,
        rules: out,
    }
}

/// What a set is compared by: the SHA-256 of its JSON; `None` for an empty set.
pub fn fingerprint(set: &WarningSet) -> Option<String> {
    if set.is_empty() {
        return None;
    }
    let json = serde_json::to_vec(set).expect("a warning set serialises");
    Some(bl_proto::evidence::sha256_hex(&json).as_str().to_owned())
}

/// Each edge's cameras (of `edge`, or of every edge), with their premises kinds.
async fn cameras(
    conn: &mut PgConnection,
    edge: Option<&str>,
) -> Result<BTreeMap<String, Vec<(CameraId, String)>>, sqlx::Error> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT c.edge_id, c.id, p.kind FROM cameras c JOIN premises p ON p.id = c.premises_id \
          WHERE c.edge_id IS NOT NULL AND ($1::text IS NULL OR c.edge_id = $1) \
          ORDER BY c.edge_id, c.id",
    )
    .bind(edge)
    .fetch_all(conn)
    .await?;
    let mut out: BTreeMap<String, Vec<(CameraId, String)>> = BTreeMap::new();
    for (edge, camera, kind) in rows {
        match CameraId::new(camera.as_str()) {
            Ok(id) => out.entry(edge).or_default().push((id, kind)),
            Err(e) => tracing::error!(camera, err = %e, "registry camera id is not a wire id"),
        }
    }
    Ok(out)
}

async fn rules_and_messages(
    conn: &mut PgConnection,
) -> Result<(Vec<StoredRule>, Vec<MessageRow>), sqlx::Error> {
    let rules = super::store::rules(&mut *conn).await?;
    let messages = sqlx::query_as(
        "SELECT id, text, sha256, octet_length(audio)::bigint AS size FROM voice_messages ORDER BY id",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok((rules, messages))
}

/// The set `edge` should have now.
pub async fn for_edge(conn: &mut PgConnection, edge: &str) -> Result<WarningSet, sqlx::Error> {
    let cameras = cameras(&mut *conn, Some(edge)).await?;
    let (rules, messages) = rules_and_messages(&mut *conn).await?;
    let mine = cameras.get(edge).map(Vec::as_slice).unwrap_or_default();
    Ok(set_for(mine, &rules, &messages))
}

/// In the transaction of a change: gives every edge whose set changed a new desired revision.
/// Returns those edges. Serialised by an advisory lock, so two changes at once cannot both
/// compare against the same old fingerprint.
pub async fn refresh(conn: &mut PgConnection) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('bl.edge_warnings'))")
        .execute(&mut *conn)
        .await?;
    let cameras = cameras(&mut *conn, None).await?;
    let (rules, messages) = rules_and_messages(&mut *conn).await?;
    let stored: HashMap<String, Option<String>> =
        sqlx::query_as("SELECT edge_id, warnings_sha256 FROM edge_configs")
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .collect();
    let edges: BTreeSet<&String> = cameras
        .keys()
        .chain(stored.iter().filter(|(_, h)| h.is_some()).map(|(e, _)| e))
        .collect();
    let mut changed = Vec::new();
    for edge in edges {
        let mine = cameras.get(edge).map(Vec::as_slice).unwrap_or_default();
        let now = fingerprint(&set_for(mine, &rules, &messages));
        if stored.get(edge).cloned().flatten() == now {
            continue;
        }
        let revision = crate::drill::scene::bump(&mut *conn, edge).await?;
        sqlx::query("UPDATE edge_configs SET warnings_sha256 = $2 WHERE edge_id = $1")
            .bind(edge)
            .bind(&now)
            .execute(&mut *conn)
            .await?;
        tracing::info!(
            edge,
            revision,
            "edge's voice warnings changed; new config revision"
        );
        changed.push(edge.clone());
    }
    Ok(changed)
}

/// Whether recording `sha256` is one `edge` plays now (what it may fetch).
pub async fn edge_plays(
    conn: &mut PgConnection,
    edge: &str,
    sha256: &Sha256Hex,
) -> Result<bool, sqlx::Error> {
    let set = for_edge(conn, edge).await?;
    Ok(set
        .messages
        .iter()
        .any(|m| matches!(&m.content, VoiceContent::Audio { sha256: s, .. } if s == sha256)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(premises: &str, kind: &str, message: &str, hours: Option<(&str, &str)>) -> StoredRule {
        StoredRule {
            premises_kind: premises.into(),
            kind: kind.into(),
            message_id: message.into(),
            from: hours.map(|h| h.0.into()),
            to: hours.map(|h| h.1.into()),
        }
    }

    fn messages() -> Vec<MessageRow> {
        vec![
            MessageRow {
                id: "wear-hat-zh".into(),
                text: None,
                sha256: Some("ab".repeat(32)),
                size: Some(32_044),
            },
            MessageRow {
                id: "rodent-zh".into(),
                text: Some("发现鼠迹".into()),
                sha256: None,
                size: None,
            },
            MessageRow {
                id: "unused".into(),
                text: Some("不用".into()),
                sha256: None,
                size: None,
            },
        ]
    }

    fn cam(id: &str) -> CameraId {
        CameraId::new(id).unwrap()
    }

    #[test]
    fn a_canteen_box_gets_its_kinds_rules_for_its_cameras_and_only_the_messages_they_play() {
        let rules = [
            rule(
                "schoolCanteen",
                "noChefHat",
                "wear-hat-zh",
                Some(("06:00", "20:00")),
            ),
            rule("restaurant", "rodent", "rodent-zh", None),
        ];
        let cameras = [
            (cam("k1"), "schoolCanteen".to_string()),
            (cam("k2"), "schoolCanteen".to_string()),
        ];
        let set = set_for(&cameras, &rules, &messages());
        assert_eq!(set.rules.len(), 1);
        assert_eq!(set.rules[0].cameras, vec![cam("k1"), cam("k2")]);
        assert_eq!(set.rules[0].kind, ViolationKind::NoChefHat);
        assert_eq!(set.rules[0].active_hours.unwrap().from.to_string(), "06:00");
        assert_eq!(set.messages.len(), 1);
        assert_eq!(set.messages[0].id, "wear-hat-zh");
        assert!(matches!(
            set.messages[0].content,
            VoiceContent::Audio { size: 32_044, .. }
        ));
        set.validate("warnings").unwrap();
    }

    #[test]
    fn a_box_whose_premises_kind_has_no_rule_gets_an_empty_set_with_no_fingerprint() {
        let rules = [rule("restaurant", "rodent", "rodent-zh", None)];
        let set = set_for(&[(cam("k1"), "pharmacy".into())], &rules, &messages());
        assert!(set.is_empty());
        assert_eq!(fingerprint(&set), None);
        let other = set_for(&[(cam("k1"), "restaurant".into())], &rules, &messages());
        assert!(fingerprint(&other).is_some());
    }
}
