//! Braid's HTTP surface: the actix-web application, its settings, keys and routes.

pub mod admin;
pub mod app_errors;
pub mod client_addr;
pub mod clients;
pub mod dev;
pub mod flows;
pub mod housekeeping;
pub mod keys;
pub mod limiter;
pub mod limits;
pub mod local_accounts;
pub mod metrics;
pub mod oauth_error;
pub mod outbox;
pub mod pages;
pub mod params;
pub mod passwords;
pub mod problem;
pub mod provider_check;
pub mod routes;
pub mod sessions;
pub mod settings;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod tokens;
pub mod webhooks;

pub use settings::Settings;
pub use startup::{Application, StartupError};
