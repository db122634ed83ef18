//! k6 threshold semantics on plain data, in one crate with no I/O.
//!
//! Why a crate of its own: the same rules run in two places — inside the `k6-thresholds` Wasm
//! plugin (the default evaluator) and natively in the harness when that plugin is not built —
//! and they must judge identically. Both feed it the same [`Summary`] shape, which mirrors the
//! plugin ABI's `run-summary` record.
//!
//! One deliberate difference from k6: a threshold whose metric has no samples FAILS with "no
//! data" (k6 passes it), because a gate that passes on nothing measured is a wrong PASS.

mod eval;
mod expr;
mod model;

pub use eval::{
    aggregate, check, evaluate, judge, observe, quantile, trend, validate, ThresholdDef, Verdict,
};
pub use expr::{
    check_metric_name, fmt_num, split_op, Agg, Expr, MetricKind, MetricRef, Op, ThresholdError,
};
pub use model::{
    checks_name, entry_name, scenario_entry, tag_entry, RateMetric, RequestStats, Series, Summary,
    ALL, PHASES,
};
