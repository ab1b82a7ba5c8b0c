//! The built binary as a child process: `Daemon` stops it with SIGTERM on drop (and waits), so no test leaves a
//! process or a mount behind; `LogLines` follows its stderr line by line.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_cosftpd");

/// How long a test waits for a log line or an exit before it fails (a deadline, not a measurement).
pub const DEADLINE: Duration = Duration::from_secs(60);

pub struct Daemon(pub Child);

impl Daemon {
    pub fn start(args: &[&str]) -> Daemon {
        Self::spawn(Command::new(BIN).args(args))
    }

    pub fn spawn(command: &mut Command) -> Daemon {
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn cosftpd");
        Daemon(child)
    }

    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill takes plain integers; the pid is our own child, not yet reaped.
        unsafe { libc::kill(self.0.id() as i32, signal) };
    }

    /// Waits for the exit (after a signal sent by the test).
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.0.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "cosftpd did not stop within 20 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn terminate(&mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        self.wait_exit()
    }

    pub fn stderr(&mut self) -> String {
        let mut text = String::new();
        if let Some(mut err) = self.0.stderr.take() {
            let _ = err.read_to_string(&mut text);
        }
        text
    }

    /// Waits until the daemon logs `needle` (its readiness line) or dies; the rest of stderr is drained.
    pub fn wait_for_log(&mut self, needle: &str) {
        let mut lines = self.log_lines();
        lines.wait_for(needle);
        lines.drain();
    }

    /// Follows stderr from here on.
    pub fn log_lines(&mut self) -> LogLines {
        let err = self.0.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        LogLines {
            rx,
            seen: String::new(),
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            self.terminate();
        }
    }
}

/// The daemon's stderr as it comes.
pub struct LogLines {
    rx: mpsc::Receiver<String>,
    /// Every line read so far, for failure messages and later checks.
    pub seen: String,
}

impl LogLines {
    /// The next line containing `needle`; fails when the daemon exits first or nothing comes within `DEADLINE`.
    pub fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push_str(&line);
                    self.seen.push('\n');
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    panic!("cosftpd exited before logging {needle:?}:\n{}", self.seen)
                }
                Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                    "cosftpd did not log {needle:?} within {DEADLINE:?}:\n{}",
                    self.seen
                ),
            }
        }
    }

    /// Keeps reading in the background, so the daemon never blocks on a full pipe.
    pub fn drain(self) {
        std::thread::spawn(move || while self.rx.recv().is_ok() {});
    }

    /// Everything until the daemon exits.
    pub fn rest(&mut self) -> &str {
        while let Ok(line) = self.rx.recv_timeout(DEADLINE) {
            self.seen.push_str(&line);
            self.seen.push('\n');
        }
        &self.seen
    }
}
