//! Braid's own credentials: opaque one-time values, signed access tokens, the key ring, and
//! sealed cookie values.

pub mod access;
pub mod keyring;
pub mod opaque;
pub mod sealed;
