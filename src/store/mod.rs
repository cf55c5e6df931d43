//! Store adapters. SQLite is the embedded default; MongoDB comes with `mongo_uri`.

pub mod metered;
pub mod mongo;
pub mod sqlite;
