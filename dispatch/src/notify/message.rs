//! What a notification says, in Chinese, short and actionable: drill marker, urgency, town,
//! premises, what was found, who is asked and why, what to do, and where to look. Pure.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

/// Every message of an exercise starts with this, so nobody mistakes a drill for a real case.
pub const DRILL_PREFIX: &str = "【演练 DRILL】";

/// The facts of one notification that channels render.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub notification_id: Uuid,
    pub incident_id: Uuid,
    /// The incident's kind (`rodent`, …).
    pub kind: String,
    /// `immediate`, `deadline` or `routine`.
    pub tier: String,
    /// Suggested emergency level (I–IV), if any.
    pub severity: Option<String>,
    pub town_id: String,
    pub town_name: String,
    /// The premises' name, or the free address of a hotline report.
    pub place: String,
    /// `team`, `user`, `town` or `district`.
    pub target_kind: String,
    pub target_id: String,
    pub target_name: String,
    /// The escalation policy target that caused it: `team`, `townOfficers`, `districtSupervisors`.
    pub step_target: String,
    /// The recipient's phone ('' when none is known).
    pub phone: String,
    /// The drill run, for an exercise.
    pub exercise: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The Chinese name of an incident kind.
pub fn kind_zh(kind: &str) -> &str {
    match kind {
        "noChefHat" => "未戴厨师帽",
        "noMask" => "未戴口罩",
        "noGloves" => "未戴手套",
        "noUniform" => "未穿工作服",
        "rodent" => "发现老鼠",
        "smoking" => "后厨吸烟",
        "phoneUse" => "操作时玩手机",
        "personAbsent" => "岗位无人",
        "uncoveredBin" => "垃圾桶未加盖",
        "cameraOffline" => "摄像头离线",
        "cameraTampered" => "摄像头被遮挡或移动",
        "suspectedPoisoning" => "疑似食物中毒",
        "adverseDrugReaction" => "药品不良反应",
        "complaint" => "投诉举报",
        "other" => "其他问题",
        other => other,
    }
}

/// The urgency label and what the recipient should do, by tier.
fn tier_zh(tier: &str) -> (&'static str, &'static str) {
    match tier {
        "immediate" => ("紧急", "请立即派员赶赴现场处置，并在系统中确认接警。"),
        "deadline" => ("限期整改", "请督促经营者限期整改，逾期未改请派员现场核查。"),
        _ => ("一般", "请登记，纳入日常监督检查。"),
    }
}

/// Why this recipient is asked, by escalation step.
fn step_zh(step_target: &str) -> &'static str {
    match step_target {
        "townOfficers" => "无人确认，升级至镇街",
        "districtSupervisors" => "无人确认，升级至区局",
        _ => "派单",
    }
}

impl Message {
    pub fn is_drill(&self) -> bool {
        self.exercise.is_some()
    }

    /// Where to see the incident: a console link, or its id.
    pub fn link(&self, console_url: Option<&str>) -> String {
        match console_url {
            Some(base) => format!(
                "详情：{}/incidents/{}",
                base.trim_end_matches('/'),
                self.incident_id
            ),
            None => format!("事件编号：{}", self.incident_id),
        }
    }

    /// The whole text (robots, webhook): four short lines.
    pub fn text(&self, console_url: Option<&str>) -> String {
        let (urgency, todo) = tier_zh(&self.tier);
        let drill = if self.is_drill() { DRILL_PREFIX } else { "" };
        let severity = match &self.severity {
            Some(level) => format!("（建议{level}级响应）"),
            None => String::new(),
        };
        format!(
            "{drill}【{urgency}】{town} {place}：{what}{severity}\n致：{to}（{why}）\n{todo}\n{link}",
            town = self.town_name,
            place = self.place,
            what = kind_zh(&self.kind),
            to = self.target_name,
            why = step_zh(&self.step_target),
            link = self.link(console_url),
        )
    }

    /// A text short enough for one SMS (70 Chinese characters): no link, the incident id's first
    /// block instead.
    pub fn sms_text(&self) -> String {
        let (urgency, _) = tier_zh(&self.tier);
        let drill = if self.is_drill() { DRILL_PREFIX } else { "" };
        let id = self.incident_id.to_string();
        format!(
            "{drill}【{urgency}】{town}{place}{what}，请尽快处置并在系统确认（事件{short}）",
            town = self.town_name,
            place = self.place,
            what = kind_zh(&self.kind),
            short = &id[..8],
        )
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn rodent() -> Message {
        Message {
            notification_id: Uuid::nil(),
            incident_id: Uuid::parse_str("0190a1b2-0000-7000-8000-000000000001").unwrap(),
            kind: "rodent".into(),
            tier: "immediate".into(),
            severity: None,
            town_id: "zhaitang".into(),
            town_name: "斋堂镇".into(),
            place: "老王饭店".into(),
            target_kind: "team".into(),
            target_id: "t1".into(),
            target_name: "斋堂镇全天组".into(),
            step_target: "team".into(),
            phone: "13800000001".into(),
            exercise: None,
            created_at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        }
    }

    #[test]
    fn a_rodent_reads_as_an_urgent_dispatch_with_what_to_do_and_a_link() {
        let text = rodent().text(Some("https://bl.example.cn/"));
        assert_eq!(
            text,
            "【紧急】斋堂镇 老王饭店：发现老鼠\n致：斋堂镇全天组（派单）\n\
             请立即派员赶赴现场处置，并在系统中确认接警。\n\
             详情：https://bl.example.cn/incidents/0190a1b2-0000-7000-8000-000000000001"
        );
    }

    #[test]
    fn a_drill_starts_with_the_drill_marker_and_an_escalation_says_why() {
        let mut m = rodent();
        m.exercise = Some("drill-7".into());
        m.step_target = "districtSupervisors".into();
        m.kind = "suspectedPoisoning".into();
        m.severity = Some("III".into());
        let text = m.text(None);
        assert!(text.starts_with("【演练 DRILL】【紧急】"), "{text}");
        assert!(text.contains("疑似食物中毒（建议III级响应）"), "{text}");
        assert!(text.contains("（无人确认，升级至区局）"), "{text}");
        assert!(text.ends_with("事件编号：0190a1b2-0000-7000-8000-000000000001"));
        assert!(m.sms_text().starts_with(DRILL_PREFIX));
    }

    #[test]
    fn an_sms_fits_one_message() {
        let m = rodent();
        let sms = m.sms_text();
        assert!(sms.chars().count() <= 70, "{sms}");
        assert!(sms.contains("事件0190a1b2"), "{sms}");
    }

    #[test]
    fn a_deadline_case_asks_for_rectification() {
        let mut m = rodent();
        m.kind = "noChefHat".into();
        m.tier = "deadline".into();
        assert!(
            m.text(None)
                .contains("【限期整改】斋堂镇 老王饭店：未戴厨师帽")
        );
        assert!(m.text(None).contains("限期整改，逾期未改"));
    }
}
