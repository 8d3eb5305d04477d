//! Escalation (DESIGN.md §4, §8): when nobody takes an incident, tell more people, step by step.
//!
//! - [`policy`] (plain): the steps of each tier's policy and the schedule they make.
//! - [`store`]: the durable timers (`escalation_timers`, one row per scheduled step), the
//!   notifications outbox, firing one step (notification rows, a timeline entry, the next timer)
//!   and cancelling the pending ones — each inside the caller's transaction.
//! - [`worker`]: the supervised loop every replica runs; it claims due timers with
//!   `FOR UPDATE SKIP LOCKED` and fires each in a transaction of its own.
//!
//! **Each step fires exactly once, whatever the number of replicas and restarts:** a timer is a
//! row, claimed together with its incident's row under `SKIP LOCKED`, and marked fired in the same
//! transaction that writes its notifications and schedules the next step; a transition that ends
//! escalation (acknowledge, reject, resolve, close) locks the incident row and cancels the pending
//! timers in its own transaction.

pub mod policy;
pub mod store;
pub mod worker;

pub use policy::{EscalationConfig, Step, Target};

use chrono::{DateTime, Utc};
use std::sync::Mutex;

/// Where dispatch reads the time; tests substitute a [`SimulatedClock`].
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

/// The system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct SimulatedClock(Mutex<DateTime<Utc>>);

impl SimulatedClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        Self(Mutex::new(at))
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: chrono::Duration) {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *t += by;
    }
}

impl Clock for SimulatedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}
