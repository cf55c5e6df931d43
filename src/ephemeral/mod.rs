//! Ephemeral-state adapters. In-process is the default; Redis comes with `redis_url`.

pub mod memory;
pub mod redis;
