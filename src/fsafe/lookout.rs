//! Calls that can hang for as long as the watched job likes, run where a
//! hang costs a bounded wait and nothing else.
//!
//! Looking at a name the job made (a rename onto a watched name, the home
//! directories found at start) or at a process's files in /proc can block
//! in the kernel without limit: a FUSE server the job runs answers a lookup
//! or a getattr never, an NFS server goes away, a read of
//! /proc/<pid>/environ waits for that process's memory-map lock, which the
//! process can keep held (a page fault on its own FUSE mapping). On the
//! processing thread that would stop every event of every process; at start
//! it would keep bee-trace from ever becoming ready.
//!
//! Such a call is handed to a worker thread and waited for at most a
//! timeout. A call that does not return by then is given up: its result is
//! dropped, its worker is abandoned (it exits once the kernel lets the call
//! go) and the next call gets a new one. At most `ABANDONED_MAX` workers are
//! left stuck at once; past that, calls are refused at once, so a job that
//! hangs many of them costs bee-trace a few threads and at most one
//! timeout per abandoned worker, never a stalled stream. Every call given
//! up is counted and said in a warning naming what it was for. A worker
//! holds only `privs::LOOK_MASK`, from its first instruction.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Workers left stuck in the kernel at once, at most.
const ABANDONED_MAX: usize = 8;

type Job = Box<dyn FnOnce() + Send>;

/// The worker calls go to: its queue, and its thread to join when retired.
struct Worker {
    tx: mpsc::Sender<Job>,
    thread: std::thread::JoinHandle<()>,
}

/// Why a call gave no result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stalled {
    /// It did not return within the timeout.
    TimedOut,
    /// Too many earlier calls are still stuck: it was not made.
    Refused,
}

impl std::fmt::Display for Stalled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stalled::TimedOut => f.write_str("did not return in time"),
            Stalled::Refused => f.write_str("not made: earlier calls are still stuck"),
        }
    }
}

pub struct Lookout {
    name: &'static str,
    worker: Mutex<Option<Worker>>,
    /// Abandoned workers not yet out of their call.
    stuck: Arc<AtomicUsize>,
    given_up: AtomicU64,
}

impl Lookout {
    pub fn new(name: &'static str) -> Lookout {
        Lookout {
            name,
            worker: Mutex::new(None),
            stuck: Arc::new(AtomicUsize::new(0)),
            given_up: AtomicU64::new(0),
        }
    }

    /// Runs `f` on the worker and waits at most `timeout` for its result.
    /// `what` names the call in the warning when it is given up.
    pub fn run<T: Send + 'static>(
        &self,
        what: &dyn std::fmt::Display,
        timeout: Duration,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Stalled> {
        let mut worker = self.worker.lock().unwrap_or_else(|p| p.into_inner());
        if worker.is_none() && self.stuck.load(Ordering::SeqCst) >= ABANDONED_MAX {
            return Err(self.give_up(what, Stalled::Refused));
        }
        let tx = match worker.as_ref() {
            Some(w) => w.tx.clone(),
            None => match self.spawn() {
                Some(w) => worker.insert(w).tx.clone(),
                None => return Err(self.give_up(what, Stalled::Refused)),
            },
        };
        let (done, result) = mpsc::sync_channel(1);
        let job: Job = Box::new(move || {
            let _ = done.send(f());
        });
        if tx.send(job).is_err() {
            // The worker died (a panic in an earlier call): a new one next time.
            *worker = None;
            return Err(self.give_up(what, Stalled::Refused));
        }
        match result.recv_timeout(timeout) {
            Ok(v) => Ok(v),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                // Dropping the sender lets the worker exit after the call.
                *worker = None;
                self.stuck.fetch_add(1, Ordering::SeqCst);
                Err(self.give_up(what, Stalled::TimedOut))
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                *worker = None;
                Err(self.give_up(what, Stalled::Refused))
            }
        }
    }

    /// Lets the idle worker go and waits until its thread has ended, so
    /// that the process has no thread of the lookout's but those stuck in
    /// the kernel (which `stuck_now` counts). The next call makes a new
    /// one. Before a fork: the watchdog is forked only while bee-trace has a
    /// single thread.
    pub fn retire(&self) {
        let mut worker = self.worker.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(w) = worker.take() {
            drop(w.tx);
            // Idle: no call is running while the lock is held, so the
            // thread leaves its loop at once.
            let _ = w.thread.join();
        }
    }

    /// Workers abandoned in a call that has not returned.
    pub fn stuck_now(&self) -> usize {
        self.stuck.load(Ordering::SeqCst)
    }

    /// Calls given up so far.
    pub fn given_up(&self) -> u64 {
        self.given_up.load(Ordering::SeqCst)
    }

    fn give_up(&self, what: &dyn std::fmt::Display, why: Stalled) -> Stalled {
        let n = self.given_up.fetch_add(1, Ordering::SeqCst) + 1;
        // Every one until a few, then every hundredth: a job hanging calls on
        // purpose must not flood the log either.
        if n <= 8 || n.is_multiple_of(100) {
            log::warn!(
                "{}: {what}: {why} (a file system or process that does not answer; {n} given up so far)",
                self.name
            );
        }
        why
    }

    fn spawn(&self) -> Option<Worker> {
        let (tx, rx) = mpsc::channel::<Job>();
        let stuck = Arc::clone(&self.stuck);
        let thread = std::thread::Builder::new()
            .name("bee-trace-lookout".into())
            .spawn(move || {
                // Capabilities are per thread: this one keeps only what a
                // look needs, whenever it was made (before the drop after
                // attach, too) and however long it stays stuck.
                if let Err(e) = crate::privs::drop_thread_to(crate::privs::LOOK_MASK, true) {
                    log::warn!("a lookout worker could not drop its capabilities: {e}");
                    return;
                }
                while let Ok(job) = rx.recv() {
                    job();
                }
                // Only an abandoned worker's sender is dropped while bee-trace
                // runs; at exit the count no longer matters.
                let _ =
                    stuck.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
            })
            .map_err(|e| log::warn!("{}: no worker thread: {e}", self.name))
            .ok()?;
        Some(Worker { tx, thread })
    }
}

/// How long a look at a name or a /proc file may take while events flow.
pub const WHILE_RUNNING: Duration = Duration::from_millis(250);
/// How long at start or reload, where nothing waits behind it but readiness.
pub const AT_START: Duration = Duration::from_secs(2);

/// The lookout of every such call bee-trace makes.
pub fn shared() -> &'static Lookout {
    static L: OnceLock<Lookout> = OnceLock::new();
    L.get_or_init(|| Lookout::new("bee-trace gave up a call"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A call that blocks until the test lets it go (dropping `gate`'s sender).
    fn blocking(gate: &Arc<Mutex<mpsc::Receiver<()>>>) -> impl FnOnce() -> u32 + Send + 'static {
        let gate = Arc::clone(gate);
        move || {
            let _ = gate.lock().unwrap().recv();
            1
        }
    }

    #[test]
    fn a_call_that_returns_gives_its_result() {
        let l = Lookout::new("test");
        assert_eq!(l.run(&"quick", Duration::from_secs(10), || 7), Ok(7));
        assert_eq!(l.run(&"again", Duration::from_secs(10), || 8), Ok(8));
        assert_eq!(l.given_up(), 0);
    }

    #[test]
    fn a_retired_worker_is_gone_and_the_next_call_makes_another() {
        let l = Lookout::new("test");
        assert_eq!(l.run(&"first", Duration::from_secs(10), || 1), Ok(1));
        l.retire();
        assert!(l.worker.lock().unwrap().is_none());
        assert_eq!(l.run(&"after", Duration::from_secs(10), || 2), Ok(2));
        assert_eq!(l.stuck_now(), 0);
    }

    #[test]
    fn a_stuck_call_is_given_up_and_the_next_gets_a_new_worker() {
        let l = Lookout::new("test");
        let (release, gate) = mpsc::channel::<()>();
        let gate = Arc::new(Mutex::new(gate));
        assert_eq!(
            l.run(&"stuck", Duration::from_millis(20), blocking(&gate)),
            Err(Stalled::TimedOut)
        );
        // The stuck worker still holds the gate; a new one answers.
        assert_eq!(l.run(&"quick", Duration::from_secs(10), || 2), Ok(2));
        assert_eq!(l.given_up(), 1);
        drop(release);
    }

    #[test]
    fn past_the_stuck_limit_calls_are_refused_at_once_until_one_comes_back() {
        let l = Lookout::new("test");
        let (release, gate) = mpsc::channel::<()>();
        let gate = Arc::new(Mutex::new(gate));
        for _ in 0..ABANDONED_MAX {
            assert_eq!(
                l.run(&"stuck", Duration::from_millis(20), blocking(&gate)),
                Err(Stalled::TimedOut)
            );
        }
        assert_eq!(
            l.run(&"refused", Duration::from_secs(10), || 3),
            Err(Stalled::Refused)
        );
        // Let them all out: the abandoned workers exit and are no longer
        // counted, and calls are made again.
        drop(release);
        let mut answered = None;
        for _ in 0..1000 {
            if l.stuck.load(Ordering::SeqCst) == 0 {
                answered = Some(l.run(&"after", Duration::from_secs(10), || 4));
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(answered, Some(Ok(4)));
    }
}
