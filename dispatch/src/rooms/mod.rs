//! Consult rooms (网上会商) and incident voice channels (issue 7 items 5 and 7). The media flows
//! through a media-gateway room of the same id (`/rooms/{id}` on the node [`crate::media::
//! choose_gateway`] picks for it); dispatch decides who may join and signs their `room` media
//! tokens. **An outside expert joins only with an invite dispatch signed for that room, before its
//! expiry; an invite is no media token, so it never opens the gateway by itself.**
//!
//! This file is plain logic: room ids and invites. [`floor`] is the voice channels' floor in
//! PostgreSQL (the rule is [`crate::intercom::decide`], the one of camera talk-down);
//! [`timeline`] lists rooms on their incident. **The gateway forwards a voice channel's audio
//! only from the floor's holder**: [`voice_room_id`]'s `voice-` prefix makes a room push-to-talk
//! there, and the holder's browser presents a floor grant (`bl_proto::floor_token`) signed here.

pub mod floor;
pub mod timeline;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The id of a new consult room (also its gateway room id).
pub fn consult_room_id() -> String {
    format!("room-{}", Uuid::now_v7().simple())
}

/// The id of an incident's voice channel: one per incident, so always the same.
pub fn voice_room_id(incident: Uuid) -> String {
    format!("voice-{}", incident.simple())
}

/// What an invite says: who may join which room until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Invite {
    pub room: String,
    /// The guest's name as the inviter typed it (shown to the room).
    pub name: String,
    /// Expires at, Unix seconds (exclusive).
    pub exp: i64,
    pub jti: String,
}

/// Why an invite link does not open a room.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InviteError {
    #[error("the invitation link is damaged or was not issued by this command center")]
    Invalid,
    #[error("the invitation expired at {exp} (now {now})")]
    Expired { exp: i64, now: i64 },
}

/// Signed bytes start with this, so an invite's signature can never pass for a media token's.
const DOMAIN: &[u8] = b"bl-room-invite.";

fn signed_bytes(payload: &str) -> Vec<u8> {
    [DOMAIN, payload.as_bytes()].concat()
}

/// `base64url(invite JSON) "." base64url(Ed25519 signature)`, unpadded.
pub fn sign_invite(invite: &Invite, key: &SigningKey) -> String {
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(invite).expect("an invite serialises"));
    let signature = key.sign(&signed_bytes(&payload));
    format!("{payload}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

/// Checks the signature first (the JSON parser only sees what dispatch wrote), then the expiry.
pub fn verify_invite(text: &str, key: &VerifyingKey, now: i64) -> Result<Invite, InviteError> {
    if text.len() > 2048 {
        return Err(InviteError::Invalid);
    }
    let (payload, signature) = text.split_once('.').ok_or(InviteError::Invalid)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .ok()
        .and_then(|b| Signature::from_slice(&b).ok())
        .ok_or(InviteError::Invalid)?;
    key.verify(&signed_bytes(payload), &signature)
        .map_err(|_| InviteError::Invalid)?;
    let invite: Invite = URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(InviteError::Invalid)?;
    if now >= invite.exp {
        return Err(InviteError::Expired {
            exp: invite.exp,
            now,
        });
    }
    Ok(invite)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invite(exp: i64) -> Invite {
        Invite {
            room: "room-1".into(),
            name: "王专家".into(),
            exp,
            jti: "j".into(),
        }
    }

    #[test]
    fn an_invite_opens_until_its_expiry_and_never_with_another_key_or_changed_bytes() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let text = sign_invite(&invite(1000), &key);
        assert_eq!(
            verify_invite(&text, &key.verifying_key(), 999),
            Ok(invite(1000))
        );
        assert_eq!(
            verify_invite(&text, &key.verifying_key(), 1000),
            Err(InviteError::Expired {
                exp: 1000,
                now: 1000
            })
        );
        let other = SigningKey::from_bytes(&[8; 32]);
        assert_eq!(
            verify_invite(&text, &other.verifying_key(), 0),
            Err(InviteError::Invalid)
        );
        let forged = sign_invite(&invite(9_999_999), &other);
        let (payload, _) = forged.split_once('.').unwrap();
        let (_, signature) = text.split_once('.').unwrap();
        assert_eq!(
            verify_invite(&format!("{payload}.{signature}"), &key.verifying_key(), 0),
            Err(InviteError::Invalid)
        );
        assert_eq!(
            verify_invite("garbage", &key.verifying_key(), 0),
            Err(InviteError::Invalid)
        );
    }

    #[test]
    fn room_ids_are_valid_gateway_ids() {
        let incident = Uuid::now_v7();
        for id in [consult_room_id(), voice_room_id(incident)] {
            assert!(bl_proto::CameraId::new(id.clone()).is_ok(), "{id}");
        }
        assert_eq!(voice_room_id(incident), voice_room_id(incident));
    }
}
