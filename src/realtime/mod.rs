//! Socket.IO, served by socketioxide inside poem's server.
//!
//! poem's tower adapter handles long-polling, but hides hyper's upgrade handle from the
//! inner service, so the WebSocket transport would answer 101 and then go silent. This
//! endpoint therefore answers WebSocket upgrades itself and hands the upgraded stream to
//! socketioxide's stream service.

mod bridge;

pub use bridge::SocketIoEndpoint;

use socketioxide::extract::SocketRef;
use socketioxide::SocketIo;

/// Builds the Socket.IO server and its poem endpoint.
pub fn build() -> (SocketIoEndpoint, SocketIo) {
    let (svc, io) = SocketIo::builder().build_with_inner_svc(bridge::NotFound);
    io.ns("/", async |_socket: SocketRef| {});
    (SocketIoEndpoint::new(svc), io)
}
