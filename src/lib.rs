//! confab: a self-hostable chat backend in one binary.

pub mod activity;
pub mod app;
pub mod backends;
pub mod backup;
pub mod config;
pub mod deadline;
pub mod domain;
pub mod ephemeral;
pub mod http;
pub mod mail;
pub mod media;
pub mod memory;
pub mod metrics;
pub mod ports;
pub mod queue;
pub mod realtime;
pub mod secrets;
pub mod services;
pub mod store;
pub mod telemetry;
pub mod wire;
