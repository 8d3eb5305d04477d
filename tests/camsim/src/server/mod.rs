//! The RTSP server: one GStreamer RTSP (ONVIF-capable) server on its own GLib main loop thread, one
//! render thread per camera.

mod control;
mod factory;
mod feed;
mod wav;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;

use gst::glib;
use gstreamer as gst;
use gstreamer_rtsp_server as rtsp;
use rtsp::prelude::*;

pub use factory::Stream;

use crate::config::Config;
use crate::render::Renderer;
use crate::scenario::Scenario;
use crate::{Error, truth};
use feed::Feed;

/// A running camsim. Dropping it stops it.
pub struct Server {
    addr: SocketAddr,
    rtsp: rtsp::RTSPServer,
    ctx: glib::MainContext,
    source: Option<glib::SourceId>,
    main_loop: glib::MainLoop,
    loop_thread: Option<JoinHandle<()>>,
    feeds: Vec<(mpsc::Sender<()>, JoinHandle<()>)>,
    cameras: Vec<String>,
    by_id: HashMap<String, Arc<Feed>>,
    control: Option<control::ControlServer>,
}

/// Starts serving every camera of `config`; writes the ground truth first when `truth_dir` is set.
pub fn serve(config: Config) -> Result<Server, Error> {
    config.validate()?;
    gst::init().map_err(|e| Error::Gst(e.to_string()))?;
    for el in [
        "appsrc",
        "videoconvert",
        "videoscale",
        "x264enc",
        "h264parse",
        "rtph264pay",
    ] {
        if gst::ElementFactory::find(el).is_none() {
            return Err(Error::Gst(format!("element {el} is missing")));
        }
    }
    if let Some(dir) = &config.truth_dir {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            what: format!("create {}", dir.display()),
            source,
        })?;
        for c in &config.cameras {
            let path = dir.join(format!("{}.jsonl", c.id));
            let io = |source| Error::Io {
                what: format!("write {}", path.display()),
                source,
            };
            let file = std::fs::File::create(&path).map_err(io)?;
            truth::write_jsonl(std::io::BufWriter::new(file), &c.id, &c.scenario).map_err(io)?;
            tracing::info!(camera_id = %c.id, path = %path.display(), "ground truth written");
        }
    }

    let server: rtsp::RTSPServer = rtsp::RTSPOnvifServer::new().upcast();
    server.set_address(&config.listen.ip().to_string());
    server.set_service(&config.listen.port().to_string());
    let mounts = server
        .mount_points()
        .ok_or_else(|| Error::Gst("server has no mount points".into()))?;
    let mut feeds = Vec::new();
    let mut cameras = Vec::new();
    let mut by_id = HashMap::new();
    for c in config.cameras {
        let feed = Feed::new(c.id.clone(), Renderer::new(c.scenario));
        match &c.backchannel_dir {
            Some(dir) => mounts.add_factory(
                &format!("/cam/{}", c.id),
                factory::onvif_factory(
                    &feed,
                    c.codec,
                    c.audio.unwrap_or(crate::Audio::Pcmu),
                    dir.clone(),
                ),
            ),
            None => mounts.add_factory(
                &format!("/cam/{}", c.id),
                factory::video_factory(&feed, c.codec, Stream::Main, c.audio),
            ),
        }
        mounts.add_factory(
            &format!("/cam/{}/sub", c.id),
            factory::video_factory(&feed, c.codec, Stream::Sub, c.audio),
        );
        let (tx, rx) = mpsc::channel();
        let f2 = feed.clone();
        let handle = std::thread::Builder::new()
            .name(format!("cam-{}", c.id))
            .spawn(move || feed::run(f2, rx))
            .map_err(|source| Error::Io {
                what: "spawn render thread".into(),
                source,
            })?;
        feeds.push((tx, handle));
        by_id.insert(c.id.clone(), feed);
        cameras.push(c.id);
    }
    server.connect_client_connected(|_, _| tracing::info!("rtsp client connected"));

    let ctx = glib::MainContext::new();
    let (source, port) = listen(&server, &ctx)
        .map_err(|e| Error::Gst(format!("cannot listen on {}: {e}", config.listen)))?;
    let addr = SocketAddr::new(config.listen.ip(), port);
    let main_loop = glib::MainLoop::new(Some(&ctx), false);
    let ml = main_loop.clone();
    let loop_thread = std::thread::Builder::new()
        .name("rtsp-loop".into())
        .spawn(move || ml.run())
        .map_err(|source| Error::Io {
            what: "spawn rtsp loop".into(),
            source,
        })?;
    tracing::info!(addr = %addr, cameras = cameras.len(), "camsim listening");
    Ok(Server {
        addr,
        rtsp: server,
        ctx,
        source: Some(source),
        main_loop,
        loop_thread: Some(loop_thread),
        feeds,
        cameras,
        by_id,
        control: None,
    })
}

/// Listens as `RTSPServer::attach` does and returns the bound port, but with Nagle's algorithm
/// off on every client connection (accepted sockets inherit it from the listener). A camera writes
/// each interleaved RTP packet as it is made; with Nagle on, a packet written while the previous
/// one was unacknowledged waited for the client's delayed ACK, and a whole frame reached one client
/// 41 ms after another (the fan-out benchmark's latency tail).
fn listen(
    server: &rtsp::RTSPServer,
    ctx: &glib::MainContext,
) -> Result<(glib::SourceId, u16), glib::Error> {
    const IPPROTO_TCP: i32 = 6;
    const TCP_NODELAY: i32 = 1;
    let socket = server.create_socket(None::<&rtsp::gio::Cancellable>)?;
    socket.set_option(IPPROTO_TCP, TCP_NODELAY, 1)?;
    let port = socket
        .local_address()?
        .downcast::<rtsp::gio::InetSocketAddress>()
        .map_or(0, |a| a.port());
    let server = server.clone();
    let source = rtsp::gio::prelude::SocketExtManual::create_source(
        &socket,
        glib::IOCondition::IN | glib::IOCondition::PRI,
        None::<&rtsp::gio::Cancellable>,
        Some("camsim-accept"),
        glib::Priority::DEFAULT,
        move |socket, condition| {
            if let Err(e) = rtsp::RTSPServer::io_func(socket, condition, &server) {
                tracing::warn!(err = %e, "cannot accept an RTSP client");
            }
            glib::ControlFlow::Continue
        },
    );
    Ok((source.attach(Some(ctx)), port))
}

impl Server {
    /// The bound address (the real port when 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The ids of the served cameras.
    pub fn cameras(&self) -> &[String] {
        &self.cameras
    }

    /// The RTSP URL of a camera's stream; an unspecified listen address becomes 127.0.0.1.
    pub fn url(&self, camera_id: &str, stream: Stream) -> String {
        let host = if self.addr.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            self.addr.ip().to_string()
        };
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host
        };
        let suffix = match stream {
            Stream::Main => "",
            Stream::Sub => "/sub",
        };
        format!("rtsp://{host}:{}/cam/{camera_id}{suffix}", self.addr.port())
    }

    /// Starts the HTTP control endpoint on `listen` (port 0 picks one), which plays `scenes` (by
    /// their `name`) on the cameras at run time (see `server/control.rs` and the README). Returns
    /// its base URL, `http://HOST:PORT`.
    pub fn start_control(
        &mut self,
        listen: SocketAddr,
        scenes: Vec<Scenario>,
    ) -> Result<String, Error> {
        if self.control.is_some() {
            return Err(Error::Config {
                field: "control".into(),
                message: "the control endpoint runs already".into(),
            });
        }
        let server =
            control::start(listen, self.by_id.clone(), scenes).map_err(|source| Error::Io {
                what: format!("control endpoint on {listen}"),
                source,
            })?;
        let url = format!("http://{}", server.addr);
        self.control = Some(server);
        Ok(url)
    }

    /// Stops the render threads, disconnects the clients and closes the socket.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(mut control) = self.control.take() {
            control.shutdown();
        }
        if self.loop_thread.is_none() && self.feeds.is_empty() {
            return;
        }
        for (tx, _) in &self.feeds {
            let _ = tx.send(());
        }
        for (_, h) in self.feeds.drain(..) {
            let _ = h.join();
        }
        if let Some(id) = self.source.take() {
            let server = self.rtsp.clone();
            let ctx = self.ctx.clone();
            let ml = self.main_loop.clone();
            self.ctx.invoke(move || {
                server.client_filter(Some(&mut |_, _| rtsp::RTSPFilterResult::Remove));
                if let Some(src) = ctx.find_source_by_id(&id) {
                    src.destroy();
                }
                ml.quit();
            });
        }
        if let Some(h) = self.loop_thread.take() {
            let _ = h.join();
        }
        tracing::info!("camsim stopped");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}
