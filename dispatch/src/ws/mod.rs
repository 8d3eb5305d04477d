//! The consoles' WebSocket `GET /api/ws` (DESIGN.md §3.4, §6, §8): database triggers announce
//! every committed change to incidents, timelines, notifications and edge status
//! (`migrations/0005_change_feed.sql`); each replica LISTENs ([`feed`]) and fans the changes out
//! ([`hub`]) to its sockets ([`connection`]), each filtered to what its user may see ([`filter`]).
//! The handshake is checked for its Origin ([`origin`]); the protocol is [`message`].

pub mod config;
pub mod connection;
pub mod feed;
pub mod filter;
pub mod hub;
pub mod message;
pub mod origin;

pub use config::WsConfig;
pub use hub::Hub;

#[cfg(test)]
mod tests {
    use super::message::{ClientMessage, ServerMessage};
    use crate::auth::policy::{WS_MESSAGES, WsDirection, ws_lookup};

    #[test]
    fn every_message_type_has_a_policy_row_and_every_row_names_a_message_type() {
        for kind in ServerMessage::KINDS {
            assert!(
                ws_lookup(WsDirection::ToClient, kind).is_some(),
                "server message {kind} has no row in WS_MESSAGES"
            );
        }
        for kind in ClientMessage::KINDS {
            assert!(
                ws_lookup(WsDirection::ToServer, kind).is_some(),
                "client message {kind} has no row in WS_MESSAGES"
            );
        }
        for r in WS_MESSAGES {
            let kinds: &[&str] = match r.direction {
                WsDirection::ToClient => &ServerMessage::KINDS,
                WsDirection::ToServer => &ClientMessage::KINDS,
            };
            assert!(
                kinds.contains(&r.kind),
                "row {:?} {} names no message",
                r.direction,
                r.kind
            );
        }
    }
}
