//! Failures the app can act on: once a sign-in's client and redirect URI are known, valid and
//! bound to this browser, a failure goes back to the app (RFC 6749 §4.1.2.1) with `error`,
//! `error_description`, `state`, `iss` and Braid's `error_code` — or, for a client with
//! `errors = "page"`, to Braid's error page. The one table of what each failure means.

use crate::clients::Clients;
use crate::flows::callback::AppRedirect;
use crate::settings::ErrorDisplay;
use braid_storage::StorageError;

/// Braid's `error_code`: what went wrong, for the app to tell the person and for the operator.
/// The README lists each with what to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    Cancelled,
    ProviderRefused,
    ProviderUnavailable,
    ProviderMisconfigured,
    InvalidProviderResponse,
    ProviderDisabled,
    FlowExpired,
    FlowMismatch,
    LinkOnlyProvider,
    UserDisabled,
    LinkConflict,
    IdentityAlreadyLinked,
    TooManyAttempts,
    Unavailable,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 14] = [
        ErrorCode::Cancelled,
        ErrorCode::ProviderRefused,
        ErrorCode::ProviderUnavailable,
        ErrorCode::ProviderMisconfigured,
        ErrorCode::InvalidProviderResponse,
        ErrorCode::ProviderDisabled,
        ErrorCode::FlowExpired,
        ErrorCode::FlowMismatch,
        ErrorCode::LinkOnlyProvider,
        ErrorCode::UserDisabled,
        ErrorCode::LinkConflict,
        ErrorCode::IdentityAlreadyLinked,
        ErrorCode::TooManyAttempts,
        ErrorCode::Unavailable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Cancelled => "cancelled",
            ErrorCode::ProviderRefused => "provider_refused",
            ErrorCode::ProviderUnavailable => "provider_unavailable",
            ErrorCode::ProviderMisconfigured => "provider_misconfigured",
            ErrorCode::InvalidProviderResponse => "invalid_provider_response",
            ErrorCode::ProviderDisabled => "provider_disabled",
            ErrorCode::FlowExpired => "flow_expired",
            ErrorCode::FlowMismatch => "flow_mismatch",
            ErrorCode::LinkOnlyProvider => "link_only_provider",
            ErrorCode::UserDisabled => "user_disabled",
            ErrorCode::LinkConflict => "link_conflict",
            ErrorCode::IdentityAlreadyLinked => "identity_already_linked",
            ErrorCode::TooManyAttempts => "too_many_attempts",
            ErrorCode::Unavailable => "unavailable",
        }
    }

    /// The RFC 6749 §4.1.2.1 `error`.
    pub fn oauth_error(self) -> &'static str {
        match self {
            ErrorCode::ProviderUnavailable | ErrorCode::Unavailable => "temporarily_unavailable",
            ErrorCode::ProviderMisconfigured | ErrorCode::InvalidProviderResponse => "server_error",
            _ => "access_denied",
        }
    }

    /// The `error_description`: fixed text, never anything from upstream or a secret.
    pub fn description(self) -> &'static str {
        match self {
            ErrorCode::Cancelled => "the sign-in was cancelled",
            ErrorCode::ProviderRefused => "the sign-in provider did not sign the person in",
            ErrorCode::ProviderUnavailable => "the sign-in provider cannot be reached",
            ErrorCode::ProviderMisconfigured => "this sign-in method is misconfigured",
            ErrorCode::InvalidProviderResponse => {
                "the sign-in provider's answer could not be verified"
            }
            ErrorCode::ProviderDisabled => "this sign-in method is disabled",
            ErrorCode::FlowExpired => "the sign-in expired or was already used",
            ErrorCode::FlowMismatch => "the answer does not belong to this sign-in",
            ErrorCode::LinkOnlyProvider => "this provider can only be connected to an account",
            ErrorCode::UserDisabled => "the account is disabled",
            ErrorCode::LinkConflict => "the sign-in cannot be linked to an account",
            ErrorCode::IdentityAlreadyLinked => {
                "this sign-in is already connected to another account"
            }
            ErrorCode::TooManyAttempts => "too many wrong attempts",
            ErrorCode::Unavailable => "sign-in is unavailable right now",
        }
    }
}

/// Where a failed sign-in may go back to: the flow's redirect URI, taken only from state bound
/// to this browser (the sealed flow cookie, or the link flow the browser's link state names)
/// and still registered for the flow's client.
#[derive(Debug, Clone)]
pub struct AppReturn {
    pub redirect_uri: String,
    pub app_state: Option<String>,
    pub errors: ErrorDisplay,
}

impl AppReturn {
    /// `None` when the client is gone or no longer allows this redirect URI.
    pub fn checked(
        clients: &Clients,
        client_id: &str,
        redirect_uri: &str,
        app_state: Option<&str>,
    ) -> Option<Self> {
        let client = clients.get(client_id)?;
        client.allows_redirect(redirect_uri).then(|| Self {
            redirect_uri: redirect_uri.to_owned(),
            app_state: app_state.map(str::to_owned),
            errors: client.errors,
        })
    }

    /// The app's redirect URI with the failure, when this client takes failures there.
    pub fn redirect(
        &self,
        code: ErrorCode,
        issuer: &str,
    ) -> Option<Result<AppRedirect, StorageError>> {
        (self.errors == ErrorDisplay::Redirect).then(|| {
            AppRedirect::error(&self.redirect_uri, code, self.app_state.as_deref(), issuer)
        })
    }

    /// The origin of the redirect URI, for the page's way back.
    pub fn back(&self) -> Option<String> {
        crate::flows::callback::back_link(&self.redirect_uri)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_code_is_documented_in_the_readme() {
        let readme = include_str!("../../../README.md");
        for code in ErrorCode::ALL {
            assert!(
                readme.contains(&format!(
                    "| `{}` | `{}` |",
                    code.as_str(),
                    code.oauth_error()
                )),
                "README lacks the row of {}",
                code.as_str()
            );
        }
    }

    #[test]
    fn descriptions_are_valid_error_description_characters() {
        // RFC 6749 §4.1.2.1: %x20-21 / %x23-5B / %x5D-7E.
        for code in ErrorCode::ALL {
            assert!(
                code.description()
                    .bytes()
                    .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E)),
                "{}",
                code.as_str()
            );
        }
    }
}
