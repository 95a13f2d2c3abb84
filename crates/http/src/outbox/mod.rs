//! Email and SMS: the messages Braid sends.

pub mod messages;

pub use braid_storage::repo::outbox::NewMessage;
