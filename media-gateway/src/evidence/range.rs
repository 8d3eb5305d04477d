//! HTTP `Range` (RFC 9110 §14) for one byte range, so a `<video>` element can seek in a clip.
//!
//! A header that is absent, uses another unit, asks for several ranges or does not parse is ignored
//! and the whole blob is sent (RFC 9110 allows a server to ignore `Range`). A well-formed range that
//! starts past the end is unsatisfiable (416).

use std::ops::Range;

/// What to send for a `Range` header against a blob of a given size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ranged {
    /// The whole blob, 200.
    Full,
    /// These bytes (end exclusive), 206.
    Partial(Range<u64>),
    /// Nothing can be sent, 416.
    Unsatisfiable,
}

/// Interprets a `Range` header value for a blob of `size` bytes.
pub fn parse(header: Option<&str>, size: u64) -> Ranged {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ranged::Full;
    };
    if spec.contains(',') {
        return Ranged::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Ranged::Full;
    };
    let number = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            None
        } else {
            s.parse().ok()
        }
    };
    match (first, last) {
        ("", suffix) => match number(suffix) {
            None => Ranged::Full,
            Some(0) => Ranged::Unsatisfiable,
            Some(_) if size == 0 => Ranged::Unsatisfiable,
            Some(n) => Ranged::Partial(size.saturating_sub(n)..size),
        },
        (start, "") => match number(start) {
            None => Ranged::Full,
            Some(s) if s >= size => Ranged::Unsatisfiable,
            Some(s) => Ranged::Partial(s..size),
        },
        (start, end) => match (number(start), number(end)) {
            (Some(s), Some(e)) if s <= e => {
                if s >= size {
                    Ranged::Unsatisfiable
                } else {
                    Ranged::Partial(s..e.saturating_add(1).min(size))
                }
            }
            _ => Ranged::Full,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_forms_of_a_single_range_are_understood() {
        assert_eq!(parse(Some("bytes=0-99"), 1000), Ranged::Partial(0..100));
        assert_eq!(parse(Some("bytes=500-"), 1000), Ranged::Partial(500..1000));
        assert_eq!(parse(Some("bytes=-100"), 1000), Ranged::Partial(900..1000));
    }

    #[test]
    fn a_range_past_the_end_is_cut_to_the_blob() {
        assert_eq!(
            parse(Some("bytes=990-5000"), 1000),
            Ranged::Partial(990..1000)
        );
        assert_eq!(parse(Some("bytes=-5000"), 1000), Ranged::Partial(0..1000));
    }

    #[test]
    fn a_range_that_starts_past_the_end_is_unsatisfiable() {
        assert_eq!(parse(Some("bytes=1000-"), 1000), Ranged::Unsatisfiable);
        assert_eq!(parse(Some("bytes=2000-3000"), 1000), Ranged::Unsatisfiable);
        assert_eq!(parse(Some("bytes=-0"), 1000), Ranged::Unsatisfiable);
        assert_eq!(parse(Some("bytes=0-"), 0), Ranged::Unsatisfiable);
    }

    #[test]
    fn anything_else_is_ignored_and_the_whole_blob_sent() {
        for h in [
            None,
            Some("items=0-1"),
            Some("bytes=0-1,5-6"),
            Some("bytes=5-1"),
            Some("bytes=a-b"),
            Some("bytes=-"),
            Some("bytes=+1-2"),
            Some("bytes=99999999999999999999999-"),
        ] {
            assert_eq!(parse(h, 1000), Ranged::Full, "{h:?}");
        }
    }
}
