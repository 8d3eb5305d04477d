//! The WHEP engine's I/O: every viewer's [`Rtc`] on one UDP socket per advertised address and one
//! task running them all. The loop takes, in this order of priority, new viewers and closes, the
//! sockets' datagrams and the viewers' packets to send, each in bursts, and wakes at the earliest
//! timeout of any viewer; after each burst it lets every touched `Rtc` emit what it has (datagrams
//! to send, events for its viewer) in one pass. A new viewer comes first so that its first STUN
//! check, which can only follow the answer, finds it.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use str0m::media::Mid;
use str0m::net::{Protocol, Receive};
use str0m::rtp::{RtpWrite, SeqNo};
use str0m::{Event, IceConnectionState, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::packet::{Outgoing, SeqExtender, SharedPayloads};
use super::route::Router;
use super::{PeerError, PeerEvent, PeerSettings};

/// How long ICE may stay `disconnected` before the viewer is given up: a lost consent check or a
/// network change recovers well within it.
const GIVE_UP_AFTER: Duration = Duration::from_secs(20);
/// Packets queued towards the loop before a viewer's sender waits (backpressure: a viewer that
/// waits falls behind the relay and resumes at the next keyframe).
const MEDIA_QUEUE: usize = 16_384;
/// Most controls, packets or datagrams taken in one turn of the loop.
const BURST: usize = 1024;
/// A viewer is polled after this many packets written, mid-burst.
const SEND_EVERY: usize = 64;
/// The largest datagram read.
const DATAGRAM_MAX: usize = 2048;

/// A viewer, as the loop knows it.
pub type PeerId = u64;

/// A bound socket and the address it is known as in candidates (the public one behind 1:1 NAT).
pub struct BoundSocket {
    socket: Arc<UdpSocket>,
    /// The address in the host candidate, and what str0m sees datagrams arrive at.
    pub advertised: SocketAddr,
}

/// A viewer arriving or leaving.
pub enum Control {
    /// A new viewer (its offer already answered).
    Add(PeerId, Box<Viewer>),
    /// The viewer left.
    Close(PeerId),
}

/// A packet to send to a viewer.
pub enum Media {
    /// A video packet as relayed, under the viewer's sequence number.
    Video(PeerId, Bytes, u16),
    /// An audio packet as relayed (Opus).
    Audio(PeerId, Bytes),
}

/// Where viewers' tasks send to the loop.
#[derive(Clone)]
pub struct Senders {
    /// New viewers and closes.
    pub control: mpsc::Sender<Control>,
    /// Packets.
    pub media: mpsc::Sender<Media>,
}

/// Where a viewer's media goes: the m-line and the payload type negotiated.
#[derive(Debug, Clone, Copy)]
pub struct Track {
    /// The m-line.
    pub mid: Mid,
    /// The payload type the answer agreed on.
    pub pt: u8,
}

/// A viewer's connection and what the loop keeps for it.
pub struct Viewer {
    rtc: Rtc,
    events: mpsc::Sender<PeerEvent>,
    video: Track,
    audio: Option<Track>,
    video_seq: SeqExtender,
    audio_seq: SeqExtender,
    /// When `rtc` wants to be woken next.
    timeout: Instant,
    /// Written to or received for since the last pass.
    dirty: bool,
    /// Since when ICE is disconnected.
    disconnected_since: Option<Instant>,
    /// When the answer was made (for the log of how long connecting took).
    created: Instant,
    /// Packets written.
    packets: u64,
    /// Packets written since the last poll.
    unsent: usize,
}

impl Viewer {
    /// A viewer of `rtc` (the answer made), reporting to `events`.
    pub fn new(
        rtc: Rtc,
        events: mpsc::Sender<PeerEvent>,
        video: Track,
        audio: Option<Track>,
    ) -> Self {
        Self {
            rtc,
            events,
            video,
            audio,
            video_seq: SeqExtender::default(),
            audio_seq: SeqExtender::default(),
            timeout: Instant::now(),
            dirty: true,
            disconnected_since: None,
            created: Instant::now(),
            packets: 0,
            unsent: 0,
        }
    }
}

/// Binds the engine's sockets: one on `bind_ip`; on every interface (`0.0.0.0`) one per
/// interface address unless a public address is advertised (then one, that answers for it). All
/// on one port of the range (the first free), or any free port.
pub fn bind(settings: &PeerSettings) -> Result<Vec<BoundSocket>, PeerError> {
    let ips: Vec<(IpAddr, Option<IpAddr>)> =
        if settings.bind_ip.is_unspecified() && settings.public_ip.is_none() {
            let ips = interface_ips();
            if ips.is_empty() {
                return Err(PeerError::Engine(
                    "no network interface with an IPv4 address to advertise".into(),
                ));
            }
            ips.into_iter().map(|ip| (ip, None)).collect()
        } else {
            vec![(settings.bind_ip, settings.public_ip)]
        };
    let ports: Vec<u16> = match settings.ports {
        Some((min, max)) => (min..=max).collect(),
        None => vec![0],
    };
    for port in ports {
        if let Some(sockets) = bind_all(&ips, port) {
            return Ok(sockets);
        }
        tracing::debug!(port, "udp port taken, trying the next");
    }
    Err(PeerError::NoPort)
}

/// All of `ips` bound on `port` (0: the first one's free port, then that port for the others, or
/// any), or None when a port is taken.
fn bind_all(ips: &[(IpAddr, Option<IpAddr>)], port: u16) -> Option<Vec<BoundSocket>> {
    let mut sockets = Vec::new();
    let mut port = port;
    let any = port == 0;
    for (ip, public) in ips {
        let socket = match std::net::UdpSocket::bind((*ip, port)) {
            Ok(s) => s,
            Err(_) if any => std::net::UdpSocket::bind((*ip, 0)).ok()?,
            Err(_) => return None,
        };
        socket.set_nonblocking(true).ok()?;
        let local = socket.local_addr().ok()?;
        if any && port == 0 {
            port = local.port();
        }
        sockets.push(BoundSocket {
            socket: Arc::new(UdpSocket::from_std(socket).ok()?),
            advertised: SocketAddr::new(public.unwrap_or(*ip), local.port()),
        });
    }
    Some(sockets)
}

/// The IPv4 addresses of this host's interfaces but loopback.
fn interface_ips() -> Vec<IpAddr> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    let mut ips: Vec<IpAddr> = addrs
        .filter_map(|a| Some(IpAddr::V4(a.address?.as_sockaddr_in()?.ip())))
        .filter(|ip| !ip.is_loopback())
        .collect();
    ips.sort();
    ips.dedup();
    ips
}

/// One datagram read.
struct Datagram {
    socket: usize,
    source: SocketAddr,
    data: Vec<u8>,
}

/// Starts the loop over `sockets`; it ends when `stop` is cancelled or every sender is gone.
pub fn start(sockets: Vec<BoundSocket>, stop: CancellationToken) -> Senders {
    let (control_tx, control) = mpsc::channel(BURST);
    let (media_tx, media) = mpsc::channel(MEDIA_QUEUE);
    let (datagrams_tx, datagrams) = mpsc::channel(BURST);
    let sockets: Vec<_> = sockets.into_iter().map(Arc::new).collect();
    for (i, s) in sockets.iter().enumerate() {
        tokio::spawn(read(
            i,
            s.socket.clone(),
            datagrams_tx.clone(),
            stop.clone(),
        ));
    }
    let engine = Loop {
        sockets,
        viewers: HashMap::new(),
        router: Router::default(),
        payloads: SharedPayloads::default(),
        out: Vec::new(),
    };
    tokio::spawn(engine.run(control, media, datagrams, stop));
    Senders {
        control: control_tx,
        media: media_tx,
    }
}

/// Reads datagrams of one socket into the loop.
async fn read(
    index: usize,
    socket: Arc<UdpSocket>,
    to: mpsc::Sender<Datagram>,
    stop: CancellationToken,
) {
    let mut buf = vec![0u8; DATAGRAM_MAX];
    loop {
        let (n, source) = tokio::select! {
            () = stop.cancelled() => return,
            r = socket.recv_from(&mut buf) => match r {
                Ok(v) => v,
                // e.g. ICMP port unreachable of an earlier send: the socket is fine
                Err(e) => {
                    tracing::trace!(err = %e, "udp read");
                    continue;
                }
            },
        };
        let d = Datagram {
            socket: index,
            source,
            data: buf[..n].to_vec(),
        };
        if to.send(d).await.is_err() {
            return;
        }
    }
}

/// The loop's state: it alone touches the viewers' connections, so nothing is locked.
struct Loop {
    sockets: Vec<Arc<BoundSocket>>,
    viewers: HashMap<PeerId, Viewer>,
    router: Router,
    payloads: SharedPayloads,
    out: Outbox,
}

/// Datagrams to send after a pass: socket index, destination, bytes.
type Outbox = Vec<(usize, SocketAddr, Vec<u8>)>;

impl Loop {
    async fn run(
        mut self,
        mut control: mpsc::Receiver<Control>,
        mut media: mpsc::Receiver<Media>,
        mut datagrams: mpsc::Receiver<Datagram>,
        stop: CancellationToken,
    ) {
        let mut control_burst = Vec::with_capacity(BURST);
        let mut media_burst = Vec::with_capacity(BURST);
        let mut datagram_burst = Vec::with_capacity(BURST);
        loop {
            let wake = self.next_timeout();
            tokio::select! {
                biased;
                () = stop.cancelled() => break,
                n = control.recv_many(&mut control_burst, BURST) => {
                    if n == 0 {
                        break;
                    }
                    let now = Instant::now();
                    for c in control_burst.drain(..) {
                        self.control(now, c);
                    }
                }
                n = datagrams.recv_many(&mut datagram_burst, BURST) => {
                    if n == 0 {
                        break;
                    }
                    let now = Instant::now();
                    for d in datagram_burst.drain(..) {
                        self.receive(now, d);
                    }
                }
                n = media.recv_many(&mut media_burst, BURST) => {
                    if n == 0 {
                        break;
                    }
                    let now = Instant::now();
                    for m in media_burst.drain(..) {
                        match m {
                            Media::Video(id, rtp, seq) => self.write(now, id, &rtp, Some(seq)),
                            Media::Audio(id, rtp) => self.write(now, id, &rtp, None),
                        }
                    }
                }
                () = tokio::time::sleep_until(wake.into()) => {}
            }
            self.drive(Instant::now());
            self.flush().await;
        }
        for v in self.viewers.values_mut() {
            v.rtc.disconnect();
        }
        tracing::debug!("whep engine stopped");
    }

    /// The earliest time a viewer wants to be woken (a second from now at the latest).
    fn next_timeout(&self) -> Instant {
        let cap = Instant::now() + Duration::from_secs(1);
        self.viewers
            .values()
            .map(|v| v.timeout)
            .min()
            .map_or(cap, |t| t.min(cap))
    }

    fn control(&mut self, now: Instant, control: Control) {
        match control {
            Control::Add(id, viewer) => {
                self.viewers.insert(id, *viewer);
            }
            Control::Close(id) => {
                if let Some(mut v) = self.viewers.remove(&id) {
                    // DTLS close_notify and RTCP BYE, sent on this pass's flush
                    let (sockets, out) = (&self.sockets, &mut self.out);
                    guarded(&mut v, |v| {
                        let _ = v.rtc.close();
                        emit(v, sockets, out, now);
                    });
                    v.rtc.disconnect();
                }
                self.router.forget(id);
            }
        }
    }

    /// Queues a relayed packet to viewer `id`: video under sequence number `seq`, audio (no
    /// `seq`) under the camera's own.
    fn write(&mut self, now: Instant, id: PeerId, rtp: &Bytes, seq: Option<u16>) {
        let Some(v) = self.viewers.get_mut(&id) else {
            return;
        };
        let Some(out) = Outgoing::parse(rtp) else {
            return;
        };
        let (track, seq) = match (seq, v.audio) {
            (Some(seq), _) => (v.video, v.video_seq.extend(seq)),
            (None, Some(audio)) => (audio, v.audio_seq.extend(super::super::rtp::seq(rtp))),
            (None, None) => return,
        };
        if v.packets == 0 {
            let ms = now.duration_since(v.created).as_millis();
            tracing::debug!(ms, "whep viewer's first packet");
        }
        v.packets += 1;
        let write = RtpWrite::new(
            track.pt.into(),
            SeqNo::from(seq),
            out.timestamp,
            now,
            self.payloads.get(rtp, out.payload),
        )
        .marker(out.marker)
        .nackable(true);
        guarded(v, |v| {
            if let Some(stream) = v.rtc.direct_api().stream_tx_by_mid(track.mid, None) {
                stream.write_rtp(write);
            }
        });
        v.dirty = true;
        // str0m's send buffer also holds what is not sent yet: a viewer's backlog (a GOP, written
        // in one burst) would overwrite its own keyframe before the pass at the burst's end
        v.unsent += 1;
        if v.unsent >= SEND_EVERY {
            poll(v, &self.sockets, &mut self.out, now);
        }
    }

    /// Hands a datagram to the viewer whose `Rtc` accepts it.
    fn receive(&mut self, now: Instant, d: Datagram) {
        let Some(socket) = self.sockets.get(d.socket) else {
            return;
        };
        let Ok(receive) = Receive::new(Protocol::Udp, d.source, socket.advertised, &d.data) else {
            return;
        };
        let input = Input::Receive(now, receive);
        let viewers = &self.viewers;
        let accepts = |id: PeerId| viewers.get(&id).is_some_and(|v| v.rtc.accepts(&input));
        let Some(id) = self
            .router
            .route(d.source, viewers.keys().copied(), accepts)
        else {
            tracing::trace!(source = %d.source, "datagram of no viewer");
            return;
        };
        let v = self.viewers.get_mut(&id).expect("found above");
        guarded(v, |v| {
            if let Err(e) = v.rtc.handle_input(input) {
                tracing::debug!(err = %e, "whep input refused");
            }
        });
        v.dirty = true;
    }

    /// Lets every viewer that is due or was touched emit what it has; ends those that are gone.
    fn drive(&mut self, now: Instant) {
        let mut ended = Vec::new();
        let mut viewers = std::mem::take(&mut self.viewers);
        for (id, v) in &mut viewers {
            if !v.dirty && v.timeout > now {
                continue;
            }
            poll(v, &self.sockets, &mut self.out, now);
            if gave_up(v.disconnected_since, now) || !v.rtc.is_alive() {
                let _ = v.events.try_send(PeerEvent::Closed);
                ended.push(*id);
            }
        }
        for id in &ended {
            viewers.remove(id);
            self.router.forget(*id);
        }
        self.viewers = viewers;
    }

    /// Sends what the last pass produced.
    async fn flush(&mut self) {
        for (i, to, data) in self.out.drain(..) {
            let socket = &self.sockets[i].socket;
            match socket.try_send_to(&data, to) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    let _ = socket.send_to(&data, to).await;
                }
                Err(e) => tracing::trace!(err = %e, %to, "udp send"),
            }
        }
    }
}

/// Advances `v` to `now` and lets it emit what it has.
fn poll(v: &mut Viewer, sockets: &[Arc<BoundSocket>], out: &mut Outbox, now: Instant) {
    v.dirty = false;
    v.unsent = 0;
    guarded(v, |v| {
        if let Err(e) = v.rtc.handle_input(Input::Timeout(now)) {
            tracing::debug!(err = %e, "whep timeout refused");
        }
        emit(v, sockets, out, now);
    });
}

/// Runs `f` on `v`'s connection; a panic in it (str0m panics on a broken invariant, its bugs)
/// ends this viewer (not alive: closed at the next pass) instead of the loop and every viewer.
fn guarded(v: &mut Viewer, f: impl FnOnce(&mut Viewer)) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(v))).is_err() {
        tracing::error!("a whep connection panicked; ending it");
        v.rtc.disconnect();
        v.dirty = true;
    }
}

/// Polls `v` until it waits for time: datagrams to `out`, events to its viewer.
fn emit(v: &mut Viewer, sockets: &[Arc<BoundSocket>], out: &mut Outbox, now: Instant) {
    loop {
        match v.rtc.poll_output() {
            Ok(Output::Timeout(t)) => {
                v.timeout = t;
                return;
            }
            Ok(Output::Transmit(t)) => {
                if let Some(i) = sockets.iter().position(|s| s.advertised == t.source) {
                    out.push((i, t.destination, t.contents.into()));
                }
            }
            Ok(Output::Event(e)) => on_event(v, e, now),
            Err(e) => {
                tracing::debug!(err = %e, "whep connection failed");
                v.rtc.disconnect();
                v.timeout = now;
                return;
            }
        }
    }
}

/// What an `Rtc` event means for its viewer.
fn on_event(v: &mut Viewer, event: Event, now: Instant) {
    let event = match event {
        Event::Connected => {
            let ms = now.duration_since(v.created).as_millis();
            tracing::debug!(ms, "whep viewer connected (ICE and DTLS)");
            PeerEvent::Connected
        }
        Event::KeyframeRequest(_) => PeerEvent::KeyframeRequest,
        Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
            // not the end yet: ended by `drive` if it lasts
            v.disconnected_since.get_or_insert(now);
            return;
        }
        Event::IceConnectionStateChange(_) => {
            v.disconnected_since = None;
            return;
        }
        Event::Closed => PeerEvent::Closed,
        _ => return,
    };
    let _ = v.events.try_send(event);
}

/// Whether a viewer disconnected `since` then is given up `now`.
fn gave_up(since: Option<Instant>, now: Instant) -> bool {
    since.is_some_and(|since| now.duration_since(since) >= GIVE_UP_AFTER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_brief_ice_disconnection_does_not_end_the_session_but_a_lasting_one_does() {
        let (events, mut rx) = mpsc::channel(4);
        let track = Track {
            mid: Mid::from("0"),
            pt: 102,
        };
        let now = Instant::now();
        let mut v = Viewer::new(Rtc::new(now), events, track, None);
        on_event(&mut v, Event::Connected, now);
        assert_eq!(rx.try_recv().ok(), Some(PeerEvent::Connected));
        let lost = IceConnectionState::Disconnected;
        on_event(&mut v, Event::IceConnectionStateChange(lost), now);
        assert!(rx.try_recv().is_err(), "disconnected is not the end");
        assert!(!gave_up(v.disconnected_since, now + Duration::from_secs(5)));
        let back = IceConnectionState::Connected;
        on_event(&mut v, Event::IceConnectionStateChange(back), now);
        assert_eq!(v.disconnected_since, None, "recovered");
        on_event(&mut v, Event::IceConnectionStateChange(lost), now);
        assert!(gave_up(v.disconnected_since, now + GIVE_UP_AFTER));
        on_event(&mut v, Event::Closed, now);
        assert_eq!(rx.try_recv().ok(), Some(PeerEvent::Closed));
    }
}
