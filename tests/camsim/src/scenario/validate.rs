//! Validation of a parsed scenario: every error names the offending field.

use std::collections::HashSet;

use super::{
    ActorKind, Distractor, DistractorKind, Keyframe, Role, Scenario, ViolationKind, valid_id,
};

impl Scenario {
    pub(super) fn validate(&self) -> Result<(), (String, String)> {
        let err = |f: &str, m: String| Err((f.to_string(), m));
        if self.name.trim().is_empty() {
            return err("name", "must not be empty".into());
        }
        if !(64..=3840).contains(&self.width) || !self.width.is_multiple_of(2) {
            return err(
                "width",
                format!("must be even and within 64..=3840, got {}", self.width),
            );
        }
        if !(64..=2160).contains(&self.height) || !self.height.is_multiple_of(2) {
            return err(
                "height",
                format!("must be even and within 64..=2160, got {}", self.height),
            );
        }
        if !(1..=60).contains(&self.fps) {
            return err("fps", format!("must be within 1..=60, got {}", self.fps));
        }
        let d = self.duration_secs;
        if !(d.is_finite() && d > 0.0 && d <= 3600.0) {
            return err(
                "duration_secs",
                format!("must be within (0, 3600], got {d}"),
            );
        }
        if let Some([from, to]) = self.open_hours
            && !(0.0 <= from && from < to && to <= d)
        {
            return err(
                "open_hours",
                format!(
                    "must be [from, to] with 0 <= from < to <= duration_secs, got [{from}, {to}]"
                ),
            );
        }
        if let Some(ir) = &self.infrared {
            if !(0.0..=64.0).contains(&ir.noise) {
                return err(
                    "infrared.noise",
                    format!("must be within 0..=64, got {}", ir.noise),
                );
            }
            if !(0.0..=1.0).contains(&ir.vignette) {
                return err(
                    "infrared.vignette",
                    format!("must be within 0..=1, got {}", ir.vignette),
                );
            }
            if !(0.0..=0.5).contains(&ir.flicker) {
                return err(
                    "infrared.flicker",
                    format!("must be within 0..=0.5, got {}", ir.flicker),
                );
            }
        }
        let mut ids = HashSet::new();
        for (i, a) in self.actors.iter().enumerate() {
            let f = |name: &str| format!("actor[{i}].{name}");
            if !valid_id(&a.id) {
                return Err((
                    f("id"),
                    format!("{:?} must match [a-z0-9][a-z0-9_-]{{0,63}}", a.id),
                ));
            }
            if !ids.insert(a.id.clone()) {
                return Err((f("id"), format!("{:?} is used twice", a.id)));
            }
            validate_path(&a.path, d, &f("path"))?;
            match a.kind {
                ActorKind::Person => {
                    if a.body_length_px.is_some() {
                        return Err((
                            f("body_length_px"),
                            "only rodents have a body length".into(),
                        ));
                    }
                }
                ActorKind::Rodent => {
                    for (name, set) in [
                        ("hat", a.hat.is_some()),
                        ("mask", a.mask.is_some()),
                        ("role", a.role.is_some()),
                    ] {
                        if set {
                            return Err((f(name), "only persons have this attribute".into()));
                        }
                    }
                    match a.body_length_px {
                        None => {
                            return Err((f("body_length_px"), "is required for rodents".into()));
                        }
                        Some(l) if !(4.0..=400.0).contains(&l) => {
                            return Err((
                                f("body_length_px"),
                                format!("must be within 4..=400 px, got {l}"),
                            ));
                        }
                        Some(_) => {}
                    }
                }
            }
        }
        for (i, x) in self.distractors.iter().enumerate() {
            validate_distractor(i, x, d, &mut ids)?;
        }
        if self.rules.contains(&ViolationKind::PersonAbsent)
            && !self
                .actors
                .iter()
                .any(|a| a.kind == ActorKind::Person && a.role() == Role::Pharmacist)
        {
            return err(
                "rules",
                "personAbsent needs an actor with role = \"pharmacist\"".into(),
            );
        }
        Ok(())
    }
}

fn validate_distractor(
    i: usize,
    x: &Distractor,
    d: f64,
    ids: &mut HashSet<String>,
) -> Result<(), (String, String)> {
    let f = |name: &str| format!("distractor[{i}].{name}");
    let need = |name: &str, v: Option<f64>| -> Result<f64, (String, String)> {
        match v {
            None => Err((
                f(name),
                format!("is required for {:?} distractors", x.kind).to_lowercase(),
            )),
            Some(v) if !v.is_finite() => Err((f(name), "must be a finite number".into())),
            Some(v) => Ok(v),
        }
    };
    let forbid = |name: &str, set: bool| -> Result<(), (String, String)> {
        if set {
            Err((
                f(name),
                format!("does not apply to {:?} distractors", x.kind).to_lowercase(),
            ))
        } else {
            Ok(())
        }
    };
    if let (Some(on), Some(off)) = (x.on_at, x.off_at)
        && off <= on
    {
        return Err((
            f("off_at"),
            format!("must be after on_at ({on}), got {off}"),
        ));
    }
    for (name, v) in [("on_at", x.on_at), ("off_at", x.off_at)] {
        if let Some(v) = v
            && !(0.0..=d).contains(&v)
        {
            return Err((f(name), format!("must be within the loop 0..={d}, got {v}")));
        }
    }
    if x.kind == DistractorKind::Lights {
        need("on_at", x.on_at)?;
        forbid("id", x.id.is_some())?;
        forbid("path", x.path.is_some())?;
        return Ok(());
    }
    match &x.id {
        None => return Err((f("id"), "is required for insects and cloths".into())),
        Some(id) if !valid_id(id) => {
            return Err((
                f("id"),
                format!("{id:?} must match [a-z0-9][a-z0-9_-]{{0,63}}"),
            ));
        }
        Some(id) if !ids.insert(id.clone()) => {
            return Err((f("id"), format!("{id:?} is used twice")));
        }
        Some(_) => {}
    }
    match x.kind {
        DistractorKind::Insect => {
            let Some(path) = &x.path else {
                return Err((f("path"), "is required for insect distractors".into()));
            };
            validate_path(path, d, &f("path"))?;
            let s = need("size_px", x.size_px)?;
            if !(2.0..=2000.0).contains(&s) {
                return Err((f("size_px"), format!("must be within 2..=2000, got {s}")));
            }
            forbid("x", x.x.is_some())?;
            forbid("length_px", x.length_px.is_some())?;
        }
        DistractorKind::Cloth => {
            forbid("path", x.path.is_some())?;
            for name in ["x", "y"] {
                let v = need(name, if name == "x" { x.x } else { x.y })?;
                if !(0.0..=1.0).contains(&v) {
                    return Err((f(name), format!("must be within 0..=1, got {v}")));
                }
            }
            let l = need("length_px", x.length_px)?;
            if !(4.0..=2000.0).contains(&l) {
                return Err((f("length_px"), format!("must be within 4..=2000, got {l}")));
            }
            if let Some(p) = x.period_secs
                && !(p > 0.05 && p.is_finite())
            {
                return Err((f("period_secs"), format!("must be > 0.05, got {p}")));
            }
        }
        DistractorKind::Lights => unreachable!("handled above"),
    }
    Ok(())
}

fn validate_path(path: &[Keyframe], d: f64, field: &str) -> Result<(), (String, String)> {
    if path.is_empty() {
        return Err((field.to_string(), "needs at least one keyframe".into()));
    }
    let mut prev = f64::NEG_INFINITY;
    for (k, kf) in path.iter().enumerate() {
        if !(kf.t.is_finite() && (0.0..=d).contains(&kf.t)) {
            return Err((
                format!("{field}[{k}].t"),
                format!("must be within the loop 0..={d}, got {}", kf.t),
            ));
        }
        if kf.t <= prev {
            return Err((
                format!("{field}[{k}].t"),
                format!("keyframe times must increase, got {} after {prev}", kf.t),
            ));
        }
        prev = kf.t;
        for (name, v) in [("x", kf.x), ("y", kf.y)] {
            if !(v.is_finite() && (-0.5..=1.5).contains(&v)) {
                return Err((
                    format!("{field}[{k}].{name}"),
                    format!("must be within -0.5..=1.5, got {v}"),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use std::path::Path;

    const BASE: &str = "name = \"t\"\nbackdrop = \"kitchen\"\nduration_secs = 10\n";

    fn field_of(extra: &str) -> String {
        match Scenario::parse(&format!("{BASE}{extra}"), "t.toml") {
            Ok(_) => panic!("accepted: {extra}"),
            Err(e) => {
                let text = e.to_string();
                assert!(text.contains("t.toml"), "the error names the file: {text}");
                e.field().map(str::to_string).unwrap_or(text)
            }
        }
    }

    #[test]
    fn the_shipped_scenarios_are_valid() {
        for name in ["kitchen-day.toml", "kitchen-night.toml", "pharmacy.toml"] {
            let p = format!("{}/scenarios/{name}", env!("CARGO_MANIFEST_DIR"));
            let s = Scenario::load(Path::new(&p)).unwrap();
            assert_eq!((s.width, s.height, s.fps), (1280, 720, 10), "{name}");
        }
    }

    #[test]
    fn defaults_are_1280x720_at_10_fps() {
        let s = Scenario::parse(BASE, "t.toml").unwrap();
        assert_eq!(
            (s.width, s.height, s.fps, s.frames_per_loop()),
            (1280, 720, 10, 100)
        );
    }

    #[test]
    fn validation_errors_name_the_offending_field() {
        let person =
            "[[actor]]\nid = \"p1\"\nkind = \"person\"\npath = [{ t = 0, x = 0.5, y = 0.5 }]\n";
        assert_eq!(field_of("width = 641\n"), "width");
        assert_eq!(field_of("fps = 0\n"), "fps");
        assert_eq!(
            field_of(
                "[[actor]]\nid = \"p1\"\nkind = \"person\"\npath = [{ t = 2, x = 0.1, y = 0.5 }, { t = 1, x = 0.2, y = 0.5 }]\n"
            ),
            "actor[0].path[1].t"
        );
        assert_eq!(
            field_of(&format!(
                "{person}[[actor]]\nid = \"r1\"\nkind = \"rodent\"\npath = [{{ t = 0, x = 0.5, y = 0.5 }}]\n"
            )),
            "actor[1].body_length_px"
        );
        assert_eq!(
            field_of(
                "[[actor]]\nid = \"r1\"\nkind = \"rodent\"\nhat = true\nbody_length_px = 30\npath = [{ t = 0, x = 0.5, y = 0.5 }]\n"
            ),
            "actor[0].hat"
        );
        assert_eq!(field_of(&format!("{person}{person}")), "actor[1].id");
        assert_eq!(
            field_of(
                "[[actor]]\nid = \"p1\"\nkind = \"person\"\npath = [{ t = 0, x = 3.0, y = 0.5 }]\n"
            ),
            "actor[0].path[0].x"
        );
        assert_eq!(
            field_of("[[distractor]]\nkind = \"cloth\"\nid = \"c1\"\nx = 0.5\ny = 0.2\n"),
            "distractor[0].length_px"
        );
        assert_eq!(
            field_of("[[distractor]]\nkind = \"lights\"\n"),
            "distractor[0].on_at"
        );
        assert_eq!(
            field_of(&format!("rules = [\"personAbsent\"]\n{person}")),
            "rules"
        );
        assert_eq!(field_of("open_hours = [5, 2]\n"), "open_hours");
    }

    #[test]
    fn unknown_fields_and_kinds_are_rejected_by_name() {
        let e = Scenario::parse(&format!("{BASE}colour = 1\n"), "t.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("colour"), "{e}");
        let e = Scenario::parse(
            &format!(
                "{BASE}[[actor]]\nid = \"x\"\nkind = \"dog\"\npath = [{{ t = 0, x = 0, y = 0 }}]\n"
            ),
            "t.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("dog") && e.contains("person"), "{e}");
    }

    #[test]
    fn positions_interpolate_linearly_between_keyframes_and_vanish_outside_the_path() {
        let s = Scenario::parse(
            &format!("{BASE}[[actor]]\nid = \"p1\"\nkind = \"person\"\npath = [{{ t = 2, x = 0.0, y = 0.5 }}, {{ t = 4, x = 1.0, y = 0.7, action = \"work\" }}]\n"),
            "t.toml",
        )
        .unwrap();
        let path = &s.actors[0].path;
        assert_eq!(position_at(path, 1.9), None);
        let p = position_at(path, 3.0).unwrap();
        assert!((p.x - 0.5).abs() < 1e-9 && (p.y - 0.6).abs() < 1e-9 && (p.vx - 0.5).abs() < 1e-9);
        assert_eq!(position_at(path, 4.0).unwrap().action, Some(Action::Work));
        assert_eq!(position_at(path, 4.1), None);
    }
}
