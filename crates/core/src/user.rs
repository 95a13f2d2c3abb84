use crate::{Email, Phone, Timestamp, UserId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub display_name: Option<String>,
    pub disabled: bool,
    pub is_admin: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The user's id in the application Braid was put beside, when imported from it.
    #[serde(default)]
    pub external_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserEmail {
    pub email: Email,
    pub verified_at: Option<Timestamp>,
    pub is_primary: bool,
}

impl UserEmail {
    pub fn is_verified(&self) -> bool {
        self.verified_at.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserPhone {
    pub phone: Phone,
    pub verified_at: Option<Timestamp>,
}

impl UserPhone {
    pub fn is_verified(&self) -> bool {
        self.verified_at.is_some()
    }
}
