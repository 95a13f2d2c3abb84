//! Braid's persistence. The only crate that names diesel: everything it hands out is a
//! braid-core type or a plain record of this crate.

mod conn;
mod db;
mod error;
mod pool;
mod prepared;
pub mod repo;
mod schema;
pub mod test_support;
mod url;

pub use conn::{DbConn, write_transaction};
pub use db::{Database, DatabaseSettings, PooledConn};
pub use error::StorageError;
pub use url::{Backend, DatabaseTarget, redact};
