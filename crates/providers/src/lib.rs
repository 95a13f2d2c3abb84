//! Upstream identity providers: what an operator configures for each, the presets that fill in
//! the rest, and the trust rules that decide which claims count as verified.

pub mod preset;
pub mod settings;

pub use preset::Preset;
pub use settings::ProviderSettings;
