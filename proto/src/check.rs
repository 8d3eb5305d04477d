//! Small validation helpers shared by the messages' `validate` steps, so every range and text rule is
//! worded the same way in errors.

use crate::decode::Violation;

/// `value` must be a finite number in `0..=1` (confidences, normalised coordinates).
pub(crate) fn unit(path: &str, value: f32) -> Result<(), Violation> {
    if value.is_finite() && (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(Violation::new(path, format!("{value} is outside 0..=1")))
    }
}

/// `value` must be a finite number `>= 0` (rates).
pub(crate) fn non_negative(path: &str, value: f32) -> Result<(), Violation> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(Violation::new(
            path,
            format!("{value} must be a finite number >= 0"),
        ))
    }
}

/// Free text that is shown or logged: non-empty, at most `max` bytes, no control characters (which could
/// forge log lines or break header values).
pub(crate) fn text(path: &str, value: &str, max: usize) -> Result<(), Violation> {
    if value.is_empty() {
        return Err(Violation::new(path, "must not be empty"));
    }
    if value.len() > max {
        return Err(Violation::new(
            path,
            format!("is {} bytes long, at most {max} allowed", value.len()),
        ));
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(Violation::new(
            path,
            format!("contains the control character {c:?}"),
        ));
    }
    Ok(())
}

/// Like [`text`] for optional fields: `None` is fine.
pub(crate) fn opt_text(path: &str, value: Option<&str>, max: usize) -> Result<(), Violation> {
    value.map_or(Ok(()), |v| text(path, v, max))
}

/// Drill run ids are short printable strings; `None` marks a real (non-drill) message.
pub(crate) fn exercise(value: Option<&str>) -> Result<(), Violation> {
    opt_text("exercise", value, 128)
}
