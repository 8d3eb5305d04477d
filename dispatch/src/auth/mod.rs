//! Authentication and authorisation: who the caller is (sessions, passwords, TOTP, throttling) and
//! what they may do (roles, town scope, the one policy table).

pub mod bootstrap;
pub mod password;
pub mod policy;
pub mod service;
pub mod session;
pub mod throttle;
pub mod totp;

use crate::error::Error;
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What a user does; decides the routes they may call (see [`policy::POLICY`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum Role {
    /// Manages users and the registry.
    Admin,
    /// District duty supervisor: oversees incidents and teams.
    Supervisor,
    /// Command-center operator at the video wall.
    Operator,
    /// Officer of one or more towns (镇/街道 食药所).
    TownOfficer,
    /// Field staff answering dispatch on a phone.
    Field,
    /// Plans and runs emergency drills.
    DrillCoordinator,
    /// Reads everything in scope, changes nothing.
    Auditor,
}

impl Role {
    pub const ALL: [Role; 7] = [
        Role::Admin,
        Role::Supervisor,
        Role::Operator,
        Role::TownOfficer,
        Role::Field,
        Role::DrillCoordinator,
        Role::Auditor,
    ];

    /// The stored and wire name (camelCase).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Supervisor => "supervisor",
            Role::Operator => "operator",
            Role::TownOfficer => "townOfficer",
            Role::Field => "field",
            Role::DrillCoordinator => "drillCoordinator",
            Role::Auditor => "auditor",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// Which towns a user may see: the whole district, or a list of towns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    District,
    Towns(Vec<String>),
}

impl Scope {
    /// From the stored column (NULL = district).
    pub fn from_column(towns: Option<Vec<String>>) -> Scope {
        towns.map_or(Scope::District, Scope::Towns)
    }

    /// The towns to filter lists by; `None` means no filter (the district).
    pub fn filter(&self) -> Option<&[String]> {
        match self {
            Scope::District => None,
            Scope::Towns(t) => Some(t),
        }
    }

    pub fn allows(&self, town: &str) -> bool {
        match self {
            Scope::District => true,
            Scope::Towns(t) => t.iter().any(|x| x == town),
        }
    }

    /// Whether every town of `other` lies in this scope (so this scope may grant `other`).
    pub fn covers(&self, other: &Scope) -> bool {
        match (self, other) {
            (Scope::District, _) => true,
            (Scope::Towns(_), Scope::District) => false,
            (Scope::Towns(_), Scope::Towns(o)) => o.iter().all(|t| self.allows(t)),
        }
    }
}

/// The authenticated user of a request, put in the request's extensions by the policy middleware.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: Uuid,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub scope: Scope,
    pub csrf_token: String,
    /// SHA-256 of the session id, to end this session.
    pub session_hash: Vec<u8>,
}

impl Caller {
    /// Re-checks scope after a lookup: 403 when `town` is outside the caller's towns.
    pub fn check_town(&self, town: &str) -> Result<(), Error> {
        if self.scope.allows(town) {
            Ok(())
        } else {
            Err(Error::out_of_scope())
        }
    }
}

/// `bytes` random bytes from the OS generator, base64url without padding.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// Compares two secrets in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_round_trips_through_its_name() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
            assert_eq!(
                serde_json::to_string(&r).unwrap(),
                format!("\"{}\"", r.as_str())
            );
        }
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn a_town_scope_covers_only_its_own_towns_and_never_the_district() {
        let s = Scope::Towns(vec!["zhaitang".into(), "qingshui".into()]);
        assert!(s.allows("zhaitang"));
        assert!(!s.allows("dayu"));
        assert!(s.covers(&Scope::Towns(vec!["qingshui".into()])));
        assert!(!s.covers(&Scope::Towns(vec!["dayu".into()])));
        assert!(!s.covers(&Scope::District));
        assert!(Scope::District.covers(&s));
    }

    #[test]
    fn random_tokens_of_32_bytes_are_43_characters_and_differ() {
        let a = random_token(32);
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_token(32));
    }

    #[test]
    fn constant_time_eq_compares_whole_values() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
