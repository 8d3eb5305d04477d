//! The answer's codec selection, on a real engine bound to loopback.

use super::*;

/// A Chromium-like recvonly offer: H.264 under several profiles (42e01f at 109), VP8, H.265 when
/// `h265`, and an audio m-line.
fn offer(h265: bool) -> String {
    let hevc = if h265 {
        " 49\r\na=rtpmap:49 H265/90000\r\na=fmtp:49 level-id=93;profile-id=1;tier-flag=0;tx-mode=SRST"
    } else {
        "\r\na=rtpmap:45 AV1/90000"
    };
    let video_pts = if h265 {
        "96 109 127 49"
    } else {
        "96 109 127 45"
    };
    format!(
        "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n\
         a=msid-semantic: WMS\r\n\
         m=video 9 UDP/TLS/RTP/SAVPF {video_pts}\r\nc=IN IP4 0.0.0.0\r\n\
         a=rtcp:9 IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n\
         a=fingerprint:sha-256 AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99\r\n\
         a=setup:actpass\r\na=mid:0\r\na=recvonly\r\na=rtcp-mux\r\na=rtcp-rsize\r\n\
         a=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack\r\n\
         a=rtpmap:109 H264/90000\r\na=rtcp-fb:109 nack\r\na=rtcp-fb:109 nack pli\r\n\
         a=fmtp:109 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n\
         a=rtpmap:127 H264/90000\r\na=fmtp:127 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640c1f\
         {hevc}\r\n\
         m=audio 9 UDP/TLS/RTP/SAVPF 112\r\nc=IN IP4 0.0.0.0\r\n\
         a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n\
         a=fingerprint:sha-256 AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99\r\n\
         a=setup:actpass\r\na=mid:1\r\na=recvonly\r\na=rtcp-mux\r\n\
         a=rtpmap:112 opus/48000/2\r\na=fmtp:112 minptime=10;useinbandfec=1\r\n"
    )
}

fn engine() -> Engine {
    Engine::new(PeerSettings {
        bind_ip: "127.0.0.1".parse().unwrap(),
        public_ip: Some("203.0.113.7".parse().unwrap()),
        ports: None,
        gather_timeout: Duration::from_secs(1),
    })
}

/// The `a=rtpmap` payload types of the answer's m-line of `kind`.
fn rtpmaps<'a>(answer: &'a str, kind: &str) -> Vec<&'a str> {
    answer
        .split("\nm=")
        .filter(|s| s.starts_with(kind))
        .flat_map(|s| s.lines().filter_map(|l| l.strip_prefix("a=rtpmap:")))
        .collect()
}

#[tokio::test]
async fn the_answer_has_only_the_codec_sent_under_the_offers_payload_type() {
    let engine = engine();
    let (peer, answer, _events) = Peer::answer(&engine, offer(false), VideoCodec::H264, false)
        .await
        .unwrap();
    let video = rtpmaps(&answer, "video");
    assert!(video.contains(&"109 H264/90000"), "{answer}");
    assert!(
        video
            .iter()
            .all(|m| m.starts_with("109 ") || m.contains("rtx")),
        "only the 42e01f H.264 (and its retransmissions): {answer}"
    );
    assert!(!peer.has_audio(), "no audio from this camera");
    assert!(
        answer.contains("m=audio 0 UDP/TLS/RTP/SAVPF 112\r\na=rtpmap:112 opus/48000/2\r\n"),
        "audio rejected, with a format (SDP parsers refuse one without): {answer}"
    );
    assert!(
        rtc::peer_connection::sdp::RTCSessionDescription::answer(answer.clone()).is_ok(),
        "{answer}"
    );
    assert!(
        answer.contains("203.0.113.7") && answer.contains("typ host"),
        "the public address in a host candidate: {answer}"
    );
    assert!(answer.contains("a=ice-lite"), "{answer}");

    let (peer, answer, _events) = Peer::answer(&engine, offer(false), VideoCodec::H264, true)
        .await
        .unwrap();
    assert_eq!(rtpmaps(&answer, "audio"), ["112 opus/48000/2"], "{answer}");
    assert!(peer.has_audio());
    peer.close().await;
}

#[tokio::test]
async fn an_h265_viewer_is_answered_h265_and_an_offer_without_the_codec_is_refused() {
    let engine = engine();
    let (_peer, answer, _events) = Peer::answer(&engine, offer(true), VideoCodec::H265, false)
        .await
        .unwrap();
    let video = rtpmaps(&answer, "video");
    assert!(video.contains(&"49 H265/90000"), "{answer}");
    assert!(!video.iter().any(|m| m.contains("H264")), "{answer}");

    let e = Peer::answer(&engine, offer(false), VideoCodec::H265, false)
        .await
        .err()
        .unwrap();
    assert!(
        matches!(&e, PeerError::BadOffer(m) if m.contains("H.265")),
        "{e:?}"
    );
    let vp8_only = offer(false).replace(
        "m=video 9 UDP/TLS/RTP/SAVPF 96 109 127 45",
        "m=video 9 UDP/TLS/RTP/SAVPF 96",
    );
    let vp8_only: String = vp8_only
        .split("\r\n")
        .filter(|l| !l.contains(":109") && !l.contains(":127") && !l.contains(":45"))
        .map(|l| format!("{l}\r\n"))
        .collect();
    let e = Peer::answer(&engine, vp8_only, VideoCodec::H264, false)
        .await
        .err()
        .unwrap();
    assert!(
        matches!(&e, PeerError::BadOffer(m) if m.contains("H.264")),
        "{e:?}"
    );
    let e = Peer::answer(&engine, "hello".into(), VideoCodec::H264, false)
        .await
        .err()
        .unwrap();
    assert!(
        matches!(&e, PeerError::BadOffer(m) if m.starts_with("not an SDP offer")),
        "{e:?}"
    );
}

#[test]
fn mids_are_read_per_kind_in_order() {
    let sdp = offer(false);
    assert_eq!(offered_mids(&sdp, "video").collect::<Vec<_>>(), ["0"]);
    assert_eq!(offered_mids(&sdp, "audio").collect::<Vec<_>>(), ["1"]);
    assert_eq!(offered_mids(&sdp, "application").count(), 0);
}

#[tokio::test]
async fn a_port_range_with_every_port_taken_is_no_port() {
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let engine = Engine::new(PeerSettings {
        bind_ip: "127.0.0.1".parse().unwrap(),
        public_ip: None,
        ports: Some((port, port)),
        gather_timeout: Duration::from_secs(1),
    });
    let e = Peer::answer(&engine, offer(false), VideoCodec::H264, false)
        .await
        .err()
        .unwrap();
    assert!(matches!(e, PeerError::NoPort), "{e:?}");
}
