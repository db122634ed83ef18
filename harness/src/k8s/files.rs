//! Every file a scenario names — the scenario itself, its `[data.NAME]` files, its
//! `[[threshold_plugins]]` and `[[faults]]` plugins, its Prometheus rule files and its
//! `[target.tls]` files — laid out as they will be mounted: each at its path relative to the
//! common ancestor directory of them all, so the scenario's relative paths (`../plugins/…`
//! included) name the same files in the container. A path written absolute is taken to be in
//! the image and is not packed. The default `k6-thresholds` plugin, when the harness here
//! would use a built one, goes to [`SHIPPED`] and the pods' `HARNESS_PLUGIN_DIR` points there.

use std::path::{Component, Path, PathBuf};

use super::K8sError;
use crate::scenario::Scenario;
use crate::verdict;

/// Directory (relative to the mount) of the default plugins the ConfigMap carries.
pub(super) const SHIPPED: &str = "shipped-plugins";
/// Kubernetes' limit on a ConfigMap's (and a Secret's) data.
const LIMIT: usize = 1024 * 1024;

/// One file to mount.
pub(super) struct File {
    /// The path the harness here read it from, for messages.
    pub shown: PathBuf,
    /// Relative to the mount, '/'-separated (a ConfigMap item's `path`).
    pub rel: String,
    /// The ConfigMap (or Secret) key: `rel` with every character keys may not hold as '_'.
    pub key: String,
    pub bytes: Vec<u8>,
    /// A private key: in the Secret, not the ConfigMap.
    pub secret: bool,
}

impl File {
    /// UTF-8 text a YAML string holds as is (no control characters but tab and line ends);
    /// anything else (Wasm) goes base64 under `binaryData`.
    pub fn text(&self) -> Option<&str> {
        let wasm = self.rel.ends_with(".wasm");
        let text = std::str::from_utf8(&self.bytes).ok()?;
        let plain = !text
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r'));
        (plain && !wasm).then_some(text)
    }
}

pub(super) struct Layout {
    pub files: Vec<File>,
    /// The scenario's path relative to the mount.
    pub scenario: String,
    /// `HARNESS_PLUGIN_DIR` relative to the mount when the ConfigMap carries `k6-thresholds`.
    pub plugin_dir: Option<String>,
}

/// The files of `s` (loaded from `path`), read and laid out; refused over 1 MiB.
pub(super) fn collect(s: &Scenario, path: &Path) -> Result<Layout, K8sError> {
    let named = named(s, path);
    let mut abs: Vec<(PathBuf, PathBuf, bool)> = Vec::new();
    for (shown, secret) in named {
        let full = normalize(&shown)?;
        if !abs.iter().any(|(a, _, _)| *a == full) {
            abs.push((full, shown, secret));
        }
    }
    let root = common_dir(abs.iter().map(|(a, _, _)| a.as_path()));
    let mut files = Vec::new();
    for (full, shown, secret) in abs {
        let rel = relative(&full, &root);
        files.push(read(shown, rel, secret)?);
    }
    let scenario = files[0].rel.clone();
    let mut plugin_dir = None;
    let judged_by_k6 = !verdict::defs(s).is_empty();
    if let Some(k6) = judged_by_k6
        .then(|| verdict::locate_shipped("k6-thresholds", path))
        .flatten()
    {
        if let Some(f) = files
            .iter()
            .find(|f| f.rel.starts_with(&format!("{SHIPPED}/")))
        {
            let message = format!("the ConfigMap keeps {SHIPPED}/ for the default plugins");
            return Err(K8sError::Layout {
                path: f.shown.clone(),
                message,
            });
        }
        files.push(read(k6, format!("{SHIPPED}/k6-thresholds.wasm"), false)?);
        plugin_dir = Some(SHIPPED.to_owned());
    }
    assign_keys(&mut files);
    check_size(&files)?;
    Ok(Layout {
        files,
        scenario,
        plugin_dir,
    })
}

/// The scenario first, then each file it names as the harness resolves it, with whether it
/// is a secret; paths written absolute are left out.
fn named(s: &Scenario, path: &Path) -> Vec<(PathBuf, bool)> {
    let mut out = vec![(path.to_owned(), false)];
    let mut add = |written: &Path, resolved: PathBuf, secret: bool| {
        if !written.is_absolute() {
            out.push((resolved, secret));
        }
    };
    for d in s.data.values() {
        add(&d.file, s.dir.join(&d.file), false);
    }
    for p in s.threshold_plugins.iter().chain(&s.faults) {
        let written = p.plugin.get_ref();
        add(written, verdict::resolve(written, path), false);
    }
    if let Some(pa) = &s.prometheus_alerts {
        for f in &pa.rule_files {
            let written = Path::new(f.get_ref());
            add(written, s.dir.join(written), false);
        }
    }
    let tls = &s.target.tls;
    for (f, secret) in [
        (&tls.ca_file, false),
        (&tls.client_cert, false),
        (&tls.client_key, true),
    ] {
        if let Some(f) = f {
            add(f, s.dir.join(f), secret);
        }
    }
    out
}

/// Absolute, with `.` and `..` resolved by name (the container has no symlinks).
fn normalize(p: &Path) -> Result<PathBuf, K8sError> {
    let abs = std::path::absolute(p).map_err(|source| K8sError::Read {
        path: p.to_owned(),
        source,
    })?;
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    Ok(out)
}

/// The deepest directory holding every file.
fn common_dir<'a>(mut files: impl Iterator<Item = &'a Path>) -> PathBuf {
    let first = files.next().expect("the scenario itself");
    let mut root = first.parent().unwrap_or(Path::new("/")).to_owned();
    for f in files {
        while !f.starts_with(&root) {
            if !root.pop() {
                break;
            }
        }
    }
    root
}

fn relative(full: &Path, root: &Path) -> String {
    let rel = full.strip_prefix(root).expect("root holds every file");
    let parts: Vec<_> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect();
    parts.join("/")
}

fn read(shown: PathBuf, rel: String, secret: bool) -> Result<File, K8sError> {
    if rel.starts_with("..") {
        let message = "Kubernetes mounts no path starting with `..`".to_owned();
        return Err(K8sError::Layout {
            path: shown,
            message,
        });
    }
    let bytes = std::fs::read(&shown).map_err(|source| K8sError::Read {
        path: shown.clone(),
        source,
    })?;
    Ok(File {
        shown,
        rel,
        key: String::new(),
        bytes,
        secret,
    })
}

/// Keys match `[-._a-zA-Z0-9]+`, at most 253 characters, never starting with `..`, and are
/// unique, also against the Secret's token key (a `-N` suffix when two paths sanitise alike).
fn assign_keys(files: &mut [File]) {
    let mut taken: Vec<String> = vec![super::objects::TOKEN_KEY.to_owned()];
    for f in files.iter_mut() {
        let mut base: String = f
            .rel
            .chars()
            .map(|c| match c {
                'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '.' | '_' => c,
                _ => '_',
            })
            .collect();
        if base.starts_with('.') {
            base.insert(0, '_');
        }
        if base.len() > 240 {
            base = base[base.len() - 240..].to_owned();
        }
        let mut key = base.clone();
        let mut n = 2;
        while taken.contains(&key) {
            key = format!("{base}-{n}");
            n += 1;
        }
        taken.push(key.clone());
        f.key = key;
    }
}

/// Kubernetes refuses a ConfigMap whose data (keys counted here too) is over 1 MiB.
fn check_size(files: &[File]) -> Result<(), K8sError> {
    let mut packed: Vec<&File> = files.iter().filter(|f| !f.secret).collect();
    let total: usize = packed.iter().map(|f| f.key.len() + f.bytes.len()).sum();
    if total <= LIMIT {
        return Ok(());
    }
    packed.sort_by_key(|f| std::cmp::Reverse(f.bytes.len()));
    let largest: Vec<String> = packed
        .iter()
        .take(3)
        .map(|f| format!("{} ({} bytes)", f.shown.display(), f.bytes.len()))
        .collect();
    Err(K8sError::TooLarge {
        total,
        largest: largest.join(", "),
    })
}

/// Standard base64 with padding (a ConfigMap's `binaryData`, a Secret's `data`): the crate
/// the windows' histograms are encoded with.
pub(super) fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, coded) in cases {
            assert_eq!(base64(plain.as_bytes()), coded);
        }
    }

    #[test]
    fn the_root_is_the_deepest_common_directory() {
        let files = [
            Path::new("/r/scenarios/a.toml"),
            Path::new("/r/scenarios/data/u.csv"),
            Path::new("/r/plugins/build/p.wasm"),
        ];
        let root = common_dir(files.into_iter());
        assert_eq!(root, Path::new("/r"));
        assert_eq!(relative(files[1], &root), "scenarios/data/u.csv");
        let alone = common_dir([Path::new("/r/s/a.toml")].into_iter());
        assert_eq!(alone, Path::new("/r/s"));
    }

    #[test]
    fn keys_are_sanitised_and_unique() {
        let file = |rel: &str| File {
            shown: PathBuf::from(rel),
            rel: rel.into(),
            key: String::new(),
            bytes: Vec::new(),
            secret: false,
        };
        let mut fs = vec![file("a b/c.toml"), file("a_b/c.toml"), file(".hidden/x")];
        assign_keys(&mut fs);
        let keys: Vec<_> = fs.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(keys, ["a_b_c.toml", "a_b_c.toml-2", "_.hidden_x"]);
    }
}
