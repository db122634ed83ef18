//! `dependency-stub`: the order's external dependency for the local stack. Answers every
//! request `--status` after `--delay-ms`; `GET /_stub/stats` counts them.

use std::net::SocketAddr;
use std::time::Duration;

use axum::http::StatusCode;
use clap::Parser;
use target_app::stub::{self, StubConfig};

#[derive(Debug, Parser)]
#[command(
    name = "dependency-stub",
    version,
    about = "A stand-in for target-app's external dependency"
)]
struct Args {
    /// Address to listen on; port 0 picks a free one (printed on start).
    #[arg(long, env = "DEPENDENCY_STUB_LISTEN", default_value = "127.0.0.1:8081")]
    listen: SocketAddr,
    /// How long each answer takes. 240 ms is the incident's hold: see target-app's
    /// `--external-call-ms`, which this replaces in the stack.
    #[arg(long, env = "DEPENDENCY_STUB_DELAY_MS", default_value_t = 240)]
    delay_ms: u64,
    /// Status of every answer (e.g. 500 to make every order fail with 502).
    #[arg(long, env = "DEPENDENCY_STUB_STATUS", default_value_t = 200,
          value_parser = clap::value_parser!(u16).range(200..=599))]
    status: u16,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = StubConfig {
        delay: Duration::from_millis(args.delay_ms),
        status: StatusCode::from_u16(args.status)?,
    };
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    // The one line a supervisor reads to learn the port when started on :0.
    println!("listening on http://{}", listener.local_addr()?);
    stub::run(listener, config, target_app::signal::terminated()).await?;
    Ok(())
}
