//! Premises: the licensed businesses (school canteens, restaurants, central kitchens, pharmacies)
//! that carry cameras. Validation is plain code shared by the JSON API and the CSV import.

use crate::paging::{Page, Paging};
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

/// What a premises is; stored and sent as the camelCase name.
pub const KINDS: [&str; 5] = [
    "schoolCanteen",
    "restaurant",
    "centralKitchen",
    "pharmacy",
    "other",
];

/// Risk grades, A (lowest risk) to D (highest), as the food-safety grading scheme has them.
pub const RISK_GRADES: [&str; 4] = ["A", "B", "C", "D"];

/// A premises as stored and as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Premises {
    pub id: Uuid,
    pub name: String,
    pub licence_no: String,
    pub kind: String,
    pub address: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub town_id: String,
    pub grid_id: Option<String>,
    pub risk_grade: String,
    pub person_in_charge: String,
    pub phone: String,
}

/// A premises to create (the JSON body of `POST /api/premises`, or one CSV line).
#[derive(Debug, Clone, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewPremises {
    pub name: String,
    pub licence_no: String,
    pub kind: String,
    pub address: String,
    #[serde(default)]
    pub lat: Option<f64>,
    #[serde(default)]
    pub lon: Option<f64>,
    pub town_id: String,
    #[serde(default)]
    pub grid_id: Option<String>,
    pub risk_grade: String,
    pub person_in_charge: String,
    pub phone: String,
}

/// One field that breaks a rule: the field's name (as in the CSV header) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    pub field: &'static str,
    pub message: String,
}

fn problem(field: &'static str, message: impl Into<String>) -> FieldProblem {
    FieldProblem {
        field,
        message: message.into(),
    }
}

impl NewPremises {
    /// Checks every rule that needs no database; the first problem is returned.
    pub fn validate(&self) -> Result<(), FieldProblem> {
        let text = |field, v: &str, max: usize| {
            if v.trim().is_empty() {
                Err(problem(field, "is empty"))
            } else if v.chars().count() > max {
                Err(problem(field, format!("is longer than {max} characters")))
            } else {
                Ok(())
            }
        };
        text("name", &self.name, 200)?;
        text("licence_no", &self.licence_no, 40)?;
        if !self
            .licence_no
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-')
        {
            return Err(problem(
                "licence_no",
                "may hold only letters, digits and '-'",
            ));
        }
        if !KINDS.contains(&self.kind.as_str()) {
            return Err(problem(
                "kind",
                format!("{:?} is not one of {}", self.kind, KINDS.join(", ")),
            ));
        }
        text("address", &self.address, 300)?;
        match (self.lat, self.lon) {
            (None, None) => {}
            (Some(lat), Some(lon)) => {
                if !(-90.0..=90.0).contains(&lat) {
                    return Err(problem("lat", "must be between -90 and 90"));
                }
                if !(-180.0..=180.0).contains(&lon) {
                    return Err(problem("lon", "must be between -180 and 180"));
                }
            }
            (Some(_), None) => return Err(problem("lon", "is missing while lat is given")),
            (None, Some(_)) => return Err(problem("lat", "is missing while lon is given")),
        }
        bl_proto::id::validate_id("town id", &self.town_id)
            .map_err(|e| problem("town", e.to_string()))?;
        if let Some(grid) = &self.grid_id {
            bl_proto::id::validate_id("grid id", grid)
                .map_err(|e| problem("grid", e.to_string()))?;
        }
        if !RISK_GRADES.contains(&self.risk_grade.as_str()) {
            return Err(problem("risk_grade", "must be A, B, C or D"));
        }
        text("person_in_charge", &self.person_in_charge, 100)?;
        let digits = self.phone.chars().filter(char::is_ascii_digit).count();
        if !(5..=20).contains(&digits)
            || !self
                .phone
                .chars()
                .all(|c| c.is_ascii_digit() || "+- ".contains(c))
        {
            return Err(problem(
                "phone",
                "must be 5-20 digits, optionally with '+', '-' or spaces",
            ));
        }
        Ok(())
    }
}

/// Filters and page of `GET /api/premises`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListQuery {
    pub town: Option<String>,
    pub kind: Option<String>,
    /// Part of the name, address or licence number.
    pub q: Option<String>,
    /// 1-based page number. Default 1.
    pub page: Option<u32>,
    /// Items per page, 1-500. Default 50.
    pub per_page: Option<u32>,
}

const COLUMNS_SQL: &str = "id, name, licence_no, kind, address, lat, lon, town_id, grid_id, \
     risk_grade, person_in_charge, phone";

/// Lists premises within `scope` (None = the district) matching `query`.
pub async fn list(
    pool: &PgPool,
    scope: Option<&[String]>,
    query: &ListQuery,
) -> Result<Page<Premises>, sqlx::Error> {
    let paging = Paging::new(query.page, query.per_page);
    let pattern = query.q.as_deref().filter(|q| !q.is_empty()).map(|q| {
        let escaped = q
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        format!("%{escaped}%")
    });
    const WHERE: &str = "($1::text[] IS NULL OR town_id = ANY($1)) AND ($2::text IS NULL OR town_id = $2) \
         AND ($3::text IS NULL OR kind = $3) \
         AND ($4::text IS NULL OR name ILIKE $4 OR address ILIKE $4 OR licence_no ILIKE $4)";
    let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM premises WHERE {WHERE}"
    )))
    .bind(scope)
    .bind(&query.town)
    .bind(&query.kind)
    .bind(&pattern)
    .fetch_one(pool)
    .await?;
    let items = sqlx::query_as::<_, Premises>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS_SQL} FROM premises WHERE {WHERE} ORDER BY town_id, name, id LIMIT $5 OFFSET $6"
    )))
    .bind(scope)
    .bind(&query.town)
    .bind(&query.kind)
    .bind(&pattern)
    .bind(paging.limit())
    .bind(paging.offset())
    .fetch_all(pool)
    .await?;
    Ok(paging.of(items, total))
}

/// One premises by id.
pub async fn get(pool: &PgPool, id: Uuid) -> Result<Option<Premises>, sqlx::Error> {
    sqlx::query_as::<_, Premises>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS_SQL} FROM premises WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// Inserts a validated premises inside `tx` and returns it.
pub async fn insert(
    tx: &mut Transaction<'_, Postgres>,
    p: &NewPremises,
) -> Result<Premises, sqlx::Error> {
    sqlx::query_as::<_, Premises>(sqlx::AssertSqlSafe(format!(
        "INSERT INTO premises (id, name, licence_no, kind, address, lat, lon, town_id, grid_id, risk_grade, \
         person_in_charge, phone) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
         RETURNING {COLUMNS_SQL}"
    )))
    .bind(Uuid::now_v7())
    .bind(p.name.trim())
    .bind(p.licence_no.trim())
    .bind(&p.kind)
    .bind(p.address.trim())
    .bind(p.lat)
    .bind(p.lon)
    .bind(&p.town_id)
    .bind(&p.grid_id)
    .bind(&p.risk_grade)
    .bind(p.person_in_charge.trim())
    .bind(p.phone.trim())
    .fetch_one(&mut **tx)
    .await
}

/// Which of `town_id`/`grid_id` pairs do not exist: for each input, `None` when fine or the field
/// name and message of the problem.
pub async fn check_references(
    pool: &PgPool,
    rows: &[&NewPremises],
) -> Result<Vec<Option<FieldProblem>>, sqlx::Error> {
    let towns: Vec<String> = sqlx::query_scalar("SELECT id FROM regions WHERE kind <> 'district'")
        .fetch_all(pool)
        .await?;
    let grids: Vec<(String, String)> = sqlx::query_as("SELECT id, town_id FROM grids")
        .fetch_all(pool)
        .await?;
    let licences: Vec<String> = rows
        .iter()
        .map(|r| r.licence_no.trim().to_owned())
        .collect();
    let taken: Vec<String> =
        sqlx::query_scalar("SELECT licence_no FROM premises WHERE licence_no = ANY($1)")
            .bind(&licences)
            .fetch_all(pool)
            .await?;
    Ok(rows
        .iter()
        .map(|r| {
            if !towns.contains(&r.town_id) {
                return Some(problem(
                    "town",
                    format!("town {:?} does not exist", r.town_id),
                ));
            }
            if let Some(g) = &r.grid_id {
                match grids.iter().find(|(id, _)| id == g) {
                    None => return Some(problem("grid", format!("grid {g:?} does not exist"))),
                    Some((_, town)) if *town != r.town_id => {
                        return Some(problem(
                            "grid",
                            format!("grid {g:?} belongs to town {town:?}"),
                        ));
                    }
                    Some(_) => {}
                }
            }
            if taken.iter().any(|l| l == r.licence_no.trim()) {
                return Some(problem(
                    "licence_no",
                    "a premises with this licence number exists already",
                ));
            }
            None
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> NewPremises {
        NewPremises {
            name: "斋堂镇中心小学食堂".into(),
            licence_no: "JY31101090012345".into(),
            kind: "schoolCanteen".into(),
            address: "北京市门头沟区斋堂镇斋堂村1号".into(),
            lat: Some(39.97),
            lon: Some(115.69),
            town_id: "zhaitang".into(),
            grid_id: None,
            risk_grade: "B".into(),
            person_in_charge: "王芳".into(),
            phone: "010-69812345".into(),
        }
    }

    #[test]
    fn a_complete_premises_is_valid() {
        sample().validate().unwrap();
    }

    #[test]
    fn an_unknown_kind_names_the_kind_field() {
        let p = NewPremises {
            kind: "bakery".into(),
            ..sample()
        };
        assert_eq!(p.validate().unwrap_err().field, "kind");
    }

    #[test]
    fn a_latitude_without_longitude_is_rejected() {
        let p = NewPremises {
            lon: None,
            ..sample()
        };
        assert_eq!(p.validate().unwrap_err().field, "lon");
    }

    #[test]
    fn a_phone_with_letters_is_rejected() {
        let p = NewPremises {
            phone: "call me".into(),
            ..sample()
        };
        assert_eq!(p.validate().unwrap_err().field, "phone");
    }

    #[test]
    fn a_risk_grade_outside_a_to_d_is_rejected() {
        let p = NewPremises {
            risk_grade: "E".into(),
            ..sample()
        };
        assert_eq!(p.validate().unwrap_err().field, "risk_grade");
    }
}
