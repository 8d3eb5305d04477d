//! `[drills]`: what drills need from outside dispatch — Chromium to print reports to PDF
//! ([`super::pdf`]) and camsim's control endpoint to play scene injects ([`super::scene`]).

use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillsConfig {
    /// The Chromium (or Chrome) binary that prints reports to PDF. Default `"/usr/bin/chromium"`.
    #[serde(default = "default_chromium")]
    pub chromium: PathBuf,
    /// Longest one rendering may take before Chromium is killed, in seconds. Default `60`; 5 to 600.
    #[serde(default = "default_pdf_timeout")]
    pub pdf_timeout_secs: u64,
    /// camsim's control endpoint (`camsim --control ADDR`), e.g. `"http://127.0.0.1:8555"`; its
    /// camera ids must be the registry's. Default: none, then scene injects are skipped, saying
    /// so on the run.
    #[serde(default)]
    pub camsim_url: Option<String>,
    /// How long a scene waits for the edge to report the config revision that stages it, in
    /// seconds (an edge reports its state at once when it applied a config, and every
    /// `state_interval_secs`). Default `90`; 1 to 3600.
    #[serde(default = "default_stage_timeout_secs")]
    pub stage_timeout_secs: u64,
}

impl Default for DrillsConfig {
    fn default() -> Self {
        DrillsConfig {
            chromium: default_chromium(),
            pdf_timeout_secs: default_pdf_timeout(),
            camsim_url: None,
            stage_timeout_secs: default_stage_timeout_secs(),
        }
    }
}

fn default_chromium() -> PathBuf {
    PathBuf::from("/usr/bin/chromium")
}

fn default_pdf_timeout() -> u64 {
    60
}

fn default_stage_timeout_secs() -> u64 {
    90
}

impl DrillsConfig {
    /// The first field that breaks a rule, and why.
    pub fn check(&self) -> Result<(), (&'static str, &'static str)> {
        if !(5..=600).contains(&self.pdf_timeout_secs) {
            return Err(("drills.pdf_timeout_secs", "must be 5 to 600"));
        }
        if self.chromium.as_os_str().is_empty() {
            return Err(("drills.chromium", "must name the Chromium binary"));
        }
        if let Some(url) = &self.camsim_url {
            let host = url
                .strip_prefix("http://")
                .or_else(|| url.strip_prefix("https://"))
                .unwrap_or("");
            if host.is_empty() || host.starts_with('/') {
                return Err((
                    "drills.camsim_url",
                    "must be an http:// or https:// URL with a host",
                ));
            }
        }
        if !(1..=3600).contains(&self.stage_timeout_secs) {
            return Err(("drills.stage_timeout_secs", "must be 1 to 3600"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_bad_field_is_named() {
        assert!(DrillsConfig::default().check().is_ok());
        let bad = |f: fn(&mut DrillsConfig)| {
            let mut c = DrillsConfig::default();
            f(&mut c);
            c.check().unwrap_err().0
        };
        assert_eq!(bad(|c| c.pdf_timeout_secs = 1), "drills.pdf_timeout_secs");
        assert_eq!(bad(|c| c.chromium = PathBuf::new()), "drills.chromium");
        assert_eq!(
            bad(|c| c.camsim_url = Some("camsim:8555".into())),
            "drills.camsim_url"
        );
        assert_eq!(
            bad(|c| c.stage_timeout_secs = 0),
            "drills.stage_timeout_secs"
        );
    }
}
