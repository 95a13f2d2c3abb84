//! Where each preset lives: the issuer of the OpenID Connect presets, the fixed endpoints of
//! the plain OAuth 2.0 ones, and the scopes each needs. `upstream_base_url` (a test seam)
//! moves a preset's endpoints onto a local mock, keeping their paths; `base_url` (a setting)
//! moves github or gitlab onto an Enterprise Server or self-managed instance.

use crate::profile_mapping::ProfileMapping;
use crate::self_hosted::self_hosted_base;
use crate::settings::{ResponseMode, TokenAuthMethod, check_issuer};
use crate::{Preset, ProviderError, ProviderSettings};
use url::Url;

/// Entra's tenant for personal Microsoft accounts.
pub(crate) const MICROSOFT_CONSUMERS_TENANT: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";
const MICROSOFT_AUTHORITY: &str = "https://login.microsoftonline.com";
const GOOGLE_ISSUER: &str = "https://accounts.google.com";
const APPLE_ISSUER: &str = "https://appleid.apple.com";
const GITHUB_COM: &str = "https://github.com";
const GITHUB_API: &str = "https://api.github.com";
const GITLAB_COM: &str = "https://gitlab.com";
const FACEBOOK_GRAPH_VERSION: &str = "v21.0";

/// How Braid talks to a provider.
#[derive(Debug, Clone)]
pub(crate) enum Protocol {
    Oidc(OidcSpec),
    OAuth2(Box<OAuth2Spec>),
}

#[derive(Debug, Clone)]
pub(crate) struct OidcSpec {
    /// Where discovery starts: `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    /// The issuers the discovery document may announce.
    pub metadata_issuer: MetadataIssuer,
    pub scopes: Vec<String>,
    /// Ask UserInfo for claims when the provider has the endpoint (generic OIDC: many
    /// providers put `email` only there).
    pub use_userinfo: bool,
    pub form_post: bool,
    /// The operator's `authorization_params`.
    pub extra_params: Vec<(String, String)>,
}

/// The issuer a discovery document must announce (A10: anything else is refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MetadataIssuer {
    /// Exactly the configured issuer (simple string comparison).
    Exact(String),
    /// Microsoft multi-tenant endpoints (`common`, `organizations`): the document announces
    /// `{authority}/{tenantid}/v2.0`, filled in per token from its `tid`.
    MicrosoftTemplate {
        authority: String,
        tenant: MicrosoftTenant,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MicrosoftTenant {
    /// Work, school and personal accounts.
    Common,
    /// Work and school accounts only: the personal-accounts tenant is refused.
    Organizations,
}

#[derive(Debug, Clone)]
pub(crate) struct OAuth2Spec {
    /// The label Braid records as the identity's issuer and expects in an RFC 9207 `iss`.
    pub issuer: String,
    pub authorize: Url,
    pub token: Url,
    pub api: ProfileApi,
    pub scopes: Vec<String>,
    pub options: RequestOptions,
}

/// How the authorization request and the code exchange are made.
#[derive(Debug, Clone)]
pub(crate) struct RequestOptions {
    /// What joins the scopes (a space, as RFC 6749 says, unless the provider wants a comma).
    pub scope_separator: String,
    /// Send the client secret in the form body rather than HTTP Basic.
    pub secret_in_body: bool,
    /// A public client sends no secret at all.
    pub public_client: bool,
    pub pkce: bool,
    pub form_post: bool,
    /// The operator's `authorization_params`.
    pub extra_params: Vec<(String, String)>,
}

impl RequestOptions {
    /// A built-in preset: its own client authentication, PKCE always, the operator's
    /// parameters and response mode.
    fn preset(settings: &ProviderSettings, secret_in_body: bool) -> Self {
        Self {
            scope_separator: " ".to_owned(),
            secret_in_body,
            public_client: false,
            pkce: true,
            form_post: settings.response_mode == Some(ResponseMode::FormPost),
            extra_params: extra_params(settings),
        }
    }
}

/// The profile API of a plain OAuth 2.0 provider.
#[derive(Debug, Clone)]
pub(crate) enum ProfileApi {
    Github {
        user: Url,
        emails: Url,
    },
    Gitlab {
        user: Url,
    },
    Discord {
        me: Url,
    },
    Facebook {
        me: Url,
    },
    /// `oauth2`: the configured profile URLs and where the claims are in their answers.
    Mapped {
        urls: Vec<Url>,
        mapping: Box<ProfileMapping>,
    },
}

/// The preset's scopes (or a catalogue entry's instead) and the operator's extra ones.
fn preset_scopes(settings: &ProviderSettings, fixed: &[&str]) -> Vec<String> {
    match &settings.base_scopes {
        Some(base) => {
            let base: Vec<&str> = base.iter().map(String::as_str).collect();
            scopes(&base, &settings.scopes)
        }
        None => scopes(fixed, &settings.scopes),
    }
}

fn scopes(fixed: &[&str], extra: &[String]) -> Vec<String> {
    let mut out: Vec<String> = fixed.iter().map(|s| (*s).to_owned()).collect();
    for s in extra {
        if !out.contains(s) {
            out.push(s.clone());
        }
    }
    out
}

fn url(s: &str) -> Result<Url, ProviderError> {
    Url::parse(s).map_err(|_| ProviderError::Config(format!("invalid endpoint URL {s:?}")))
}

fn base(settings: &ProviderSettings, default: &str) -> Result<String, ProviderError> {
    let chosen = settings
        .upstream_base_url
        .as_deref()
        .unwrap_or(default)
        .trim_end_matches('/');
    check_issuer(chosen).map_err(ProviderError::Config)?;
    Ok(chosen.to_owned())
}

pub(crate) fn protocol_for(settings: &ProviderSettings) -> Result<Protocol, ProviderError> {
    let extra = &settings.scopes;
    let form_post_wanted = settings.response_mode == Some(ResponseMode::FormPost);
    let oidc = |issuer: String, metadata_issuer, form_post: bool, use_userinfo, fixed: &[&str]| {
        Protocol::Oidc(OidcSpec {
            issuer,
            metadata_issuer,
            scopes: preset_scopes(settings, fixed),
            use_userinfo,
            form_post: form_post || form_post_wanted,
            extra_params: extra_params(settings),
        })
    };
    let spec = match settings.preset {
        Preset::Catalogued(_) => return protocol_for(&settings.resolved()),
        Preset::Oauth2 => generic(settings)?,
        Preset::Oidc => {
            let issuer = settings
                .issuer
                .clone()
                .ok_or_else(|| ProviderError::Config("the oidc preset needs an issuer".into()))?;
            check_issuer(&issuer).map_err(ProviderError::Config)?;
            let exact = MetadataIssuer::Exact(issuer.clone());
            return Ok(oidc(
                issuer,
                exact,
                false,
                true,
                &["openid", "email", "profile"],
            ));
        }
        Preset::Google => {
            let issuer = base(settings, GOOGLE_ISSUER)?;
            let exact = MetadataIssuer::Exact(issuer.clone());
            return Ok(oidc(
                issuer,
                exact,
                false,
                false,
                &["openid", "email", "profile"],
            ));
        }
        Preset::Apple => {
            let issuer = base(settings, APPLE_ISSUER)?;
            let exact = MetadataIssuer::Exact(issuer.clone());
            return Ok(oidc(
                issuer,
                exact,
                true,
                false,
                &["openid", "email", "name"],
            ));
        }
        Preset::Microsoft => {
            let authority = base(settings, MICROSOFT_AUTHORITY)?;
            let tenant = settings.tenant.as_deref().unwrap_or("common");
            if tenant.is_empty()
                || !tenant
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            {
                return Err(ProviderError::Config("invalid microsoft tenant".into()));
            }
            let issuer = format!("{authority}/{tenant}/v2.0");
            let metadata_issuer = match tenant {
                "common" => MetadataIssuer::MicrosoftTemplate {
                    authority,
                    tenant: MicrosoftTenant::Common,
                },
                "organizations" => MetadataIssuer::MicrosoftTemplate {
                    authority,
                    tenant: MicrosoftTenant::Organizations,
                },
                "consumers" => {
                    MetadataIssuer::Exact(format!("{authority}/{MICROSOFT_CONSUMERS_TENANT}/v2.0"))
                }
                _ => MetadataIssuer::Exact(issuer.clone()),
            };
            return Ok(oidc(
                issuer,
                metadata_issuer,
                false,
                false,
                &["openid", "email", "profile"],
            ));
        }
        Preset::Github => github(settings)?,
        Preset::Gitlab => gitlab(settings)?,
        Preset::Discord => {
            let web = base(settings, "https://discord.com")?;
            OAuth2Spec {
                issuer: web.clone(),
                authorize: url(&format!("{web}/oauth2/authorize"))?,
                token: url(&format!("{web}/api/oauth2/token"))?,
                api: ProfileApi::Discord {
                    me: url(&format!("{web}/api/users/@me"))?,
                },
                scopes: scopes(&["identify", "email"], extra),
                options: RequestOptions::preset(settings, false),
            }
        }
        Preset::Facebook => {
            let (web, graph) = match &settings.upstream_base_url {
                Some(_) => {
                    let b = base(settings, "")?;
                    (b.clone(), b)
                }
                None => (
                    format!("https://www.facebook.com/{FACEBOOK_GRAPH_VERSION}"),
                    format!("https://graph.facebook.com/{FACEBOOK_GRAPH_VERSION}"),
                ),
            };
            OAuth2Spec {
                issuer: match &settings.upstream_base_url {
                    Some(_) => web.clone(),
                    None => "https://www.facebook.com".to_owned(),
                },
                authorize: url(&format!("{web}/dialog/oauth"))?,
                token: url(&format!("{graph}/oauth/access_token"))?,
                api: ProfileApi::Facebook {
                    me: url(&format!("{graph}/me?fields=id,name,email"))?,
                },
                scopes: scopes(&["email", "public_profile"], extra),
                options: RequestOptions::preset(settings, true),
            }
        }
    };
    Ok(Protocol::OAuth2(Box::new(spec)))
}

fn extra_params(settings: &ProviderSettings) -> Vec<(String, String)> {
    settings
        .authorization_params
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// `preset = "oauth2"`: everything from the settings. The issuer Braid records is the
/// configured `issuer`, else the authorization endpoint's origin.
fn generic(settings: &ProviderSettings) -> Result<OAuth2Spec, ProviderError> {
    let missing = |key: &str| ProviderError::Config(format!("the oauth2 preset needs {key}"));
    let authorize = url(settings
        .authorization_url
        .as_deref()
        .ok_or_else(|| missing("authorization_url"))?)?;
    let token = url(settings
        .token_url
        .as_deref()
        .ok_or_else(|| missing("token_url"))?)?;
    let urls = settings
        .userinfo_url
        .iter()
        .map(|u| url(u))
        .collect::<Result<Vec<_>, _>>()?;
    if urls.is_empty() {
        return Err(missing("userinfo_url"));
    }
    let mapping = settings
        .mapping
        .as_ref()
        .ok_or_else(|| missing("mapping"))?
        .build()
        .map_err(|problems| {
            let keys: Vec<&str> = problems.iter().map(|(k, _)| *k).collect();
            ProviderError::Config(format!("invalid mapping: {}", keys.join(", ")))
        })?;
    let issuer = match &settings.issuer {
        Some(issuer) => issuer.trim_end_matches('/').to_owned(),
        None => authorize.origin().ascii_serialization(),
    };
    let auth = settings.token_endpoint_auth_method;
    Ok(OAuth2Spec {
        issuer,
        authorize,
        token,
        api: ProfileApi::Mapped {
            urls,
            mapping: Box::new(mapping),
        },
        scopes: preset_scopes(settings, &[]),
        options: RequestOptions {
            scope_separator: settings
                .scope_separator
                .clone()
                .unwrap_or_else(|| " ".to_owned()),
            secret_in_body: auth == Some(TokenAuthMethod::ClientSecretPost),
            public_client: auth == Some(TokenAuthMethod::None),
            pkce: settings.pkce.unwrap_or(true),
            form_post: settings.response_mode == Some(ResponseMode::FormPost),
            extra_params: extra_params(settings),
        },
    })
}

/// The base URL of an Enterprise Server or self-managed instance, if one is configured.
fn self_hosted(settings: &ProviderSettings) -> Result<Option<String>, ProviderError> {
    self_hosted_base(settings).map_err(ProviderError::Config)
}

/// github.com keeps its API on another host; Enterprise Server under `/api/v3` of its own.
fn github(settings: &ProviderSettings) -> Result<OAuth2Spec, ProviderError> {
    let (web, api) = match (self_hosted(settings)?, &settings.upstream_base_url) {
        (Some(server), _) => (server.clone(), format!("{server}/api/v3")),
        // The test seam serves the API at the mock's root, as api.github.com does.
        (None, Some(_)) => {
            let mock = base(settings, "")?;
            (mock.clone(), mock)
        }
        (None, None) => (GITHUB_COM.to_owned(), GITHUB_API.to_owned()),
    };
    Ok(OAuth2Spec {
        issuer: web.clone(),
        authorize: url(&format!("{web}/login/oauth/authorize"))?,
        token: url(&format!("{web}/login/oauth/access_token"))?,
        api: ProfileApi::Github {
            user: url(&format!("{api}/user"))?,
            emails: url(&format!("{api}/user/emails"))?,
        },
        scopes: scopes(&["read:user", "user:email"], &settings.scopes),
        options: RequestOptions::preset(settings, false),
    })
}

fn gitlab(settings: &ProviderSettings) -> Result<OAuth2Spec, ProviderError> {
    let web = match self_hosted(settings)? {
        Some(server) => server,
        None => base(settings, GITLAB_COM)?,
    };
    Ok(OAuth2Spec {
        issuer: web.clone(),
        authorize: url(&format!("{web}/oauth/authorize"))?,
        token: url(&format!("{web}/oauth/token"))?,
        api: ProfileApi::Gitlab {
            user: url(&format!("{web}/api/v4/user"))?,
        },
        scopes: scopes(&["read_user"], &settings.scopes),
        options: RequestOptions::preset(settings, false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(preset: Preset) -> Protocol {
        protocol_for(&ProviderSettings::new(preset, "client")).unwrap()
    }

    #[test]
    fn presets_point_at_the_real_services() {
        let Protocol::Oidc(google) = spec(Preset::Google) else {
            panic!()
        };
        assert_eq!(google.issuer, "https://accounts.google.com");
        let Protocol::Oidc(apple) = spec(Preset::Apple) else {
            panic!()
        };
        assert_eq!(apple.issuer, "https://appleid.apple.com");
        assert!(apple.form_post);
        let Protocol::OAuth2(github) = spec(Preset::Github) else {
            panic!()
        };
        assert_eq!(github.issuer, "https://github.com");
        assert_eq!(
            github.token.as_str(),
            "https://github.com/login/oauth/access_token"
        );
        let ProfileApi::Github { user, emails } = github.api else {
            panic!()
        };
        assert_eq!(user.as_str(), "https://api.github.com/user");
        assert_eq!(emails.as_str(), "https://api.github.com/user/emails");
        let Protocol::OAuth2(discord) = spec(Preset::Discord) else {
            panic!()
        };
        let ProfileApi::Discord { me } = discord.api else {
            panic!()
        };
        assert_eq!(me.as_str(), "https://discord.com/api/users/@me");
        let Protocol::OAuth2(gitlab) = spec(Preset::Gitlab) else {
            panic!()
        };
        assert_eq!(gitlab.issuer, "https://gitlab.com");
        assert_eq!(gitlab.token.as_str(), "https://gitlab.com/oauth/token");
        let Protocol::OAuth2(facebook) = spec(Preset::Facebook) else {
            panic!()
        };
        assert!(facebook.options.secret_in_body);
    }

    #[test]
    fn microsoft_defaults_to_the_common_tenant_template() {
        let Protocol::Oidc(ms) = spec(Preset::Microsoft) else {
            panic!()
        };
        assert_eq!(ms.issuer, "https://login.microsoftonline.com/common/v2.0");
        assert!(matches!(
            ms.metadata_issuer,
            MetadataIssuer::MicrosoftTemplate {
                tenant: MicrosoftTenant::Common,
                ..
            }
        ));
        let mut s = ProviderSettings::new(Preset::Microsoft, "c");
        s.tenant = Some("contoso.onmicrosoft.com".into());
        let Protocol::Oidc(single) = protocol_for(&s).unwrap() else {
            panic!()
        };
        assert_eq!(
            single.metadata_issuer,
            MetadataIssuer::Exact(
                "https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0".into()
            )
        );
        s.tenant = Some("../evil".into());
        assert!(protocol_for(&s).is_err());
    }

    #[test]
    fn self_managed_gitlab_uses_the_configured_base_url() {
        let mut s = ProviderSettings::new(Preset::Gitlab, "c");
        s.issuer = Some("https://git.example.org/".into());
        let Protocol::OAuth2(gitlab) = protocol_for(&s).unwrap() else {
            panic!()
        };
        assert_eq!(
            gitlab.authorize.as_str(),
            "https://git.example.org/oauth/authorize"
        );
        let ProfileApi::Gitlab { user } = gitlab.api else {
            panic!()
        };
        assert_eq!(user.as_str(), "https://git.example.org/api/v4/user");
    }

    fn oauth2(preset: Preset, base_url: &str) -> OAuth2Spec {
        let mut s = ProviderSettings::new(preset, "c");
        s.base_url = Some(base_url.into());
        let Protocol::OAuth2(spec) = protocol_for(&s).unwrap() else {
            panic!()
        };
        *spec
    }

    #[test]
    fn github_enterprise_server_has_oauth_at_its_root_and_the_api_under_api_v3() {
        let ghe = oauth2(Preset::Github, "https://github.example.com/");
        assert_eq!(
            ghe.authorize.as_str(),
            "https://github.example.com/login/oauth/authorize"
        );
        assert_eq!(
            ghe.token.as_str(),
            "https://github.example.com/login/oauth/access_token"
        );
        let ProfileApi::Github { user, emails } = ghe.api else {
            panic!()
        };
        assert_eq!(user.as_str(), "https://github.example.com/api/v3/user");
        assert_eq!(
            emails.as_str(),
            "https://github.example.com/api/v3/user/emails"
        );
        assert_eq!(ghe.scopes, ["read:user", "user:email"]);
    }

    #[test]
    fn github_enterprise_identities_carry_the_servers_issuer_not_github_coms() {
        let ghe = oauth2(Preset::Github, "https://github.example.com/");
        assert_eq!(ghe.issuer, "https://github.example.com");
        let Protocol::OAuth2(public) = spec(Preset::Github) else {
            panic!()
        };
        assert_eq!(public.issuer, "https://github.com");
    }

    #[test]
    fn self_managed_gitlab_from_base_url_has_oauth_and_api_v4_under_it() {
        for (base, root) in [
            ("https://gitlab.example.com/", "https://gitlab.example.com"),
            ("https://example.com/gitlab", "https://example.com/gitlab"),
        ] {
            let gitlab = oauth2(Preset::Gitlab, base);
            assert_eq!(gitlab.issuer, root);
            assert_eq!(gitlab.authorize.as_str(), format!("{root}/oauth/authorize"));
            assert_eq!(gitlab.token.as_str(), format!("{root}/oauth/token"));
            let ProfileApi::Gitlab { user } = gitlab.api else {
                panic!()
            };
            assert_eq!(user.as_str(), format!("{root}/api/v4/user"));
        }
    }

    #[test]
    fn a_base_url_the_checks_refuse_builds_no_provider() {
        for (preset, bad) in [
            (Preset::Github, "http://github.example.com"),
            (Preset::Github, "https://github.example.com/api/v3"),
            (Preset::Gitlab, "https://gitlab.example.com/?x=1"),
        ] {
            let mut s = ProviderSettings::new(preset, "c");
            s.base_url = Some(bad.into());
            assert!(protocol_for(&s).is_err(), "{bad}");
        }
    }

    #[test]
    fn extra_scopes_are_added_once() {
        let mut s = ProviderSettings::new(Preset::Google, "c");
        s.scopes = vec!["email".into(), "phone".into()];
        let Protocol::Oidc(g) = protocol_for(&s).unwrap() else {
            panic!()
        };
        assert_eq!(g.scopes, ["openid", "email", "profile", "phone"]);
    }
}
