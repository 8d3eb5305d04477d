//! Timestamps on the wire: UTC, RFC 3339, exactly millisecond precision (`2025-03-01T08:15:30.123Z`).
//!
//! Fixed precision keeps payloads comparable byte for byte and lets a decoded message equal the one that
//! was encoded; sub-millisecond parts are dropped on both encode and decode. Any RFC 3339 offset is
//! accepted on input and converted to UTC.

use chrono::{DateTime, Datelike, SecondsFormat, SubsecRound, Utc};
use serde::{Deserialize, Deserializer, Serializer};

/// Formats `t` the way every timestamp is written on the wire.
pub fn format(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Cuts `t` to the wire precision; use it where a value made from the clock is compared with a decoded one.
pub fn to_millis(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(3)
}

/// The current time at wire precision.
pub fn now() -> DateTime<Utc> {
    to_millis(Utc::now())
}

/// Earliest and latest years accepted. 1970 stays valid because an edge box that lost its clock
/// reports the epoch, and such an event is still worth keeping; years past 9999 cannot be written back
/// in RFC 3339 at all.
pub const YEARS: std::ops::RangeInclusive<i32> = 1970..=9999;

/// A string that is not a usable wire timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not an RFC 3339 timestamp between 1970 and 9999: {reason}")]
pub struct TimestampError {
    /// The rejected value (cut to 80 characters).
    pub value: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Parses an RFC 3339 timestamp into UTC at wire precision.
pub fn parse(s: &str) -> Result<DateTime<Utc>, TimestampError> {
    let fail = |reason: String| TimestampError {
        value: s.chars().take(80).collect(),
        reason,
    };
    let t = DateTime::parse_from_rfc3339(s)
        .map_err(|e| fail(e.to_string()))?
        .with_timezone(&Utc);
    if !YEARS.contains(&t.year()) {
        return Err(fail(format!("year {} is out of range", t.year())));
    }
    Ok(to_millis(t))
}

/// `#[serde(with = "crate::time::millis")]` for `DateTime<Utc>` fields.
pub mod millis {
    use super::*;

    /// Serialises as an RFC 3339 string with milliseconds and `Z`.
    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(t))
    }

    /// Accepts any RFC 3339 timestamp and truncates it to milliseconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let raw = String::deserialize(d)?;
        parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// `#[serde(default, with = "crate::time::millis_opt")]` for `Option<DateTime<Utc>>` fields (null or absent
/// is `None`).
pub mod millis_opt {
    use super::*;

    /// Serialises `Some` like [`super::millis`] and `None` as `null`.
    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&format(t)),
            None => s.serialize_none(),
        }
    }

    /// Accepts `null` or an RFC 3339 timestamp.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(raw) => parse(&raw).map(Some).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_written_in_utc_with_exactly_three_fraction_digits() {
        let t = parse("2025-03-01T16:15:30+08:00").unwrap();
        assert_eq!(format(&t), "2025-03-01T08:15:30.000Z");
        let t = parse("2025-03-01T08:15:30.123456789Z").unwrap();
        assert_eq!(format(&t), "2025-03-01T08:15:30.123Z");
    }

    #[test]
    fn timestamps_outside_1970_to_9999_are_rejected() {
        assert!(parse("1970-01-01T00:00:00Z").is_ok());
        let e = parse("1970-01-01T00:30:00+01:00").unwrap_err().to_string();
        assert!(e.contains("year 1969 is out of range"), "{e}");
        assert!(parse("0000-01-01T00:00:00+01:00").is_err());
        assert!(parse("9999-12-31T23:59:59-01:00").is_err());
    }
}
