//! A measured process of the bench (`bench` or `lwip-endpoint`) and its line protocol: it
//! prints `ready`, `started`, `done BYTES`; the bench writes `go` and ends it by closing its
//! stdin (see `bench/src/main.rs`).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

/// Longest wait for one protocol line (transfers under callgrind are slow).
const LINE_LIMIT: Duration = Duration::from_secs(300);
/// Longest wait for the process to exit once its stdin is closed.
const EXIT_LIMIT: Duration = Duration::from_secs(30);

/// A running process speaking the protocol; killed if dropped before [`Process::finish`].
pub struct Process {
    what: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
}

impl Process {
    /// Starts `cmd` with piped stdin and stdout (stderr inherited).
    pub fn start(mut cmd: Command, what: &str) -> Result<Self> {
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut child = cmd.spawn().with_context(|| format!("start {what}"))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().context("child stdout")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Self {
            what: what.to_owned(),
            child,
            stdin,
            lines,
        })
    }

    /// Waits for the line starting with `word`; what follows it.
    pub fn expect(&mut self, word: &str) -> Result<String> {
        let line = match self.lines.recv_timeout(LINE_LIMIT) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => {
                bail!("{}: no `{word}` within {LINE_LIMIT:?}", self.what)
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = self.child.wait()?;
                bail!("{}: exited ({status}) before `{word}`", self.what)
            }
        };
        match line.strip_prefix(word) {
            Some(rest) => Ok(rest.trim().to_owned()),
            None => bail!("{}: expected `{word}`, got {line:?}", self.what),
        }
    }

    /// Writes one line to the process.
    pub fn say(&mut self, line: &str) -> Result<()> {
        let stdin = self.stdin.as_mut().context("stdin closed")?;
        writeln!(stdin, "{line}")?;
        stdin.flush()?;
        Ok(())
    }

    /// Closes its stdin and waits for a successful exit.
    pub fn finish(mut self) -> Result<()> {
        drop(self.stdin.take());
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    bail!("{}: {status}", self.what);
                }
                return Ok(());
            }
            if start.elapsed() > EXIT_LIMIT {
                return Err(anyhow!("{}: did not exit within {EXIT_LIMIT:?}", self.what));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
