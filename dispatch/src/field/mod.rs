//! The field API (issue 5 item 6): what a team's phones need on a weak link.
//!
//! - [`access`] (plain): which incidents a caller may work — a field user only those routed to
//!   their team — and which need rectification evidence to be resolved.
//! - [`idempotency`]: a request carrying an `Idempotency-Key` (a UUID made on the phone) acts once;
//!   a retry gets the first answer again.
//! - [`photos`]: field photos, content-addressed by SHA-256 and immutable.
//! - [`recheck`]: camera re-checks sent to the owning edge over MQTT, their answers and time-outs.
//! - [`store`]: the "my incidents" list.
//!
//! **A phone may repeat any write it did not see answered: with the same `Idempotency-Key` it
//! changes nothing more and gets the first answer again.**

pub mod access;
pub mod idempotency;
pub mod photos;
pub mod recheck;
pub mod store;

use serde::Deserialize;

/// `[field]`: photo uploads and camera re-checks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldConfig {
    /// Largest photo upload in bytes. Default `10485760` (10 MiB); 1024 to 52428800.
    #[serde(default = "default_photo_max_bytes")]
    pub photo_max_bytes: usize,
    /// How long an edge has to start a re-check, and to answer after its watch ends, in seconds.
    /// Default `60`; 1 to 3600.
    #[serde(default = "default_recheck_grace_secs")]
    pub recheck_grace_secs: u32,
    /// How often each replica looks for re-checks past their deadline, in milliseconds. Default
    /// `1000`; 10 to 60000.
    #[serde(default = "default_sweep_interval_ms")]
    pub sweep_interval_ms: u64,
}

fn default_photo_max_bytes() -> usize {
    10 * 1024 * 1024
}
fn default_recheck_grace_secs() -> u32 {
    60
}
fn default_sweep_interval_ms() -> u64 {
    1000
}

impl Default for FieldConfig {
    fn default() -> Self {
        FieldConfig {
            photo_max_bytes: default_photo_max_bytes(),
            recheck_grace_secs: default_recheck_grace_secs(),
            sweep_interval_ms: default_sweep_interval_ms(),
        }
    }
}

impl FieldConfig {
    /// The first field that breaks a rule, and why.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !(1024..=50 * 1024 * 1024).contains(&self.photo_max_bytes) {
            return Err(("field.photo_max_bytes", "must be 1024 to 52428800".into()));
        }
        if !(1..=3600).contains(&self.recheck_grace_secs) {
            return Err(("field.recheck_grace_secs", "must be 1 to 3600".into()));
        }
        if !(10..=60_000).contains(&self.sweep_interval_ms) {
            return Err(("field.sweep_interval_ms", "must be 10 to 60000".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_each_bound_names_its_field() {
        assert!(FieldConfig::default().validate().is_ok());
        let c = FieldConfig {
            photo_max_bytes: 10,
            ..Default::default()
        };
        assert_eq!(c.validate().unwrap_err().0, "field.photo_max_bytes");
        let c = FieldConfig {
            recheck_grace_secs: 0,
            ..Default::default()
        };
        assert_eq!(c.validate().unwrap_err().0, "field.recheck_grace_secs");
        let c = FieldConfig {
            sweep_interval_ms: 5,
            ..Default::default()
        };
        assert_eq!(c.validate().unwrap_err().0, "field.sweep_interval_ms");
    }
}
