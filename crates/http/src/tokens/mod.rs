//! Braid's own credentials: opaque one-time values, signed access tokens, and the key ring.

pub mod access;
pub mod keyring;
pub mod opaque;
