//! One render thread per camera: ticks at the scenario's fps in wall-clock time, like a real camera,
//! and pushes each frame into the appsrc of every active media. With no media it only counts frames.
//!
//! A scene played at run time ([`Feed::play`]) replaces the camera's own scenario for a number of
//! frames, from the scene's frame 0 (its code strip counts from 0 too), then the camera's own
//! scenario comes back at the frame number it would have had.

use std::sync::atomic::{AtomicU64, Ordering};
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
    /// The frame number the render thread is at.
    frame: AtomicU64,
    playing: Mutex<Option<Scene>>,
}

/// A scene playing instead of the camera's own scenario, for frames `[from, to)`.
struct Scene {
    renderer: Arc<Renderer>,
    from: u64,
    to: u64,
}

/// What a camera shows now.
#[derive(Debug, Clone, PartialEq)]
pub struct Showing {
    /// The scenario's name.
    pub scene: String,
    /// Whether it is a played scene (false: the camera's own scenario).
    pub played: bool,
    /// Seconds until the camera's own scenario comes back (0 for the own scenario).
    pub secs_left: f64,
}

impl Feed {
    pub fn new(id: String, renderer: Renderer) -> Arc<Feed> {
        Arc::new(Feed {
            id,
            renderer,
            sinks: Mutex::new(Vec::new()),
            frame: AtomicU64::new(0),
            playing: Mutex::new(None),
        })
    }

    /// Plays `scene` from its first frame, starting with the next frame, for `frames` frames.
    /// The caller checked that it has this camera's size and frame rate.
    pub fn play(&self, scene: Arc<Renderer>, frames: u64) {
        let from = self.frame.load(Ordering::Relaxed) + 1;
        *self.playing.lock().unwrap() = Some(Scene {
            renderer: scene,
            from,
            to: from + frames,
        });
    }

    /// Back to the camera's own scenario with the next frame.
    pub fn stop_playing(&self) {
        *self.playing.lock().unwrap() = None;
    }

    /// What the camera shows now.
    pub fn showing(&self) -> Showing {
        let n = self.frame.load(Ordering::Relaxed);
        let fps = f64::from(self.renderer.scenario().fps);
        match &*self.playing.lock().unwrap() {
            Some(s) if n < s.to => Showing {
                scene: s.renderer.scenario().name.clone(),
                played: true,
                secs_left: (s.to - n) as f64 / fps,
            },
            _ => Showing {
                scene: self.renderer.scenario().name.clone(),
                played: false,
                secs_left: 0.0,
            },
        }
    }

    /// Frame `n` of whatever plays at `n`.
    fn render(&self, n: u64) -> crate::render::Frame {
        let scene = {
            let mut playing = self.playing.lock().unwrap();
            if playing.as_ref().is_some_and(|s| n >= s.to) {
                tracing::info!(camera_id = %self.id, "played scene over; own scenario again");
                *playing = None;
            }
            playing
                .as_ref()
                .filter(|s| n >= s.from)
                .map(|s| (s.renderer.clone(), n - s.from))
        };
        match scene {
            Some((renderer, k)) => renderer.render(k),
            None => self.renderer.render(n),
        }
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
        feed.frame.store(n, Ordering::Relaxed);
        let sinks = feed.live_sinks();
        if !sinks.is_empty() {
            let frame = feed.render(n);
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
