//! Intake: what comes in from outside becomes rows, once. Edge reports arrive here from the MQTT
//! consumer ([`crate::mqtt`]); hotline and manual reports will arrive through the API and pass the
//! same door, so that dedup, routing and escalation (issue 5, to come) have one entry.

pub mod edge;

pub use edge::{EdgeReport, Rejected, Stored, record};
