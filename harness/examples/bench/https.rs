//! The HTTPS rows: a TLS trivial server (certificate from a CA made here), then oha, k6 and our
//! arrival-rate executor over HTTP/1.1 and HTTP/2, each with `conns` requests in flight.

use std::path::Path;

use crate::measure::{counted, Server};
use crate::ours::Ours;
use crate::peers::Peers;

/// TLS server files written to `dir`: (CA, certificate, key).
fn certificates(dir: &Path) -> [std::path::PathBuf; 3] {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let files = [
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    ];
    std::fs::write(&files[0], ca_pem).unwrap();
    std::fs::write(&files[1], cert.pem()).unwrap();
    std::fs::write(&files[2], key.serialize_pem()).unwrap();
    files
}

pub fn rows(ours: &Ours, peers: &Peers, server_bin: &str, conns: u32) -> Vec<[String; 5]> {
    let [ca_file, cert_file, key_file] = certificates(&ours.dir);
    let tls_args = [
        "127.0.0.1:0".to_owned(),
        "--tls".into(),
        cert_file.display().to_string(),
        key_file.display().to_string(),
    ];
    let server = Server::start(server_bin, &tls_args);
    let url = format!("https://{}/", server.addr);
    let mut rows: Vec<[String; 5]> = Vec::new();
    let mut oha_per_cpu = [0.0f64; 2];
    let protocols = ["HTTP/1.1", "HTTP/2"];
    for (i, proto) in protocols.iter().enumerate() {
        let mut a: Vec<String> = match i {
            0 => vec!["-c".into(), conns.to_string()],
            // One connection, `conns` streams on it (oha runs c × p workers).
            _ => vec![
                "--http2".into(),
                "-c".into(),
                "1".into(),
                "-p".into(),
                conns.to_string(),
            ],
        };
        a.push("--insecure".into());
        let c = counted(peers.oha(&url, &a), &server);
        oha_per_cpu[i] = c.per_cpu();
        rows.push(row("oha", proto, c.rate, c.per_cpu(), 1.0));
    }
    for (i, proto) in protocols.iter().enumerate() {
        let mut cmd = peers.k6_for(
            &ours.dir,
            &format!("k6-tls-{i}"),
            &url,
            conns,
            0.0,
            crate::measure::RUN_SECS,
            "insecureSkipTLSVerify: true, ",
        );
        if i == 0 {
            // Go's switch for HTTP/1.1 only; k6 negotiates h2 by ALPN otherwise.
            cmd.env("GODEBUG", "http2client=0");
        }
        let c = counted(cmd, &server);
        rows.push(row(
            "k6 (VUs)",
            proto,
            c.rate,
            c.per_cpu(),
            c.per_cpu() / oha_per_cpu[i],
        ));
    }
    for (i, version) in ["1.1", "2"].iter().enumerate() {
        let target = format!(
            "http_version = \"{version}\"\ntls = {{ ca_file = \"{}\" }}",
            ca_file.display()
        );
        let file = ours.arrival_with(
            &format!("tls{i}"),
            &url,
            &target,
            200_000,
            crate::measure::RUN_SECS,
            Some(conns),
        );
        let (c, s) = ours.counted(&file, &server);
        let name = format!(
            "harness arrival-rate ({conns} in flight; seen {})",
            s["http"]["protocols"]
        );
        rows.push(row(
            &name,
            protocols[i],
            c.rate,
            c.per_cpu(),
            c.per_cpu() / oha_per_cpu[i],
        ));
    }
    rows
}

fn row(who: &str, proto: &str, rate: f64, per_cpu: f64, vs_oha: f64) -> [String; 5] {
    [
        who.into(),
        proto.into(),
        format!("{rate:.0}"),
        format!("{per_cpu:.0}"),
        format!("{vs_oha:.2}"),
    ]
}

pub fn print(rows: &[[String; 5]], conns: u32) {
    println!("\n## HTTPS on the same trivial endpoint (TLS 1.3, {conns} concurrent)\n");
    println!(
        "| generator | protocol | req/s | requests per generator CPU-second | vs oha, same protocol |\n|---|---|---:|---:|---:|"
    );
    for r in rows {
        println!("| {} | {} | {} | {} | {} |", r[0], r[1], r[2], r[3], r[4]);
    }
}
