//! `make bench`: the harness beside wrk, oha, k6 and a standalone goose on one trivial endpoint,
//! in one run, printed as tables of ratios. The server is pinned to core 0 and every generator
//! to core 1; every generator's requests are counted at the server over the same timed window
//! (see `measure.rs`), so no row trusts a tool's own clock or count. Absolute figures move
//! 50% or more between runs on a shared machine; the ratios inside one run are the result.
//!
//! Usage: bench HARNESS_BIN TRIVIAL_SERVER_BIN  (the Makefile passes release builds; the
//! goose row runs `goose_bench` from beside this binary).
//! BENCH_ONLY=max|sweep|vus|flows|https|open runs one section.

mod flows;
mod https;
mod live;
mod measure;
mod open_model;
mod ours;
mod peers;
mod throughput;
mod vus;

use measure::Server;
use ours::Ours;
use peers::Peers;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (harness, server_bin) = (
        args.get(1).expect("HARNESS_BIN").clone(),
        args.get(2).expect("SERVER_BIN").clone(),
    );
    let dir = std::env::temp_dir().join(format!("harness-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let only = std::env::var("BENCH_ONLY").ok();
    let wants = |s: &str| only.as_deref().is_none_or(|o| o == s);
    let ours = Ours {
        bin: harness,
        dir: dir.clone(),
    };
    let peers = Peers::find();
    let server = Server::start(&server_bin, &[]);
    eprintln!(
        "trivial server at {} (core 0); generators on core 1",
        server.addr
    );

    if wants("max") || wants("sweep") {
        let max = throughput::max_rows(&ours, &peers, &server);
        throughput::print_max(&max);
        if wants("sweep") {
            let sweep = throughput::sweep(&ours, &peers, &server);
            throughput::print_sweep(&sweep, &max);
        }
    }
    if wants("vus") {
        vus::print(&vus::rows(&ours, &peers, &server));
    }
    if wants("flows") {
        flows::print(&flows::rows(&ours, &server));
    }
    if wants("https") {
        https::print(
            &https::rows(&ours, &peers, &server_bin, throughput::CONNS),
            throughput::CONNS,
        );
    }
    if wants("open") {
        let accuracy = open_model::accuracy(&ours, &server);
        let stall = open_model::stall(&ours, &peers, &server);
        let rss = open_model::rss(&ours, &server);
        open_model::print(&accuracy, stall, &rss);
    }
    if wants("live") {
        let (off, on, pushed) = live::rows(&ours, &server);
        live::print(&off, &on, pushed);
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
