//! The crate plugin authors depend on: implement [`Threshold`] or [`Fault`] on a type, then
//! export it with [`threshold_plugin!`] or [`fault_plugin!`]. The bindings come from
//! `plugins/wit` (package `harness:plugin@1.1.0`); authors never touch them.
//!
//! Why wrap wit-bindgen: plugins get the measured run as a [`Summary`] with k6's evaluation
//! rules ([`rules`]) ready to use, their config as JSON with typed getters, and one instance
//! that lives for the whole run (state across calls without globals of their own).

pub use k6_rules as rules;
pub use k6_rules::{RateMetric, RequestStats, Series, Summary, Verdict};

mod config;
mod convert;
pub use config::Config;

#[doc(hidden)]
pub mod threshold_bindings {
    wit_bindgen::generate!({
        world: "threshold",
        path: "../wit",
        default_bindings_module: "harness_plugin_sdk::threshold_bindings",
        pub_export_macro: true,
        export_macro_name: "export_threshold",
    });
}

#[doc(hidden)]
pub mod fault_bindings {
    wit_bindgen::generate!({
        world: "fault",
        path: "../wit",
        default_bindings_module: "harness_plugin_sdk::fault_bindings",
        pub_export_macro: true,
        export_macro_name: "export_fault",
    });
}

pub use fault_bindings::harness::plugin::types::{
    FaultAction, HttpToxic, ProcessFault, RunState, SqlConnections, SqlLock, Toxic,
};

/// A threshold plugin: built once per run from its config, then asked for verdicts.
pub trait Threshold: Sized + 'static {
    fn new(config: Config) -> Result<Self, String>;
    /// One verdict per gate at the end of the run.
    fn evaluate(&mut self, summary: &Summary) -> Vec<Verdict>;
    /// Called each second with the run so far; return the verdicts that should abort the run.
    fn check(&mut self, _live: &Summary) -> Vec<Verdict> {
        Vec::new()
    }
}

/// A fault schedule: built once per run from its config, then ticked each second.
pub trait Fault: Sized + 'static {
    fn new(config: Config) -> Result<Self, String>;
    fn on_tick(&mut self, state: &RunState) -> Vec<FaultAction>;
}

/// A verdict for `metric` judged by `threshold` (k6 syntax, e.g. `p(95)<2000`) on `observed`
/// (None = no data, which fails).
pub fn verdict(metric: &str, threshold: &str, observed: Option<f64>) -> Verdict {
    match threshold.parse::<rules::Expr>() {
        Ok(e) => rules::judge(metric, &e, observed, false),
        Err(e) => Verdict {
            metric: metric.into(),
            threshold: threshold.into(),
            observed,
            passed: false,
            abort_on_fail: false,
            reason: Some(e.to_string()),
            first_breach_s: None,
        },
    }
}

/// A latency or value of `seconds` in the plugin's config, multiplied by the run's
/// `--time-scale` (the host adds `time_scale` to every config).
pub fn scaled_secs(config: &Config, key: &str, default: f64) -> Result<f64, String> {
    Ok(config.f64_or(key, default)? * config.f64_or("time_scale", 1.0)?)
}

#[doc(hidden)]
pub mod __private {
    use super::*;
    use std::cell::RefCell;

    pub use convert::{summary_from_wit, verdicts_to_wit};

    /// The one instance of a plugin type, per component instance (Wasm is single-threaded).
    pub struct Slot<T>(RefCell<Option<T>>);
    // SAFETY: wasm32-unknown-unknown components run on one thread; the host never shares an
    // instance between threads concurrently.
    unsafe impl<T> Sync for Slot<T> {}
    impl<T> Default for Slot<T> {
        fn default() -> Self {
            Self::new()
        }
    }
    impl<T> Slot<T> {
        pub const fn new() -> Self {
            Slot(RefCell::new(None))
        }
        pub fn set(&self, v: T) {
            *self.0.borrow_mut() = Some(v);
        }
        pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
            let mut b = self.0.borrow_mut();
            f(b.as_mut().expect("configure was not called before use"))
        }
    }
}

/// Exports a [`Threshold`] implementation as the component's `thresholds` interface.
#[macro_export]
macro_rules! threshold_plugin {
    ($t:ty) => {
        const _: () = {
            static SLOT: $crate::__private::Slot<$t> = $crate::__private::Slot::new();
            struct Export;
            use $crate::threshold_bindings::exports::harness::plugin::thresholds as wit;
            impl wit::Guest for Export {
                fn configure(config: String) -> Result<(), String> {
                    SLOT.set(<$t as $crate::Threshold>::new($crate::Config::parse(
                        &config,
                    )?)?);
                    Ok(())
                }
                fn evaluate(summary: wit::RunSummary) -> Vec<wit::Verdict> {
                    let s = $crate::__private::summary_from_wit(summary);
                    $crate::__private::verdicts_to_wit(
                        SLOT.with(|p| <$t as $crate::Threshold>::evaluate(p, &s)),
                    )
                }
                fn check(live: wit::LiveWindow) -> Vec<wit::Verdict> {
                    let s = $crate::__private::summary_from_wit(live);
                    $crate::__private::verdicts_to_wit(
                        SLOT.with(|p| <$t as $crate::Threshold>::check(p, &s)),
                    )
                }
            }
            $crate::threshold_bindings::export_threshold!(Export);
        };
    };
}

/// Exports a [`Fault`] implementation as the component's `faults` interface.
#[macro_export]
macro_rules! fault_plugin {
    ($t:ty) => {
        const _: () = {
            static SLOT: $crate::__private::Slot<$t> = $crate::__private::Slot::new();
            struct Export;
            use $crate::fault_bindings::exports::harness::plugin::faults as wit;
            impl wit::Guest for Export {
                fn configure(config: String) -> Result<(), String> {
                    SLOT.set(<$t as $crate::Fault>::new($crate::Config::parse(&config)?)?);
                    Ok(())
                }
                fn on_tick(state: $crate::RunState) -> Vec<$crate::FaultAction> {
                    SLOT.with(|p| <$t as $crate::Fault>::on_tick(p, &state))
                }
            }
            $crate::fault_bindings::export_fault!(Export);
        };
    };
}
