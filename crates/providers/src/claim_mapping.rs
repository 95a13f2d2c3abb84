//! From a provider's claims to what Braid believes: the trust rules.
//!
//! - A "verified" flag counts only as JSON `true` (B19: `"false"`, `"yes"`, `1` do not), except
//!   where a preset documents a string form (Apple's `"true"`), and only when the provider is
//!   trusted for that kind of claim (`trust_email`, `trust_phone`; C14).
//! - Preset rules on top: Google is authoritative only for gmail.com or an `hd`-matched
//!   Workspace domain (C08); Entra only with `xms_edov` (C05); GitHub only for `/user/emails`
//!   entries with `verified: true`; Discord only with `verified: true` (C11).
//! - Emails and phones go through `Email::parse` / `Phone::parse`: what does not parse is
//!   dropped, never matched (H05, H06, C15).
//! - `preferred_username`, `upn`, `login` are display-only (C06, C07).

use crate::{Preset, ProviderError};
use braid_core::{Email, ExtraClaims, Phone, Profile, Subject, VerifiableEmail, VerifiablePhone};
use serde_json::{Map, Value};

type Claims = Map<String, Value>;

/// Which kinds of claims a provider is trusted to verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Trust {
    pub email: bool,
    pub phone: bool,
}

/// What the claims say about the person, before the provider and issuer are attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MappedClaims {
    pub subject: Subject,
    pub emails: Vec<VerifiableEmail>,
    pub phones: Vec<VerifiablePhone>,
    pub profile: Profile,
}

fn is_json_true(v: Option<&Value>) -> bool {
    matches!(v, Some(Value::Bool(true)))
}

/// Apple documents `email_verified` as a boolean or the string `"true"`/`"false"`.
fn is_true_or_string_true(v: Option<&Value>) -> bool {
    is_json_true(v) || matches!(v, Some(Value::String(s)) if s == "true")
}

fn string<'a>(claims: &'a Claims, name: &str) -> Option<&'a str> {
    claims.get(name).and_then(Value::as_str)
}

fn email(claims: &Claims, name: &str) -> Option<Email> {
    string(claims, name).and_then(|s| Email::parse(s).ok())
}

fn picture(claims: &Claims, name: &str) -> Option<String> {
    string(claims, name).and_then(safe_picture)
}

/// Only `http(s)` picture URLs are kept: a `javascript:` URL never reaches a page.
pub(crate) fn safe_picture(raw: &str) -> Option<String> {
    let url = url::Url::parse(raw).ok()?;
    matches!(url.scheme(), "https" | "http").then(|| url.to_string())
}

fn profile(claims: &Claims, name: &[&str], username: &str, picture_claim: &str) -> Profile {
    Profile {
        name: name
            .iter()
            .find_map(|n| string(claims, n))
            .map(str::to_owned),
        preferred_username: string(claims, username).map(str::to_owned),
        picture: picture(claims, picture_claim),
        extra: ExtraClaims::collect([claims]),
    }
    .sanitized()
}

/// Google is authoritative for an address only on gmail.com, or on the Workspace domain
/// named by the (signed) `hd` claim.
fn google_is_authoritative(address: &Email, id_token: &Claims) -> bool {
    address.domain() == "gmail.com"
        || string(id_token, "hd").is_some_and(|hd| hd.eq_ignore_ascii_case(address.domain()))
}

/// Maps an OpenID Connect login. `id_token` holds the validated ID token claims; `userinfo`,
/// when present, has already been checked to be about the same `sub`. Email and phone are
/// each taken as a pair (value and flag) from one source: UserInfo if it has the value,
/// else the ID token. Preset-specific proofs (`hd`, `xms_edov`) come from the ID token only.
pub(crate) fn oidc_claims(
    preset: Preset,
    trust: Trust,
    subject: Subject,
    id_token: &Claims,
    userinfo: Option<&Claims>,
) -> MappedClaims {
    let source_of = |name: &str| match userinfo {
        Some(u) if u.contains_key(name) => u,
        _ => id_token,
    };
    let email_source = source_of("email");
    let emails = email(email_source, "email")
        .map(|address| {
            let provider_verified = match preset {
                Preset::Microsoft => is_json_true(id_token.get("xms_edov")),
                Preset::Apple => is_true_or_string_true(email_source.get("email_verified")),
                _ => is_json_true(email_source.get("email_verified")),
            };
            let authoritative =
                preset != Preset::Google || google_is_authoritative(&address, id_token);
            VerifiableEmail {
                verified: trust.email && provider_verified && authoritative,
                provider_verified,
                email: address,
            }
        })
        .into_iter()
        .collect();
    let phone_source = source_of("phone_number");
    let phones = string(phone_source, "phone_number")
        .and_then(|s| Phone::parse(s).ok())
        .map(|phone| VerifiablePhone {
            phone,
            verified: trust.phone && is_json_true(phone_source.get("phone_number_verified")),
        })
        .into_iter()
        .collect();
    let merged_profile = |name: &str| source_of(name);
    MappedClaims {
        subject,
        emails,
        phones,
        profile: Profile {
            name: string(merged_profile("name"), "name").map(str::to_owned),
            preferred_username: string(merged_profile("preferred_username"), "preferred_username")
                .map(str::to_owned),
            picture: picture(merged_profile("picture"), "picture"),
            extra: ExtraClaims::collect(userinfo.into_iter().chain([id_token])),
        }
        .sanitized(),
    }
}

fn numeric_id(user: &Claims) -> Result<Subject, ProviderError> {
    let id = user
        .get("id")
        .and_then(Value::as_u64)
        .ok_or(ProviderError::UserInfo("no numeric id"))?;
    Subject::parse(&id.to_string()).map_err(|_| ProviderError::UserInfo("invalid id"))
}

fn snowflake_id(user: &Claims) -> Result<Subject, ProviderError> {
    match string(user, "id") {
        Some(id) if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) => {
            Subject::parse(id).map_err(|_| ProviderError::UserInfo("invalid id"))
        }
        _ => Err(ProviderError::UserInfo("no numeric id")),
    }
}

fn object(v: &Value) -> Result<&Claims, ProviderError> {
    v.as_object()
        .ok_or(ProviderError::UserInfo("not a JSON object"))
}

/// GitHub: subject = numeric `id` (never `login`, C03). Verified addresses come only from
/// `/user/emails` entries with `verified: true`; the public `/user` address is unverified.
pub(crate) fn github_claims(
    trust: Trust,
    user: &Value,
    emails: Option<&Value>,
) -> Result<MappedClaims, ProviderError> {
    let user = object(user)?;
    let mut out: Vec<VerifiableEmail> = Vec::new();
    let mut add = |address: Email, provider_verified: bool| {
        let verified = trust.email && provider_verified;
        match out.iter_mut().find(|e| e.email == address) {
            Some(existing) => {
                existing.verified |= verified;
                existing.provider_verified |= provider_verified;
            }
            None => out.push(VerifiableEmail {
                email: address,
                verified,
                provider_verified,
            }),
        }
    };
    let mut entries: Vec<&Claims> = emails
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(Value::as_object).collect())
        .unwrap_or_default();
    entries.sort_by_key(|e| !is_json_true(e.get("primary")));
    for entry in entries {
        if let Some(address) = email(entry, "email") {
            add(address, is_json_true(entry.get("verified")));
        }
    }
    if let Some(address) = email(user, "email") {
        add(address, false);
    }
    Ok(MappedClaims {
        subject: numeric_id(user)?,
        emails: out,
        phones: Vec::new(),
        profile: profile(user, &["name"], "login", "avatar_url"),
    })
}

/// GitLab (gitlab.com or self-managed): subject = numeric `id`. Its address counts only if
/// the operator trusts the instance (default: not, C11) and GitLab shows it confirmed.
pub(crate) fn gitlab_claims(trust: Trust, user: &Value) -> Result<MappedClaims, ProviderError> {
    let user = object(user)?;
    let confirmed = matches!(user.get("confirmed_at"), Some(Value::String(s)) if !s.is_empty());
    Ok(MappedClaims {
        subject: numeric_id(user)?,
        emails: email(user, "email")
            .map(|address| VerifiableEmail {
                email: address,
                verified: trust.email && confirmed,
                provider_verified: confirmed,
            })
            .into_iter()
            .collect(),
        phones: Vec::new(),
        profile: profile(user, &["name"], "username", "avatar_url"),
    })
}

/// Discord: subject = snowflake `id`; the address is verified only with `verified: true`.
pub(crate) fn discord_claims(trust: Trust, user: &Value) -> Result<MappedClaims, ProviderError> {
    let user = object(user)?;
    let subject = snowflake_id(user)?;
    let avatar = string(user, "avatar")
        .filter(|a| !a.is_empty() && a.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .map(|a| format!("https://cdn.discordapp.com/avatars/{subject}/{a}.png"));
    let mut profile = profile(user, &["global_name", "username"], "username", "");
    profile.picture = avatar;
    Ok(MappedClaims {
        emails: email(user, "email")
            .map(|address| VerifiableEmail {
                email: address,
                verified: trust.email && is_json_true(user.get("verified")),
                provider_verified: is_json_true(user.get("verified")),
            })
            .into_iter()
            .collect(),
        subject,
        phones: Vec::new(),
        profile: profile.sanitized(),
    })
}

/// Facebook: subject = app-scoped `id`; Graph has no verified flag, so the address counts
/// only when the operator trusts Facebook for email (default: not).
pub(crate) fn facebook_claims(trust: Trust, user: &Value) -> Result<MappedClaims, ProviderError> {
    let user = object(user)?;
    Ok(MappedClaims {
        subject: snowflake_id(user)?,
        emails: email(user, "email")
            .map(|address| VerifiableEmail {
                email: address,
                // Graph has no verified flag: only the operator's trust makes it count.
                verified: trust.email,
                provider_verified: false,
            })
            .into_iter()
            .collect(),
        phones: Vec::new(),
        profile: profile(user, &["name"], "", ""),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) const TRUSTED: Trust = Trust {
        email: true,
        phone: true,
    };
    pub(crate) const UNTRUSTED: Trust = Trust {
        email: false,
        phone: false,
    };

    fn claims(v: Value) -> Claims {
        v.as_object().cloned().unwrap()
    }

    fn sub() -> Subject {
        Subject::parse("s-1").unwrap()
    }

    fn verified(m: &MappedClaims) -> Vec<(String, bool)> {
        m.emails
            .iter()
            .map(|e| (e.email.as_str().to_owned(), e.verified))
            .collect()
    }

    fn pairs(expected: &[(&str, bool)]) -> Vec<(String, bool)> {
        expected
            .iter()
            .map(|(e, v)| ((*e).to_owned(), *v))
            .collect()
    }

    #[test]
    fn b19_only_json_true_counts_as_verified() {
        for flag in [
            json!("false"),
            json!("yes"),
            json!("true"),
            json!(1),
            json!(null),
            json!(false),
        ] {
            let c = claims(json!({"email": "a@example.com", "email_verified": flag}));
            let m = oidc_claims(Preset::Oidc, TRUSTED, sub(), &c, None);
            assert_eq!(verified(&m), pairs(&[("a@example.com", false)]), "{flag}");
        }
        let c = claims(json!({"email": "a@example.com", "email_verified": true}));
        assert_eq!(
            verified(&oidc_claims(Preset::Oidc, TRUSTED, sub(), &c, None)),
            pairs(&[("a@example.com", true)])
        );
    }

    #[test]
    fn b19_apple_documents_the_string_true() {
        let c = claims(json!({"email": "a@example.com", "email_verified": "true"}));
        assert_eq!(
            verified(&oidc_claims(Preset::Apple, TRUSTED, sub(), &c, None)),
            pairs(&[("a@example.com", true)])
        );
        let c = claims(json!({"email": "a@example.com", "email_verified": "false"}));
        assert_eq!(
            verified(&oidc_claims(Preset::Apple, TRUSTED, sub(), &c, None)),
            pairs(&[("a@example.com", false)])
        );
        let c = claims(json!({"email": "a@example.com", "email_verified": "yes"}));
        assert_eq!(
            verified(&oidc_claims(Preset::Apple, TRUSTED, sub(), &c, None)),
            pairs(&[("a@example.com", false)])
        );
    }

    #[test]
    fn c09_apple_private_relay_addresses_are_kept_and_match_only_if_verified() {
        let c = claims(
            json!({"email": "x1y2@privaterelay.appleid.com", "email_verified": "true", "is_private_email": "true"}),
        );
        assert_eq!(
            verified(&oidc_claims(Preset::Apple, TRUSTED, sub(), &c, None)),
            pairs(&[("x1y2@privaterelay.appleid.com", true)])
        );
        let c =
            claims(json!({"email": "x1y2@privaterelay.appleid.com", "is_private_email": "true"}));
        assert_eq!(
            verified(&oidc_claims(Preset::Apple, TRUSTED, sub(), &c, None)),
            pairs(&[("x1y2@privaterelay.appleid.com", false)])
        );
    }

    #[test]
    fn c10_apple_without_email_is_still_an_identity() {
        let m = oidc_claims(Preset::Apple, TRUSTED, sub(), &claims(json!({})), None);
        assert!(m.emails.is_empty());
        assert_eq!(m.subject, sub());
    }

    #[test]
    fn c14_untrusted_provider_claims_are_unverified() {
        let c = claims(
            json!({"email": "a@example.com", "email_verified": true, "phone_number": "+12025550100", "phone_number_verified": true}),
        );
        let m = oidc_claims(Preset::Oidc, UNTRUSTED, sub(), &c, None);
        assert_eq!(verified(&m), pairs(&[("a@example.com", false)]));
        assert!(!m.phones[0].verified);
    }

    #[test]
    fn c08_google_is_authoritative_only_for_gmail_or_hd() {
        let run = |c: Value| {
            verified(&oidc_claims(
                Preset::Google,
                TRUSTED,
                sub(),
                &claims(c),
                None,
            ))[0]
                .1
        };
        assert!(run(
            json!({"email": "bob@gmail.com", "email_verified": true})
        ));
        assert!(!run(
            json!({"email": "bob@corp.example", "email_verified": true})
        ));
        assert!(run(
            json!({"email": "bob@corp.example", "email_verified": true, "hd": "corp.example"})
        ));
        assert!(!run(
            json!({"email": "bob@corp.example", "email_verified": true, "hd": "other.example"})
        ));
        assert!(!run(
            json!({"email": "bob@gmail.com", "email_verified": false})
        ));
    }

    #[test]
    fn c05_entra_email_counts_only_with_xms_edov() {
        let run = |c: Value| {
            verified(&oidc_claims(
                Preset::Microsoft,
                TRUSTED,
                sub(),
                &claims(c),
                None,
            ))
        };
        assert_eq!(
            run(json!({"email": "admin@corp.example"})),
            pairs(&[("admin@corp.example", false)])
        );
        assert_eq!(
            run(json!({"email": "admin@corp.example", "email_verified": true})),
            pairs(&[("admin@corp.example", false)])
        );
        assert_eq!(
            run(json!({"email": "admin@corp.example", "xms_edov": false})),
            pairs(&[("admin@corp.example", false)])
        );
        assert_eq!(
            run(json!({"email": "admin@corp.example", "xms_edov": "true"})),
            pairs(&[("admin@corp.example", false)])
        );
        assert_eq!(
            run(json!({"email": "admin@corp.example", "xms_edov": true})),
            pairs(&[("admin@corp.example", true)])
        );
    }

    #[test]
    fn c06_upn_and_preferred_username_are_never_emails() {
        let c = claims(
            json!({"preferred_username": "victim@corp.example", "upn": "victim@corp.example", "xms_edov": true}),
        );
        let m = oidc_claims(Preset::Microsoft, TRUSTED, sub(), &c, None);
        assert!(m.emails.is_empty());
        assert_eq!(
            m.profile.preferred_username.as_deref(),
            Some("victim@corp.example")
        );
    }

    #[test]
    fn c07_preferred_username_is_display_only() {
        let a = oidc_claims(
            Preset::Oidc,
            TRUSTED,
            sub(),
            &claims(json!({"preferred_username": "alice"})),
            None,
        );
        let b = oidc_claims(
            Preset::Oidc,
            TRUSTED,
            sub(),
            &claims(json!({"preferred_username": "mallory"})),
            None,
        );
        assert_eq!(a.subject, b.subject);
        assert!(a.emails.is_empty() && b.emails.is_empty());
    }

    #[test]
    fn c15_phones_are_e164_and_unparseable_ones_dropped() {
        let c = claims(json!({"phone_number": "+1 (202) 555-0100", "phone_number_verified": true}));
        let m = oidc_claims(Preset::Oidc, TRUSTED, sub(), &c, None);
        assert_eq!(m.phones[0].phone.as_str(), "+12025550100");
        assert!(m.phones[0].verified);
        let c = claims(json!({"phone_number": "call me maybe", "phone_number_verified": true}));
        assert!(
            oidc_claims(Preset::Oidc, TRUSTED, sub(), &c, None)
                .phones
                .is_empty()
        );
        let c = claims(json!({"phone_number": "+12025550100", "phone_number_verified": "true"}));
        assert!(!oidc_claims(Preset::Oidc, TRUSTED, sub(), &c, None).phones[0].verified);
    }

    #[test]
    fn h05_h06_unparseable_emails_are_dropped() {
        for bad in [
            "victim@example.com,attacker@evil.example",
            "victim@example.com attacker@evil.example",
            "\"victim@example.com\"@evil.example",
            "victim@example.com(comment)",
            "victim@example.com\r\nBcc: x@evil.example",
        ] {
            let c = claims(json!({"email": bad, "email_verified": true}));
            assert!(
                oidc_claims(Preset::Oidc, TRUSTED, sub(), &c, None)
                    .emails
                    .is_empty(),
                "{bad}"
            );
        }
    }

    #[test]
    fn userinfo_email_and_flag_travel_together() {
        let id = claims(json!({"email": "old@example.com", "email_verified": true}));
        let ui = claims(json!({"sub": "s-1", "email": "new@example.com"}));
        let m = oidc_claims(Preset::Oidc, TRUSTED, sub(), &id, Some(&ui));
        assert_eq!(verified(&m), pairs(&[("new@example.com", false)]));
    }

    #[test]
    fn pictures_must_be_web_urls() {
        let c = claims(json!({"picture": "javascript:alert(1)"}));
        assert_eq!(
            oidc_claims(Preset::Oidc, TRUSTED, sub(), &c, None)
                .profile
                .picture,
            None
        );
        let c = claims(json!({"picture": "https://cdn.example/p.png"}));
        assert!(
            oidc_claims(Preset::Oidc, TRUSTED, sub(), &c, None)
                .profile
                .picture
                .is_some()
        );
    }

    #[test]
    fn c03_github_subject_is_the_numeric_id_never_the_login() {
        let m = github_claims(TRUSTED, &json!({"id": 583231, "login": "octocat"}), None).unwrap();
        assert_eq!(m.subject.as_str(), "583231");
        assert_eq!(m.profile.preferred_username.as_deref(), Some("octocat"));
        assert!(github_claims(TRUSTED, &json!({"login": "octocat"}), None).is_err());
        assert!(github_claims(TRUSTED, &json!({"id": "583231"}), None).is_err());
    }

    #[test]
    fn github_only_verified_user_emails_entries_count() {
        let user = json!({"id": 1, "email": "public@example.com"});
        let emails = json!([
            {"email": "unverified@example.com", "verified": false, "primary": false},
            {"email": "main@example.com", "verified": true, "primary": true},
            {"email": "stringy@example.com", "verified": "true", "primary": false},
        ]);
        let m = github_claims(TRUSTED, &user, Some(&emails)).unwrap();
        assert_eq!(
            verified(&m),
            pairs(&[
                ("main@example.com", true),
                ("unverified@example.com", false),
                ("stringy@example.com", false),
                ("public@example.com", false),
            ])
        );
        let m = github_claims(UNTRUSTED, &user, Some(&emails)).unwrap();
        assert!(m.emails.iter().all(|e| !e.verified));
    }

    #[test]
    fn c11_gitlab_email_is_untrusted_unless_the_operator_opts_in() {
        let user = json!({"id": 7, "username": "al", "email": "al@example.com", "confirmed_at": "2024-01-01T00:00:00Z"});
        assert_eq!(
            verified(&gitlab_claims(UNTRUSTED, &user).unwrap()),
            pairs(&[("al@example.com", false)])
        );
        assert_eq!(
            verified(&gitlab_claims(TRUSTED, &user).unwrap()),
            pairs(&[("al@example.com", true)])
        );
        let unconfirmed = json!({"id": 7, "email": "al@example.com", "confirmed_at": null});
        assert_eq!(
            verified(&gitlab_claims(TRUSTED, &unconfirmed).unwrap()),
            pairs(&[("al@example.com", false)])
        );
    }

    #[test]
    fn c11_discord_unverified_flag_means_unverified() {
        let user = json!({"id": "80351110224678912", "username": "nelly", "email": "nelly@example.com", "verified": false});
        assert_eq!(
            verified(&discord_claims(TRUSTED, &user).unwrap()),
            pairs(&[("nelly@example.com", false)])
        );
        let user = json!({"id": "80351110224678912", "email": "nelly@example.com", "verified": true, "avatar": "8342729096ea3675442027381ff50dfe"});
        let m = discord_claims(TRUSTED, &user).unwrap();
        assert_eq!(verified(&m), pairs(&[("nelly@example.com", true)]));
        assert_eq!(
            m.profile.picture.as_deref(),
            Some(
                "https://cdn.discordapp.com/avatars/80351110224678912/8342729096ea3675442027381ff50dfe.png"
            )
        );
    }

    #[test]
    fn facebook_email_counts_only_when_trusted() {
        let user = json!({"id": "10158", "name": "Fay", "email": "fay@example.com"});
        assert_eq!(
            verified(&facebook_claims(UNTRUSTED, &user).unwrap()),
            pairs(&[("fay@example.com", false)])
        );
        assert_eq!(
            verified(&facebook_claims(TRUSTED, &user).unwrap()),
            pairs(&[("fay@example.com", true)])
        );
    }
}
