//! Incident clocks (DESIGN.md §4): the deadlines that run per incident — acknowledgement, arrival,
//! the 2-hour report to the health authority for suspected poisonings, hotline complaint deadlines
//! in Chinese working days, rectification — shown in the API and escalating when at risk.
//!
//! - [`calendar`] (plain): the Chinese working-day calendar and its holiday table.
//! - [`rules`] (plain): which clocks an incident gets, when they start and stop, their state.
//! - [`config`]: the `[clocks]` section.
//! - [`store`]: the rows; started and stopped inside the intake's or transition's transaction.
//! - [`worker`]: fires at-risk and overdue moments on the escalation worker's loop.
//!
//! **Each moment (at risk, overdue) of a clock fires exactly once, whatever the number of
//! replicas and restarts:** it is claimed with its incident's row under `SKIP LOCKED` and marked
//! fired in the transaction that writes its timeline entry and notifications; a transition that
//! stops the clock takes the same incident row lock.

pub mod calendar;
pub mod config;
pub mod rules;
pub mod store;
pub mod worker;

pub use calendar::Calendar;
pub use config::ClocksConfig;
pub use rules::{ClockKind, ClockState};
