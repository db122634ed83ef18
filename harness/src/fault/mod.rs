//! Faults. Only this module talks to fault actuators: the embedded TCP fault relay (`relay`)
//! with Toxiproxy's toxics (`toxic`) behind a Toxiproxy-compatible HTTP API (`api`), our async
//! client for any Toxiproxy API (`client`), and one run's actuators + journal + rollback
//! (`session`, `journal`) carrying out fault plugins' `action`s.

pub mod action;
pub mod api;
pub mod app;
pub mod client;
pub mod journal;
pub mod relay;
pub mod session;
pub mod toxic;
