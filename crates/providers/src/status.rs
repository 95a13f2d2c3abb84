//! Whether a provider can be used as configured, as far as Braid last found out: shown at
//! `/metrics` and by `braid check-config --providers`.

/// The state of a provider after its last discovery (OpenID Connect) or its configuration
/// check (plain OAuth 2.0, whose endpoints are fixed and fetched only during a sign-in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ProviderStatus {
    /// Not contacted yet.
    Unchecked = 0,
    Ready = 1,
    /// Its metadata does not fit Braid's settings (issuer, keys, algorithms, endpoints): an
    /// operator has to change something; retrying does not help.
    Misconfigured = 2,
    /// Could not be reached (network, timeout, 5xx): may recover on its own.
    Unreachable = 3,
    Disabled = 4,
}

impl ProviderStatus {
    pub const ALL: [ProviderStatus; 5] = [
        ProviderStatus::Unchecked,
        ProviderStatus::Ready,
        ProviderStatus::Misconfigured,
        ProviderStatus::Unreachable,
        ProviderStatus::Disabled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderStatus::Unchecked => "unchecked",
            ProviderStatus::Ready => "ready",
            ProviderStatus::Misconfigured => "misconfigured",
            ProviderStatus::Unreachable => "unreachable",
            ProviderStatus::Disabled => "disabled",
        }
    }

    pub(crate) fn from_u8(v: u8) -> Self {
        Self::ALL
            .into_iter()
            .find(|s| *s as u8 == v)
            .unwrap_or(ProviderStatus::Unchecked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_survives_its_atomic_form() {
        for s in ProviderStatus::ALL {
            assert_eq!(ProviderStatus::from_u8(s as u8), s);
        }
    }
}
