//! Evidence (DESIGN §3.2): each camera's encoded video is kept in a bounded, GOP-aligned pre-roll;
//! an episode gets a clip (pre-roll + episode + post-roll, remuxed to MP4 without re-encoding) and
//! snapshots (clean and annotated JPEG); each blob is hashed, signed with the device key, spooled to
//! disk, queued in the outbox and uploaded with `PUT {url}/evidence/{sha256}` until the gateway
//! has it.
//!
//! ```text
//! ingest (appsink of encoded units) ─▶ Recorder (pre-roll, open clips)      per camera
//! detection ─▶ DetectionEvent ─▶ worker: snapshot / clip ─▶ Spool (file + outbox row) ─▶ upload
//!                                  └──────▶ event with BlobRefs ─▶ outbox ─▶ MQTT uplink
//! ```

pub mod image;
pub mod media;
pub mod preroll;
pub mod recorder;
pub mod spool;
pub mod upload;
pub mod worker;

pub use recorder::{Codec, Recorder, Rolls};
