//! Incident statistics for the dashboard (issue 6, item 5): per town and per kind, how many
//! incidents opened in a period, how long they took to be acknowledged, reached and resolved
//! (median and p90 from the timeline), how many triage rejected as false alarms, how many were
//! resolved with rectification evidence, and how many clocks ran past their due time.
//!
//! This module is plain logic: the period and language rules, the figures' shape and the CSV text.
//! The numbers are computed in SQL ([`store`]); the handlers are in `api/stats.rs`.

pub mod store;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use serde::Serialize;

/// How long the default period reaches back from now.
pub const DEFAULT_DAYS: i64 = 30;

/// A period of opening times: `from` included, `to` excluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// Why a period is not acceptable: the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadPeriod {
    pub field: &'static str,
    pub message: String,
}

/// Which end of the period a bound is: a date as `to` means the end of that day.
#[derive(Clone, Copy)]
enum End {
    From,
    To,
}

/// One bound: an RFC 3339 instant, or a date (`YYYY-MM-DD`) read in Beijing time — the start of
/// that day for `from`, the end of it for `to`, so `from=2026-11-01&to=2026-11-30` is all November.
fn bound(field: &'static str, text: &str, end: End) -> Result<DateTime<Utc>, BadPeriod> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    let day = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| BadPeriod {
        field,
        message: format!(
            "{text:?} is neither a date (YYYY-MM-DD, Beijing time) nor an RFC 3339 instant"
        ),
    })?;
    let day = match end {
        End::From => day,
        End::To => day.succ_opt().ok_or_else(|| BadPeriod {
            field,
            message: format!("{text:?} is out of range"),
        })?,
    };
    let midnight = crate::registry::roster::cst()
        .from_local_datetime(&day.and_time(chrono::NaiveTime::MIN))
        .single()
        .expect("UTC+8 has no gaps");
    Ok(midnight.with_timezone(&Utc))
}

impl Period {
    /// The period of a query: both bounds optional (`to` defaults to `now`, `from` to
    /// [`DEFAULT_DAYS`] before `to`); `from` must come before `to`.
    pub fn parse(
        from: Option<&str>,
        to: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Period, BadPeriod> {
        let to = match to {
            Some(t) => bound("to", t, End::To)?,
            None => now,
        };
        let from = match from {
            Some(f) => bound("from", f, End::From)?,
            None => to - Duration::days(DEFAULT_DAYS),
        };
        if from >= to {
            return Err(BadPeriod {
                field: "from",
                message: format!(
                    "the period must start before it ends ({from} is not before {to})"
                ),
            });
        }
        Ok(Period { from, to })
    }
}

/// The language of the CSV's header and labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    ZhCn,
    EnUs,
}

impl Lang {
    /// `zh-CN`/`zh` or `en-US`/`en`, any case.
    pub fn parse(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next().unwrap_or("");
        match primary.to_ascii_lowercase().as_str() {
            "zh" => Some(Lang::ZhCn),
            "en" => Some(Lang::EnUs),
            _ => None,
        }
    }

    /// The first language of an `Accept-Language` header we speak, by weight then order;
    /// Chinese when none is (the console's default).
    pub fn from_accept_language(header: Option<&str>) -> Lang {
        let mut offers: Vec<(f32, usize, Lang)> = header
            .unwrap_or("")
            .split(',')
            .enumerate()
            .filter_map(|(i, part)| {
                let mut bits = part.split(';');
                let lang = Lang::parse(bits.next()?)?;
                let q = bits
                    .find_map(|b| b.trim().strip_prefix("q="))
                    .map_or(Some(1.0), |q| q.trim().parse::<f32>().ok())?;
                (q > 0.0).then_some((q, i, lang))
            })
            .collect();
        offers.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        offers.first().map_or(Lang::ZhCn, |o| o.2)
    }
}

/// How long a step took, over the incidents that took it.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = StatsTiming)]
pub struct Timing {
    /// Incidents that took the step.
    pub count: i64,
    /// Median seconds from the opening to the first time the step was taken (null: none took it).
    pub median_secs: Option<f64>,
    /// 90th percentile of the same (continuous, as `percentile_cont`).
    pub p90_secs: Option<f64>,
}

/// The figures of one group of incidents (a town, a kind, or all of them).
#[derive(Debug, Clone, PartialEq, Default, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = StatsFigures)]
pub struct Figures {
    /// Incidents opened in the period.
    pub incidents: i64,
    /// Opening → first `acknowledge`.
    pub ack: Timing,
    /// Opening → first `arrive` (on scene).
    pub arrive: Timing,
    /// Opening → first entry into `resolved`.
    pub resolve: Timing,
    /// Incidents triage confirmed: past `new` and not `rejected` now.
    pub triaged: i64,
    /// Incidents rejected as false alarms (state `rejected` now).
    pub rejected: i64,
    /// rejected / (triaged + rejected); null when nothing was triaged.
    pub false_alarm_rate: Option<f64>,
    /// Incidents that reached `resolved`.
    pub resolved: i64,
    /// Of those, resolved with rectification evidence: field photos named by a resolve, or a
    /// passed camera re-check.
    pub rectified: i64,
    /// rectified / resolved; null when nothing was resolved.
    pub rectification_rate: Option<f64>,
    /// Clocks of these incidents that ran past their due time (stopped late or still running).
    pub overdue_clocks: i64,
}

impl Figures {
    /// Fills in the two rates from the counts.
    pub fn with_rates(mut self) -> Figures {
        self.false_alarm_rate = ratio(self.rejected, self.triaged + self.rejected);
        self.rectification_rate = ratio(self.rectified, self.resolved);
        self
    }
}

fn ratio(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// One town's figures.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = StatsTown)]
pub struct TownFigures {
    pub town_id: String,
    pub name_zh: String,
    pub name_en: String,
    #[serde(flatten)]
    pub figures: Figures,
}

/// One kind's figures.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = StatsKind)]
pub struct KindFigures {
    pub kind: String,
    #[serde(flatten)]
    pub figures: Figures,
}

/// The answer of `GET /api/stats/incidents`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = IncidentStats)]
pub struct Stats {
    /// Start of the period (included).
    pub from: DateTime<Utc>,
    /// End of the period (excluded).
    pub to: DateTime<Utc>,
    /// Whether these are drill incidents (true) or real ones (false); never both.
    pub exercise: bool,
    /// Every incident counted.
    pub total: Figures,
    /// Every town of the caller's scope (and of the `town` filter), in id order, zeros included.
    pub by_town: Vec<TownFigures>,
    /// Each kind that had an incident, most incidents first.
    pub by_kind: Vec<KindFigures>,
}

/// The English name of an incident kind (the Chinese one is the notifications').
fn kind_en(kind: &str) -> &str {
    match kind {
        "noChefHat" => "No chef hat",
        "noMask" => "No mask",
        "noGloves" => "No gloves",
        "noUniform" => "No uniform",
        "rodent" => "Rodent",
        "smoking" => "Smoking",
        "phoneUse" => "Phone use",
        "personAbsent" => "Post unattended",
        "uncoveredBin" => "Uncovered bin",
        "cameraOffline" => "Camera offline",
        "cameraTampered" => "Camera tampered",
        "suspectedPoisoning" => "Suspected poisoning",
        "adverseDrugReaction" => "Adverse drug reaction",
        "complaint" => "Complaint",
        "other" => "Other",
        other => other,
    }
}

const HEADER_ZH: [&str; 16] = [
    "分组",
    "名称",
    "事件数",
    "确认用时中位数(秒)",
    "确认用时P90(秒)",
    "到场用时中位数(秒)",
    "到场用时P90(秒)",
    "办结用时中位数(秒)",
    "办结用时P90(秒)",
    "研判确认数",
    "误报数",
    "误报率",
    "办结数",
    "有整改证据数",
    "整改率",
    "超时时钟数",
];

const HEADER_EN: [&str; 16] = [
    "Group",
    "Name",
    "Incidents",
    "Ack median (s)",
    "Ack p90 (s)",
    "Arrive median (s)",
    "Arrive p90 (s)",
    "Resolve median (s)",
    "Resolve p90 (s)",
    "Confirmed",
    "False alarms",
    "False-alarm rate",
    "Resolved",
    "With evidence",
    "Rectification rate",
    "Overdue clocks",
];

/// The header row of the CSV in `lang`.
pub fn csv_header(lang: Lang) -> &'static [&'static str; 16] {
    match lang {
        Lang::ZhCn => &HEADER_ZH,
        Lang::EnUs => &HEADER_EN,
    }
}

/// A cell that a spreadsheet could take for a formula starts with an apostrophe instead.
fn text_cell(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    }
}

fn secs(v: Option<f64>) -> String {
    v.map_or(String::new(), |s| format!("{:.1}", s))
}

fn rate(v: Option<f64>) -> String {
    v.map_or(String::new(), |r| format!("{:.4}", r))
}

fn row(group: &str, name: &str, f: &Figures) -> Vec<String> {
    vec![
        group.to_owned(),
        text_cell(name),
        f.incidents.to_string(),
        secs(f.ack.median_secs),
        secs(f.ack.p90_secs),
        secs(f.arrive.median_secs),
        secs(f.arrive.p90_secs),
        secs(f.resolve.median_secs),
        secs(f.resolve.p90_secs),
        f.triaged.to_string(),
        f.rejected.to_string(),
        rate(f.false_alarm_rate),
        f.resolved.to_string(),
        f.rectified.to_string(),
        rate(f.rectification_rate),
        f.overdue_clocks.to_string(),
    ]
}

/// The statistics as CSV: a UTF-8 byte-order mark (so Excel reads Chinese correctly), the header
/// in `lang`, then the total, each town and each kind; CRLF line ends; seconds with one decimal,
/// rates as fractions with four; an empty cell where there is no value.
pub fn to_csv(stats: &Stats, lang: Lang) -> Vec<u8> {
    let (total, town, kind) = match lang {
        Lang::ZhCn => ("合计", "镇街", "类型"),
        Lang::EnUs => ("Total", "Town", "Kind"),
    };
    let mut out = "\u{feff}".as_bytes().to_vec();
    {
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(&mut out);
        let mut write = |cells: &[String]| w.write_record(cells).expect("writing to memory");
        write(&csv_header(lang).map(str::to_owned));
        write(&row(total, "", &stats.total));
        for t in &stats.by_town {
            let name = match lang {
                Lang::ZhCn => &t.name_zh,
                Lang::EnUs => &t.name_en,
            };
            write(&row(town, name, &t.figures));
        }
        for k in &stats.by_kind {
            let name = match lang {
                Lang::ZhCn => crate::notify::message::kind_zh(&k.kind),
                Lang::EnUs => kind_en(&k.kind),
            };
            write(&row(kind, name, &k.figures));
        }
        w.flush().expect("writing to memory");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 2, 0, 0).unwrap()
    }

    #[test]
    fn dates_are_whole_beijing_days_with_both_ends_included() {
        let p = Period::parse(Some("2026-11-01"), Some("2026-11-30"), now()).unwrap();
        assert_eq!(
            p.from,
            Utc.with_ymd_and_hms(2026, 10, 31, 16, 0, 0).unwrap()
        );
        assert_eq!(p.to, Utc.with_ymd_and_hms(2026, 11, 30, 16, 0, 0).unwrap());
    }

    #[test]
    fn instants_are_taken_as_given_and_the_default_is_the_last_thirty_days() {
        let p = Period::parse(Some("2026-11-01T08:00:00+08:00"), None, now()).unwrap();
        assert_eq!(p.from, Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap());
        assert_eq!(p.to, now());
        let d = Period::parse(None, None, now()).unwrap();
        assert_eq!(d.to - d.from, Duration::days(30));
    }

    #[test]
    fn a_bad_or_backward_period_names_its_field() {
        let e = Period::parse(Some("yesterday"), None, now()).unwrap_err();
        assert_eq!(e.field, "from");
        let e = Period::parse(None, Some("2026-13-01"), now()).unwrap_err();
        assert_eq!(e.field, "to");
        let e = Period::parse(Some("2026-11-02"), Some("2026-11-01"), now()).unwrap_err();
        assert_eq!(e.field, "from");
        assert!(e.message.contains("start before it ends"), "{}", e.message);
    }

    #[test]
    fn accept_language_picks_the_heaviest_language_we_speak_and_defaults_to_chinese() {
        let pick = |h| Lang::from_accept_language(Some(h));
        assert_eq!(pick("en-US,en;q=0.9,zh-CN;q=0.8"), Lang::EnUs);
        assert_eq!(pick("fr-FR, zh;q=0.5, en;q=0.4"), Lang::ZhCn);
        assert_eq!(pick("de, en-GB;q=0.7"), Lang::EnUs);
        assert_eq!(pick("de"), Lang::ZhCn);
        assert_eq!(pick("en;q=0, zh;q=0.1"), Lang::ZhCn);
        assert_eq!(Lang::from_accept_language(None), Lang::ZhCn);
    }

    #[test]
    fn rates_are_null_without_a_denominator() {
        let f = Figures {
            rejected: 1,
            triaged: 3,
            ..Figures::default()
        }
        .with_rates();
        assert_eq!(f.false_alarm_rate, Some(0.25));
        assert_eq!(f.rectification_rate, None);
    }

    fn sample() -> Stats {
        let f = Figures {
            incidents: 2,
            ack: Timing {
                count: 2,
                median_secs: Some(90.0),
                p90_secs: Some(114.0),
            },
            triaged: 1,
            rejected: 1,
            ..Figures::default()
        }
        .with_rates();
        Stats {
            from: now() - Duration::days(1),
            to: now(),
            exercise: false,
            total: f.clone(),
            by_town: vec![TownFigures {
                town_id: "zhaitang".into(),
                name_zh: "斋堂镇".into(),
                name_en: "=Zhaitang, Town".into(),
                figures: f.clone(),
            }],
            by_kind: vec![KindFigures {
                kind: "rodent".into(),
                figures: f,
            }],
        }
    }

    #[test]
    fn the_csv_starts_with_a_bom_and_a_header_in_the_callers_language() {
        let zh = String::from_utf8(to_csv(&sample(), Lang::ZhCn)).unwrap();
        assert!(
            zh.starts_with("\u{feff}分组,名称,事件数,确认用时中位数(秒)"),
            "{zh}"
        );
        let lines: Vec<&str> = zh.split("\r\n").collect();
        assert_eq!(lines[1], "合计,,2,90.0,114.0,,,,,1,1,0.5000,0,0,,0");
        assert!(lines[2].starts_with("镇街,斋堂镇,2,"));
        assert!(lines[3].starts_with("类型,发现老鼠,2,"));
        let en = String::from_utf8(to_csv(&sample(), Lang::EnUs)).unwrap();
        assert!(
            en.starts_with("\u{feff}Group,Name,Incidents,Ack median (s)"),
            "{en}"
        );
        // quoted for the comma, defused for the formula sign
        assert!(en.contains("Town,\"'=Zhaitang, Town\",2,"), "{en}");
        assert!(en.contains("Kind,Rodent,2,"), "{en}");
    }
}
