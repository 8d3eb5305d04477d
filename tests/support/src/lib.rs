//! What Brightline's tests share, in one place: the coordinates of the running dev stack
//! (`deploy/dev/stack.sh`) and, as they are needed, fakes for the edges of the world we cannot
//! reach (SMS providers, webhooks). Cameras are not faked here: `camsim` serves real RTSP.
#![forbid(unsafe_code)]

pub mod broker;
pub mod postgres;
pub mod stack;
