//! Braid's domain: the types every other crate speaks, and the decisions that need no I/O.
//!
//! Nothing here talks to a database, the network or a clock other than `SystemTime`.

pub mod email;
pub mod error;
pub mod identity;
pub mod ids;
pub mod linking;
pub mod mask;
pub mod phone;
pub mod secret;
pub mod signing_key;
pub mod time;
pub mod user;

pub use email::Email;
pub use error::DomainError;
pub use identity::{
    ExtraClaims, FederatedIdentity, LinkedIdentity, NOT_APP_CLAIMS, Profile, ProviderId, Subject,
    VerifiableEmail, VerifiablePhone, app_claim_problem,
};
pub use ids::{UserId, new_id};
pub use mask::{mask_email, mask_phone};
pub use phone::Phone;
pub use secret::Secret;
pub use time::Timestamp;
pub use user::{User, UserEmail, UserPhone};
