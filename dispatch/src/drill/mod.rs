//! Emergency drills (应急演练, DESIGN.md §5): a scenario file played through the **real** intake,
//! routing, escalation and notification paths, every incident marked with the run's `exercise`.
//!
//! - [`scenario`] (plain): the YAML format, its validation (errors name file, line and field) and
//!   the scenarios shipped in `dispatch/data/drills/`.
//! - [`evaluate`] (plain): each expectation against the incident's timeline → met / late /
//!   overdue / missed with seconds.
//! - [`report`] (plain): the after-action report, HTML in Chinese.
//! - [`store`]: runs, injects as durable timers, observations; start / pause / resume / ENDEX.
//! - [`worker`]: fires due injects on the escalation worker's loop.
//! - [`chart`] (plain): the report's timeline chart, inline SVG.
//! - [`pdf`]: the report printed to PDF by headless Chromium after ENDEX, and its worker.
//! - [`improvement`]: the improvement plan, items tracked open → inProgress → done → verified.
//! - [`history`]: one scenario's runs compared over time.
//! - [`participants`]: a drill's notifications reach only its participants and coordinator.
//! - [`config`]: `[drills]`, what drills need from outside (Chromium, camsim).
//! - [`scene`]: scene injects — a camsim scene on a real camera, the exercise staged on its edge
//!   through the retained EdgeConfig, played once the edge confirmed, cleared after ENDEX.
//!
//! **Each inject fires exactly once, whatever the number of replicas and restarts, and never
//! into a paused or ended run:** it is claimed with its run's row under `SKIP LOCKED` and marked
//! fired in the transaction that takes its report; pausing and ending lock the same row.

pub mod evaluate;
pub mod report;
pub mod scenario;
pub mod scene;
pub mod store;
pub mod worker;

pub mod chart;
pub mod config;
pub mod history;
pub mod improvement;
pub mod participants;
pub mod pdf;
