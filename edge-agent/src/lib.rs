//! The edge-agent: the box in a canteen, restaurant or pharmacy that watches its cameras and gets the
//! facts and the evidence to the center over a weak link without losing any of it.
//!
//! Built so far: camera ingest with health ([`ingest`]), detection ([`detect`]) and episodes
//! ([`episode`]), evidence — pre-roll, clips, snapshots, signed upload ([`evidence`]) —, the durable
//! outbox ([`outbox`]) and the MQTT uplink that drains it ([`uplink`]).
#![forbid(unsafe_code)]

pub mod config;
pub mod detect;
pub mod enrol;
pub mod episode;
pub mod evidence;
pub mod exercise;
pub mod ingest;
pub mod outbox;
pub mod remote;
pub mod uplink;
pub mod watch;
