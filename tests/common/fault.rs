//! A TCP proxy in front of a real backend (Redis, RabbitMQ) whose link the test can cut:
//! `refuse` resets every open and new connection (a crashed or restarting server),
//! `blackhole` keeps connections open but lets nothing through (a network partition,
//! where only timeouts notice), `restore` lets traffic flow again.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Up,
    Refused,
    Blackholed,
}

pub struct FaultProxy {
    pub addr: SocketAddr,
    link: watch::Sender<Link>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on a free local port and forwards to `target` (host:port).
    pub async fn start(target: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind fault proxy");
        let addr = listener.local_addr().unwrap();
        let (link, watch_link) = watch::channel(Link::Up);
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let target = target.to_string();
        let tracked = connections.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else { continue };
                if *watch_link.borrow() == Link::Refused {
                    reset(client);
                    continue;
                }
                let (target, link) = (target.clone(), watch_link.clone());
                let task = tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&target).await else {
                        reset(client);
                        return;
                    };
                    splice(client, server, link).await;
                });
                let mut all = tracked.lock().unwrap();
                all.retain(|t| !t.is_finished());
                all.push(task);
            }
        });
        Self { addr, link, connections, accept }
    }

    /// `redis://127.0.0.1:<port>`-style URL pieces: the proxy's host:port.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    pub fn refuse(&self) {
        self.link.send_replace(Link::Refused);
        for task in self.connections.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    pub fn blackhole(&self) {
        self.link.send_replace(Link::Blackholed);
    }

    pub fn restore(&self) {
        self.link.send_replace(Link::Up);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
        for task in self.connections.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

/// Closes with a TCP reset, as a port nobody listens on would answer.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// Copies both ways while the link is up; while blackholed, holds bytes back (reads
/// nothing, writes nothing) until it is restored.
async fn splice(client: TcpStream, server: TcpStream, link: watch::Receiver<Link>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let up = {
        let link = link.clone();
        tokio::spawn(async move { pump(&mut client_read, &mut server_write, link).await })
    };
    let down = tokio::spawn(async move { pump(&mut server_read, &mut client_write, link).await });
    let _ = tokio::join!(up, down);
}

async fn pump<R, W>(from: &mut R, to: &mut W, mut link: watch::Receiver<Link>)
where
    R: AsyncReadExt + Unpin,
    W: AsyncWriteExt + Unpin,
{
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        // Wait out a blackhole before reading, so nothing moves while it lasts.
        loop {
            let state = *link.borrow_and_update();
            match state {
                Link::Up => break,
                Link::Refused => return,
                Link::Blackholed => {
                    if link.changed().await.is_err() {
                        return;
                    }
                }
            }
        }
        let n = tokio::select! {
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            // A change while waiting for bytes: check the link again first.
            changed = link.changed() => {
                if changed.is_err() { return; }
                continue;
            }
        };
        // Bytes read just before a blackhole began are held until it ends.
        while *link.borrow() == Link::Blackholed {
            if link.changed().await.is_err() {
                return;
            }
        }
        if *link.borrow() == Link::Refused || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
