//! The "max" table (every generator at its CPU limit on one core, requests counted at the
//! server) and the arrival-rate executor's cost per request from 1k/s to its maximum.
use crate::measure::{counted, Counted, Server, RUN_SECS};
use crate::ours::{total, Ours};
use crate::peers::Peers;

/// Connections (wrk, oha), VUs (k6, goose, harness VUs) in the max rows.
pub const CONNS: u32 = 50;

pub struct Row {
    pub name: String,
    pub c: Counted,
    pub note: String,
}

/// wrk, oha, k6, goose, harness VUs, harness arrival-rate with 50 in flight and with its
/// default bound (the max row of the sweep), in that order.
pub fn max_rows(ours: &Ours, peers: &Peers, server: &Server) -> Vec<Row> {
    let url = format!("http://{}/", server.addr);
    let row = |name: &str, c: Counted, note: String| Row {
        name: name.into(),
        c,
        note,
    };
    let mut rows = vec![
        row(
            "wrk (-t1 -c50)",
            counted(peers.wrk(&url, CONNS), server),
            String::new(),
        ),
        row(
            "oha (-c 50)",
            counted(peers.oha(&url, &["-c".into(), CONNS.to_string()]), server),
            String::new(),
        ),
        row(
            "k6 1.1 (50 VUs)",
            counted(peers.k6(&ours.dir, "k6-max", &url, CONNS, 0.0), server),
            String::new(),
        ),
        row(
            "goose 0.19 standalone (50 users)",
            counted(peers.goose(&url, CONNS), server),
            String::new(),
        ),
    ];
    let file = ours.vus("vus-max", &url, CONNS, "0s", RUN_SECS);
    let (c, _) = ours.counted(&file, server);
    let (k6, goose) = (rows[2].c.rate, rows[3].c.rate);
    let note = format!(
        "{:.2}× goose, {:.2}× k6 (req/s)",
        c.rate / goose,
        c.rate / k6
    );
    rows.push(row("harness constant-vus (50 VUs)", c, note));
    // As many in flight as wrk and oha have connections.
    let file = ours.arrival("ar-max-50", &url, 200_000, RUN_SECS, Some(CONNS));
    let (c, s) = ours.counted(&file, server);
    let note = format!(
        "offered 200k/s; dropped {:.0}",
        total(&s, "dropped_iterations")
    );
    rows.push(row("harness arrival-rate, 50 in flight", c, note));
    let file = ours.arrival("ar-max", &url, 200_000, RUN_SECS, None);
    let (c, s) = ours.counted(&file, server);
    let note = format!(
        "offered 200k/s, default bound (1000 in flight); dropped {:.0}",
        total(&s, "dropped_iterations")
    );
    rows.push(row("harness arrival-rate (max)", c, note));
    rows
}

pub fn print_max(rows: &[Row]) {
    let (wrk, oha) = (&rows[0].c, &rows[1].c);
    println!("\n## Every generator at its limit on one core (trivial endpoint; requests counted at the server over the same {} s window)\n", crate::measure::WINDOW.as_secs());
    println!(
        "| generator | req/s | × wrk | × oha | requests per CPU-second | × wrk | × oha | note |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---|");
    for r in rows {
        let short = if r.c.short {
            " (exited inside the window)"
        } else {
            ""
        };
        println!(
            "| {} | {:.0} | {:.2} | {:.2} | {:.0} | {:.2} | {:.2} | {}{short} |",
            r.name,
            r.c.rate,
            r.c.rate / wrk.rate,
            r.c.rate / oha.rate,
            r.c.per_cpu(),
            r.c.per_cpu() / wrk.per_cpu(),
            r.c.per_cpu() / oha.per_cpu(),
            r.note
        );
    }
}

/// One offered rate: what each generator sent and its CPU per request.
pub struct SweepRow {
    pub rate: u32,
    /// The harness: counted run, dropped arrivals, p50 ms from its summary.
    pub ours: Counted,
    pub dropped: f64,
    pub p50_ms: f64,
    /// oha `-q rate -c 50` and k6's constant-arrival-rate, where they reach the rate.
    pub oha: Counted,
    pub k6: Option<Counted>,
}

/// The arrival-rate executor at fixed offered rates with its default bound, and oha and k6 at
/// the same rates: what each sent, and CPU per request, each against its own max row.
pub fn sweep(ours: &Ours, peers: &Peers, server: &Server) -> Vec<SweepRow> {
    let url = format!("http://{}/", server.addr);
    [1_000, 5_000, 20_000, 50_000]
        .into_iter()
        .map(|rate| {
            let file = ours.arrival(&format!("ar-{rate}"), &url, rate, RUN_SECS, None);
            let (c, s) = ours.counted(&file, server);
            let q = [
                "-q".into(),
                rate.to_string(),
                "-c".into(),
                CONNS.to_string(),
            ];
            let oha = counted(peers.oha(&url, &q), server);
            // k6 tops out near 10k/s on one core (the max table).
            let k6 =
                (rate <= 5_000).then(|| counted(peers.k6_arrival(&ours.dir, &url, rate), server));
            SweepRow {
                rate,
                ours: c,
                dropped: total(&s, "dropped_iterations"),
                p50_ms: s["requests"][0]["p50_ms"].as_f64().unwrap_or(f64::NAN),
                oha,
                k6,
            }
        })
        .collect()
}

pub fn print_sweep(rows: &[SweepRow], max: &[Row]) {
    let (oha_max, k6_max, ours_max) = (&max[1].c, &max[2].c, &max.last().unwrap().c);
    println!("\n## Arrival rate: CPU per request from 1k/s to the maximum, each generator against its own max row\n");
    println!("| offered | harness sent/s | dropped | p50 ms | CPU µs per request | vs its max | oha -q sent/s | oha µs | vs its max | k6 sent/s | k6 µs | vs its max |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let k6 =
            r.k6.as_ref()
                .map(|k| {
                    format!(
                        "{:.0} | {:.1} | {:.2}",
                        k.rate,
                        k.cpu_us(),
                        k.cpu_us() / k6_max.cpu_us()
                    )
                })
                .unwrap_or_else(|| "— | — | —".into());
        println!(
            "| {}/s | {:.0} | {:.0} | {:.2} | {:.1} | {:.2} | {:.0} | {:.1} | {:.2} | {k6} |",
            r.rate,
            r.ours.rate,
            r.dropped,
            r.p50_ms,
            r.ours.cpu_us(),
            r.ours.cpu_us() / ours_max.cpu_us(),
            r.oha.rate,
            r.oha.cpu_us(),
            r.oha.cpu_us() / oha_max.cpu_us(),
        );
    }
    println!(
        "| max | {:.0} | (offered 200k/s) | | {:.1} | 1.00 | {:.0} | {:.1} | 1.00 | {:.0} | {:.1} | 1.00 |",
        ours_max.rate,
        ours_max.cpu_us(),
        oha_max.rate,
        oha_max.cpu_us(),
        k6_max.rate,
        k6_max.cpu_us()
    );
}
