//! The coordinator's protocol: one TCP connection per worker, one JSON object per line.
//! A worker says `hello` with the run's token and its index; the coordinator answers
//! `welcome` (or `refused`), later `start` with the one t0 every worker begins at, `ping`
//! every second and `stop` when the run ends early. A worker sends a `window` every second and
//! `done` after its last one. Either side takes 5 s of silence as the other gone.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use crate::metrics::window::Scalars;

/// Silence after which the other side counts as gone.
pub const SILENCE: Duration = Duration::from_secs(5);

/// Longest line either side accepts (a window of many tag sets stays far below).
const MAX_LINE: usize = 64 << 20;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToCoordinator {
    Hello {
        token: String,
        index: u64,
        workers: u64,
        /// The scenario's name, so a worker of another run is refused by name.
        scenario: String,
    },
    Window(Box<Scalars>),
    Done {
        error: Option<String>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToWorker {
    Welcome,
    Refused {
        reason: String,
    },
    Start {
        /// Unix time in ms when every worker's second 0 begins.
        t0_unix_ms: u64,
        /// Variables `setup` (run once, on the coordinator) set.
        setup_vars: Vec<(String, String)>,
    },
    Ping,
    Stop {
        reason: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("the other side closed the connection")]
    Closed,
    #[error("no word for {0:?}")]
    Silent(Duration),
    #[error("unreadable message: {0}")]
    Garbled(String),
}

/// The reading half: one message per line.
pub struct Reader {
    lines: BufReader<OwnedReadHalf>,
    buf: String,
}

/// The writing half.
pub struct Writer(OwnedWriteHalf);

pub fn split(stream: TcpStream) -> (Reader, Writer) {
    let _ = stream.set_nodelay(true);
    let (r, w) = stream.into_split();
    let reader = Reader {
        lines: BufReader::new(r),
        buf: String::new(),
    };
    (reader, Writer(w))
}

impl Reader {
    /// The next message, waiting at most `within`.
    pub async fn next<T: for<'de> Deserialize<'de>>(
        &mut self,
        within: Duration,
    ) -> Result<T, WireError> {
        self.buf.clear();
        // At most one byte past the bound is read, so a runaway line is refused, not buffered.
        let mut bounded = (&mut self.lines).take(MAX_LINE as u64 + 1);
        let read = tokio::time::timeout(within, bounded.read_line(&mut self.buf)).await;
        match read {
            Err(_) => Err(WireError::Silent(within)),
            Ok(Err(e)) => Err(WireError::Io(e)),
            Ok(Ok(0)) => Err(WireError::Closed),
            Ok(Ok(_)) if self.buf.len() > MAX_LINE => Err(WireError::Garbled("too long".into())),
            Ok(Ok(_)) => serde_json::from_str(self.buf.trim_end())
                .map_err(|e| WireError::Garbled(e.to_string())),
        }
    }
}

impl Writer {
    pub async fn send<T: Serialize>(&mut self, msg: &T) -> Result<(), WireError> {
        let mut line = serde_json::to_vec(msg).map_err(|e| WireError::Garbled(e.to_string()))?;
        line.push(b'\n');
        self.0.write_all(&line).await?;
        Ok(())
    }
}

/// Compares tokens without stopping at the first difference.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

pub fn unix_ms_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The Instant of a unix time in ms (now when it is past).
pub fn instant_of(unix_ms: u64) -> tokio::time::Instant {
    let wait = unix_ms.saturating_sub(unix_ms_now());
    tokio::time::Instant::now() + Duration::from_millis(wait)
}
