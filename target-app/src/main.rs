//! `target-app` binary: parse flags, log to stderr, serve until Ctrl-C or SIGTERM.

use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = target_app::Args::parse();
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let config = args.resolve();
    // The one line a supervisor (harness stack) reads to learn the port when started on :0.
    println!("listening on http://{}", listener.local_addr()?);
    target_app::run(listener, config, target_app::signal::terminated()).await?;
    Ok(())
}
