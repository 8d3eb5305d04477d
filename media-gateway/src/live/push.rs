//! Push ingest (and talk pulls, [`super::talk_rtsp`]): an RTSP RECORD server (gst-rtsp-server, on its own GLib main-loop thread) that edge
//! boxes push to at `rtsp://{gateway}:{port}/push/{camera}/{stream}/{token}` (RTP/AVP over the
//! RTSP TCP connection, since edges sit behind NAT), authenticated by the `push` media token in the
//! path ([`super::push_auth`]).
//!
//! A camera stream accepts pushes only while its relay waits for or receives one
//! ([`PushServer::mount`]); an edge's first request with a valid token mounts its exact path, and
//! pushes to anything else answer 404. The pushed RTP feeds the same [`Relay`] as a pulled
//! camera's, the same way: H.264 as it comes, H.265 depayloaded, parsed and re-payloaded
//! (parameter sets before every keyframe); never decoded. When an edge reconnects while its old session still lingers, the newest push
//! wins: the older one's packets are dropped.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use bl_proto::CameraId;
use bl_proto::stream::Stream;
use gstreamer as gst;
use gstreamer_app as gst_app;
use gstreamer_rtsp::RTSPLowerTrans;
use gstreamer_rtsp_server as rtsp;
use gstreamer_rtsp_server::glib;
use gstreamer_rtsp_server::prelude::*;

use super::push_auth;
use super::relay::{Relay, SourceState};
use crate::auth::TokenVerifier;

/// What the server does with a pushed stream: nothing is decoded. The edge pushes H.264 or H.265
/// (its camera's codec), known only from its `ANNOUNCE`, after the media was built: the RTP the
/// media receives into `depay0` (a pass-through: the server wants an element of that name) is
/// linked when its caps arrive ([`super::ingest::link_video_on_caps`]), H.264 straight to the
/// appsink as a pulled camera's.
const LAUNCH: &str =
    "( identity name=depay0 appsink name=sink sync=false max-buffers=64 drop=true )";

/// A camera stream that accepts pushes: its factory and the token paths mounted for it.
struct Waiting {
    factory: rtsp::RTSPMediaFactory,
    mounted: Vec<String>,
}

type WaitingMap = Arc<Mutex<HashMap<(CameraId, Stream), Waiting>>>;

/// A camera being talked to: its talk factory and the token paths mounted for it.
struct Talking {
    factory: rtsp::RTSPMediaFactory,
    mounted: Vec<String>,
}

type TalkingMap = Arc<Mutex<HashMap<CameraId, Talking>>>;

/// The running RTSP RECORD server.
pub struct PushServer {
    server: rtsp::RTSPServer,
    mounts: rtsp::RTSPMountPoints,
    waiting: WaitingMap,
    talking: TalkingMap,
    ctx: glib::MainContext,
    main_loop: glib::MainLoop,
    source: std::sync::Mutex<Option<glib::SourceId>>,
    thread: std::sync::Mutex<Option<JoinHandle<()>>>,
    addr: SocketAddr,
}

impl PushServer {
    /// Listens on `listen` (port 0: any free port), checking pushes with `verifier`.
    pub fn start(listen: SocketAddr, verifier: TokenVerifier) -> Result<Self, String> {
        gst::init().map_err(|e| format!("gstreamer init: {e}"))?;
        let server = rtsp::RTSPServer::new();
        server.set_address(&listen.ip().to_string());
        server.set_service(&listen.port().to_string());
        let mounts = server
            .mount_points()
            .ok_or("the RTSP server has no mount points")?;
        let waiting = WaitingMap::default();
        let talking = TalkingMap::default();
        let (w, t, m) = (waiting.clone(), talking.clone(), mounts.clone());
        server.connect_client_connected(move |_, client| {
            let (v, w, t, m) = (verifier.clone(), w.clone(), t.clone(), m.clone());
            client.connect_pre_options_request(move |_, ctx| first_request(&v, &w, &t, &m, ctx));
            let v = verifier.clone();
            client.connect_pre_announce_request(move |_, ctx| authorize(&v, ctx, "ANNOUNCE"));
            let v = verifier.clone();
            client.connect_pre_describe_request(move |_, ctx| authorize(&v, ctx, "DESCRIBE"));
            let v = verifier.clone();
            client.connect_pre_setup_request(move |_, ctx| authorize(&v, ctx, "SETUP"));
            let v = verifier.clone();
            client.connect_pre_record_request(move |_, ctx| authorize(&v, ctx, "RECORD"));
            let v = verifier.clone();
            client.connect_pre_play_request(move |_, ctx| authorize(&v, ctx, "PLAY"));
        });
        let ctx = glib::MainContext::new();
        let source = server
            .attach(Some(&ctx))
            .map_err(|e| format!("cannot listen for pushes on {listen}: {e}"))?;
        let port = u16::try_from(server.bound_port()).unwrap_or(0);
        let main_loop = glib::MainLoop::new(Some(&ctx), false);
        let ml = main_loop.clone();
        let thread = std::thread::Builder::new()
            .name("rtsp-push".into())
            .spawn(move || ml.run())
            .map_err(|e| format!("cannot start the push server thread: {e}"))?;
        let addr = SocketAddr::new(listen.ip(), port);
        tracing::info!(addr = %addr, "push ingest listening (RTSP RECORD)");
        Ok(Self {
            server,
            mounts,
            waiting,
            talking,
            ctx,
            main_loop,
            source: std::sync::Mutex::new(Some(source)),
            thread: std::sync::Mutex::new(Some(thread)),
            addr,
        })
    }

    /// The bound address (the real port when 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The path an edge pushes `stream` of `camera` to, without its token.
    pub fn path(camera: &CameraId, stream: Stream) -> String {
        format!("/push/{camera}/{}", stream.as_str())
    }

    /// Accepts pushes for the relay's camera stream until [`PushServer::unmount`].
    pub fn mount(&self, relay: &Arc<Relay>) {
        let factory = rtsp::RTSPMediaFactory::new();
        factory.set_transport_mode(rtsp::RTSPTransportMode::RECORD);
        factory.set_launch(LAUNCH);
        factory.set_protocols(RTSPLowerTrans::TCP);
        factory.set_latency(0);
        // Every media the server builds for this path gets a number; the one delivering with the
        // highest number is the push (a media built for a refused request never delivers).
        let numbers = Arc::new(AtomicU64::new(0));
        let newest = Arc::new(AtomicU64::new(0));
        let weak_relay = Arc::downgrade(relay);
        factory.connect_media_configure(move |_, media| {
            let Some(relay) = weak_relay.upgrade() else {
                return;
            };
            let generation = numbers.fetch_add(1, Ordering::SeqCst) + 1;
            let element = media.element();
            let Some(sink) = element
                .downcast_ref::<gst::Bin>()
                .and_then(|b| b.by_name("sink"))
                .and_then(|s| s.downcast::<gst_app::AppSink>().ok())
            else {
                tracing::error!(camera_id = %relay.camera, "push pipeline has no appsink");
                return;
            };
            if let Some(entry) = element
                .downcast_ref::<gst::Bin>()
                .and_then(|b| b.by_name("depay0"))
            {
                super::ingest::link_video_on_caps(&entry, &sink, &relay);
            }
            let current = newest.clone();
            sink.set_callbacks(super::ingest::relay_sink(
                relay.clone(),
                element.downgrade(),
                move || current.fetch_max(generation, Ordering::SeqCst) <= generation,
            ));
            let weak_relay = Arc::downgrade(&relay);
            let current = newest.clone();
            media.connect_unprepared(move |_| {
                if let Some(relay) = weak_relay.upgrade()
                    && current.load(Ordering::SeqCst) == generation
                {
                    tracing::info!(camera_id = %relay.camera, stream = relay.stream.as_str(), "edge push ended");
                    relay.set_state(SourceState::Offline {
                        reason: "the edge box stopped pushing".into(),
                        retry_in_secs: 1,
                    });
                }
            });
        });
        tracing::info!(camera_id = %relay.camera, stream = relay.stream.as_str(), "waiting for the edge's push");
        self.waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                (relay.camera.clone(), relay.stream),
                Waiting {
                    factory,
                    mounted: Vec::new(),
                },
            );
    }

    /// Stops accepting pushes for `camera`/`stream` and disconnects the edge pushing it.
    pub fn unmount(&self, camera: &CameraId, stream: Stream) {
        let Some(w) = self
            .waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(camera.clone(), stream))
        else {
            return;
        };
        self.remove_and_disconnect(w.mounted);
    }

    /// The path an edge pulls talk audio for `camera` from, without its token.
    pub fn talk_path(camera: &CameraId) -> String {
        format!("/talk/{camera}")
    }

    /// Serves `feed` to the edge pulling talk audio for `camera` until [`PushServer::unmount_talk`].
    pub fn mount_talk(&self, camera: &CameraId, feed: &Arc<super::talk_rtsp::TalkFeed>) {
        self.talking
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                camera.clone(),
                Talking {
                    factory: super::talk_rtsp::factory(feed),
                    mounted: Vec::new(),
                },
            );
    }

    /// Stops serving talk audio for `camera` and disconnects the edges pulling it.
    pub fn unmount_talk(&self, camera: &CameraId) {
        let Some(t) = self
            .talking
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(camera)
        else {
            return;
        };
        self.remove_and_disconnect(t.mounted);
    }

    /// Removes the mounts at `paths` and disconnects the clients using them.
    fn remove_and_disconnect(&self, paths: Vec<String>) {
        for path in &paths {
            self.mounts.remove_factory(path);
        }
        let server = self.server.clone();
        self.ctx.invoke(move || {
            server.client_filter(Some(&mut |_, client| {
                let mut pushing_here = false;
                client.session_filter(Some(&mut |_, session| {
                    session.filter(Some(&mut |_, media| {
                        pushing_here |= paths.iter().any(|p| media.matches(p).is_some());
                        rtsp::RTSPFilterResult::Keep
                    }));
                    rtsp::RTSPFilterResult::Keep
                }));
                if pushing_here {
                    rtsp::RTSPFilterResult::Remove
                } else {
                    rtsp::RTSPFilterResult::Keep
                }
            }));
        });
    }

    /// Disconnects every edge and stops the server thread.
    pub fn stop(&self) {
        let Some(id) = self.source.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return;
        };
        let server = self.server.clone();
        let ctx = self.ctx.clone();
        let ml = self.main_loop.clone();
        self.ctx.invoke(move || {
            server.client_filter(Some(&mut |_, _| rtsp::RTSPFilterResult::Remove));
            if let Some(src) = ctx.find_source_by_id(&id) {
                src.destroy();
            }
            ml.quit();
        });
        if let Some(t) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
    }
}

/// An edge's first request (`OPTIONS`): with a valid token for a camera stream that waits for a
/// push, mounts the request's exact path so that its `ANNOUNCE`, `SETUP` and `RECORD` find it.
/// Always answered `200`: gst-rtsp-server 1.22 crashes when a `pre-options-request` handler
/// refuses, so refusals come on `ANNOUNCE` (404 when nothing was mounted, or 401/403).
fn first_request(
    verifier: &TokenVerifier,
    waiting: &WaitingMap,
    talking: &TalkingMap,
    mounts: &rtsp::RTSPMountPoints,
    ctx: &rtsp::RTSPContext,
) -> gstreamer_rtsp::RTSPStatusCode {
    let uri = ctx
        .uri()
        .map(|u| u.request_uri().to_string())
        .unwrap_or_default();
    if push_auth::is_talk(&uri) {
        first_talk_request(verifier, talking, mounts, &uri);
        return gstreamer_rtsp::RTSPStatusCode::Ok;
    }
    let push = match push_auth::check(verifier, &uri) {
        Ok(push) => push,
        Err((status, reason)) => {
            let path = push_auth::parse_uri(&uri)
                .map(|p| PushServer::path(&p.camera, p.stream))
                .unwrap_or_default();
            tracing::warn!(path = %path, status = ?status, reason = %reason, "push refused");
            return gstreamer_rtsp::RTSPStatusCode::Ok;
        }
    };
    let Some(path) = push.mount_path() else {
        return gstreamer_rtsp::RTSPStatusCode::Ok;
    };
    let mut waiting = waiting.lock().unwrap_or_else(|e| e.into_inner());
    let Some(w) = waiting.get_mut(&(push.camera.clone(), push.stream)) else {
        tracing::info!(camera_id = %push.camera, stream = push.stream.as_str(),
            "push refused: nobody watches this camera stream");
        return gstreamer_rtsp::RTSPStatusCode::Ok;
    };
    if !w.mounted.contains(&path) {
        mounts.add_factory(&path, w.factory.clone());
        w.mounted.push(path);
    }
    gstreamer_rtsp::RTSPStatusCode::Ok
}

/// An edge's first request for talk audio: with a valid `talk` token for a camera being talked
/// to, mounts the request's exact path so that its `DESCRIBE`, `SETUP` and `PLAY` find it.
fn first_talk_request(
    verifier: &TokenVerifier,
    talking: &TalkingMap,
    mounts: &rtsp::RTSPMountPoints,
    uri: &str,
) {
    let talk = match push_auth::check_talk(verifier, uri) {
        Ok(talk) => talk,
        Err((status, reason)) => {
            let path = push_auth::parse_talk_uri(uri)
                .map(|p| PushServer::talk_path(&p.camera))
                .unwrap_or_default();
            tracing::warn!(path = %path, status = ?status, reason = %reason, "talk pull refused");
            return;
        }
    };
    let Some(path) = talk.mount_path() else {
        return;
    };
    let mut talking = talking.lock().unwrap_or_else(|e| e.into_inner());
    let Some(t) = talking.get_mut(&talk.camera) else {
        tracing::info!(camera_id = %talk.camera, "talk pull refused: nobody talks to this camera");
        return;
    };
    if !t.mounted.contains(&path) {
        mounts.add_factory(&path, t.factory.clone());
        t.mounted.push(path);
    }
}

/// The verdict on one request of a push or a talk pull (see [`push_auth::check`],
/// [`push_auth::check_talk`]); refusals are logged with the path, never the token.
fn authorize(
    verifier: &TokenVerifier,
    ctx: &rtsp::RTSPContext,
    method: &str,
) -> gstreamer_rtsp::RTSPStatusCode {
    let uri = ctx
        .uri()
        .map(|u| u.request_uri().to_string())
        .unwrap_or_default();
    if push_auth::is_talk(&uri) {
        return match push_auth::check_talk(verifier, &uri) {
            Ok(_) => gstreamer_rtsp::RTSPStatusCode::Ok,
            Err((status, reason)) => {
                let path = push_auth::parse_talk_uri(&uri)
                    .map(|p| PushServer::talk_path(&p.camera))
                    .unwrap_or_default();
                tracing::warn!(method, path = %path, status = ?status, reason = %reason, "talk pull refused");
                status
            }
        };
    }
    match push_auth::check(verifier, &uri) {
        Ok(_) => gstreamer_rtsp::RTSPStatusCode::Ok,
        Err((status, reason)) => {
            let path = push_auth::parse_uri(&uri)
                .map(|p| PushServer::path(&p.camera, p.stream))
                .unwrap_or_default();
            tracing::warn!(method, path = %path, status = ?status, reason = %reason, "push refused");
            status
        }
    }
}

impl Drop for PushServer {
    fn drop(&mut self) {
        self.stop();
    }
}
