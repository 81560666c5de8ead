//! A TCP proxy for fault tests: sits between the code under test and a server (Postgres),
//! and can cut every connection and refuse new ones (the server "goes away") and then
//! restore service, without touching the real server that other tests share.
//!
//! ```ignore
//! let proxy = TcpProxy::start("127.0.0.1:5432");
//! let url = format!("postgres://root@127.0.0.1:{}/db", proxy.port());
//! proxy.cut();      // live connections reset, new ones closed at once
//! proxy.restore();  // forwarding again
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct TcpProxy {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    generation: watch::Sender<u64>,
    accepted: Arc<AtomicUsize>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TcpProxy {
    /// Forwards a fresh local port to `target` (host:port).
    pub fn start(target: &str) -> TcpProxy {
        let target = target.to_string();
        let up = Arc::new(AtomicBool::new(true));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (generation, gen_rx) = watch::channel(0u64);
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (up2, accepted2) = (up.clone(), accepted.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("proxy runtime");
            rt.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                let accept = async {
                    loop {
                        let Ok((client, _)) = listener.accept().await else {
                            continue;
                        };
                        if !up2.load(Ordering::SeqCst) {
                            drop(client);
                            continue;
                        }
                        accepted2.fetch_add(1, Ordering::SeqCst);
                        let target = target.clone();
                        let mut gen_rx = gen_rx.clone();
                        let born = *gen_rx.borrow_and_update();
                        tokio::spawn(async move {
                            let Ok(server) = TcpStream::connect(&target).await else {
                                return;
                            };
                            let _ = client.set_nodelay(true);
                            let _ = server.set_nodelay(true);
                            let (mut c, mut s) = (client, server);
                            tokio::select! {
                                _ = tokio::io::copy_bidirectional(&mut c, &mut s) => {}
                                _ = async {
                                    while gen_rx.changed().await.is_ok() {
                                        if *gen_rx.borrow() != born {
                                            break;
                                        }
                                    }
                                } => {
                                    // Both ends dropped here: the connection is gone.
                                }
                            }
                        });
                    }
                };
                tokio::select! {
                    _ = accept => {}
                    _ = stop_rx => {}
                }
            });
        });
        let addr = addr_rx.recv().expect("proxy address");
        TcpProxy {
            addr,
            up,
            generation,
            accepted,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Connections forwarded so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Every live connection is reset and new ones are closed at once.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    /// Forwarding again.
    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.cut();
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
