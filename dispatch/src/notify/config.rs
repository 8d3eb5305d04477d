//! `[notify]` and its `[[notify.channel]]` tables: the sender worker's timing and the outbound
//! channels with their filters. Secrets (robot URLs carry their keys, HMAC secrets, SMS tokens)
//! come from files and live in [`Secret`]s.

use super::ChannelKind;
use crate::incident::policy::Tier;
use bl_service::secret::Secret;
use serde::Deserialize;
use std::path::PathBuf;

/// `[notify]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// How often the sender looks for notifications to plan and deliveries due. Default `500`;
    /// 10 to 60000.
    #[serde(default = "default_poll")]
    pub poll_interval_ms: u64,
    /// Most deliveries one poll claims (they are sent concurrently). Default `32`; 1 to 1000.
    #[serde(default = "default_batch")]
    pub batch: u32,
    /// Attempts before a delivery that keeps failing is `dead`. Default `8`; 1 to 100.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Wait after the first failed attempt; doubles with each further one. Default `5000`.
    #[serde(default = "default_retry_base")]
    pub retry_base_ms: u64,
    /// Longest wait between attempts. Default `600000` (10 minutes); at least `retry_base_ms`.
    #[serde(default = "default_retry_max")]
    pub retry_max_ms: u64,
    /// How long a worker holds a delivery it is sending; after that another worker treats the
    /// send as interrupted (see the crash rules in README). Default `60`; must exceed every
    /// channel's `timeout_ms` by 5 s.
    #[serde(default = "default_lease")]
    pub lease_secs: u64,
    /// Notifications older than this when the sender first sees them are not delivered (they were
    /// written while no sender ran; a page about an old case misleads). Default `3600`.
    #[serde(default = "default_max_age")]
    pub max_age_secs: u64,
    /// Base URL of the web console; messages link `{console_url}/incidents/{id}`. Default: none,
    /// then messages give the incident id.
    #[serde(default)]
    pub console_url: Option<String>,
    /// The outbound channels (`[[notify.channel]]`). Default: none (nothing is sent outside).
    #[serde(default)]
    pub channel: Vec<ChannelConfig>,
}

/// `[[notify.channel]]`: one outbound channel and which notifications it takes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    /// Unique name (letters, digits, '-', '_'), shown in the API. Required.
    pub name: String,
    /// `webhook`, `wecom`, `dingtalk` or `sms`. Required.
    pub kind: ChannelKind,
    /// File holding the URL to POST to. Robot URLs carry their key, so it is a secret. Required.
    pub url_file: PathBuf,
    /// File holding the channel's secret: the webhook's HMAC-SHA256 key (required), the DingTalk
    /// robot's 加签 secret (`SEC…`, optional), the SMS provider's bearer token (optional); WeCom
    /// takes none.
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// Read from `url_file` by [`NotifyConfig::load_secrets`] (tests set it directly).
    #[serde(skip)]
    pub url: Option<Secret>,
    /// Read from `secret_file` (tests set it directly).
    #[serde(skip)]
    pub secret: Option<Secret>,
    /// Whole-request timeout. Default `5000`; 100 to 60000.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// Recipient kinds it takes: `team`, `user`, `town`, `district`. Default: all.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Town ids whose incidents it takes. Default: all.
    #[serde(default)]
    pub towns: Vec<String>,
    /// Tiers it takes: `immediate`, `deadline`, `routine`. Default: all.
    #[serde(default)]
    pub tiers: Vec<String>,
    /// Whether exercise (drill) notifications go to it. Default `false`: drills reach only
    /// channels that say so.
    #[serde(default)]
    pub drills: bool,
}

/// What a channel's filter looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts<'a> {
    pub target_kind: &'a str,
    pub town_id: &'a str,
    pub tier: &'a str,
    pub exercise: bool,
}

const TARGET_KINDS: [&str; 4] = ["team", "user", "town", "district"];

impl ChannelConfig {
    /// Whether this channel takes a notification with `facts` (an empty list takes every value).
    pub fn accepts(&self, facts: &Facts<'_>) -> bool {
        let takes = |list: &[String], v: &str| list.is_empty() || list.iter().any(|x| x == v);
        (self.drills || !facts.exercise)
            && takes(&self.targets, facts.target_kind)
            && takes(&self.towns, facts.town_id)
            && takes(&self.tiers, facts.tier)
    }
}

fn default_poll() -> u64 {
    500
}
fn default_batch() -> u32 {
    32
}
fn default_max_attempts() -> u32 {
    8
}
fn default_retry_base() -> u64 {
    5000
}
fn default_retry_max() -> u64 {
    600_000
}
fn default_lease() -> u64 {
    60
}
fn default_max_age() -> u64 {
    3600
}
fn default_timeout() -> u64 {
    5000
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            poll_interval_ms: default_poll(),
            batch: default_batch(),
            max_attempts: default_max_attempts(),
            retry_base_ms: default_retry_base(),
            retry_max_ms: default_retry_max(),
            lease_secs: default_lease(),
            max_age_secs: default_max_age(),
            console_url: None,
            channel: Vec::new(),
        }
    }
}

impl NotifyConfig {
    /// Checks the rules serde cannot express; the error is `(field, message)`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let err = |f: &str, m: &str| Err((format!("notify.{f}"), m.to_owned()));
        if !(10..=60_000).contains(&self.poll_interval_ms) {
            return err("poll_interval_ms", "must be between 10 and 60000");
        }
        if !(1..=1000).contains(&self.batch) {
            return err("batch", "must be between 1 and 1000");
        }
        if !(1..=100).contains(&self.max_attempts) {
            return err("max_attempts", "must be between 1 and 100");
        }
        if self.retry_base_ms == 0 {
            return err("retry_base_ms", "must be at least 1");
        }
        if self.retry_max_ms < self.retry_base_ms {
            return err("retry_max_ms", "must not be shorter than retry_base_ms");
        }
        if let Some(url) = &self.console_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return err("console_url", "must be an http:// or https:// URL");
        }
        for (i, c) in self.channel.iter().enumerate() {
            let f = |name: &str| format!("channel[{i}].{name}");
            let simple = !c.name.is_empty()
                && c.name.len() <= 64
                && c.name
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_');
            if !simple {
                return err(&f("name"), "must be 1-64 letters, digits, '-' or '_'");
            }
            if self.channel[..i].iter().any(|o| o.name == c.name) {
                return err(&f("name"), &format!("{:?} is listed twice", c.name));
            }
            if !(100..=60_000).contains(&c.timeout_ms) {
                return err(&f("timeout_ms"), "must be between 100 and 60000");
            }
            if self.lease_secs * 1000 < c.timeout_ms + 5000 {
                return err(
                    "lease_secs",
                    &format!("must exceed channel {:?}'s timeout_ms by 5 s", c.name),
                );
            }
            if c.kind == ChannelKind::Webhook && c.secret_file.is_none() && c.secret.is_none() {
                return err(
                    &f("secret_file"),
                    "is required for a webhook: name a file holding the HMAC-SHA256 key",
                );
            }
            if c.kind == ChannelKind::Wecom && c.secret_file.is_some() {
                return err(&f("secret_file"), "is not used by a WeCom robot; remove it");
            }
            if let Some(t) = c
                .targets
                .iter()
                .find(|t| !TARGET_KINDS.contains(&t.as_str()))
            {
                return err(
                    &f("targets"),
                    &format!("{t:?} is not one of team, user, town, district"),
                );
            }
            if let Some(t) = c.tiers.iter().find(|t| Tier::parse(t).is_none()) {
                return err(
                    &f("tiers"),
                    &format!("{t:?} is not one of immediate, deadline, routine"),
                );
            }
        }
        Ok(())
    }

    /// Reads every channel's `url_file` and `secret_file`; the error is `(field, message)`.
    pub fn load_secrets(&mut self) -> Result<(), (String, String)> {
        for (i, c) in self.channel.iter_mut().enumerate() {
            let read = |field: &str, path: &PathBuf| {
                Secret::from_file(path).map_err(|e| {
                    (
                        format!("notify.channel[{i}].{field}"),
                        format!("cannot read {}: {e}", path.display()),
                    )
                })
            };
            let url = read("url_file", &c.url_file)?;
            let u = url.expose();
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err((
                    format!("notify.channel[{i}].url_file"),
                    format!(
                        "{} must hold an http:// or https:// URL",
                        c.url_file.display()
                    ),
                ));
            }
            c.url = Some(url);
            if let Some(path) = &c.secret_file {
                c.secret = Some(read("secret_file", path)?);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(kind: &str, extra: &str) -> String {
        format!(
            "[[notify.channel]]\nname = \"c\"\nkind = \"{kind}\"\nurl_file = \"u\"\n\
             secret_file = \"s\"\n{extra}\n"
        )
    }

    fn parse(text: &str) -> Result<NotifyConfig, (String, String)> {
        #[derive(Deserialize)]
        struct File {
            notify: NotifyConfig,
        }
        let f: File = toml_parse(text);
        f.notify.validate().map(|()| f.notify)
    }

    fn toml_parse<T: serde::de::DeserializeOwned>(text: &str) -> T {
        bl_service::config::parse(std::path::Path::new("t.toml"), text).unwrap()
    }

    #[test]
    fn a_channel_without_filters_takes_every_real_notification_but_no_drill() {
        let c = &parse(&channel("webhook", "")).unwrap().channel[0];
        let mut f = Facts {
            target_kind: "district",
            town_id: "zhaitang",
            tier: "routine",
            exercise: false,
        };
        assert!(c.accepts(&f));
        f.exercise = true;
        assert!(!c.accepts(&f));
    }

    #[test]
    fn filters_on_targets_towns_and_tiers_must_all_match_and_drills_need_consent() {
        let c = &parse(&channel(
            "dingtalk",
            "targets = [\"team\"]\ntowns = [\"zhaitang\"]\ntiers = [\"immediate\"]\ndrills = true",
        ))
        .unwrap()
        .channel[0];
        let ok = Facts {
            target_kind: "team",
            town_id: "zhaitang",
            tier: "immediate",
            exercise: true,
        };
        assert!(c.accepts(&ok));
        assert!(!c.accepts(&Facts {
            target_kind: "user",
            ..ok.clone()
        }));
        assert!(!c.accepts(&Facts {
            town_id: "qingshui",
            ..ok.clone()
        }));
        assert!(!c.accepts(&Facts {
            tier: "routine",
            ..ok
        }));
    }

    #[test]
    fn bad_channels_are_refused_naming_the_field() {
        let e = parse(&channel("webhook", "tiers = [\"urgent\"]")).unwrap_err();
        assert_eq!(e.0, "notify.channel[0].tiers");
        let e = parse(&channel("webhook", "targets = [\"everyone\"]")).unwrap_err();
        assert_eq!(e.0, "notify.channel[0].targets");
        let e = parse(&channel("wecom", "")).unwrap_err();
        assert_eq!(e.0, "notify.channel[0].secret_file");
        let e = parse(&channel("webhook", "timeout_ms = 58000")).unwrap_err();
        assert_eq!(e.0, "notify.lease_secs");
        let no_secret = "[[notify.channel]]\nname = \"h\"\nkind = \"webhook\"\nurl_file = \"u\"\n";
        assert_eq!(
            parse(no_secret).unwrap_err().0,
            "notify.channel[0].secret_file"
        );
        let twice = format!("{}{}", channel("sms", ""), channel("sms", ""));
        assert_eq!(parse(&twice).unwrap_err().0, "notify.channel[1].name");
    }

    #[test]
    fn secrets_are_read_from_their_files_and_a_file_without_a_url_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().join("url");
        let key = dir.path().join("key");
        std::fs::write(
            &url,
            "https://oapi.dingtalk.com/robot/send?access_token=t\n",
        )
        .unwrap();
        std::fs::write(&key, "SECabc\n").unwrap();
        let text = format!(
            "[[notify.channel]]\nname = \"d\"\nkind = \"dingtalk\"\nurl_file = {:?}\nsecret_file = {:?}\n",
            url.display().to_string(),
            key.display().to_string()
        );
        let mut c = parse(&text).unwrap();
        c.load_secrets().unwrap();
        let ch = &c.channel[0];
        assert_eq!(ch.secret.as_ref().unwrap().expose(), "SECabc");
        assert!(
            ch.url
                .as_ref()
                .unwrap()
                .expose()
                .ends_with("access_token=t")
        );
        assert!(!format!("{ch:?}").contains("access_token"));
        std::fs::write(&url, "oapi.dingtalk.com/robot/send").unwrap();
        let e = parse(&text).unwrap().load_secrets().unwrap_err();
        assert_eq!(e.0, "notify.channel[0].url_file");
    }
}
