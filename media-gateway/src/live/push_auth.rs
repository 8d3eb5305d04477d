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

/// Reads the push path of a request URI (`rtsp://host:port/push/…`, any query ignored).
pub fn parse_uri(uri: &str) -> Option<PushPath<'_>> {
    let rest = uri
        .split_once("://")
        .map_or(uri, |(_, r)| r.split_once('/').map_or("", |(_, p)| p));
    let path = rest.split_once('?').map_or(rest, |(p, _)| p);
    let mut parts = path.split('/').filter(|p| !p.is_empty());
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
}
