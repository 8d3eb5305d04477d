//! The load client's webrtc-rs runtime: tokio's, with every viewer socket's receive buffer raised
//! to [`RECEIVE_BUFFER`]. With the default (~200 KB) a viewer whose driver task waited a few
//! milliseconds for a worker lost datagrams in the kernel, so the client's own hiccups counted as
//! the server's loss at 200 viewers.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use webrtc::runtime::{
    AsyncInterval, AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, JoinHandle, Runtime,
    default_runtime,
};

/// Bytes asked for (the kernel caps it at `net.core.rmem_max` and doubles it).
const RECEIVE_BUFFER: usize = 4 << 20;

/// Tokio's runtime with big receive buffers.
pub struct BigReceiveBuffers(Arc<dyn Runtime>);

impl BigReceiveBuffers {
    pub fn shared() -> Arc<dyn Runtime> {
        Arc::new(Self(default_runtime().expect("webrtc-rs built with tokio")))
    }
}

impl fmt::Debug for BigReceiveBuffers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BigReceiveBuffers")
    }
}

type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl Runtime for BigReceiveBuffers {
    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) -> Box<dyn JoinHandle> {
        self.0.spawn(future)
    }

    fn spawn_reactor(
        &self,
        pool: usize,
        future: Pin<Box<dyn Future<Output = ()> + Send>>,
    ) -> Box<dyn JoinHandle> {
        self.0.spawn_reactor(pool, future)
    }

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        socket2::SockRef::from(&socket).set_recv_buffer_size(RECEIVE_BUFFER)?;
        self.0.wrap_udp_socket(socket)
    }

    fn wrap_tcp_listener(
        &self,
        listener: std::net::TcpListener,
    ) -> io::Result<Arc<dyn AsyncTcpListener>> {
        self.0.wrap_tcp_listener(listener)
    }

    fn connect_tcp<'a>(
        &'a self,
        remote: SocketAddr,
    ) -> Boxed<'a, io::Result<Arc<dyn AsyncTcpStream>>> {
        self.0.connect_tcp(remote)
    }

    fn resolve_host<'a>(&'a self, host: &'a str) -> Boxed<'a, io::Result<Vec<SocketAddr>>> {
        self.0.resolve_host(host)
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        self.0.sleep(duration)
    }

    fn interval(&self, period: Duration) -> Box<dyn AsyncInterval> {
        self.0.interval(period)
    }

    fn block_on(&self, future: Pin<Box<dyn Future<Output = ()> + '_>>) {
        self.0.block_on(future)
    }
}
