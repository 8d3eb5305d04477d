//! The push server's authentication. An edge pushes to
//! `rtsp://{gateway}:{port}/push/{camera}/{stream}/{token}`, where `{token}` is a media token
//! signed by dispatch with action `push` for that camera, this gateway node and (when the token
//! names one) that stream. The check runs on the edge's first request (`OPTIONS`) and again on
//! every `ANNOUNCE`, `SETUP` and `RECORD`, before gst-rtsp-server acts on it (its `pre-*-request`
//! signals): no token or a bad one is answered `401`, a token for something else `403`.
//!
//! Why the token is a path segment and not a Basic password or a query: answering Basic needs a
//! `GstRTSPAuth` subclass, whose glib-generated code is `unsafe` (forbidden in this workspace), and
//! gst-rtsp-server matches a query as part of the path, so `SETUP …/stream=0?token=…` finds no
//! stream. As a segment, the server mounts the verified path itself ([`super::push`]) and the
//! control path follows it normally. The token is as narrow as a password would be: one camera,
//! one node, `push` only, minutes; the gateway never logs it (only `/push/{camera}/{stream}`).

use bl_proto::CameraId;
use bl_proto::stream::Stream;
use bl_proto::token::MediaAction;
use gstreamer_rtsp::RTSPStatusCode;

use crate::auth::TokenVerifier;

/// The parts of a push request's path: `/push/{camera}/{stream}/{token}/…`.
#[derive(Debug, PartialEq, Eq)]
pub struct PushPath<'a> {
    /// The camera.
    pub camera: CameraId,
    /// Which of its streams.
    pub stream: Stream,
    /// The push token, if the path has one.
    pub token: Option<&'a str>,
}

impl PushPath<'_> {
    /// The path to mount for this push: `/push/{camera}/{stream}/{token}`.
    pub fn mount_path(&self) -> Option<String> {
        self.token
            .map(|t| format!("/push/{}/{}/{t}", self.camera, self.stream.as_str()))
    }
}

/// The path of a request URI without the scheme, host and query (`push/…`, `talk/…`).
fn path_of(uri: &str) -> &str {
    let rest = uri
        .split_once("://")
        .map_or(uri, |(_, r)| r.split_once('/').map_or("", |(_, p)| p));
    rest.split_once('?').map_or(rest, |(p, _)| p)
}

/// Whether a request URI is for a talk mount (`/talk/…`) rather than a push.
pub fn is_talk(uri: &str) -> bool {
    path_of(uri).trim_start_matches('/').starts_with("talk/")
}

/// Reads the push path of a request URI (`rtsp://host:port/push/…`, any query ignored).
pub fn parse_uri(uri: &str) -> Option<PushPath<'_>> {
    let mut parts = path_of(uri).split('/').filter(|p| !p.is_empty());
    if parts.next()? != "push" {
        return None;
    }
    let camera = parts.next()?.parse().ok()?;
    let stream = match parts.next()? {
        "main" => Stream::Main,
        "sub" => Stream::Sub,
        _ => return None,
    };
    Some(PushPath {
        camera,
        stream,
        token: parts.next(),
    })
}

/// Checks one request; `Err` holds the RTSP status to answer and why (for the log; the edge sees
/// only the status).
pub fn check<'a>(
    verifier: &TokenVerifier,
    uri: &'a str,
) -> Result<PushPath<'a>, (RTSPStatusCode, String)> {
    let path = parse_uri(uri).ok_or((
        RTSPStatusCode::NotFound,
        "not a /push/{camera}/{stream}/{token} path".to_owned(),
    ))?;
    let token = path.token.ok_or((
        RTSPStatusCode::Unauthorized,
        "no push token in the path".to_owned(),
    ))?;
    let claims = verifier
        .verify_raw(token)
        .map_err(|e| (RTSPStatusCode::Unauthorized, e.to_string()))?;
    verifier
        .authorize(&claims, &path.camera, MediaAction::Push)
        .map_err(|e| (RTSPStatusCode::Forbidden, e.to_string()))?;
    if claims.stream.is_some_and(|s| s != path.stream) {
        return Err((
            RTSPStatusCode::Forbidden,
            format!(
                "the push token is for another stream of camera {}",
                path.camera
            ),
        ));
    }
    Ok(path)
}

/// The parts of a talk pull's path: `/talk/{camera}/{token}/…`.
#[derive(Debug, PartialEq, Eq)]
pub struct TalkPath<'a> {
    /// The camera talked to.
    pub camera: CameraId,
    /// The `talk` token, if the path has one.
    pub token: Option<&'a str>,
}

impl TalkPath<'_> {
    /// The path to mount for this pull: `/talk/{camera}/{token}`.
    pub fn mount_path(&self) -> Option<String> {
        self.token.map(|t| format!("/talk/{}/{t}", self.camera))
    }
}

/// Reads the talk path of a request URI (`rtsp://host:port/talk/…`, any query ignored).
pub fn parse_talk_uri(uri: &str) -> Option<TalkPath<'_>> {
    let mut parts = path_of(uri).split('/').filter(|p| !p.is_empty());
    if parts.next()? != "talk" {
        return None;
    }
    let camera = parts.next()?.parse().ok()?;
    Some(TalkPath {
        camera,
        token: parts.next(),
    })
}

/// Checks one request of an edge pulling talk audio: a `talk` token for the camera and this node
/// (dispatch signs it for the camera's edge with `startTalk`).
pub fn check_talk<'a>(
    verifier: &TokenVerifier,
    uri: &'a str,
) -> Result<TalkPath<'a>, (RTSPStatusCode, String)> {
    let path = parse_talk_uri(uri).ok_or((
        RTSPStatusCode::NotFound,
        "not a /talk/{camera}/{token} path".to_owned(),
    ))?;
    let token = path.token.ok_or((
        RTSPStatusCode::Unauthorized,
        "no talk token in the path".to_owned(),
    ))?;
    let claims = verifier
        .verify_raw(token)
        .map_err(|e| (RTSPStatusCode::Unauthorized, e.to_string()))?;
    verifier
        .authorize(&claims, &path.camera, MediaAction::Talk)
        .map_err(|e| (RTSPStatusCode::Forbidden, e.to_string()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_paths_name_a_camera_a_stream_and_a_token_and_may_carry_a_control_suffix() {
        let cam: CameraId = "cam-1".parse().unwrap();
        let p = parse_uri("rtsp://gw:8554/push/cam-1/sub/abc.def/stream=0").unwrap();
        assert_eq!(
            p,
            PushPath {
                camera: cam.clone(),
                stream: Stream::Sub,
                token: Some("abc.def")
            }
        );
        assert_eq!(p.mount_path().unwrap(), "/push/cam-1/sub/abc.def");
        let p = parse_uri("rtsp://gw/push/cam-1/main").unwrap();
        assert_eq!((p.stream, p.token), (Stream::Main, None));
        assert_eq!(parse_uri("rtsp://gw/push/cam-1"), None);
        assert_eq!(parse_uri("rtsp://gw/cam/cam-1/main"), None);
        assert_eq!(parse_uri("rtsp://gw/push/cam-1/hd/x"), None);
        assert_eq!(parse_uri("rtsp://gw/push/..%2Fx/main/t"), None);
    }

    #[test]
    fn talk_paths_name_a_camera_and_a_token_and_may_carry_a_control_suffix() {
        let p = parse_talk_uri("rtsp://gw:8554/talk/cam-1/abc.def/stream=0").unwrap();
        assert_eq!(p.camera.as_str(), "cam-1");
        assert_eq!(p.token, Some("abc.def"));
        assert_eq!(p.mount_path().unwrap(), "/talk/cam-1/abc.def");
        assert!(is_talk("rtsp://gw:8554/talk/cam-1/abc"));
        assert!(!is_talk("rtsp://gw:8554/push/cam-1/sub/abc"));
        assert_eq!(parse_talk_uri("rtsp://gw/push/cam-1/sub/t"), None);
        assert_eq!(parse_talk_uri("rtsp://gw/talk/..%2Fx/t"), None);
    }
}
