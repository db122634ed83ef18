//! Faults. Only this module talks to fault actuators: the embedded TCP fault relay (`relay`)
//! with Toxiproxy's toxics (`toxic`) behind a Toxiproxy-compatible HTTP API (`api`), our async
//! client for any Toxiproxy API (`client`), the app fault API (`app`), database faults held by
//! fault agents (`sql`, `agent`), process faults (`process`), and one run's actuators +
//! journal + rollback (`session`, `journal`, `undo`, and `ledger`, the journal on disk that
//! `harness faults recover` reads).

pub mod action;
pub mod agent;
pub mod api;
pub mod app;
pub mod client;
pub mod http;
pub mod journal;
pub mod ledger;
pub mod process;
pub mod relay;
pub mod session;
pub mod sql;
pub mod toxic;
pub mod undo;
