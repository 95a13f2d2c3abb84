//! The claim mapping of a generic OAuth 2.0 provider (`preset = "oauth2"`): where in the
//! profile JSON the subject, addresses, phones and display fields are, and how "verified" is
//! known. Mapped values go through the same rules as ID token claims: addresses are parsed and
//! canonicalised (what does not parse is dropped, H05/H06), phones must be E.164, a verified
//! flag counts only as JSON `true` (B19) and only when the operator trusts the provider (C14),
//! display fields are bounded, pictures are http(s) only.
//!
//! Paths are JSON Pointers (RFC 6901, `/user/id`) in which one segment may be `*`: every
//! element of the array there (`/1/*/email` for GitHub's `/user/emails` list). With several
//! profile URLs, the document is the array of their answers, so paths start with the index.

use crate::ProviderError;
use crate::claim_mapping::{MappedClaims, Trust, safe_picture};
use braid_core::{Email, ExtraClaims, Phone, Profile, Subject, VerifiableEmail, VerifiablePhone};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// At most this many list entries are read for addresses or phones.
const MAX_LIST_ENTRIES: usize = 20;
const MAX_PATH_LEN: usize = 256;

/// `[federated_login.providers.<id>.mapping]` as configured.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingSettings {
    /// The provider's stable id for the person (string or integer). Required.
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    /// A JSON `true` here marks the address verified. Without it, addresses count as verified
    /// only if the operator sets `trust_email = true` (the provider verifies every address).
    #[serde(default)]
    pub email_verified: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub phone_verified: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub picture: Option<String>,
}

/// A parsed path: the pointer up to `*`, and after it (when there is a `*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProfilePath {
    head: Vec<String>,
    each: Option<Vec<String>>,
}

impl ProfilePath {
    pub(crate) fn parse(raw: &str) -> Result<Self, String> {
        if raw.len() > MAX_PATH_LEN {
            return Err(format!("longer than {MAX_PATH_LEN} characters"));
        }
        let Some(rest) = raw.strip_prefix('/') else {
            return Err(format!(
                "{raw:?} is not a JSON Pointer (it starts with /, e.g. \"/id\")"
            ));
        };
        let mut head = Vec::new();
        let mut each: Option<Vec<String>> = None;
        for segment in rest.split('/') {
            if segment == "*" {
                if each.is_some() {
                    return Err(format!("{raw:?} has more than one *"));
                }
                each = Some(Vec::new());
                continue;
            }
            let unescaped = unescape(segment).ok_or_else(|| {
                format!("{raw:?}: ~ must be followed by 0 or 1 (RFC 6901 escapes)")
            })?;
            match &mut each {
                Some(tail) => tail.push(unescaped),
                None => head.push(unescaped),
            }
        }
        Ok(Self { head, each })
    }

    fn is_list(&self) -> bool {
        self.each.is_some()
    }

    fn one<'a>(&self, doc: &'a Value) -> Option<&'a Value> {
        walk(doc, &self.head)
    }
}

fn unescape(segment: &str) -> Option<String> {
    let mut out = String::with_capacity(segment.len());
    let mut chars = segment.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

fn walk<'a>(doc: &'a Value, segments: &[String]) -> Option<&'a Value> {
    segments.iter().try_fold(doc, |at, key| match at {
        Value::Object(map) => map.get(key),
        Value::Array(list) => key.parse::<usize>().ok().and_then(|i| list.get(i)),
        _ => None,
    })
}

/// A value and its verified flag, read from the same list element when both paths go through
/// the same list.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Flagged {
    value: ProfilePath,
    verified: Option<ProfilePath>,
}

impl Flagged {
    fn pairs<'a>(&self, doc: &'a Value) -> Vec<(&'a Value, bool)> {
        let Some(tail) = &self.value.each else {
            return self
                .value
                .one(doc)
                .map(|v| (v, self.flag_at(doc, doc)))
                .into_iter()
                .collect();
        };
        let Some(Value::Array(list)) = walk(doc, &self.value.head) else {
            return Vec::new();
        };
        list.iter()
            .take(MAX_LIST_ENTRIES)
            .filter_map(|item| walk(item, tail).map(|v| (v, self.flag_at(doc, item))))
            .collect()
    }

    fn flag_at(&self, doc: &Value, item: &Value) -> bool {
        match &self.verified {
            None => false,
            Some(path) => match &path.each {
                Some(tail) => matches!(walk(item, tail), Some(Value::Bool(true))),
                None => matches!(path.one(doc), Some(Value::Bool(true))),
            },
        }
    }
}

/// A mapping ready to apply, built from [`MappingSettings`] already checked by
/// [`MappingSettings::problems`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProfileMapping {
    subject: ProfilePath,
    email: Option<Flagged>,
    phone: Option<Flagged>,
    name: Option<ProfilePath>,
    username: Option<ProfilePath>,
    picture: Option<ProfilePath>,
}

impl MappingSettings {
    /// One line per problem, each naming the key under `at` (`…providers.acme.mapping`).
    pub fn problems(&self, at: &str) -> Vec<String> {
        match self.build() {
            Ok(_) => Vec::new(),
            Err(problems) => problems
                .into_iter()
                .map(|(key, why)| format!("{at}.{key}: {why}"))
                .collect(),
        }
    }

    pub(crate) fn build(&self) -> Result<ProfileMapping, Vec<(&'static str, String)>> {
        let mut problems = Vec::new();
        let mut path = |key: &'static str, raw: &Option<String>, list_ok: bool| {
            let parsed = raw.as_deref().map(ProfilePath::parse).transpose();
            match parsed {
                Ok(Some(p)) if p.is_list() && !list_ok => {
                    problems.push((key, "* is only for email, phone and their flags".into()));
                    None
                }
                Ok(p) => p,
                Err(why) => {
                    problems.push((key, why));
                    None
                }
            }
        };
        let subject = path("subject", &self.subject, false);
        let email = path("email", &self.email, true);
        let email_verified = path("email_verified", &self.email_verified, true);
        let phone = path("phone", &self.phone, true);
        let phone_verified = path("phone_verified", &self.phone_verified, true);
        let name = path("name", &self.name, false);
        let username = path("username", &self.username, false);
        let picture = path("picture", &self.picture, false);
        if self.subject.is_none() {
            problems.push((
                "subject",
                "required: where the profile has the person's stable id".into(),
            ));
        }
        let email = flagged(
            &mut problems,
            ("email", email),
            ("email_verified", email_verified),
            self.email_verified.is_some(),
        );
        let phone = flagged(
            &mut problems,
            ("phone", phone),
            ("phone_verified", phone_verified),
            self.phone_verified.is_some(),
        );
        match subject {
            Some(subject) if problems.is_empty() => Ok(ProfileMapping {
                subject,
                email,
                phone,
                name,
                username,
                picture,
            }),
            _ => Err(problems),
        }
    }
}

/// A flag path under a `*` must walk the same list as its value.
fn flagged(
    problems: &mut Vec<(&'static str, String)>,
    (value_key, value): (&'static str, Option<ProfilePath>),
    (flag_key, flag): (&'static str, Option<ProfilePath>),
    flag_configured: bool,
) -> Option<Flagged> {
    let Some(value) = value else {
        if flag_configured {
            problems.push((flag_key, format!("set {value_key} too")));
        }
        return None;
    };
    if let Some(f) = &flag
        && f.is_list()
        && f.head != value.head
    {
        problems.push((
            flag_key,
            format!("a * here must be at the same list as in {value_key}"),
        ));
    }
    Some(Flagged {
        value,
        verified: flag,
    })
}

fn text(v: &Value) -> Option<&str> {
    v.as_str()
}

fn subject(v: Option<&Value>) -> Result<Subject, ProviderError> {
    let raw = match v {
        None | Some(Value::Null) => {
            return Err(ProviderError::UserInfo(
                "the profile has no subject at the mapped path",
            ));
        }
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) if n.is_u64() || n.is_i64() => n.to_string(),
        Some(_) => {
            return Err(ProviderError::UserInfo(
                "the mapped subject is not a string or an integer",
            ));
        }
    };
    Subject::parse(&raw).map_err(|_| ProviderError::UserInfo("the mapped subject is not valid"))
}

/// The values of a mapped address or phone that parse, each once, with (verified, flag). Without
/// a flag path the operator's trust alone vouches for the value.
fn verifiable<T: PartialEq>(
    mapped: Option<&Flagged>,
    trusted: bool,
    doc: &Value,
    parse: impl Fn(&str) -> Option<T>,
) -> Vec<(T, bool, bool)> {
    let Some(m) = mapped else {
        return Vec::new();
    };
    let mut out: Vec<(T, bool, bool)> = Vec::new();
    for (value, flag) in m.pairs(doc) {
        let Some(parsed) = text(value).and_then(&parse) else {
            continue;
        };
        let verified = trusted && (flag || m.verified.is_none());
        match out.iter_mut().find(|(seen, _, _)| *seen == parsed) {
            Some(seen) => {
                seen.1 |= verified;
                seen.2 |= flag;
            }
            None => out.push((parsed, verified, flag)),
        }
    }
    out
}

impl ProfileMapping {
    pub(crate) fn apply(&self, trust: Trust, doc: &Value) -> Result<MappedClaims, ProviderError> {
        let subject = subject(self.subject.one(doc))?;
        let emails = verifiable(self.email.as_ref(), trust.email, doc, |s| {
            Email::parse(s).ok()
        })
        .into_iter()
        .map(|(email, verified, provider_verified)| VerifiableEmail {
            email,
            verified,
            provider_verified,
        })
        .collect();
        let phones = verifiable(self.phone.as_ref(), trust.phone, doc, |s| {
            Phone::parse(s).ok()
        })
        .into_iter()
        .map(|(phone, verified, _)| VerifiablePhone { phone, verified })
        .collect();
        let field = |p: &Option<ProfilePath>| {
            p.as_ref()
                .and_then(|p| p.one(doc))
                .and_then(text)
                .map(str::to_owned)
        };
        Ok(MappedClaims {
            subject,
            emails,
            phones,
            profile: Profile {
                name: field(&self.name),
                preferred_username: field(&self.username),
                picture: field(&self.picture).as_deref().and_then(safe_picture),
                extra: ExtraClaims::collect(doc.as_object()),
            }
            .sanitized(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claim_mapping::tests::{TRUSTED, UNTRUSTED};
    use serde_json::json;

    fn mapping(v: Value) -> ProfileMapping {
        serde_json::from_value::<MappingSettings>(v)
            .unwrap()
            .build()
            .unwrap()
    }

    fn emails(m: &MappedClaims) -> Vec<(&str, bool)> {
        m.emails
            .iter()
            .map(|e| (e.email.as_str(), e.verified))
            .collect()
    }

    #[test]
    fn paths_are_json_pointers_with_one_optional_star() {
        let p = ProfilePath::parse("/a~1b/~0c/0").unwrap();
        assert_eq!(p.head, ["a/b", "~c", "0"]);
        assert!(!p.is_list());
        let doc = json!({"a/b": {"~c": ["x"]}});
        assert_eq!(p.one(&doc), Some(&json!("x")));
        let star = ProfilePath::parse("/1/*/email").unwrap();
        assert_eq!(
            (star.head, star.each),
            (vec!["1".to_owned()], Some(vec!["email".to_owned()]))
        );
        assert!(ProfilePath::parse("id").is_err());
        assert!(ProfilePath::parse("/*/x/*").is_err());
        assert!(ProfilePath::parse("/a~2").is_err());
        assert!(ProfilePath::parse(&format!("/{}", "x".repeat(300))).is_err());
    }

    #[test]
    fn a_mapping_without_subject_or_with_bad_paths_names_each_key() {
        let problems = serde_json::from_value::<MappingSettings>(json!({
            "email": "email", "name": "/items/*/name", "phone_verified": "/ok"
        }))
        .unwrap()
        .problems("federated_login.providers.acme.mapping");
        assert_eq!(problems.len(), 4, "{problems:#?}");
        for key in ["subject", "email", "name", "phone_verified"] {
            assert!(
                problems
                    .iter()
                    .any(|p| p
                        .starts_with(&format!("federated_login.providers.acme.mapping.{key}: "))),
                "{key}: {problems:#?}"
            );
        }
        let mismatched = serde_json::from_value::<MappingSettings>(json!({
            "subject": "/id", "email": "/a/*/email", "email_verified": "/b/*/ok"
        }))
        .unwrap()
        .problems("m");
        assert_eq!(mismatched.len(), 1);
        assert!(mismatched[0].starts_with("m.email_verified: "));
    }

    #[test]
    fn the_subject_is_a_string_or_an_integer_and_must_be_there() {
        let m = mapping(json!({"subject": "/user/id"}));
        assert_eq!(
            m.apply(TRUSTED, &json!({"user": {"id": 42}}))
                .unwrap()
                .subject
                .as_str(),
            "42"
        );
        assert_eq!(
            m.apply(TRUSTED, &json!({"user": {"id": "u-1"}}))
                .unwrap()
                .subject
                .as_str(),
            "u-1"
        );
        for bad in [
            json!({}),
            json!({"user": {"id": null}}),
            json!({"user": {"id": 1.5}}),
            json!({"user": {"id": true}}),
            json!({"user": {"id": ""}}),
            json!({"user": {"id": "has space"}}),
            json!({"user": {"id": "x".repeat(300)}}),
            json!("not an object"),
        ] {
            assert!(
                matches!(m.apply(TRUSTED, &bad), Err(ProviderError::UserInfo(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn b19_c14_a_flag_counts_only_as_json_true_and_only_when_trusted() {
        let m = mapping(json!({"subject": "/id", "email": "/mail", "email_verified": "/ok"}));
        for flag in [
            json!("true"),
            json!(1),
            json!("yes"),
            json!(null),
            json!(false),
        ] {
            let c = m
                .apply(
                    TRUSTED,
                    &json!({"id": 1, "mail": "a@example.com", "ok": flag}),
                )
                .unwrap();
            assert_eq!(emails(&c), [("a@example.com", false)], "{flag}");
        }
        let doc = json!({"id": 1, "mail": "a@example.com", "ok": true});
        assert_eq!(
            emails(&m.apply(TRUSTED, &doc).unwrap()),
            [("a@example.com", true)]
        );
        assert_eq!(
            emails(&m.apply(UNTRUSTED, &doc).unwrap()),
            [("a@example.com", false)]
        );
        assert!(m.apply(TRUSTED, &doc).unwrap().emails[0].provider_verified);
    }

    #[test]
    fn without_a_flag_path_only_trust_email_vouches_for_the_address() {
        let m = mapping(json!({"subject": "/id", "email": "/mail"}));
        let doc = json!({"id": 1, "mail": "a@example.com"});
        assert_eq!(
            emails(&m.apply(TRUSTED, &doc).unwrap()),
            [("a@example.com", true)]
        );
        assert_eq!(
            emails(&m.apply(UNTRUSTED, &doc).unwrap()),
            [("a@example.com", false)]
        );
        assert!(!m.apply(TRUSTED, &doc).unwrap().emails[0].provider_verified);
    }

    #[test]
    fn list_entries_carry_their_own_flags_like_githubs_user_emails() {
        let m = mapping(json!({
            "subject": "/0/id", "email": "/1/*/email", "email_verified": "/1/*/verified",
            "name": "/0/name", "username": "/0/login", "picture": "/0/avatar_url"
        }));
        let doc = json!([
            {"id": 583231, "login": "octocat", "name": "Mona", "avatar_url": "https://a.example/p.png"},
            [
                {"email": "main@example.com", "verified": true},
                {"email": "unverified@example.com", "verified": false},
                {"email": "stringy@example.com", "verified": "true"},
                {"email": "MAIN@Example.com", "verified": false},
            ]
        ]);
        let c = m.apply(TRUSTED, &doc).unwrap();
        assert_eq!(c.subject.as_str(), "583231");
        assert_eq!(
            emails(&c),
            [
                ("main@example.com", true),
                ("unverified@example.com", false),
                ("stringy@example.com", false)
            ]
        );
        assert_eq!(c.profile.preferred_username.as_deref(), Some("octocat"));
        assert_eq!(
            c.profile.picture.as_deref(),
            Some("https://a.example/p.png")
        );
    }

    #[test]
    fn h05_h06_bad_addresses_and_phones_are_dropped_and_values_bounded() {
        let m = mapping(json!({
            "subject": "/id", "email": "/emails/*", "phone": "/phone", "name": "/name",
            "picture": "/picture"
        }));
        let huge = "n".repeat(100_000);
        let mut list: Vec<Value> = vec![
            json!("victim@example.com,attacker@evil.example"),
            json!("\"victim@example.com\"@evil.example"),
            json!("victim@example.com\r\nBcc: x@evil.example"),
            json!(42),
        ];
        list.extend((0..100).map(|i| json!(format!("u{i}@example.com"))));
        let doc = json!({
            "id": 1, "emails": list, "phone": "555-0100", "name": huge,
            "picture": "javascript:alert(1)"
        });
        let c = m.apply(TRUSTED, &doc).unwrap();
        assert_eq!(c.emails.len(), MAX_LIST_ENTRIES - 4);
        assert!(c.emails.iter().all(|e| e.email.as_str().starts_with('u')));
        assert!(c.phones.is_empty());
        assert!(c.profile.name.unwrap().len() <= 1024);
        assert_eq!(c.profile.picture, None);
        let doc = json!({"id": 1, "phone": "+1 202 555 0100"});
        let c = m.apply(TRUSTED, &doc).unwrap();
        assert_eq!(c.phones[0].phone.as_str(), "+12025550100");
        assert!(c.phones[0].verified, "no flag path: trust_phone vouches");
    }
}
