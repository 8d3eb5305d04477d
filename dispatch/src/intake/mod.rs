//! Intake: what comes in from outside becomes rows, once. Edge reports arrive here from the MQTT
//! consumer ([`crate::mqtt`]) and are stored by `eventId` ([`record`]); in the same transaction a
//! new event is handed to [`incident()`], the one door through which detections, camera faults,
//! hotline and manual reports become incidents (deduplicated, tiered and routed).

pub mod batch;
pub mod edge;
pub mod incident;
pub mod warning;

pub use edge::{EdgeReport, Rejected, Stored, record};
pub use incident::{IntakeError, Outcome, Report, Source, incident};
