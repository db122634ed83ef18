//! Faults. Only this module talks to fault actuators. So far: the embedded TCP fault relay
//! (`relay`) with Toxiproxy's toxics (`toxic`) behind a Toxiproxy-compatible HTTP API (`api`),
//! and our async client for any Toxiproxy API (`client`). Fault plugins, the journal and
//! rollback come with the plugin host.

pub mod api;
pub mod client;
pub mod relay;
pub mod toxic;
