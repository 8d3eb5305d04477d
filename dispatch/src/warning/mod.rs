//! The automatic voice warning's center side (issue 7 item 4): the voice messages an admin
//! manages (an uploaded WAV, checked in [`audio`], or a text the boxes speak with espeak-ng) and the
//! warning rules per premises kind and violation ([`store`]). The edge's outcome of each warning
//! reaches the incident timeline through the intake (`crate::intake::warning`). Each edge box gets
//! the rules for its cameras and their messages in its retained EdgeConfig ([`edges`]).

pub mod audio;
pub mod edges;
pub mod store;
