//! The flow rows: one JSON request per iteration at 30k/s, then a 3-step flow at 10k
//! iterations/s (30k requests/s) without and with a JSONPath extraction in each of the first
//! two steps, whose ids the next step's path uses. The last column of the extraction row is
//! what one extraction costs (CPU µs per step beyond the same flow without it).

use crate::measure::{Server, RUN_SECS};
use crate::ours::{total, Ours};

pub fn rows(ours: &Ours, server: &Server) -> Vec<[String; 5]> {
    let url = format!("http://{}", server.addr);
    let head = |rate: u32, in_flight: u32| {
        format!("executor = \"constant-arrival-rate\"\nrate = {rate}\nduration = \"{RUN_SECS}s\"\nmaxVUs = {in_flight}\n")
    };
    let single = format!(
        "{}[[scenarios.s.requests]]\nname = \"get\"\npath = \"/json\"\n",
        head(30_000, 64)
    );
    let step = |n: u32, path: &str, extract: bool| {
        let x = if extract {
            format!("[[scenarios.s.flow.extract]]\nvar = \"id{n}\"\njsonpath = \"$.id\"\n")
        } else {
            String::new()
        };
        format!("[[scenarios.s.flow]]\nname = \"step{n}\"\npath = \"{path}\"\n{x}")
    };
    let plain = format!(
        "{}{}{}{}",
        head(10_000, 200),
        step(1, "/json", false),
        step(2, "/json/a", false),
        step(3, "/json/b", false)
    );
    let extracting = format!(
        "{}{}{}{}",
        head(10_000, 200),
        step(1, "/json", true),
        step(2, "/json/{{id1}}", true),
        step(3, "/json/{{id2}}", false)
    );
    let mut measured = Vec::new();
    for (name, body) in [("single", single), ("flow", plain), ("extract", extracting)] {
        let file = ours.file(name, &url, "", &body);
        let (c, s) = ours.counted(&file, server);
        measured.push((c.rate, c.per_cpu(), total(&s, "dropped_iterations")));
    }
    let one = measured[0].1;
    let per_step_us = (1e6 / measured[2].1 - 1e6 / measured[1].1) * 3.0 / 2.0;
    let labels = [
        "harness, one request per iteration (30k/s, 64 in flight)",
        "harness, 3-step flow (10k iterations/s, 200 in flight)",
        "harness, 3-step flow, JSONPath extraction in 2 steps (10k iterations/s)",
    ];
    labels
        .iter()
        .zip(&measured)
        .enumerate()
        .map(|(i, (label, (rps, per_cpu, dropped)))| {
            let note = match i {
                2 => format!("dropped {dropped:.0}; extraction ≈ {per_step_us:.1} CPU µs per step"),
                _ => format!("dropped {dropped:.0}"),
            };
            [
                label.to_string(),
                format!("{rps:.0}"),
                format!("{per_cpu:.0}"),
                format!("{:.2}×", per_cpu / one),
                note,
            ]
        })
        .collect()
}

pub fn print(rows: &[[String; 5]]) {
    println!("\n## Flows at a fixed arrival rate (30k requests/s offered)\n");
    println!(
        "| load | req/s | requests per generator CPU-second | vs one request | note |\n|---|---:|---:|---:|---|"
    );
    for r in rows {
        println!("| {} | {} | {} | {} | {} |", r[0], r[1], r[2], r[3], r[4]);
    }
}
