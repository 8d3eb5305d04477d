//! `voice_messages` and `warning_rules` (migration 0025): the rows, and the rules' checks (plain).

use crate::registry::premises::KINDS;
use bl_proto::config::ClockTime;
use bl_proto::event::ViolationKind;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// A voice message as the admin screen lists it (the audio itself is fetched separately).
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VoiceMessage {
    /// Lowercase letters, digits, `-`, `_` (1–64), e.g. `wear-hat-zh`: what rules and boxes name.
    pub id: String,
    /// Shown in admin and on incident timelines.
    pub name: String,
    /// The text espeak-ng speaks; null for an uploaded recording.
    pub text: Option<String>,
    /// SHA-256 of the uploaded WAV; null for a text.
    pub sha256: Option<String>,
    /// Length of the recording; null for a text.
    pub duration_ms: Option<i32>,
    pub updated_at: DateTime<Utc>,
}

/// What a message is made of.
pub enum Content<'a> {
    Text(&'a str),
    Audio {
        bytes: &'a [u8],
        sha256: &'a str,
        duration_ms: i32,
    },
}

pub async fn list(pool: &PgPool) -> Result<Vec<VoiceMessage>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, name, text, sha256, duration_ms, updated_at FROM voice_messages ORDER BY id",
    )
    .fetch_all(pool)
    .await
}

/// Creates or replaces message `id`.
pub async fn put(
    conn: &mut PgConnection,
    id: &str,
    name: &str,
    content: Content<'_>,
    by: Uuid,
    at: DateTime<Utc>,
) -> Result<VoiceMessage, sqlx::Error> {
    let (text, audio, sha256, duration) = match content {
        Content::Text(t) => (Some(t), None, None, None),
        Content::Audio {
            bytes,
            sha256,
            duration_ms,
        } => (None, Some(bytes), Some(sha256), Some(duration_ms)),
    };
    sqlx::query_as(
        "INSERT INTO voice_messages (id, name, text, audio, sha256, duration_ms, updated_at, updated_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, text = EXCLUDED.text, \
            audio = EXCLUDED.audio, sha256 = EXCLUDED.sha256, duration_ms = EXCLUDED.duration_ms, \
            updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by \
         RETURNING id, name, text, sha256, duration_ms, updated_at",
    )
    .bind(id)
    .bind(name)
    .bind(text)
    .bind(audio)
    .bind(sha256)
    .bind(duration)
    .bind(at)
    .bind(by)
    .fetch_one(conn)
    .await
}

/// The WAV bytes of message `id`, if it is a recording.
pub async fn audio(pool: &PgPool, id: &str) -> Result<Option<Vec<u8>>, sqlx::Error> {
    sqlx::query_scalar("SELECT audio FROM voice_messages WHERE id = $1 AND audio IS NOT NULL")
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// Deleted; `Ok(None)` when no such message; `Ok(Some(false))` when a rule still uses it.
pub async fn delete(conn: &mut PgConnection, id: &str) -> Result<Option<bool>, sqlx::Error> {
    match sqlx::query("DELETE FROM voice_messages WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await
    {
        Ok(r) if r.rows_affected() == 0 => Ok(None),
        Ok(_) => Ok(Some(true)),
        Err(sqlx::Error::Database(d)) if d.is_foreign_key_violation() => Ok(Some(false)),
        Err(e) => Err(e),
    }
}

/// One warning rule: in premises of `premisesKind`, an episode of `kind` starting within the local
/// hours `from`–`to` (both absent: all day) plays `messageId` at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WarningRule {
    /// `schoolCanteen`, `restaurant`, `centralKitchen`, `pharmacy` or `other`.
    pub premises_kind: String,
    /// The violation, e.g. `noChefHat`.
    pub kind: String,
    pub message_id: String,
    /// `HH:MM`, local time (the opening hours' start); with `to`.
    #[serde(default)]
    #[sqlx(rename = "hours_from")]
    pub from: Option<String>,
    /// `HH:MM`, local time (the end; earlier than `from` spans midnight).
    #[serde(default)]
    #[sqlx(rename = "hours_to")]
    pub to: Option<String>,
}

/// A rule set's first problem: the JSON field (`rules[2].from`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleProblem {
    pub field: String,
    pub message: String,
}

/// Checks a whole rule set: known premises kinds and violations, valid hours, one rule per
/// (premises kind, violation). Messages must exist (checked by the caller against the table).
pub fn check_rules(rules: &[WarningRule]) -> Result<(), RuleProblem> {
    let mut seen = std::collections::HashSet::new();
    for (i, r) in rules.iter().enumerate() {
        let at = |field: &str, message: String| RuleProblem {
            field: format!("rules[{i}].{field}"),
            message,
        };
        if !KINDS.contains(&r.premises_kind.as_str()) {
            return Err(at(
                "premisesKind",
                format!("{:?} is not one of {}", r.premises_kind, KINDS.join(", ")),
            ));
        }
        let known = ViolationKind::ALL
            .iter()
            .any(|k| crate::intake::edge::json_str(k) == r.kind);
        if !known {
            return Err(at("kind", format!("{:?} is not a violation kind", r.kind)));
        }
        match (&r.from, &r.to) {
            (None, None) => {}
            (Some(from), Some(to)) => {
                for (field, v) in [("from", from), ("to", to)] {
                    v.parse::<ClockTime>()
                        .map_err(|e| at(field, e.to_string()))?;
                }
                if from == to {
                    return Err(at("to", "must differ from `from`".into()));
                }
            }
            _ => {
                return Err(at(
                    "to",
                    "give both `from` and `to`, or neither for all day".into(),
                ));
            }
        }
        if !seen.insert((&r.premises_kind, &r.kind)) {
            return Err(at(
                "kind",
                format!(
                    "a second rule for {} in {}: one per premises kind and violation",
                    r.kind, r.premises_kind
                ),
            ));
        }
    }
    Ok(())
}

pub async fn rules(db: impl sqlx::PgExecutor<'_>) -> Result<Vec<WarningRule>, sqlx::Error> {
    sqlx::query_as(
        "SELECT premises_kind, kind, message_id, hours_from, hours_to FROM warning_rules \
         ORDER BY premises_kind, kind",
    )
    .fetch_all(db)
    .await
}

/// Replaces the rule set (checked before). `Err` of a foreign key: a message does not exist.
pub async fn set_rules(conn: &mut PgConnection, rules: &[WarningRule]) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM warning_rules")
        .execute(&mut *conn)
        .await?;
    for r in rules {
        sqlx::query(
            "INSERT INTO warning_rules (premises_kind, kind, message_id, hours_from, hours_to) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&r.premises_kind)
        .bind(&r.kind)
        .bind(&r.message_id)
        .bind(&r.from)
        .bind(&r.to)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(kind: &str, from: Option<&str>, to: Option<&str>) -> WarningRule {
        WarningRule {
            premises_kind: "schoolCanteen".into(),
            kind: kind.into(),
            message_id: "wear-hat-zh".into(),
            from: from.map(Into::into),
            to: to.map(Into::into),
        }
    }

    #[test]
    fn a_canteens_no_hat_rule_in_opening_hours_and_an_all_day_rodent_rule_are_fine() {
        let rules = [
            rule("noChefHat", Some("06:00"), Some("20:00")),
            rule("rodent", None, None),
        ];
        assert_eq!(check_rules(&rules), Ok(()));
    }

    #[test]
    fn a_bad_hour_an_unknown_kind_or_a_second_rule_for_the_same_pair_names_its_field() {
        let field = |rules: &[WarningRule]| check_rules(rules).unwrap_err().field;
        assert_eq!(
            field(&[rule("noChefHat", Some("6"), Some("20:00"))]),
            "rules[0].from"
        );
        assert_eq!(
            field(&[rule("noChefHat", Some("06:00"), None)]),
            "rules[0].to"
        );
        assert_eq!(field(&[rule("noHairnet", None, None)]), "rules[0].kind");
        let twice = [rule("noChefHat", None, None), rule("noChefHat", None, None)];
        assert_eq!(field(&twice), "rules[1].kind");
        let mut other = rule("noChefHat", None, None);
        other.premises_kind = "school".into();
        assert_eq!(field(&[other]), "rules[0].premisesKind");
    }
}
