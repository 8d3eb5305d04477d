//! Duty rosters: who is on duty for a town at a time. Pure: shifts, overrides and an instant in,
//! team ids out. Shifts recur weekly in China Standard Time (UTC+8, no daylight saving).

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveTime, Utc};
use serde::Serialize;
use uuid::Uuid;

/// China Standard Time, the clock rosters are written in.
pub fn cst() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset")
}

/// A recurring shift of one team.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Shift {
    pub team_id: Uuid,
    pub town_id: String,
    /// Bit 0 = Monday … bit 6 = Sunday: the days the shift *starts* on.
    pub weekdays: i16,
    pub starts: NaiveTime,
    /// At or before `starts` means the shift ends the next day.
    pub ends: NaiveTime,
}

/// A one-off replacement: for `[starts_at, ends_at)` this team, and only teams named by overrides,
/// are on duty for its town.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Override {
    pub team_id: Uuid,
    pub town_id: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

/// Every day of the week.
pub const EVERY_DAY: i16 = 0b111_1111;

fn starts_on(mask: i16, day: chrono::Weekday) -> bool {
    mask & (1 << day.num_days_from_monday()) != 0
}

impl Shift {
    /// Whether this shift covers the local (CST) instant `at`.
    fn covers(&self, at: DateTime<FixedOffset>) -> bool {
        let t = at.time();
        let today = at.weekday();
        if self.starts < self.ends {
            starts_on(self.weekdays, today) && self.starts <= t && t < self.ends
        } else {
            let yesterday = (at - Duration::days(1)).weekday();
            (starts_on(self.weekdays, today) && t >= self.starts)
                || (starts_on(self.weekdays, yesterday) && t < self.ends)
        }
    }
}

/// The teams on duty for `town` at `at`: those of overrides covering `at` if any, otherwise those
/// whose shifts cover it; in the order given, without repeats.
pub fn on_duty(
    town: &str,
    at: DateTime<Utc>,
    shifts: &[Shift],
    overrides: &[Override],
) -> Vec<Uuid> {
    let mut teams: Vec<Uuid> = Vec::new();
    let mut push = |id: Uuid| {
        if !teams.contains(&id) {
            teams.push(id);
        }
    };
    let active: Vec<&Override> = overrides
        .iter()
        .filter(|o| o.town_id == town && o.starts_at <= at && at < o.ends_at)
        .collect();
    if !active.is_empty() {
        active.iter().for_each(|o| push(o.team_id));
    } else {
        let local = at.with_timezone(&cst());
        shifts
            .iter()
            .filter(|s| s.town_id == town && s.covers(local))
            .for_each(|s| push(s.team_id));
    }
    teams
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    /// A CST wall-clock instant in the week of Monday 2025-06-02.
    fn cst_at(day: u32, h: u32, m: u32) -> DateTime<Utc> {
        cst()
            .with_ymd_and_hms(2025, 6, day, h, m, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn team(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn shift(n: u128, town: &str, weekdays: i16, starts: NaiveTime, ends: NaiveTime) -> Shift {
        Shift {
            team_id: team(n),
            town_id: town.into(),
            weekdays,
            starts,
            ends,
        }
    }

    fn day_and_night() -> Vec<Shift> {
        vec![
            shift(1, "zhaitang", EVERY_DAY, t(8, 0), t(20, 0)),
            shift(2, "zhaitang", EVERY_DAY, t(20, 0), t(8, 0)),
            shift(3, "dayu", EVERY_DAY, t(0, 0), t(0, 0)),
        ]
    }

    #[test]
    fn the_day_team_is_on_duty_at_noon_in_beijing() {
        assert_eq!(
            on_duty("zhaitang", cst_at(3, 12, 0), &day_and_night(), &[]),
            vec![team(1)]
        );
    }

    #[test]
    fn a_night_shift_crossing_midnight_covers_the_early_morning() {
        assert_eq!(
            on_duty("zhaitang", cst_at(3, 3, 30), &day_and_night(), &[]),
            vec![team(2)]
        );
        assert_eq!(
            on_duty("zhaitang", cst_at(3, 20, 0), &day_and_night(), &[]),
            vec![team(2)]
        );
    }

    #[test]
    fn a_shift_ends_exclusively_at_its_end_time() {
        assert_eq!(
            on_duty("zhaitang", cst_at(3, 8, 0), &day_and_night(), &[]),
            vec![team(1)]
        );
    }

    #[test]
    fn a_shift_from_midnight_to_midnight_covers_the_whole_day() {
        assert_eq!(
            on_duty("dayu", cst_at(4, 23, 59), &day_and_night(), &[]),
            vec![team(3)]
        );
    }

    #[test]
    fn a_weekday_only_night_shift_runs_into_saturday_morning_but_not_sunday() {
        let weekdays = 0b001_1111; // Monday to Friday
        let shifts = vec![shift(5, "yanchi", weekdays, t(22, 0), t(6, 0))];
        // Friday 2025-06-06 22:00 → Saturday 06:00 is covered, Saturday night is not.
        assert_eq!(
            on_duty("yanchi", cst_at(7, 5, 0), &shifts, &[]),
            vec![team(5)]
        );
        assert!(on_duty("yanchi", cst_at(7, 23, 0), &shifts, &[]).is_empty());
        assert!(on_duty("yanchi", cst_at(8, 5, 0), &shifts, &[]).is_empty());
    }

    #[test]
    fn an_override_replaces_the_regular_shifts_only_while_it_lasts() {
        let overrides = vec![Override {
            team_id: team(9),
            town_id: "zhaitang".into(),
            starts_at: cst_at(3, 10, 0),
            ends_at: cst_at(3, 14, 0),
        }];
        assert_eq!(
            on_duty("zhaitang", cst_at(3, 12, 0), &day_and_night(), &overrides),
            vec![team(9)]
        );
        assert_eq!(
            on_duty("zhaitang", cst_at(3, 14, 0), &day_and_night(), &overrides),
            vec![team(1)]
        );
        assert_eq!(
            on_duty("dayu", cst_at(3, 12, 0), &day_and_night(), &overrides),
            vec![team(3)]
        );
    }

    #[test]
    fn a_town_without_shifts_has_nobody_on_duty() {
        assert!(on_duty("qingshui", cst_at(3, 12, 0), &day_and_night(), &[]).is_empty());
    }
}
