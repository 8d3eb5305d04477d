//! The edge-agent: the box in a canteen, restaurant or pharmacy that watches its cameras and gets the
//! facts and the evidence to the center over a weak link without losing any of it.
//!
//! Built so far: camera ingest with health ([`ingest`]), detection ([`detect`]) and episodes
//! ([`episode`]), evidence — pre-roll, clips, snapshots, signed upload ([`evidence`]) —, the durable
//! outbox ([`outbox`]), the MQTT uplink that drains it ([`uplink`]) and talk-down with voice
//! warnings ([`talk`]).
#![forbid(unsafe_code)]

pub mod command;
pub mod config;
pub mod detect;
pub mod enrol;
pub mod episode;
pub mod evidence;
pub mod exercise;
pub mod ingest;
pub mod outbox;
pub mod remote;
pub mod talk;
pub mod uplink;
pub mod watch;
