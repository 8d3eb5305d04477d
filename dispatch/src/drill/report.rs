//! The after-action report (HTML, Chinese), written at ENDEX. Structured like the national
//! exercise-evaluation guidance: 演练概况, 演练过程, 按指标评估, 发现的问题, 改进计划. Plain code:
//! a [`RunView`] in, a self-contained page out (no scripts, no external resources, so it prints
//! and archives as it is).

use super::evaluate::Status;
use super::store::{ExpectationView, ObservationView, RunView};
use chrono::{DateTime, FixedOffset, Utc};
use std::fmt::Write;

/// Beijing time, as the district reads it.
fn local(t: DateTime<Utc>) -> String {
    let cst = FixedOffset::east_opt(8 * 3600).expect("+08:00 is a valid offset");
    t.with_timezone(&cst)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `1分40秒`, `2小时0分`.
pub fn duration_zh(secs: i64) -> String {
    let s = secs.abs();
    let text = if s >= 3600 {
        format!("{}小时{}分", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}分{}秒", s / 60, s % 60)
    } else {
        format!("{s}秒")
    };
    if secs < 0 { format!("-{text}") } else { text }
}

pub fn role_zh(role: &str) -> &str {
    match role {
        "admin" => "系统管理员",
        "supervisor" => "区局指挥人员",
        "operator" => "指挥中心值班员",
        "townOfficer" => "镇街食药安全负责人",
        "field" => "一线处置人员",
        "drillCoordinator" => "演练导调人员",
        "auditor" => "审计人员",
        other => other,
    }
}

pub fn action_zh(action: &str) -> &str {
    match action {
        "triage" => "研判",
        "dispatch" => "派单",
        "acknowledge" => "接报确认",
        "enRoute" => "出发",
        "arrive" => "到达现场",
        "resolve" => "处置完毕",
        "healthReport" => "向卫生健康部门报告",
        other => other,
    }
}

fn rating_zh(r: &str) -> &str {
    match r {
        "P" => "P（顺利完成）",
        "S" => "S（完成，存在一些问题）",
        "M" => "M（完成，存在较大问题）",
        "U" => "U（未能完成）",
        other => other,
    }
}

fn status_class(s: Status) -> &'static str {
    match s {
        Status::Met => "met",
        Status::Late => "late",
        Status::Missed | Status::Overdue => "missed",
        Status::Pending | Status::NotStarted => "pending",
    }
}

fn observation(v: &RunView, o: &ObservationView) -> String {
    let task = o
        .expectation_id
        .as_deref()
        .and_then(|id| v.expectations.iter().find(|e| e.id == id))
        .map_or(String::new(), |e| format!("【{}】", esc(&e.task)));
    let rating = o
        .rating
        .as_deref()
        .map_or(String::new(), |r| format!("（评级 {}）", rating_zh(r)));
    format!(
        "观察记录{task}{rating}：{}（{}，{}）",
        esc(&o.text),
        esc(&o.author),
        local(o.at)
    )
}

fn actual(e: &ExpectationView) -> String {
    match (e.done_at, e.elapsed_secs) {
        (Some(_), Some(s)) => format!(
            "{}（{}）",
            duration_zh(s),
            esc(e.by.as_deref().unwrap_or(""))
        ),
        _ => "—".into(),
    }
}

/// The whole report page.
pub fn render(v: &RunView) -> String {
    let ended = v.ended_at.unwrap_or(v.started_at);
    let length = (ended - v.started_at).num_seconds() - v.paused_secs;
    let (met, late, missed) = super::store::tally(v);
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <title>【演练 DRILL】{title} 演练评估报告</title><style>\
         body{{font-family:\"Noto Sans CJK SC\",\"Microsoft YaHei\",sans-serif;margin:32px;color:#222}}\
         h1{{font-size:22px}} h2{{font-size:18px;border-bottom:1px solid #999;padding-bottom:4px;margin-top:28px}}\
         table{{border-collapse:collapse;width:100%;font-size:13px}} th,td{{border:1px solid #bbb;padding:4px 6px;text-align:left}}\
         th{{background:#f0f0f0}} .drill{{color:#c62828;font-weight:bold}} .met{{color:#2e7d32}} .late{{color:#ef6c00}}\
         .missed{{color:#c62828}} .pending{{color:#555}} .chart{{max-width:100%;height:auto}}\
         figure{{margin:8px 0;break-inside:avoid}} figcaption{{font-size:13px;margin-bottom:4px}} .nowrap{{white-space:nowrap}}\
         @page{{size:A4;margin:14mm}} @media print{{body{{margin:0}} tr{{break-inside:avoid}} h2{{break-after:avoid}}}}\
         </style></head><body>\
         <p class=\"drill\">【演练 DRILL】本报告所涉事件均为演练，不计入真实统计。</p>\
         <h1>{title} — 演练评估报告</h1><p>报告结构参照 GB/T 46792-2025（演练概况、按指标评估、发现的问题、改进计划）。</p>",
        title = esc(&v.title)
    );
    // 一、演练概况
    let places: Vec<String> = v
        .places
        .iter()
        .map(|p| format!("{}（{}）", esc(&p.label), esc(&p.premises_name)))
        .collect();
    let _ = write!(
        h,
        "<h2>一、演练概况</h2><table>\
         <tr><th>演练名称</th><td>{}</td></tr><tr><th>演练编号</th><td>{}</td></tr>\
         <tr><th>情景</th><td>{}</td></tr><tr><th>开始（STARTEX）</th><td>{}</td></tr>\
         <tr><th>结束（ENDEX）</th><td>{}</td></tr><tr><th>演练时长</th><td>{}（暂停{}）</td></tr>\
         <tr><th>参演镇街</th><td>{}</td></tr><tr><th>参演队伍</th><td>{}</td></tr>\
         <tr><th>演练地点</th><td>{}</td></tr><tr><th>导调人员</th><td>{}</td></tr>\
         <tr><th>评估结论</th><td>共{}项考核任务：达标{met}项，超时{late}项，未完成{missed}项</td></tr></table>",
        esc(&v.title),
        esc(&v.exercise),
        esc(&v.summary),
        local(v.started_at),
        v.ended_at.map_or("—".into(), local),
        duration_zh(length),
        duration_zh(v.paused_secs),
        esc(&v.town_names.join("、")),
        esc(&v.teams.join("、")),
        places.join("、"),
        esc(&v.started_by),
        v.expectations.len(),
    );
    // 二、演练过程: the timeline first (it stays whole on a page), then every inject
    let _ = write!(
        h,
        "<h2>二、演练过程</h2><figure class=\"timeline\"><figcaption>演练时间线（◆ 情景注入；灰色为各任务的目标时限，\
         绿色达标，橙色超时，红色至演练结束仍未完成）</figcaption>{}</figure>\
         <table><tr><th>计划时间</th><th>实际注入</th><th>类型</th><th>内容</th><th>结果</th></tr>",
        super::chart::timeline(v)
    );
    for i in &v.injects {
        let kind = match i.kind.as_str() {
            "hotline" => "热线来电",
            "caseUpdate" => "病例更新",
            "message" => "角色扮演消息",
            other => other,
        };
        let outcome = match i.outcome.as_deref() {
            Some("opened") => "立案",
            Some("attached") => "并入已有事件",
            Some("message") => "已发出",
            Some("notFired") => "未注入",
            _ => "待注入",
        };
        let _ = write!(
            h,
            "<tr><td>T+{}</td><td>{}</td><td>{kind}</td><td>{}</td><td>{outcome}</td></tr>",
            duration_zh(i.offset_secs),
            i.fired_at.map_or("—".into(), local),
            esc(&i.text)
        );
    }
    h.push_str("</table>");
    // 三、按指标评估
    h.push_str(
        "<h2>三、按指标评估</h2><table><tr><th>考核任务</th><th>责任角色</th><th>动作</th>\
         <th>目标时限</th><th>实际用时（执行人）</th><th>结果</th><th>超出</th><th>评级</th></tr>",
    );
    for e in &v.expectations {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td class=\"{}\">{}</td><td>{}</td><td>{}</td></tr>",
            esc(&e.task),
            role_zh(&e.role),
            action_zh(&e.action),
            duration_zh(e.within_secs as i64),
            actual(e),
            status_class(e.status),
            e.status.zh(),
            e.over_secs.map_or("—".into(), duration_zh),
            e.rating.as_deref().map_or("未评级", rating_zh),
        );
    }
    h.push_str("</table><p>观察记录：</p><ul>");
    for o in &v.observations {
        let _ = write!(h, "<li>{}</li>", observation(v, o));
    }
    if v.observations.is_empty() {
        h.push_str("<li>无。</li>");
    }
    h.push_str("</ul>");
    // 四、发现的问题
    h.push_str("<h2>四、发现的问题</h2><ol>");
    let mut problems = 0;
    for e in v
        .expectations
        .iter()
        .filter(|e| matches!(e.status, Status::Late | Status::Missed | Status::Overdue))
    {
        problems += 1;
        let what = match e.status {
            Status::Late => format!("超出时限{}", duration_zh(e.over_secs.unwrap_or(0))),
            _ => "演练结束时仍未完成".into(),
        };
        let _ = write!(
            h,
            "<li>{}：{}{}，{what}。</li>",
            esc(&e.task),
            role_zh(&e.role),
            action_zh(&e.action)
        );
    }
    for o in &v.observations {
        problems += 1;
        let task = o
            .expectation_id
            .as_deref()
            .and_then(|id| v.expectations.iter().find(|e| e.id == id))
            .map_or(String::new(), |e| format!("【{}】", esc(&e.task)));
        let rating = o
            .rating
            .as_deref()
            .map_or(String::new(), |r| format!("（评级 {}）", rating_zh(r)));
        let _ = write!(
            h,
            "<li>观察记录{task}{rating}：{}（{}，{}）</li>",
            esc(&o.text),
            esc(&o.author),
            local(o.at)
        );
    }
    if problems == 0 {
        h.push_str("<li>未发现问题。</li>");
    }
    h.push_str("</ol>");
    // 五、改进计划
    h.push_str(
        "<h2>五、改进计划</h2><table><tr><th>序号</th><th>问题</th><th>整改措施</th><th>责任方</th><th>完成时限</th><th>状态</th></tr>",
    );
    let mut n = 0;
    for i in &v.improvements {
        n += 1;
        let _ = write!(
            h,
            "<tr><td>{n}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"nowrap\">{}</td><td class=\"nowrap\">{}</td></tr>",
            esc(&i.problem),
            esc(&i.action),
            esc(&i.owner),
            i.due_date,
            i.state.zh(),
        );
    }
    if n == 0 {
        h.push_str("<tr><td colspan=\"6\">各项任务均达标，无需整改。</td></tr>");
    }
    let _ = write!(
        h,
        "</table><p class=\"drill\">【演练 DRILL】报告生成时间：{}</p></body></html>",
        local(ended)
    );
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_in_chinese() {
        assert_eq!(duration_zh(45), "45秒");
        assert_eq!(duration_zh(200), "3分20秒");
        assert_eq!(duration_zh(7300), "2小时1分");
        assert_eq!(duration_zh(-5), "-5秒");
    }

    #[test]
    fn text_from_people_is_escaped() {
        assert_eq!(esc("<b>&\"'"), "&lt;b&gt;&amp;&quot;&#39;");
    }
}
