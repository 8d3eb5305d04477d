//! One render thread per camera: ticks at the scenario's fps in wall-clock time, like a real camera,
//! and pushes each frame into the appsrc of every active media. With no media it only counts frames.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gstreamer as gst;
use gstreamer_app as gst_app;

use crate::render::Renderer;

/// A camera's frame source and the appsrcs it feeds.
pub struct Feed {
    pub id: String,
    pub renderer: Renderer,
    sinks: Mutex<Vec<glib::WeakRef<gst_app::AppSrc>>>,
}

impl Feed {
    pub fn new(id: String, renderer: Renderer) -> Arc<Feed> {
        Arc::new(Feed {
            id,
            renderer,
            sinks: Mutex::new(Vec::new()),
        })
    }

    /// Caps of the raw frames this feed pushes.
    pub fn caps(&self) -> gst::Caps {
        let s = self.renderer.scenario();
        gst::Caps::builder("video/x-raw")
            .field("format", "I420")
            .field("width", s.width as i32)
            .field("height", s.height as i32)
            .field("framerate", gst::Fraction::new(s.fps as i32, 1))
            .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
            .build()
    }

    /// Starts feeding `src` (called when a media is configured).
    pub fn attach(&self, src: &gst_app::AppSrc) {
        src.set_caps(Some(&self.caps()));
        src.set_format(gst::Format::Time);
        src.set_is_live(true);
        src.set_do_timestamp(true);
        src.set_max_buffers(3);
        src.set_leaky_type(gst_app::AppLeakyType::Downstream);
        self.sinks.lock().unwrap().push(src.downgrade());
        tracing::debug!(camera_id = %self.id, "media attached");
    }

    /// Stops feeding `src` (called when its media is unprepared).
    pub fn detach(&self, src: &gst_app::AppSrc) {
        self.sinks
            .lock()
            .unwrap()
            .retain(|w| w.upgrade().is_some_and(|s| &s != src));
        tracing::debug!(camera_id = %self.id, "media detached");
    }

    fn live_sinks(&self) -> Vec<gst_app::AppSrc> {
        let mut sinks = self.sinks.lock().unwrap();
        sinks.retain(|w| w.upgrade().is_some());
        sinks.iter().filter_map(|w| w.upgrade()).collect()
    }
}

/// Runs until `stop` receives a message or its sender is dropped.
pub fn run(feed: Arc<Feed>, stop: Receiver<()>) {
    let _span = tracing::info_span!("camera", camera_id = %feed.id).entered();
    let fps = feed.renderer.scenario().fps as f64;
    let frame_dur = gst::ClockTime::from_nseconds((1e9 / fps) as u64);
    let start = Instant::now();
    let mut n: u64 = 0;
    let mut rendered: u64 = 0;
    loop {
        let due = start + Duration::from_secs_f64(n as f64 / fps);
        let now = Instant::now();
        if due > now {
            match stop.recv_timeout(due - now) {
                Err(RecvTimeoutError::Timeout) => {}
                _ => break,
            }
        } else if now.duration_since(due).as_secs_f64() > 1.0 / fps {
            // fell behind (busy machine): drop frames like a real camera, keep wall-clock numbering
            n = (now.duration_since(start).as_secs_f64() * fps).floor() as u64;
        }
        let sinks = feed.live_sinks();
        if !sinks.is_empty() {
            let frame = feed.renderer.render(n);
            let mut buf = gst::Buffer::from_mut_slice(frame.i420);
            if let Some(b) = buf.get_mut() {
                b.set_duration(frame_dur);
                b.set_offset(n);
            }
            for s in &sinks {
                if let Err(e) = s.push_buffer(buf.clone())
                    && e != gst::FlowError::Flushing
                {
                    tracing::debug!(frame = n, err = ?e, "push refused");
                }
            }
            rendered += 1;
        }
        n += 1;
    }
    tracing::info!(frames = n, rendered, "camera stopped");
}
