//! Which viewer a datagram is for, plain logic: the viewer last seen at its source address if that
//! viewer still accepts it, else the first that does (a new viewer's first STUN check, or a viewer
//! whose address changed), remembered for the next datagram from there.

use std::collections::HashMap;
use std::net::SocketAddr;

use super::engine::PeerId;

/// Remote addresses and the viewers last seen at them.
#[derive(Default)]
pub struct Router {
    by_source: HashMap<SocketAddr, PeerId>,
}

impl Router {
    /// The viewer of a datagram from `source`, among `viewers`, by `accepts` (the viewer's `Rtc`
    /// says the datagram is its own).
    pub fn route(
        &mut self,
        source: SocketAddr,
        viewers: impl IntoIterator<Item = PeerId>,
        accepts: impl Fn(PeerId) -> bool,
    ) -> Option<PeerId> {
        let known = self
            .by_source
            .get(&source)
            .copied()
            .filter(|id| accepts(*id));
        let id = known.or_else(|| viewers.into_iter().find(|id| accepts(*id)))?;
        self.by_source.insert(source, id);
        Some(id)
    }

    /// Forgets viewer `id` (it left).
    pub fn forget(&mut self, id: PeerId) {
        self.by_source.retain(|_, v| *v != id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([198, 18, 0, 1], port))
    }

    #[test]
    fn a_datagram_goes_to_the_viewer_that_accepts_it_and_its_address_is_remembered() {
        let mut r = Router::default();
        let ids = [1, 2, 3];
        assert_eq!(r.route(addr(5000), ids, |id| id == 2), Some(2));
        // remembered: the other viewers are not asked again
        assert_eq!(
            r.route(addr(5000), ids, |id| {
                assert_eq!(id, 2, "only the remembered viewer is asked");
                true
            }),
            Some(2)
        );
        assert_eq!(r.route(addr(5001), ids, |_| false), None, "no viewer's");
    }

    #[test]
    fn an_address_taken_over_by_another_viewer_or_a_viewer_that_left_is_routed_afresh() {
        let mut r = Router::default();
        assert_eq!(r.route(addr(5000), [1, 2], |id| id == 1), Some(1));
        assert_eq!(r.route(addr(5000), [1, 2], |id| id == 2), Some(2));
        r.forget(2);
        assert_eq!(r.route(addr(5000), [1], |_| false), None);
        assert_eq!(r.route(addr(5000), [1], |id| id == 1), Some(1));
    }
}
