//! The Chinese working-day calendar, plain: which dates are worked in Asia/Shanghai, adding working
//! days, and working time between two instants. The holiday table is a TSV file
//! (`dispatch/data/holidays-cn.tsv`, compiled in as the default) with the State Council's holidays
//! and make-up working days (调休上班); a date not listed follows the week (Monday-Friday worked).
//! A year the table does not cover at all falls back to Monday-Friday with a warning logged once
//! per year.
//!
//! **Counting rule** (as in administrative deadlines: the day something arrives does not count):
//! "within N working days" of an instant on day D ends at the end (24:00 Beijing time) of the N-th
//! working day after D, and working time is counted from the end of D.

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, TimeZone, Utc, Weekday};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, LazyLock, Mutex};

/// Beijing time. China has had no daylight saving time since 1991, so a fixed +08:00 is exact for
/// every date a clock can meet.
pub fn beijing() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("+08:00 is a valid offset")
}

/// What the table says about a date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayKind {
    /// A public holiday (or a weekend day inside a holiday): not worked.
    Holiday,
    /// A make-up working day (调休上班) on a weekend: worked.
    Workday,
}

/// A line of the holiday table that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: line {line}, column {column}: {message}")]
pub struct HolidaysFileError {
    pub file: String,
    pub line: usize,
    pub column: &'static str,
    pub message: String,
}

const COLUMNS: [&str; 3] = ["date", "kind", "name"];

/// The holiday table and the rule for the days it does not list.
#[derive(Debug, Default)]
pub struct Calendar {
    days: BTreeMap<NaiveDate, (DayKind, String)>,
    /// Years with at least one line: only these are trusted.
    years: BTreeSet<i32>,
    /// Years outside the table already warned about.
    warned: Mutex<BTreeSet<i32>>,
}

/// The table shipped in the repository.
pub const BUILTIN_FILE: &str = "dispatch/data/holidays-cn.tsv";
const BUILTIN_TEXT: &str = include_str!("../../data/holidays-cn.tsv");

static BUILTIN: LazyLock<Arc<Calendar>> = LazyLock::new(|| {
    Arc::new(
        Calendar::parse(BUILTIN_FILE, BUILTIN_TEXT).expect("the shipped holiday table is valid"),
    )
});

impl Calendar {
    /// The calendar of the table shipped in `dispatch/data/holidays-cn.tsv`.
    pub fn builtin() -> Arc<Calendar> {
        BUILTIN.clone()
    }

    /// Parses a holiday table: `#` comments and blank lines are skipped, the first other line is
    /// the header `date kind name`, then one date per line, each date once.
    pub fn parse(file: &str, text: &str) -> Result<Calendar, HolidaysFileError> {
        let mut cal = Calendar::default();
        let mut header_seen = false;
        for (index, raw) in text.lines().enumerate() {
            let fail = |column: &'static str, message: String| HolidaysFileError {
                file: file.to_owned(),
                line: index + 1,
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
                        "date",
                        "the header must be \"date\tkind\tname\"".into(),
                    ));
                }
                header_seen = true;
                continue;
            }
            if cells.len() != COLUMNS.len() {
                let column = COLUMNS.get(cells.len()).copied().unwrap_or("name");
                return Err(fail(
                    column,
                    format!("expected 3 tab-separated cells, found {}", cells.len()),
                ));
            }
            let date = NaiveDate::parse_from_str(cells[0], "%Y-%m-%d").map_err(|e| {
                fail(
                    "date",
                    format!("{:?} is not a YYYY-MM-DD date: {e}", cells[0]),
                )
            })?;
            let kind = match cells[1] {
                "holiday" => DayKind::Holiday,
                "workday" => DayKind::Workday,
                other => {
                    return Err(fail(
                        "kind",
                        format!("{other:?} is not \"holiday\" or \"workday\""),
                    ));
                }
            };
            if kind == DayKind::Workday && !is_weekend(date) {
                return Err(fail(
                    "kind",
                    format!("{date} is a weekday; a make-up workday must be a Saturday or Sunday"),
                ));
            }
            if cells[2].is_empty() {
                return Err(fail("name", "is empty".into()));
            }
            if cal.days.insert(date, (kind, cells[2].to_owned())).is_some() {
                return Err(fail("date", format!("{date} appears twice")));
            }
            cal.years.insert(date.year());
        }
        if !header_seen {
            return Err(HolidaysFileError {
                file: file.to_owned(),
                line: 1,
                column: "date",
                message: "no header line \"date\tkind\tname\"".into(),
            });
        }
        Ok(cal)
    }

    /// The years the table covers.
    pub fn years(&self) -> impl Iterator<Item = i32> + '_ {
        self.years.iter().copied()
    }

    /// Whether `date` is worked.
    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        match self.days.get(&date) {
            Some((DayKind::Holiday, _)) => false,
            Some((DayKind::Workday, _)) => true,
            None => {
                if !self.years.contains(&date.year()) {
                    self.warn_once(date.year());
                }
                !is_weekend(date)
            }
        }
    }

    fn warn_once(&self, year: i32) {
        let mut warned = self.warned.lock().unwrap_or_else(|e| e.into_inner());
        if warned.insert(year) {
            tracing::warn!(
                year,
                "the holiday table has no line for this year: counting Monday to Friday as working days; \
                 add the State Council's holiday notice to the holidays file"
            );
        }
    }

    /// The `n`-th working day after `date` (`date` itself is not counted; `n = 0` gives `date`).
    pub fn add_working_days(&self, date: NaiveDate, n: u32) -> NaiveDate {
        let mut d = date;
        let mut left = n;
        while left > 0 {
            d = d.succ_opt().expect("dates stay far from chrono's limits");
            if self.is_working_day(d) {
                left -= 1;
            }
        }
        d
    }

    /// The deadline "within `n` working days" of `at`: counting starts at the end of `at`'s day
    /// (Beijing time) and ends at the end of the `n`-th working day after it. Returns (counting
    /// start, deadline).
    pub fn working_deadline(&self, at: DateTime<Utc>, n: u32) -> (DateTime<Utc>, DateTime<Utc>) {
        let day = local_date(at);
        let origin = start_of(next_day(day));
        let due = start_of(next_day(self.add_working_days(day, n)));
        (origin, due)
    }

    /// The part of `[from, to)` that falls on working days (zero when `to <= from`).
    pub fn working_time_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
        let mut total = Duration::zero();
        let mut day = local_date(from);
        while start_of(day) < to {
            let (a, b) = (start_of(day).max(from), start_of(next_day(day)).min(to));
            if b > a && self.is_working_day(day) {
                total += b - a;
            }
            day = next_day(day);
        }
        total
    }

    /// The instant at which `amount` of working time has passed since `from`.
    pub fn add_working_time(&self, from: DateTime<Utc>, amount: Duration) -> DateTime<Utc> {
        let mut left = amount;
        let mut day = local_date(from);
        let mut at = from;
        if amount <= Duration::zero() {
            return from;
        }
        loop {
            let end = start_of(next_day(day));
            if self.is_working_day(day) {
                if at + left <= end {
                    return at + left;
                }
                left -= end - at;
            }
            at = end;
            day = next_day(day);
        }
    }
}

fn is_weekend(date: NaiveDate) -> bool {
    matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

fn next_day(d: NaiveDate) -> NaiveDate {
    d.succ_opt().expect("dates stay far from chrono's limits")
}

/// The Beijing date of an instant.
pub fn local_date(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&beijing()).date_naive()
}

/// 00:00 Beijing time of `date`, as UTC.
pub fn start_of(date: NaiveDate) -> DateTime<Utc> {
    beijing()
        .from_local_datetime(&date.and_time(chrono::NaiveTime::MIN))
        .single()
        .expect("a fixed offset has exactly one local midnight")
        .with_timezone(&Utc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    /// An instant given in Beijing time.
    fn bj(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&format!("{s}+08:00"))
            .unwrap()
            .with_timezone(&Utc)
    }

    fn cal() -> Arc<Calendar> {
        Calendar::builtin()
    }

    #[test]
    fn the_shipped_table_covers_2025_and_2026() {
        assert_eq!(cal().years().collect::<Vec<_>>(), [2025, 2026]);
    }

    #[test]
    fn spring_festival_2026_is_off_and_its_two_make_up_saturdays_are_worked() {
        let c = cal();
        assert!(c.is_working_day(d("2026-02-13")), "Friday before");
        assert!(c.is_working_day(d("2026-02-14")), "make-up Saturday");
        for day in 15..=23 {
            assert!(!c.is_working_day(d(&format!("2026-02-{day}"))), "Feb {day}");
        }
        assert!(c.is_working_day(d("2026-02-24")));
        assert!(c.is_working_day(d("2026-02-28")), "make-up Saturday");
        assert!(!c.is_working_day(d("2026-03-01")), "an ordinary Sunday");
    }

    #[test]
    fn seven_working_days_from_the_friday_before_spring_festival_2026_end_on_2_march() {
        let c = cal();
        // Feb 14 (Sat, worked), 24, 25, 26, 27, 28 (Sat, worked), Mar 2
        assert_eq!(c.add_working_days(d("2026-02-13"), 7), d("2026-03-02"));
        let (origin, due) = c.working_deadline(bj("2026-02-13T10:00:00"), 7);
        assert_eq!(origin, bj("2026-02-14T00:00:00"));
        assert_eq!(due, bj("2026-03-03T00:00:00"));
        assert_eq!(c.working_time_between(origin, due), Duration::days(7));
        // 80 %: five whole working days (Feb 14, 24-27) and 0.6 of Feb 28
        let at_risk = c.add_working_time(origin, Duration::minutes(7 * 24 * 60 * 80 / 100));
        assert_eq!(at_risk, bj("2026-02-28T14:24:00"));
    }

    #[test]
    fn national_day_2025_with_mid_autumn_is_eight_days_off_between_two_worked_weekend_days() {
        let c = cal();
        assert!(c.is_working_day(d("2025-09-28")), "Sunday before, worked");
        for day in 1..=8 {
            assert!(
                !c.is_working_day(d(&format!("2025-10-0{day}"))),
                "Oct {day}"
            );
        }
        assert!(c.is_working_day(d("2025-10-09")));
        assert!(c.is_working_day(d("2025-10-11")), "Saturday after, worked");
        // from Tuesday 30 Sep: Oct 9, 10, 11 (Sat), 13
        assert_eq!(c.add_working_days(d("2025-09-30"), 4), d("2025-10-13"));
    }

    #[test]
    fn national_day_2026_is_seven_days_off_with_20_september_and_10_october_worked() {
        let c = cal();
        assert!(c.is_working_day(d("2026-09-20")));
        assert!(
            !c.is_working_day(d("2026-09-25")),
            "mid-autumn, apart this year"
        );
        for day in 1..=7 {
            assert!(
                !c.is_working_day(d(&format!("2026-10-0{day}"))),
                "Oct {day}"
            );
        }
        assert!(c.is_working_day(d("2026-10-08")));
        assert!(c.is_working_day(d("2026-10-10")));
        // from Wednesday 30 Sep: Oct 8, 9, 10 (Sat)
        assert_eq!(c.add_working_days(d("2026-09-30"), 3), d("2026-10-10"));
    }

    #[test]
    fn counting_crosses_the_year_boundary_and_new_year_2026() {
        let c = cal();
        // from Tuesday 30 Dec 2025: Dec 31, then Jan 1-3 off, Jan 4 (Sun) worked, Jan 5
        assert_eq!(c.add_working_days(d("2025-12-30"), 3), d("2026-01-05"));
        // New Year 2025 was one day, no make-up day
        assert!(!c.is_working_day(d("2025-01-01")));
        assert!(c.is_working_day(d("2025-01-02")));
        // into 2027, which the table does not cover: Monday to Friday
        assert_eq!(c.add_working_days(d("2026-12-31"), 2), d("2027-01-04"));
        assert!(c.is_working_day(d("2027-01-01")), "not listed, a Friday");
    }

    #[test]
    fn working_time_counts_only_worked_days_in_beijing_time() {
        let c = cal();
        // Friday 20:00 to Monday 02:00 Beijing: 4 h of Friday and 2 h of Monday
        let t = c.working_time_between(bj("2026-03-06T20:00:00"), bj("2026-03-09T02:00:00"));
        assert_eq!(t, Duration::hours(6));
        assert_eq!(
            c.add_working_time(bj("2026-03-06T20:00:00"), Duration::hours(5)),
            bj("2026-03-09T01:00:00")
        );
        assert_eq!(
            c.working_time_between(bj("2026-03-09T02:00:00"), bj("2026-03-06T20:00:00")),
            Duration::zero()
        );
        assert_eq!(
            c.add_working_time(bj("2026-03-07T12:00:00"), Duration::zero()),
            bj("2026-03-07T12:00:00")
        );
    }

    #[test]
    fn zero_working_days_end_at_the_end_of_the_same_day() {
        let (_, due) = cal().working_deadline(bj("2026-03-04T23:59:00"), 0);
        assert_eq!(due, bj("2026-03-05T00:00:00"));
    }

    #[test]
    fn a_bad_line_is_named_by_line_and_column() {
        let head = "# c\ndate\tkind\tname\n";
        let e = Calendar::parse("h.tsv", &format!("{head}2026-02-30\tholiday\tx\n")).unwrap_err();
        assert_eq!((e.line, e.column), (3, "date"), "{e}");
        let e = Calendar::parse("h.tsv", &format!("{head}2026-02-15\toff\tx\n")).unwrap_err();
        assert_eq!((e.line, e.column), (3, "kind"), "{e}");
        let e = Calendar::parse("h.tsv", &format!("{head}2026-02-16\tworkday\tx\n")).unwrap_err();
        assert!(e.message.contains("weekday"), "{e}");
        let e = Calendar::parse("h.tsv", &format!("{head}2026-02-15\tholiday\n")).unwrap_err();
        assert_eq!((e.line, e.column), (3, "name"), "{e}");
        let e = Calendar::parse(
            "h.tsv",
            &format!("{head}2026-02-15\tholiday\ta\n2026-02-15\tholiday\tb\n"),
        )
        .unwrap_err();
        assert_eq!((e.line, e.column), (4, "date"), "{e}");
        assert!(
            e.to_string().starts_with("h.tsv: line 4, column date"),
            "{e}"
        );
        let e = Calendar::parse("h.tsv", "date\tname\n").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(Calendar::parse("h.tsv", "").is_err());
    }
}
