//! The background thread that resolves the domains network rules name, so
//! a host without DNS never stalls the processing thread or start-up.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Receiver;

/// How often the names of network rules are resolved again, and for how long
/// such an answer counts (the system resolver gives no TTL).
const RESOLVE_EVERY: Duration = Duration::from_secs(300);
const RESOLVED_TTL: Duration = Duration::from_secs(600);

/// One answer: (name, address, how long it counts).
pub type Resolved = (String, IpAddr, Duration);

/// The running resolver thread, if any; a reload starts another.
pub struct Resolver {
    rx: Option<Receiver<Resolved>>,
    /// Stops the current thread.
    stop: Arc<AtomicBool>,
}

impl Default for Resolver {
    fn default() -> Resolver {
        Resolver {
            rx: None,
            stop: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl Resolver {
    /// Stops the thread running and, when there are `names`, starts one
    /// that resolves them now and every RESOLVE_EVERY until stopped or
    /// `shutdown`.
    pub fn restart(&mut self, names: Vec<String>, shutdown: Arc<AtomicBool>) {
        self.stop.store(true, Ordering::Relaxed);
        self.rx = None;
        let stop = Arc::new(AtomicBool::new(false));
        self.stop = stop.clone();
        if names.is_empty() {
            return;
        }
        let (tx, rx) = crossbeam_channel::unbounded();
        let spawned = std::thread::Builder::new()
            .name("resolve".into())
            .spawn(move || loop {
                use std::net::ToSocketAddrs;
                for d in &names {
                    match (d.as_str(), 0).to_socket_addrs() {
                        Ok(addrs) => {
                            for a in addrs {
                                if tx.send((d.clone(), a.ip(), RESOLVED_TTL)).is_err() {
                                    return;
                                }
                            }
                        }
                        Err(e) => {
                            log::warn!("cannot resolve {d} (named by the network policy): {e}")
                        }
                    }
                }
                let until = std::time::Instant::now() + RESOLVE_EVERY;
                while std::time::Instant::now() < until {
                    if stop.load(Ordering::Relaxed) || shutdown.load(Ordering::Relaxed) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            });
        match spawned {
            Ok(_) => self.rx = Some(rx),
            Err(e) => log::warn!("cannot start resolving the policy's domains: {e}"),
        }
    }

    /// The answers that came in since the last call.
    pub fn take(&self) -> Vec<Resolved> {
        self.rx
            .as_ref()
            .map_or_else(Vec::new, |rx| rx.try_iter().collect())
    }
}
