//! Fan-out of changes to the sockets of this replica: one bounded broadcast channel. Each socket
//! reads at its own pace; one that falls more than `ws.buffer` changes behind skips to the oldest
//! held and is told to `resync` instead of holding memory, and never slows the others. A semaphore caps open sockets.

use super::config::WsConfig;
use super::message::Change;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast};
use tokio_util::sync::CancellationToken;

/// What the hub hands every socket.
// Each event lives behind one `Arc` in the channel; boxing the change would add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Change(Change),
    /// Changes may have been lost (the feed reconnected): clients reload.
    Resync(String),
}

pub struct Hub {
    tx: broadcast::Sender<Arc<Event>>,
    slots: Arc<Semaphore>,
    closing: CancellationToken,
    pub config: WsConfig,
}

impl Hub {
    pub fn new(config: &WsConfig) -> Hub {
        Hub {
            tx: broadcast::channel(config.buffer).0,
            slots: Arc::new(Semaphore::new(config.max_connections)),
            closing: CancellationToken::new(),
            config: config.clone(),
        }
    }

    /// Hands `event` to every open socket (none open: dropped, nobody is waiting for it).
    pub fn publish(&self, event: Event) {
        let _ = self.tx.send(Arc::new(event));
    }

    /// A new socket's receiver: it sees every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// A slot for one more socket, or `None` when `ws.max_connections` are open.
    pub fn admit(&self) -> Option<OwnedSemaphorePermit> {
        self.slots.clone().try_acquire_owned().ok()
    }

    /// Cancelled when the server shuts down: every socket closes with 1001.
    pub fn closing(&self) -> &CancellationToken {
        &self.closing
    }

    pub fn close(&self) {
        self.closing.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::broadcast::error::TryRecvError;

    #[test]
    fn a_receiver_that_falls_behind_learns_it_and_others_are_unaffected() {
        let hub = Hub::new(&WsConfig {
            buffer: 16,
            ..WsConfig::default()
        });
        let mut slow = hub.subscribe();
        let mut fast = hub.subscribe();
        for i in 0..20 {
            hub.publish(Event::Resync(i.to_string()));
            assert_eq!(*fast.try_recv().unwrap(), Event::Resync(i.to_string()));
        }
        assert_eq!(slow.try_recv().unwrap_err(), TryRecvError::Lagged(4));
    }

    #[test]
    fn sockets_beyond_the_limit_are_not_admitted_until_one_closes() {
        let hub = Hub::new(&WsConfig {
            max_connections: 2,
            ..WsConfig::default()
        });
        let a = hub.admit().unwrap();
        let _b = hub.admit().unwrap();
        assert!(hub.admit().is_none());
        drop(a);
        assert!(hub.admit().is_some());
    }
}
