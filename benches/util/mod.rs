//! What the benches share: a loopback server on a thread and runtime of
//! its own, so that its work never runs on the thread being timed.

use std::future::Future;
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};

/// Starts a server on a loopback port on its own thread and current-thread
/// runtime: each accepted connection (Nagle off) goes to `handle` in a task
/// of its own. It lives until the bench process exits.
pub fn start_server<F, H>(handle: H) -> SocketAddr
where
    H: Fn(TcpStream) -> F + Send + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("bench-server".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("server runtime");
            rt.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind loopback");
                tx.send(listener.local_addr().expect("local addr"))
                    .expect("report addr");
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(handle(stream));
                }
            });
        })
        .expect("spawn server thread");
    rx.recv().expect("server address")
}
