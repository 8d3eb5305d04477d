//! Timeline notes as codes (issue 6): what the system writes on a timeline is a [`Note`] — a code
//! from [`CODES`] and its parameters — stored beside the English text, so that the console and the
//! field app say it in the reader's language (`web/src/lib/timeline.ts`; its unit test reads
//! [`CODES`] from the OpenAPI document and checks both languages have each). Plain data.

use serde_json::{Value, json};

/// A coded note: `code` is one of [`CODES`]; `params` are the values its text names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub code: &'static str,
    pub params: Value,
}

/// Every note code the system writes. A new one needs its words in `web/src/i18n/*`
/// (`timeline.note.<code>`).
pub const CODES: &[&str] = &[
    "opened",
    "repeat",
    "severitySuggested",
    "routedToTeam",
    "routedToTown",
    "notifiedTeam",
    "notifiedTownOfficers",
    "escalatedTownOfficers",
    "escalatedSupervisors",
    "clockAtRisk",
    "clockOverdue",
    "cameraOnline",
    "recheckRequested",
    "recheckPassed",
    "recheckPassedStays",
    "recheckFailed",
    "recheckTimedOut",
    "falseAlarm",
    "endex",
    "voiceRecorded",
    // Consult rooms and the voice channel (crate::rooms::timeline).
    "roomOpened",
    "roomClosed",
    "roomJoined",
    "roomGuestJoined",
    "roomCameraShared",
    "roomCameraStopped",
    "roomClipShared",
    "roomClipStopped",
    "voiceOpened",
    "voiceJoined",
];

impl Note {
    /// A note of `code` (which must be one of [`CODES`]) with `params`.
    pub fn new(code: &'static str, params: Value) -> Note {
        debug_assert!(CODES.contains(&code), "note code {code} is not in CODES");
        Note { code, params }
    }

    /// A note with no parameters.
    pub fn bare(code: &'static str) -> Note {
        Note::new(code, json!({}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn note_codes_are_unique_camel_case_words() {
        for (i, code) in CODES.iter().enumerate() {
            assert!(!CODES[..i].contains(code), "{code} twice");
            assert!(
                code.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                    && code.chars().all(|c| c.is_ascii_alphanumeric()),
                "{code}"
            );
        }
    }
}
