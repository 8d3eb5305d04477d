//! What the talk tests and `bench-talk` share: a stand-in for the gateway's talk audio (an RTSP
//! server serving an Opus tone at `/talk/{camera}/{token}`, like the gateway's pull URL), camsim
//! cameras with and without an ONVIF backchannel, and readers of camsim's backchannel recordings.
#![allow(dead_code)]

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_rtsp_server as rtsp;
use gstreamer_rtsp_server::glib;
use rtsp::prelude::*;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The operator's side: an RTSP server with one Opus sine tone at `/talk/{camera}/{token}`.
pub struct TalkSource {
    port: u16,
    main_loop: glib::MainLoop,
    thread: Option<JoinHandle<()>>,
    /// The tone's `audiotestsrc` in the (shared) media once a client asked for it.
    gate: Arc<Mutex<Option<gst::Element>>>,
}

impl TalkSource {
    /// Serves a `freq` Hz tone for `camera` under `token`; `muted` starts it silent (see
    /// [`TalkSource::unmute`]).
    pub fn start(camera: &str, token: &str, freq: f64, muted: bool) -> TalkSource {
        gst::init().unwrap();
        let server = rtsp::RTSPServer::new();
        server.set_address("127.0.0.1");
        server.set_service("0");
        let factory = rtsp::RTSPMediaFactory::new();
        // Muted means very quiet rather than `volume mute=true`, which marks buffers as gaps that
        // the encoder skips: the stream must flow while muted.
        let volume = if muted { 0.001 } else { 0.5 };
        factory.set_launch(&format!(
            "( audiotestsrc name=gate is-live=true wave=sine freq={freq} volume={volume} samplesperbuffer=480 ! \
             audioconvert ! audioresample ! \
             audio/x-raw,rate=48000,channels=1 ! opusenc frame-size=20 ! rtpopuspay name=pay0 pt=111 )"
        ));
        factory.set_shared(true);
        let gate: Arc<Mutex<Option<gst::Element>>> = Arc::default();
        let g = gate.clone();
        factory.connect_media_configure(move |_, media| {
            let bin = media.element().downcast::<gst::Bin>().unwrap();
            *g.lock().unwrap() = bin.by_name("gate");
        });
        server
            .mount_points()
            .unwrap()
            .add_factory(&format!("/talk/{camera}/{token}"), factory);
        let ctx = glib::MainContext::new();
        server.attach(Some(&ctx)).unwrap();
        let port = server.bound_port() as u16;
        let main_loop = glib::MainLoop::new(Some(&ctx), false);
        let ml = main_loop.clone();
        let thread = std::thread::spawn(move || {
            let _keep = server;
            ml.run();
        });
        TalkSource {
            port,
            main_loop,
            thread: Some(thread),
            gate,
        }
    }

    /// The pull URL the gateway would send in `startTalk` (the token is appended by the edge).
    pub fn pull_url(&self, camera: &str) -> String {
        format!("rtsp://127.0.0.1:{}/talk/{camera}", self.port)
    }

    /// Lets the tone through from now on (the marked moment of the latency measurement).
    pub fn unmute(&self) -> Instant {
        let gate = self.gate.lock().unwrap();
        let gate = gate.as_ref().expect("a client pulls the talk audio");
        gate.set_property("volume", 0.5f64);
        Instant::now()
    }

    /// Whether a client pulls it.
    pub fn pulled(&self) -> bool {
        self.gate.lock().unwrap().is_some()
    }
}

impl Drop for TalkSource {
    fn drop(&mut self) {
        self.main_loop.quit();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// camsim serving `cameras` (id, with an ONVIF backchannel recorded into `record_dir`?).
pub fn camsim(cameras: &[(&str, bool)], record_dir: &Path) -> camsim::Server {
    let scenario = camsim::Scenario::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/camsim/scenarios/kitchen-day.toml"
    )))
    .unwrap();
    camsim::serve(camsim::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        truth_dir: None,
        cameras: cameras
            .iter()
            .map(|(id, backchannel)| camsim::CameraConfig {
                backchannel_dir: backchannel.then(|| record_dir.to_path_buf()),
                ..camsim::CameraConfig::new(id, scenario.clone())
            })
            .collect(),
    })
    .unwrap()
}

pub use camsim::backchannel::{recordings, samples as wav_samples};
// Shared by tests/talk.rs and examples/bench-talk.rs, which use different parts.
#[allow(unused_imports)]
pub use camsim::tone::{peak_frequency, rms, tone_power};

/// Waits up to `timeout` for `ready`, polling.
pub fn wait_for(timeout: Duration, what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ready() {
        assert!(Instant::now() < deadline, "{what} within {timeout:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
