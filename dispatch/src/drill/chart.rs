//! The report's timeline chart: inline SVG made on the server, so the HTML and its PDF need no
//! script. Plain code: a [`RunView`] in, an `<svg>` out.
//!
//! Time runs left to right from STARTEX to ENDEX (wall time, pauses included). The top lane marks
//! each inject where it fired; below, one lane per critical task: a grey band from its inject to
//! its target, and a bar to the moment it was done (green met, orange late) or, never done, to
//! ENDEX (red), ending in a dot.

use super::evaluate::Status;
use super::report::{duration_zh, esc};
use super::store::RunView;
use chrono::{DateTime, Utc};
use std::fmt::Write;

const LABEL_W: f64 = 190.0;
const PLOT_W: f64 = 540.0;
const LANE_H: f64 = 30.0;
const TOP: f64 = 18.0;

pub const MET: &str = "#2e7d32";
pub const LATE: &str = "#ef6c00";
pub const MISSED: &str = "#c62828";

/// The SVG of `v`'s timeline.
pub fn timeline(v: &RunView) -> String {
    let start = v.started_at;
    let end = v.ended_at.unwrap_or_else(|| {
        v.expectations
            .iter()
            .filter_map(|e| e.done_at)
            .chain(v.injects.iter().filter_map(|i| i.fired_at))
            .max()
            .unwrap_or(start)
    });
    // the scale reaches ENDEX and every target, so a band never runs off the chart
    let span = v
        .expectations
        .iter()
        .filter_map(|e| e.started_at.map(|s| secs(start, s) + e.within_secs as f64))
        .fold(secs(start, end), f64::max)
        .max(60.0);
    let x = |at: DateTime<Utc>| LABEL_W + PLOT_W * (secs(start, at) / span).clamp(0.0, 1.0);
    let lanes = 1 + v.expectations.len();
    let height = TOP + LANE_H * lanes as f64 + 28.0;
    let mut svg = format!(
        "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{height}\" \
         viewBox=\"0 0 {w} {height}\" role=\"img\" aria-label=\"演练时间线\" font-family=\"Noto Sans CJK SC, sans-serif\">",
        w = LABEL_W + PLOT_W + 20.0
    );
    // grid and axis: five ticks
    let axis_y = TOP + LANE_H * lanes as f64;
    for i in 0..=4 {
        let t = span * i as f64 / 4.0;
        let gx = LABEL_W + PLOT_W * i as f64 / 4.0;
        let anchor = match i {
            0 => "start",
            4 => "end",
            _ => "middle",
        };
        let _ = write!(
            svg,
            "<line x1=\"{gx:.1}\" y1=\"{TOP}\" x2=\"{gx:.1}\" y2=\"{axis_y}\" stroke=\"#e0e0e0\"/>\
             <text x=\"{gx:.1}\" y=\"{:.0}\" font-size=\"11\" fill=\"#555\" text-anchor=\"{anchor}\">T+{}</text>",
            axis_y + 14.0,
            duration_zh(t.round() as i64)
        );
    }
    let _ = write!(
        svg,
        "<line x1=\"{LABEL_W}\" y1=\"{axis_y}\" x2=\"{:.0}\" y2=\"{axis_y}\" stroke=\"#888\"/>",
        LABEL_W + PLOT_W
    );
    if v.ended_at.is_some() {
        let ex = x(end);
        let _ = write!(
            svg,
            "<line x1=\"{ex:.1}\" y1=\"{:.0}\" x2=\"{ex:.1}\" y2=\"{axis_y}\" stroke=\"#333\" stroke-dasharray=\"4 3\"/>\
             <text x=\"{ex:.1}\" y=\"{:.0}\" font-size=\"11\" text-anchor=\"end\">ENDEX</text>",
            TOP - 6.0,
            TOP - 8.0
        );
    }
    // lane 0: the injects
    let y0 = TOP + LANE_H / 2.0;
    let _ = write!(
        svg,
        "<text x=\"0\" y=\"{:.0}\" font-size=\"13\" font-weight=\"bold\">情景注入</text>",
        y0 + 4.0
    );
    for i in v.injects.iter() {
        let Some(at) = i.fired_at else { continue };
        let ix = x(at);
        let _ = write!(
            svg,
            "<path d=\"M{ix:.1} {:.1} l6 6 l-6 6 l-6 -6 z\" fill=\"#6a1b9a\"><title>{}</title></path>",
            y0 - 6.0,
            esc(&i.id)
        );
    }
    // one lane per task
    for (n, e) in v.expectations.iter().enumerate() {
        let y = TOP + LANE_H * (n + 1) as f64;
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"{:.0}\" font-size=\"13\">{}</text>",
            y + LANE_H / 2.0 + 4.0,
            esc(&e.task)
        );
        let Some(s) = e.started_at else { continue };
        let (sx, bar_y) = (x(s), y + 8.0);
        let target = x(s + chrono::Duration::seconds(e.within_secs as i64));
        let _ = write!(
            svg,
            "<rect x=\"{sx:.1}\" y=\"{bar_y:.0}\" width=\"{:.1}\" height=\"14\" fill=\"#d6d6d6\"/>\
             <line x1=\"{target:.1}\" y1=\"{:.0}\" x2=\"{target:.1}\" y2=\"{:.0}\" stroke=\"#777\"/>",
            (target - sx).max(1.0),
            bar_y - 3.0,
            bar_y + 17.0
        );
        let (to, colour) = match (e.done_at, e.status) {
            (Some(d), Status::Met) => (d, MET),
            (Some(d), _) => (d, LATE),
            (None, Status::Missed | Status::Overdue) => (end, MISSED),
            (None, _) => continue,
        };
        let tx = x(to);
        let _ = write!(
            svg,
            "<rect x=\"{sx:.1}\" y=\"{:.0}\" width=\"{:.1}\" height=\"6\" fill=\"{colour}\"/>\
             <circle cx=\"{tx:.1}\" cy=\"{:.0}\" r=\"4\" fill=\"{colour}\"/>",
            bar_y + 4.0,
            (tx - sx).max(1.0),
            bar_y + 7.0
        );
    }
    svg.push_str("</svg>");
    svg
}

fn secs(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_milliseconds() as f64 / 1000.0
}
