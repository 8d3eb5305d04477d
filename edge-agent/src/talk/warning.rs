//! Which automatic voice warning fits an episode's start: plain rules over kind, premises kind,
//! camera and the local time of day (`[[talk.warning]]`, first match wins).

use super::config::{TalkConfig, WarningRule};
use bl_proto::CameraId;
use bl_proto::event::ViolationKind;

/// The rules that apply to this box (its premises kind already chosen).
#[derive(Debug, Clone, Default)]
pub struct Warnings {
    rules: Vec<WarningRule>,
}

impl Warnings {
    /// Keeps the rules for the box's premises kind (a rule naming no kind is for every kind).
    pub fn new(config: &TalkConfig) -> Warnings {
        let kind = config.premises_kind.as_deref();
        let rules = config
            .warning
            .iter()
            .filter(|r| {
                r.premises.is_empty() || kind.is_some_and(|k| r.premises.iter().any(|p| p == k))
            })
            .cloned()
            .collect();
        Warnings { rules }
    }

    /// The message of the first rule for `kind` at `camera` whose hours hold `minute_of_day`.
    pub fn pick(&self, kind: ViolationKind, camera: &CameraId, minute_of_day: u16) -> Option<&str> {
        self.rules
            .iter()
            .find(|r| {
                r.kind == kind
                    && (r.cameras.is_empty() || r.cameras.contains(camera))
                    && r.hours.is_none_or(|h| h.contains(minute_of_day))
            })
            .map(|r| r.message.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> Warnings {
        #[derive(serde::Deserialize)]
        struct File {
            talk: TalkConfig,
        }
        let file: File = toml::from_str(text).unwrap();
        Warnings::new(&file.talk)
    }

    const RULES: &str = r#"
        [talk]
        premises_kind = "schoolCanteen"
        [[talk.message]]
        id = "hat"
        text = "请戴好厨师帽"
        [[talk.message]]
        id = "hat-restaurant"
        text = "请戴帽"
        [[talk.warning]]
        kind = "noChefHat"
        message = "hat-restaurant"
        premises = ["restaurant"]
        [[talk.warning]]
        kind = "noChefHat"
        message = "hat"
        premises = ["schoolCanteen", "centralKitchen"]
        hours = { from = "06:00", to = "20:00" }
    "#;

    #[test]
    fn a_no_hat_episode_in_a_school_canteen_during_opening_hours_gets_the_canteens_message() {
        let cam = CameraId::new("k1").unwrap();
        let w = rules(RULES);
        assert_eq!(w.pick(ViolationKind::NoChefHat, &cam, 9 * 60), Some("hat"));
    }

    #[test]
    fn outside_opening_hours_or_for_another_kind_no_warning_is_played() {
        let cam = CameraId::new("k1").unwrap();
        let w = rules(RULES);
        assert_eq!(w.pick(ViolationKind::NoChefHat, &cam, 21 * 60), None);
        assert_eq!(w.pick(ViolationKind::Rodent, &cam, 9 * 60), None);
    }

    #[test]
    fn a_restaurant_box_uses_the_restaurant_rule() {
        let cam = CameraId::new("k1").unwrap();
        let w = rules(&RULES.replace("schoolCanteen\"\n", "restaurant\"\n"));
        assert_eq!(
            w.pick(ViolationKind::NoChefHat, &cam, 21 * 60),
            Some("hat-restaurant")
        );
    }
}
