use thiserror::Error;

/// Why a value from the outside world was refused as a domain value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DomainError {
    #[error("invalid email address: {0}")]
    InvalidEmail(&'static str),
    #[error("invalid phone number: {0}")]
    InvalidPhone(&'static str),
    #[error("invalid subject: {0}")]
    InvalidSubject(&'static str),
    #[error("invalid provider id: {0}")]
    InvalidProviderId(&'static str),
    #[error("invalid id: {0}")]
    InvalidId(&'static str),
}
