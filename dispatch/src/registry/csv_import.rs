//! Parsing a CSV file of premises (`POST /api/premises/import`). Pure: text in, rows or per-line
//! problems out. The header names the columns (any order); `lat`, `lon` and `grid` may be absent.

use super::premises::NewPremises;
use crate::error::Detail;

/// Columns a file must have.
pub const REQUIRED: [&str; 8] = [
    "name",
    "licence_no",
    "kind",
    "address",
    "town",
    "risk_grade",
    "person_in_charge",
    "phone",
];
/// Columns a file may have.
pub const OPTIONAL: [&str; 3] = ["lat", "lon", "grid"];

/// One parsed line of the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The file line the record starts on (the header is line 1).
    pub line: u64,
    pub premises: NewPremises,
}

fn detail(line: u64, column: &str, code: &'static str, message: impl Into<String>) -> Detail {
    Detail {
        line,
        column: column.to_owned(),
        code,
        message: message.into(),
    }
}

/// Parses `text`; returns every row, or every problem found (each naming line and column).
pub fn parse(text: &str) -> Result<Vec<Row>, Vec<Detail>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(str::to_owned).collect(),
        Err(e) => {
            return Err(vec![detail(
                1,
                "",
                "unreadable",
                format!("cannot read the header: {e}"),
            )]);
        }
    };
    let mut problems = Vec::new();
    for (i, h) in headers.iter().enumerate() {
        if !REQUIRED.contains(&h.as_str()) && !OPTIONAL.contains(&h.as_str()) {
            problems.push(detail(
                1,
                h,
                "unknown_column",
                format!("unknown column (column {})", i + 1),
            ));
        } else if headers[..i].contains(h) {
            problems.push(detail(1, h, "duplicate_column", "column appears twice"));
        }
    }
    for r in REQUIRED {
        if !headers.iter().any(|h| h == r) {
            problems.push(detail(
                1,
                r,
                "missing_column",
                "required column is missing from the header",
            ));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let col = |name: &str| headers.iter().position(|h| h == name);
    let mut rows: Vec<Row> = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                problems.push(detail(
                    line,
                    "",
                    "unreadable",
                    format!("cannot read this record: {e}"),
                ));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        if record.len() != headers.len() {
            let column = headers.get(record.len()).map_or("", String::as_str);
            problems.push(detail(
                line,
                column,
                "field_count",
                format!("expected {} fields, found {}", headers.len(), record.len()),
            ));
            continue;
        }
        let get = |name: &str| col(name).map_or("", |i| &record[i]).to_owned();
        let opt = |name: &str| Some(get(name)).filter(|v| !v.is_empty());
        let number = |name: &str| -> Result<Option<f64>, Detail> {
            match opt(name) {
                None => Ok(None),
                Some(v) => v
                    .parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .map(Some)
                    .ok_or_else(|| {
                        detail(line, name, "not_a_number", format!("{v:?} is not a number"))
                    }),
            }
        };
        let (lat, lon) = match (number("lat"), number("lon")) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => {
                problems.push(e);
                continue;
            }
        };
        let premises = NewPremises {
            name: get("name"),
            licence_no: get("licence_no"),
            kind: get("kind"),
            address: get("address"),
            lat,
            lon,
            town_id: get("town"),
            grid_id: opt("grid"),
            risk_grade: get("risk_grade"),
            person_in_charge: get("person_in_charge"),
            phone: get("phone"),
        };
        if let Err(p) = premises.validate() {
            problems.push(detail(line, p.field, "invalid_field", p.message));
            continue;
        }
        if let Some(first) = rows
            .iter()
            .find(|r| r.premises.licence_no == premises.licence_no)
        {
            problems.push(detail(
                line,
                "licence_no",
                "duplicate_licence",
                format!("the same licence number is on line {} already", first.line),
            ));
            continue;
        }
        rows.push(Row { line, premises });
    }
    if rows.is_empty() && problems.is_empty() {
        problems.push(detail(
            2,
            "",
            "no_rows",
            "the file has a header but no premises",
        ));
    }
    if problems.is_empty() {
        Ok(rows)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str =
        "name,licence_no,kind,address,lat,lon,town,grid,risk_grade,person_in_charge,phone\n";

    fn line(licence: &str, kind: &str) -> String {
        format!(
            "斋堂镇中心小学食堂,{licence},{kind},北京市门头沟区斋堂镇1号,39.97,115.69,zhaitang,,B,王芳,13800000001\n"
        )
    }

    #[test]
    fn a_good_file_gives_one_row_per_line_with_its_line_number() {
        let text = format!(
            "{HEADER}{}{}",
            line("JY1", "schoolCanteen"),
            line("JY2", "restaurant")
        );
        let rows = parse(&text).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].line, 3);
        assert_eq!(rows[1].premises.kind, "restaurant");
        assert_eq!(rows[0].premises.grid_id, None);
        assert_eq!(rows[0].premises.lat, Some(39.97));
    }

    #[test]
    fn a_bad_kind_is_reported_with_its_line_and_column() {
        let text = format!(
            "{HEADER}{}{}",
            line("JY1", "schoolCanteen"),
            line("JY2", "bakery")
        );
        let problems = parse(&text).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!((problems[0].line, problems[0].column.as_str()), (3, "kind"));
    }

    #[test]
    fn a_quoted_field_with_a_comma_is_one_field() {
        let text = format!(
            "{HEADER}\"永定河鱼馆, 二店\",JY9,restaurant,\"北京市门头沟区永定镇, 3号\",,,yongding,,A,李强,13800000002\n"
        );
        let rows = parse(&text).unwrap();
        assert_eq!(rows[0].premises.name, "永定河鱼馆, 二店");
        assert_eq!(rows[0].premises.lat, None);
    }

    #[test]
    fn a_missing_required_column_and_an_unknown_one_are_both_named() {
        let problems = parse("name,licence,kind\nx,y,z\n").unwrap_err();
        let columns: Vec<&str> = problems.iter().map(|p| p.column.as_str()).collect();
        assert!(columns.contains(&"licence"), "{problems:?}");
        assert!(columns.contains(&"licence_no"), "{problems:?}");
        assert!(problems.iter().all(|p| p.line == 1));
    }

    #[test]
    fn a_duplicate_licence_in_the_file_points_at_the_first_line() {
        let text = format!(
            "{HEADER}{}{}",
            line("JY1", "restaurant"),
            line("JY1", "restaurant")
        );
        let problems = parse(&text).unwrap_err();
        assert_eq!(problems[0].line, 3);
        assert!(problems[0].message.contains("line 2"), "{problems:?}");
    }

    #[test]
    fn a_short_line_names_the_first_missing_column() {
        let text = format!("{HEADER}x,JY1,restaurant\n");
        let problems = parse(&text).unwrap_err();
        assert_eq!(
            (problems[0].line, problems[0].column.as_str()),
            (2, "address")
        );
    }

    #[test]
    fn a_byte_order_mark_from_excel_is_ignored() {
        let text = format!("\u{feff}{HEADER}{}", line("JY1", "pharmacy"));
        assert_eq!(parse(&text).unwrap().len(), 1);
    }
}
