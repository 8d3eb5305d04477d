//! Ground truth of one loop of a scenario, as JSON lines: a header, one line per frame, then the
//! violation intervals. Later loops repeat it: frame `n` has truth index `n % framesPerLoop`.

use std::collections::BTreeMap;
use std::io::Write;

use serde::{Deserialize, Serialize};

use crate::scenario::{Role, Scenario, ViolationKind};
use crate::scene::{ObjectClass, Scene, compose};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Lights {
    Off,
    On,
}

/// One object in one frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthObject {
    pub id: String,
    pub class: ObjectClass,
    /// `[x, y, w, h]` normalised to 0..1.
    #[serde(rename = "box")]
    pub bbox: [f64; 4],
    /// Persons only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hat: Option<bool>,
    /// Persons only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<bool>,
}

/// One line of the truth file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum TruthLine {
    Header {
        camera: String,
        scenario: String,
        fps: u32,
        width: u32,
        height: u32,
        frames_per_loop: u64,
    },
    Frame {
        frame: u64,
        t: f64,
        objects: Vec<TruthObject>,
        lights: Lights,
    },
    /// `[from, to)` in seconds of the loop.
    Violation {
        kind: ViolationKind,
        object: String,
        from: f64,
        to: f64,
    },
}

fn round(v: f64, digits: i32) -> f64 {
    let p = 10f64.powi(digits);
    (v * p).round() / p
}

/// The truth of one loop of `s` as seen by camera `camera`.
pub fn truth_lines(camera: &str, s: &Scenario) -> Vec<TruthLine> {
    let fpl = s.frames_per_loop();
    let scenes: Vec<Scene> = (0..fpl).map(|n| compose(s, n)).collect();
    let mut out = Vec::with_capacity(scenes.len() + 16);
    out.push(TruthLine::Header {
        camera: camera.to_string(),
        scenario: s.name.clone(),
        fps: s.fps,
        width: s.width,
        height: s.height,
        frames_per_loop: fpl,
    });
    for (n, sc) in scenes.iter().enumerate() {
        out.push(TruthLine::Frame {
            frame: n as u64,
            t: round(sc.t, 3),
            objects: sc
                .objects
                .iter()
                .map(|o| TruthObject {
                    id: o.id.clone(),
                    class: o.class,
                    bbox: o.bbox.map(|v| round(v, 5)),
                    hat: o.hat,
                    mask: o.mask,
                })
                .collect(),
            lights: if sc.lights_on {
                Lights::On
            } else {
                Lights::Off
            },
        });
    }
    out.extend(violations(s, &scenes));
    out
}

/// Violation intervals: runs of consecutive frames in which a rule is broken.
fn violations(s: &Scenario, scenes: &[Scene]) -> Vec<TruthLine> {
    let fps = s.fps as f64;
    let pharmacist = s
        .actors
        .iter()
        .find(|a| a.role == Some(Role::Pharmacist))
        .map(|a| a.id.clone())
        .unwrap_or_default();
    let [open_from, open_to] = s.open_hours.unwrap_or([0.0, s.duration_secs]);
    // (kind, object) -> runs of frames [first, last]
    let mut runs: BTreeMap<(u8, String), Vec<(usize, usize)>> = BTreeMap::new();
    let mut mark = |kind: ViolationKind, object: &str, n: usize| {
        let r = runs.entry((kind as u8, object.to_string())).or_default();
        match r.last_mut() {
            Some(last) if last.1 + 1 == n => last.1 = n,
            _ => r.push((n, n)),
        }
    };
    for (n, sc) in scenes.iter().enumerate() {
        for o in &sc.objects {
            let cook = o.role == Some(Role::Cook);
            if s.rules.contains(&ViolationKind::NoChefHat) && cook && o.hat == Some(false) {
                mark(ViolationKind::NoChefHat, &o.id, n);
            }
            if s.rules.contains(&ViolationKind::NoMask) && cook && o.mask == Some(false) {
                mark(ViolationKind::NoMask, &o.id, n);
            }
            if s.rules.contains(&ViolationKind::Rodent) && o.class == ObjectClass::Rodent {
                mark(ViolationKind::Rodent, &o.id, n);
            }
        }
        let open = sc.t >= open_from && sc.t < open_to;
        if s.rules.contains(&ViolationKind::PersonAbsent)
            && open
            && !sc.objects.iter().any(|o| o.role == Some(Role::Pharmacist))
        {
            mark(ViolationKind::PersonAbsent, &pharmacist, n);
        }
    }
    const KINDS: [ViolationKind; 4] = [
        ViolationKind::NoChefHat,
        ViolationKind::NoMask,
        ViolationKind::Rodent,
        ViolationKind::PersonAbsent,
    ];
    let mut out: Vec<(usize, TruthLine)> = Vec::new();
    for ((kind, object), rs) in runs {
        for (a, b) in rs {
            out.push((
                a,
                TruthLine::Violation {
                    kind: KINDS[kind as usize],
                    object: object.clone(),
                    from: round(a as f64 / fps, 3),
                    to: round((b + 1) as f64 / fps, 3),
                },
            ));
        }
    }
    out.sort_by_key(|(a, _)| *a);
    out.into_iter().map(|(_, l)| l).collect()
}

/// Writes the truth of `s` as JSON lines.
pub fn write_jsonl(mut w: impl Write, camera: &str, s: &Scenario) -> std::io::Result<()> {
    for line in truth_lines(camera, s) {
        serde_json::to_writer(&mut w, &line)?;
        w.write_all(b"\n")?;
    }
    w.flush()
}

/// Parses a truth file written by [`write_jsonl`].
pub fn parse_jsonl(text: &str) -> Result<Vec<TruthLine>, serde_json::Error> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::ActorKind;
    use std::collections::HashSet;

    fn load(name: &str) -> Scenario {
        let p = format!("{}/scenarios/{name}", env!("CARGO_MANIFEST_DIR"));
        Scenario::load(std::path::Path::new(&p)).unwrap()
    }

    fn intervals(lines: &[TruthLine], want: ViolationKind) -> Vec<(String, f64, f64)> {
        lines
            .iter()
            .filter_map(|l| match l {
                TruthLine::Violation {
                    kind,
                    object,
                    from,
                    to,
                } if *kind == want => Some((object.clone(), *from, *to)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn kitchen_day_has_no_chef_hat_intervals_exactly_for_the_people_without_a_hat() {
        let s = load("kitchen-day.toml");
        let lines = truth_lines("k1", &s);
        let flagged: HashSet<String> = intervals(&lines, ViolationKind::NoChefHat)
            .into_iter()
            .map(|v| v.0)
            .collect();
        let hatless: HashSet<String> = s
            .actors
            .iter()
            .filter(|a| a.kind == ActorKind::Person && !a.hat())
            .map(|a| a.id.clone())
            .collect();
        assert!(
            !hatless.is_empty() && hatless.len() < s.actors.len(),
            "the scene mixes hats and no hats"
        );
        assert_eq!(flagged, hatless);
        // each interval covers exactly the frames in which that person is in the picture
        for (id, from, to) in intervals(&lines, ViolationKind::NoChefHat) {
            for l in &lines {
                if let TruthLine::Frame { t, objects, .. } = l {
                    let seen = objects.iter().any(|o| o.id == id);
                    let inside = *t >= from - 1e-9 && *t < to - 1e-9;
                    if inside {
                        assert!(seen, "{id} flagged at {t} but not in the picture");
                    }
                }
            }
        }
    }

    #[test]
    fn kitchen_day_people_are_ceiling_camera_sized() {
        let lines = truth_lines("k1", &load("kitchen-day.toml"));
        for l in &lines {
            if let TruthLine::Frame { objects, .. } = l {
                for o in objects.iter().filter(|o| o.class == ObjectClass::Person) {
                    let fully_inside =
                        o.bbox[0] > 0.0 && o.bbox[0] + o.bbox[2] < 1.0 && o.bbox[1] > 0.0;
                    if fully_inside {
                        assert!(
                            (0.29..=0.55).contains(&o.bbox[3]),
                            "{} height {}",
                            o.id,
                            o.bbox[3]
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn kitchen_night_has_rodent_intervals_and_the_lights_switch_on() {
        let lines = truth_lines("k3", &load("kitchen-night.toml"));
        let rodents = intervals(&lines, ViolationKind::Rodent);
        assert!(rodents.len() >= 2, "{rodents:?}");
        let lights: Vec<Lights> = lines
            .iter()
            .filter_map(|l| match l {
                TruthLine::Frame { lights, .. } => Some(*lights),
                _ => None,
            })
            .collect();
        assert_eq!(lights.first(), Some(&Lights::Off));
        let on_at = lights
            .iter()
            .position(|l| *l == Lights::On)
            .expect("lights switch on");
        assert!(on_at > 0);
        let classes: HashSet<ObjectClass> = lines
            .iter()
            .flat_map(|l| match l {
                TruthLine::Frame { objects, .. } => objects.iter().map(|o| o.class).collect(),
                _ => vec![],
            })
            .collect();
        for c in [
            ObjectClass::Rodent,
            ObjectClass::Insect,
            ObjectClass::Cloth,
            ObjectClass::Person,
        ] {
            assert!(classes.contains(&c), "night scene shows a {c:?}");
        }
    }

    #[test]
    fn pharmacy_reports_person_absent_while_the_pharmacist_is_away() {
        let lines = truth_lines("p1", &load("pharmacy.toml"));
        let absent = intervals(&lines, ViolationKind::PersonAbsent);
        assert_eq!(absent.len(), 1, "{absent:?}");
        assert!(absent[0].2 - absent[0].1 >= 20.0);
    }

    #[test]
    fn truth_lines_round_trip_through_jsonl() {
        let s = load("pharmacy.toml");
        let mut buf = Vec::new();
        write_jsonl(&mut buf, "p1", &s).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(
            text.starts_with(r#"{"type":"header","camera":"p1","scenario":"pharmacy","fps":10,"#)
        );
        assert!(text.contains(r#""framesPerLoop":"#));
        assert_eq!(parse_jsonl(&text).unwrap(), truth_lines("p1", &s));
    }
}
