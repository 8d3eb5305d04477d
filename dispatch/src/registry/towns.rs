//! Regions: the district (`mentougou`) and its towns and streets, imported from a TSV file at every
//! start (idempotently: a changed name or centroid is updated, nothing is duplicated).

use serde::Serialize;
use sqlx::PgPool;

/// The district every town belongs to.
pub const DISTRICT_ID: &str = "mentougou";

/// A town or street (镇/街道).
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Town {
    pub id: String,
    pub name_zh: String,
    pub name_en: String,
    /// `town` or `street`.
    pub kind: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
}

/// A line of the towns file that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}: line {line}, column {column}: {message}")]
pub struct TownsFileError {
    pub file: String,
    pub line: usize,
    pub column: &'static str,
    pub message: String,
}

const COLUMNS: [&str; 6] = ["id", "name_zh", "name_en", "kind", "lat", "lon"];

/// Parses the towns TSV: `#` comments and blank lines are skipped, the first other line is the
/// header (which must name the six columns in order), then one town per line.
pub fn parse_tsv(file: &str, text: &str) -> Result<Vec<Town>, TownsFileError> {
    let mut towns: Vec<Town> = Vec::new();
    let mut header_seen = false;
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let fail = |column: &'static str, message: String| TownsFileError {
            file: file.to_owned(),
            line,
            column,
            message,
        };
        let raw = raw.trim_end_matches('\r');
        if raw.trim().is_empty() || raw.starts_with('#') {
            continue;
        }
        let cells: Vec<&str> = raw.split('\t').map(str::trim).collect();
        if !header_seen {
            if cells != COLUMNS {
                return Err(fail(
                    "id",
                    format!("the header must be {:?}", COLUMNS.join("\t")),
                ));
            }
            header_seen = true;
            continue;
        }
        if cells.len() != COLUMNS.len() {
            let column = COLUMNS.get(cells.len()).copied().unwrap_or("lon");
            return Err(fail(
                column,
                format!("expected 6 tab-separated cells, found {}", cells.len()),
            ));
        }
        bl_proto::id::validate_id("town id", cells[0]).map_err(|e| fail("id", e.to_string()))?;
        if towns.iter().any(|t| t.id == cells[0]) {
            return Err(fail("id", format!("town {:?} appears twice", cells[0])));
        }
        for (i, name) in [(1, "name_zh"), (2, "name_en")] {
            if cells[i].is_empty() {
                return Err(fail(name, "is empty".into()));
            }
        }
        if cells[3] != "town" && cells[3] != "street" {
            return Err(fail(
                "kind",
                format!("{:?} is neither `town` nor `street`", cells[3]),
            ));
        }
        let coord = |i: usize, column: &'static str, limit: f64| -> Result<f64, TownsFileError> {
            match cells[i].parse::<f64>() {
                Ok(v) if v.is_finite() && v.abs() <= limit => Ok(v),
                _ => Err(fail(
                    column,
                    format!("{:?} is not a coordinate in degrees", cells[i]),
                )),
            }
        };
        towns.push(Town {
            id: cells[0].to_owned(),
            name_zh: cells[1].to_owned(),
            name_en: cells[2].to_owned(),
            kind: cells[3].to_owned(),
            lat: Some(coord(4, "lat", 90.0)?),
            lon: Some(coord(5, "lon", 180.0)?),
        });
    }
    if towns.is_empty() {
        return Err(TownsFileError {
            file: file.to_owned(),
            line: text.lines().count(),
            column: "id",
            message: "no towns in the file".into(),
        });
    }
    Ok(towns)
}

/// Inserts or updates the district and `towns` in one transaction.
pub async fn import(pool: &PgPool, towns: &[Town]) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO regions (id, parent_id, kind, name_zh, name_en) \
         VALUES ($1, NULL, 'district', '门头沟区', 'Mentougou District') ON CONFLICT (id) DO NOTHING",
    )
    .bind(DISTRICT_ID)
    .execute(&mut *tx)
    .await?;
    for t in towns {
        sqlx::query(
            "INSERT INTO regions (id, parent_id, kind, name_zh, name_en, lat, lon) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (id) DO UPDATE SET kind = $3, name_zh = $4, name_en = $5, lat = $6, lon = $7",
        )
        .bind(&t.id)
        .bind(DISTRICT_ID)
        .bind(&t.kind)
        .bind(&t.name_zh)
        .bind(&t.name_en)
        .bind(t.lat)
        .bind(t.lon)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

/// Every town, or only those in `scope` (None = the whole district), ordered by id.
pub async fn list(pool: &PgPool, scope: Option<&[String]>) -> Result<Vec<Town>, sqlx::Error> {
    sqlx::query_as::<_, Town>(
        "SELECT id, name_zh, name_en, kind, lat, lon FROM regions \
         WHERE kind <> 'district' AND ($1::text[] IS NULL OR id = ANY($1)) ORDER BY id",
    )
    .bind(scope)
    .fetch_all(pool)
    .await
}

/// Whether a town with this id exists.
pub async fn exists(pool: &PgPool, id: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar::<_, bool>(
        "SELECT EXISTS (SELECT 1 FROM regions WHERE id = $1 AND kind <> 'district')",
    )
    .bind(id)
    .fetch_one(pool)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "# comment\nid\tname_zh\tname_en\tkind\tlat\tlon\n\
        zhaitang\t斋堂镇\tZhaitang Town\ttown\t39.9720\t115.6900\n\
        dayu\t大峪街道\tDayu Street\tstreet\t39.9405\t116.1030\n";

    #[test]
    fn a_well_formed_file_gives_every_town_with_its_names_and_centroid() {
        let towns = parse_tsv("t.tsv", GOOD).unwrap();
        assert_eq!(towns.len(), 2);
        assert_eq!(towns[0].id, "zhaitang");
        assert_eq!(towns[0].name_zh, "斋堂镇");
        assert_eq!(towns[1].kind, "street");
        assert_eq!(towns[1].lon, Some(116.103));
    }

    #[test]
    fn a_bad_latitude_is_reported_with_its_line_and_column() {
        let text = GOOD.replace("39.9405", "north");
        let e = parse_tsv("t.tsv", &text).unwrap_err();
        assert_eq!((e.line, e.column), (4, "lat"));
        assert!(e.to_string().contains("t.tsv: line 4, column lat"), "{e}");
    }

    #[test]
    fn a_short_line_names_the_first_missing_column() {
        let text = format!("{GOOD}qingshui\t清水镇\tQingshui Town\n");
        let e = parse_tsv("t.tsv", &text).unwrap_err();
        assert_eq!((e.line, e.column), (5, "kind"));
    }

    #[test]
    fn an_id_that_could_not_be_a_topic_segment_is_rejected() {
        let text = GOOD.replace("zhaitang", "Zhai/tang");
        let e = parse_tsv("t.tsv", &text).unwrap_err();
        assert_eq!((e.line, e.column), (3, "id"));
    }

    #[test]
    fn the_shared_mentougou_file_has_thirteen_towns() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data-towns.tsv");
        let text = std::fs::read_to_string(path).unwrap();
        let towns = parse_tsv(path, &text).unwrap();
        assert_eq!(towns.len(), 13);
        assert!(
            towns
                .iter()
                .any(|t| t.id == "zhaitang" && t.name_zh == "斋堂镇")
        );
    }
}
