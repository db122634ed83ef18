//! Request templates: `{{user_id}}` placeholders in paths and bodies, filled per request from
//! the scenario's generators (sequence, uniform range, hot-key skew) or the built-ins
//! `iteration` and `vu`. A placeholder used twice in one request gets the same value.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum GeneratorSpec {
    /// start, start+step, …: one value per use across the whole run.
    Sequence {
        #[serde(default = "one")]
        start: u64,
        #[serde(default = "one")]
        step: u64,
    },
    /// Uniformly random in `min..=max`.
    Uniform { min: u64, max: u64 },
    /// `hot` with probability `share`, otherwise uniform in `min..=max` (the incident's hot
    /// product that every order locks).
    HotKey {
        min: u64,
        max: u64,
        hot: u64,
        share: f64,
    },
}

fn one() -> u64 {
    1
}

/// A generator spec that cannot run, or a live change it cannot take.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GeneratorError {
    #[error("step must be at least 1")]
    ZeroStep,
    #[error("min ({min}) must not exceed max ({max})")]
    MinAboveMax { min: u64, max: u64 },
    #[error("share ({0}) must be between 0 and 1")]
    Share(f64),
    /// A live [`Generators::set_hot_share`] outside 0..1.
    #[error("hot share {0} is outside 0..1")]
    HotShare(f64),
    #[error("generator `{0}` is not a hot-key generator")]
    NotHotKey(String),
    /// `declared` is the comma-separated list of the run's generator names.
    #[error("no generator named `{name}` (declared: {declared})")]
    Unknown { name: String, declared: String },
}

/// A template that does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unclosed `{{{{` in `{0}`")]
    Unclosed(String),
    /// `known` lists the declared generators, or says "none declared".
    #[error(
        "unknown generator `{name}` in template (declared: {known}; built-ins: iteration, vu)"
    )]
    UnknownGenerator { name: String, known: String },
    /// A name that is neither a generator nor a variable set by an earlier step.
    #[error("unknown variable `{name}` in template (known here: {known})")]
    UnknownVariable { name: String, known: String },
    #[error("no data file named `{set}` (declared: {known})")]
    UnknownData { set: String, known: String },
    #[error("data file `{set}` has no column `{column}` (its header: {known})")]
    UnknownColumn {
        set: String,
        column: String,
        known: String,
    },
}

impl GeneratorSpec {
    pub fn validate(&self) -> Result<(), GeneratorError> {
        match *self {
            GeneratorSpec::Sequence { step: 0, .. } => Err(GeneratorError::ZeroStep),
            GeneratorSpec::Uniform { min, max } | GeneratorSpec::HotKey { min, max, .. }
                if min > max =>
            {
                Err(GeneratorError::MinAboveMax { min, max })
            }
            GeneratorSpec::HotKey { share, .. } if !(0.0..=1.0).contains(&share) => {
                Err(GeneratorError::Share(share))
            }
            _ => Ok(()),
        }
    }
}

/// Live generator state for one run.
pub struct Generators {
    names: Vec<String>,
    state: Vec<GenState>,
    /// A sequence's n-th value here is its `segment.nth(n)`-th of the whole run.
    segment: super::Segment,
}

enum GenState {
    Sequence {
        start: u64,
        step: u64,
        taken: AtomicU64,
    },
    Uniform {
        min: u64,
        max: u64,
        rng: Mutex<fastrand::Rng>,
    },
    HotKey {
        min: u64,
        max: u64,
        hot: u64,
        share: AtomicU64,
        rng: Mutex<fastrand::Rng>,
    },
}

impl Generators {
    pub fn new(specs: &BTreeMap<String, GeneratorSpec>, seed: u64) -> Generators {
        Generators::striped(specs, seed, super::Segment::whole())
    }

    /// The generators of one segment of a run: sequences yield only the values this segment
    /// owns, and random ones get a seed of the segment's own (so workers do not draw alike).
    pub fn striped(
        specs: &BTreeMap<String, GeneratorSpec>,
        seed: u64,
        segment: super::Segment,
    ) -> Generators {
        let seed = seed.wrapping_add(segment.index() as u64 * 0x51_7CC1_B727_220A);
        let mut names = Vec::new();
        let mut state = Vec::new();
        for (i, (name, spec)) in specs.iter().enumerate() {
            names.push(name.clone());
            let rng = || {
                Mutex::new(fastrand::Rng::with_seed(
                    seed.wrapping_add(i as u64 * 0x9E37_79B9),
                ))
            };
            state.push(match *spec {
                GeneratorSpec::Sequence { start, step } => GenState::Sequence {
                    start,
                    step,
                    taken: AtomicU64::new(0),
                },
                GeneratorSpec::Uniform { min, max } => GenState::Uniform {
                    min,
                    max,
                    rng: rng(),
                },
                GeneratorSpec::HotKey {
                    min,
                    max,
                    hot,
                    share,
                } => GenState::HotKey {
                    min,
                    max,
                    hot,
                    share: AtomicU64::new(share.to_bits()),
                    rng: rng(),
                },
            });
        }
        Generators {
            names,
            state,
            segment,
        }
    }

    /// Changes a hot-key generator's share while the load runs (the hot-product skew fault);
    /// returns the share it had.
    pub fn set_hot_share(&self, name: &str, new: f64) -> Result<f64, GeneratorError> {
        if !(0.0..=1.0).contains(&new) {
            return Err(GeneratorError::HotShare(new));
        }
        match self.index(name).map(|i| &self.state[i]) {
            Some(GenState::HotKey { share, .. }) => {
                Ok(f64::from_bits(share.swap(new.to_bits(), Relaxed)))
            }
            Some(_) => Err(GeneratorError::NotHotKey(name.to_owned())),
            None => Err(GeneratorError::Unknown {
                name: name.to_owned(),
                declared: self.names.join(", "),
            }),
        }
    }

    pub(super) fn index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    fn next(&self, i: usize) -> u64 {
        match &self.state[i] {
            GenState::Sequence { start, step, taken } => {
                let n = self.segment.nth(taken.fetch_add(1, Relaxed));
                start.wrapping_add(step.wrapping_mul(n))
            }
            GenState::Uniform { min, max, rng } => rng.lock().expect("rng").u64(*min..=*max),
            GenState::HotKey {
                min,
                max,
                hot,
                share,
                rng,
            } => {
                let mut r = rng.lock().expect("rng");
                if r.f64() < f64::from_bits(share.load(Relaxed)) {
                    *hot
                } else {
                    r.u64(*min..=*max)
                }
            }
        }
    }
}

/// Values drawn for one request (the first 16 generators; later ones draw per use).
#[derive(Debug, Default)]
pub struct Draws([Option<u64>; 16]);

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Lit(String),
    Gen(usize),
    Iteration,
    Vu,
    /// A flow variable (extracted by an earlier step or by `setup`).
    Var(String),
    /// A data file's column: (data set, column), both by position.
    Data(usize, usize),
}

/// What a template may name besides generators: the flow variables set before it, and the
/// data files' columns (`{{users.email}}`).
#[derive(Debug, Default, Clone, Copy)]
pub struct Scope<'a> {
    pub vars: &'a [String],
    /// (data set name, its columns), in the order the run's data sets are numbered.
    pub data: &'a [(String, Vec<String>)],
    /// A flow step: an unknown name is reported as a variable.
    pub flow: bool,
}

/// Values a template reads at render time: variables and the iteration's data rows.
pub trait Env: Sync {
    fn var(&self, name: &str) -> Option<&str>;
    fn data(&self, set: usize, column: usize) -> Option<&str>;
}

/// No variables, no data (a template that names neither).
pub struct NoEnv;

impl Env for NoEnv {
    fn var(&self, _: &str) -> Option<&str> {
        None
    }
    fn data(&self, _: usize, _: usize) -> Option<&str> {
        None
    }
}

/// A compiled template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Compiles `text`, resolving every placeholder against `gens`; an unknown name or an
    /// unclosed `{{` is an error naming it.
    #[cfg(test)]
    pub fn compile(text: &str, gens: &Generators) -> Result<Template, TemplateError> {
        Self::compile_in(text, gens, Scope::default())
    }

    /// Compiles `text` where flow variables and data columns may also be named.
    pub fn compile_in(
        text: &str,
        gens: &Generators,
        scope: Scope<'_>,
    ) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Lit(rest[..open].to_owned()));
            }
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .ok_or_else(|| TemplateError::Unclosed(text.to_owned()))?;
            let name = after[..close].trim();
            parts.push(match name {
                "iteration" => Part::Iteration,
                "vu" => Part::Vu,
                n if gens.index(n).is_some() => Part::Gen(gens.index(n).expect("checked")),
                n if scope.vars.iter().any(|v| v == n) => Part::Var(n.to_owned()),
                n if n.contains('.') => data_part(n, scope)?,
                n if scope.flow => {
                    let mut known: Vec<&str> = gens.names.iter().map(String::as_str).collect();
                    known.extend(scope.vars.iter().map(String::as_str));
                    known.extend(["iteration", "vu"]);
                    return Err(TemplateError::UnknownVariable {
                        name: n.to_owned(),
                        known: known.join(", "),
                    });
                }
                n => {
                    let known = if gens.names.is_empty() {
                        "none declared".to_owned()
                    } else {
                        gens.names.join(", ")
                    };
                    return Err(TemplateError::UnknownGenerator {
                        name: n.to_owned(),
                        known,
                    });
                }
            });
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Lit(rest.to_owned()));
        }
        Ok(Template { parts })
    }

    /// The text when the template has no placeholder (it renders the same every time).
    pub fn constant(&self) -> Option<String> {
        match self.parts.as_slice() {
            [] => Some(String::new()),
            [Part::Lit(s)] => Some(s.clone()),
            _ => None,
        }
    }

    /// Renders with fresh draws (one request that uses only this template).
    #[cfg(test)]
    pub fn render(&self, gens: &Generators, iteration: u64, vu: u64) -> String {
        self.render_with(gens, iteration, vu, &mut Draws::default())
    }

    /// Renders sharing `drawn` with the request's other templates, so `{{user_id}}` in the
    /// path and in the body of one request is the same value.
    #[cfg(test)]
    pub fn render_with(
        &self,
        gens: &Generators,
        iteration: u64,
        vu: u64,
        drawn: &mut Draws,
    ) -> String {
        self.render_in(gens, iteration, vu, drawn, &NoEnv)
    }

    /// The flow variables the template reads.
    pub fn vars(&self) -> impl Iterator<Item = &str> + '_ {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(v) => Some(v.as_str()),
            _ => None,
        })
    }

    /// The data sets the template reads.
    pub fn data_sets(&self) -> impl Iterator<Item = usize> + '_ {
        self.parts.iter().filter_map(|p| match p {
            Part::Data(set, _) => Some(*set),
            _ => None,
        })
    }

    /// Renders sharing `drawn` with the request's other templates (so `{{user_id}}` in the
    /// path and in the body of one request is the same value), variables and data read from `env` (compile checked that
    /// each exists; a value missing at run time renders empty, which the flow prevents by
    /// failing the step that should have set it).
    pub fn render_in(
        &self,
        gens: &Generators,
        iteration: u64,
        vu: u64,
        drawn: &mut Draws,
        env: &dyn Env,
    ) -> String {
        let drawn = &mut drawn.0;
        let mut out = String::with_capacity(64);
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Iteration => out.push_str(itoa(iteration).as_str()),
                Part::Vu => out.push_str(itoa(vu).as_str()),
                Part::Gen(i) => {
                    let v = match drawn.get_mut(*i) {
                        Some(slot) => *slot.get_or_insert_with(|| gens.next(*i)),
                        None => gens.next(*i),
                    };
                    out.push_str(itoa(v).as_str());
                }
                Part::Var(name) => out.push_str(env.var(name).unwrap_or_default()),
                Part::Data(set, col) => out.push_str(env.data(*set, *col).unwrap_or_default()),
            }
        }
        out
    }
}

/// `{{set.column}}`: a declared data file and a column of its header.
fn data_part(n: &str, scope: Scope<'_>) -> Result<Part, TemplateError> {
    let (set, column) = n.split_once('.').expect("has a dot");
    let Some(i) = scope.data.iter().position(|(name, _)| name == set) else {
        let known: Vec<&str> = scope.data.iter().map(|(n, _)| n.as_str()).collect();
        return Err(TemplateError::UnknownData {
            set: set.to_owned(),
            known: if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            },
        });
    };
    let columns = &scope.data[i].1;
    let c =
        columns
            .iter()
            .position(|c| c == column)
            .ok_or_else(|| TemplateError::UnknownColumn {
                set: set.to_owned(),
                column: column.to_owned(),
                known: columns.join(", "),
            })?;
    Ok(Part::Data(i, c))
}

fn itoa(v: u64) -> String {
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gens() -> Generators {
        let mut specs = BTreeMap::new();
        specs.insert(
            "user_id".to_owned(),
            GeneratorSpec::Sequence { start: 10, step: 1 },
        );
        specs.insert(
            "product_id".to_owned(),
            GeneratorSpec::HotKey {
                min: 1,
                max: 100,
                hot: 1,
                share: 0.5,
            },
        );
        Generators::new(&specs, 7)
    }

    #[test]
    fn same_placeholder_same_value_within_one_request() {
        let g = gens();
        let t = Template::compile(
            r#"{"a":{{user_id}},"b":{{ user_id }},"i":{{iteration}}}"#,
            &g,
        )
        .unwrap();
        assert_eq!(t.render(&g, 3, 0), r#"{"a":10,"b":10,"i":3}"#);
        assert_eq!(t.render(&g, 4, 0), r#"{"a":11,"b":11,"i":4}"#);
    }

    #[test]
    fn path_and_body_of_one_request_share_draws() {
        let g = gens();
        let path = Template::compile("/u/{{user_id}}", &g).unwrap();
        let body = Template::compile("{{user_id}}", &g).unwrap();
        let mut d = Draws::default();
        assert_eq!(path.render_with(&g, 0, 0, &mut d), "/u/10");
        assert_eq!(body.render_with(&g, 0, 0, &mut d), "10");
    }

    #[test]
    fn hot_share_changes_live_and_reports_the_old_value() {
        let mut specs = BTreeMap::new();
        specs.insert(
            "product_id".to_owned(),
            GeneratorSpec::HotKey {
                min: 1,
                max: 100,
                hot: 1,
                share: 0.0,
            },
        );
        specs.insert(
            "seq".to_owned(),
            GeneratorSpec::Sequence { start: 1, step: 1 },
        );
        let g = Generators::new(&specs, 7);
        let t = Template::compile("{{product_id}}", &g).unwrap();
        assert_eq!(g.set_hot_share("product_id", 1.0), Ok(0.0));
        assert!((0..100).all(|_| t.render(&g, 0, 0) == "1"));
        assert_eq!(g.set_hot_share("product_id", 0.25), Ok(1.0));
        assert!(g.set_hot_share("seq", 0.5).is_err());
        assert!(g.set_hot_share("nope", 0.5).is_err());
        assert!(g.set_hot_share("product_id", 1.5).is_err());
    }

    #[test]
    fn hot_key_share_is_respected() {
        let g = gens();
        let t = Template::compile("{{product_id}}", &g).unwrap();
        let hot = (0..10_000).filter(|_| t.render(&g, 0, 0) == "1").count();
        // 50% hot plus 1% of the uniform half.
        assert!((4_800..=5_300).contains(&hot), "hot share {hot}/10000");
    }

    #[test]
    fn constant_templates_are_recognised() {
        let g = gens();
        assert_eq!(
            Template::compile("/api/x", &g).unwrap().constant(),
            Some("/api/x".into())
        );
        assert_eq!(
            Template::compile("/u/{{user_id}}", &g).unwrap().constant(),
            None
        );
    }

    #[test]
    fn unknown_and_unclosed_placeholders_are_errors() {
        let g = gens();
        assert!(Template::compile("{{coupon}}", &g)
            .unwrap_err()
            .to_string()
            .contains("unknown generator `coupon`"));
        assert!(Template::compile("x{{user_id", &g)
            .unwrap_err()
            .to_string()
            .contains("unclosed"));
    }

    #[test]
    fn generator_specs_are_checked() {
        assert!(GeneratorSpec::Uniform { min: 5, max: 1 }
            .validate()
            .is_err());
        assert!(GeneratorSpec::HotKey {
            min: 1,
            max: 5,
            hot: 1,
            share: 1.5
        }
        .validate()
        .is_err());
        assert!(GeneratorSpec::Sequence { start: 1, step: 0 }
            .validate()
            .is_err());
    }

    #[test]
    fn sequences_of_the_segments_of_a_run_are_disjoint_and_make_the_whole_run() {
        let mut specs = BTreeMap::new();
        specs.insert(
            "order".to_owned(),
            GeneratorSpec::Sequence {
                start: 100,
                step: 3,
            },
        );
        let whole = Generators::new(&specs, 7);
        let single: Vec<u64> = (0..150).map(|_| whole.next(0)).collect();
        let mut union = Vec::new();
        for (seg, take) in [("0:1/3", 50), ("1/3:5/6", 75), ("5/6:1", 25)] {
            let seg = crate::scenario::Segment::parse(seg, Some("0,1/3,5/6,1")).unwrap();
            let g = Generators::striped(&specs, 7, seg);
            union.extend((0..take).map(|_| g.next(0)));
        }
        union.sort_unstable();
        let mut distinct = union.clone();
        distinct.dedup();
        assert_eq!(distinct.len(), union.len(), "a value drawn by two segments");
        assert_eq!(union, single);
    }
}
