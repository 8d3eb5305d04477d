//! The registry: regions (district → towns → grids), premises, edges and cameras, teams and duty
//! rosters, users. Plain data types and thin queries; rules live in plain functions beside them.

pub mod camera_admin;
pub mod cameras;
pub mod csv_import;
pub mod demo;
pub mod premises;
pub mod roster;
pub mod source;
pub mod teams;
pub mod towns;
pub mod users;
