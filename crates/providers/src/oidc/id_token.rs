//! ID token validation (OpenID Connect Core §3.1.3.7, SECURITY-CASES group B).
//!
//! The header is read by hand so that nothing in it but `alg` and `kid` is ever used: `alg`
//! must be the one pinned for the provider (never `none`), `crit` is refused (Braid
//! understands no extension), and key-carrying headers (`jwk`, `jku`, `x5u`, `x5c`) are
//! ignored: keys come only from the provider's JWKS. The signature is checked by jsonwebtoken
//! (aws-lc-rs); the claims by [`validate_claims`], a pure function of the claims and a clock.

use crate::error::IdTokenError;
use crate::preset_endpoints::MicrosoftTenant;
use crate::upstream_json::{Document, refuse_duplicate_members};
use aws_lc_rs::signature::{self as lc, ParsedPublicKey, RsaPublicKeyComponents};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use braid_core::Subject;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256, Sha384, Sha512};
use std::sync::OnceLock;

/// Clock skew tolerated on `exp` and `nbf`.
const LEEWAY_SECS: i64 = 60;
/// B12: `iat` may be at most this far in the future...
const MAX_IAT_FUTURE_SECS: i64 = 300;
/// ...and at most this old.
const MAX_IAT_AGE_SECS: i64 = 24 * 3600;
/// Larger tokens are refused before any parsing (the HTTP body cap is the outer limit).
const MAX_TOKEN_BYTES: usize = 64 * 1024;

pub(crate) type Claims = Map<String, Value>;

/// The ID token algorithms Braid verifies: asymmetric only, never `none` or an HMAC (whose
/// "key" would be the client secret), and not ES512 (jsonwebtoken has no P-521). An
/// operator may pin one of them (`id_token_alg`); otherwise a provider's declared ones count.
pub(crate) fn parse_algorithm(name: &str) -> Option<Algorithm> {
    Some(match name {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        _ => return None,
    })
}

pub(crate) fn algorithm_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::EdDSA => "EdDSA",
        // HMAC and anything newer are never pinned: no name matches.
        _ => "",
    }
}

/// One of a provider's signature keys (from its JWKS), parsed into aws-lc's form on first use
/// and kept so: building an RSA key from `n` and `e` (its Montgomery constants) cost several
/// times the signature check itself, on every login.
pub(crate) struct VerificationKey {
    pub jwk: Jwk,
    parsed: OnceLock<Option<(Algorithm, ParsedPublicKey)>>,
}

impl std::fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerificationKey")
            .field("kid", &self.jwk.common.key_id)
            .finish_non_exhaustive()
    }
}

impl From<Jwk> for VerificationKey {
    fn from(jwk: Jwk) -> Self {
        Self {
            jwk,
            parsed: OnceLock::new(),
        }
    }
}

impl VerificationKey {
    /// `signature`: base64url, as in the compact JWS.
    fn verifies(&self, alg: Algorithm, message: &[u8], signature: &str) -> bool {
        // A provider pins one algorithm, so the first one asked for is the one kept.
        let parsed = self
            .parsed
            .get_or_init(|| parse_key(&self.jwk, alg).map(|key| (alg, key)));
        match parsed {
            Some((kept, key)) if *kept == alg => URL_SAFE_NO_PAD
                .decode(signature)
                .is_ok_and(|raw| key.verify_sig(message, &raw).is_ok()),
            // Another algorithm, or a key aws-lc's parser does not take: jsonwebtoken decides.
            _ => DecodingKey::from_jwk(&self.jwk).is_ok_and(|key| {
                jsonwebtoken::crypto::verify(signature, message, &key, alg).unwrap_or(false)
            }),
        }
    }
}

/// The JWK as an aws-lc public key for `alg`; `None` when the key does not fit `alg`.
fn parse_key(jwk: &Jwk, alg: Algorithm) -> Option<ParsedPublicKey> {
    let b64 = |s: &str| URL_SAFE_NO_PAD.decode(s).ok();
    match (&jwk.algorithm, alg) {
        (AlgorithmParameters::RSA(rsa), _) => {
            let params: &'static lc::RsaParameters = match alg {
                Algorithm::RS256 => &lc::RSA_PKCS1_2048_8192_SHA256,
                Algorithm::RS384 => &lc::RSA_PKCS1_2048_8192_SHA384,
                Algorithm::RS512 => &lc::RSA_PKCS1_2048_8192_SHA512,
                Algorithm::PS256 => &lc::RSA_PSS_2048_8192_SHA256,
                Algorithm::PS384 => &lc::RSA_PSS_2048_8192_SHA384,
                Algorithm::PS512 => &lc::RSA_PSS_2048_8192_SHA512,
                _ => return None,
            };
            let (n, e) = (b64(&rsa.n)?, b64(&rsa.e)?);
            RsaPublicKeyComponents { n: &n, e: &e }
                .to_parsed_public_key(params)
                .ok()
        }
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES256 | Algorithm::ES384) => {
            let params: &'static lc::EcdsaVerificationAlgorithm = match (alg, &ec.curve) {
                (Algorithm::ES256, EllipticCurve::P256) => &lc::ECDSA_P256_SHA256_FIXED,
                (Algorithm::ES384, EllipticCurve::P384) => &lc::ECDSA_P384_SHA384_FIXED,
                _ => return None,
            };
            let mut point = vec![0x04];
            point.extend(b64(&ec.x)?);
            point.extend(b64(&ec.y)?);
            ParsedPublicKey::new(params, point).ok()
        }
        (AlgorithmParameters::OctetKeyPair(okp), Algorithm::EdDSA)
            if okp.curve == EllipticCurve::Ed25519 =>
        {
            ParsedPublicKey::new(&lc::ED25519, b64(&okp.x)?).ok()
        }
        _ => None,
    }
}

/// A compact JWS split into its parts; nothing in it is trusted yet.
pub(crate) struct UnverifiedJwt<'a> {
    header: Map<String, Value>,
    claims: Claims,
    signing_input: &'a str,
    signature: &'a str,
}

fn decode_json_part(part: &str, document: Document) -> Result<Map<String, Value>, IdTokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| IdTokenError::Malformed("not base64url"))?;
    refuse_duplicate_members(&bytes).map_err(|_| IdTokenError::DuplicateMember(document))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(IdTokenError::Malformed("not a JSON object")),
    }
}

impl<'a> UnverifiedJwt<'a> {
    pub(crate) fn parse(raw: &'a str) -> Result<Self, IdTokenError> {
        if raw.len() > MAX_TOKEN_BYTES {
            return Err(IdTokenError::Malformed("too large"));
        }
        let mut parts = raw.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(IdTokenError::Malformed("not a compact JWS"));
        };
        Ok(Self {
            header: decode_json_part(header, Document::IdTokenHeader)?,
            claims: decode_json_part(payload, Document::IdTokenClaims)?,
            signing_input: &raw[..header.len() + 1 + payload.len()],
            signature,
        })
    }

    /// The header's `alg`, as sent (only for telling the operator what the provider uses).
    pub(crate) fn header_alg(&self) -> Option<&str> {
        self.header.get("alg").and_then(Value::as_str)
    }

    /// Checks `alg` (one of `allowed`) and `crit`, and returns the algorithm and the `kid`.
    pub(crate) fn check_header(
        &self,
        allowed: &[Algorithm],
    ) -> Result<(Algorithm, Option<&str>), IdTokenError> {
        let alg = match self.header.get("alg") {
            Some(Value::String(name)) => allowed
                .iter()
                .copied()
                .find(|a| algorithm_name(*a) == name)
                .ok_or(IdTokenError::Algorithm)?,
            _ => return Err(IdTokenError::Algorithm),
        };
        if self.header.contains_key("crit") {
            return Err(IdTokenError::CriticalHeader);
        }
        match self.header.get("kid") {
            None => Ok((alg, None)),
            Some(Value::String(kid)) => Ok((alg, Some(kid))),
            Some(_) => Err(IdTokenError::Malformed("kid is not a string")),
        }
    }

    /// Verifies the signature with the provider's keys: the one named by `kid`, or, without a
    /// `kid`, any key fit for the token's algorithm. `UnknownKey` when `kid` names no key.
    /// Returns the algorithm the token was verified with.
    pub(crate) fn verify_signature(
        &self,
        keys: &[VerificationKey],
        allowed: &[Algorithm],
    ) -> Result<Algorithm, IdTokenError> {
        let (alg, kid) = self.check_header(allowed)?;
        let candidates: Vec<&VerificationKey> = match kid {
            Some(kid) => keys
                .iter()
                .filter(|k| k.jwk.common.key_id.as_deref() == Some(kid))
                .collect(),
            None => keys.iter().collect(),
        };
        if candidates.is_empty() {
            return Err(IdTokenError::UnknownKey);
        }
        let verified = candidates
            .into_iter()
            .filter(|key| fits(&key.jwk, alg))
            .any(|key| key.verifies(alg, self.signing_input.as_bytes(), self.signature));
        if verified {
            Ok(alg)
        } else {
            Err(IdTokenError::Signature)
        }
    }

    pub(crate) fn into_claims(self) -> Claims {
        self.claims
    }

    pub(crate) fn claims(&self) -> &Claims {
        &self.claims
    }
}

/// A key may verify `alg` if it is not an encryption key, is of the type `alg` needs (RSA for
/// RS*/PS*, the matching curve for ES*/EdDSA), and, when it names an algorithm, names this
/// one: the key set, not the token, decides how a key is used.
pub(crate) fn fits(jwk: &Jwk, alg: Algorithm) -> bool {
    let usable = matches!(
        jwk.common.public_key_use,
        None | Some(PublicKeyUse::Signature)
    );
    let same_alg = jwk
        .common
        .key_algorithm
        .as_ref()
        .is_none_or(|k| *k == KeyAlgorithm::from(alg));
    let right_type = match (&jwk.algorithm, alg) {
        (
            AlgorithmParameters::RSA(_),
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512,
        ) => true,
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES256) => {
            ec.curve == EllipticCurve::P256
        }
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES384) => {
            ec.curve == EllipticCurve::P384
        }
        (AlgorithmParameters::OctetKeyPair(okp), Algorithm::EdDSA) => {
            okp.curve == EllipticCurve::Ed25519
        }
        _ => false,
    };
    usable && same_alg && right_type
}

/// The issuer an ID token must carry.
#[derive(Debug, Clone)]
pub(crate) enum ExpectedIssuer {
    Exact(String),
    /// Google documents both forms of its issuer.
    Google,
    /// Microsoft multi-tenant: `{authority}/{tid}/v2.0` with the token's own `tid`.
    MicrosoftTenant {
        authority: String,
        tenant: MicrosoftTenant,
    },
}

/// Everything an ID token is checked against.
pub(crate) struct Expectations<'a> {
    pub issuer: &'a ExpectedIssuer,
    pub client_id: &'a str,
    pub nonce: &'a str,
    pub alg: Algorithm,
    pub access_token: &'a str,
    /// Seconds since the Unix epoch.
    pub now: i64,
}

/// What a valid ID token establishes.
#[derive(Debug)]
pub(crate) struct ValidatedClaims {
    pub issuer: String,
    pub subject: Subject,
}

fn number(claims: &Claims, name: &str) -> Result<Option<i64>, IdTokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
            .map(Some)
            .ok_or(IdTokenError::Malformed("time claim is not a number")),
    }
}

fn check_issuer(claims: &Claims, expected: &ExpectedIssuer) -> Result<String, IdTokenError> {
    let Some(Value::String(iss)) = claims.get("iss") else {
        return Err(IdTokenError::Issuer);
    };
    let ok = match expected {
        ExpectedIssuer::Exact(e) => iss == e,
        ExpectedIssuer::Google => {
            iss == "https://accounts.google.com" || iss == "accounts.google.com"
        }
        ExpectedIssuer::MicrosoftTenant { authority, tenant } => {
            let Some(Value::String(tid)) = claims.get("tid") else {
                return Err(IdTokenError::Issuer);
            };
            let tid_ok = tid.len() == 36 && tid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
            let allowed = match tenant {
                MicrosoftTenant::Common => true,
                MicrosoftTenant::Organizations => {
                    tid != crate::preset_endpoints::MICROSOFT_CONSUMERS_TENANT
                }
            };
            tid_ok && allowed && *iss == format!("{authority}/{tid}/v2.0")
        }
    };
    if !ok {
        return Err(IdTokenError::Issuer);
    }
    Ok(match expected {
        ExpectedIssuer::Google => "https://accounts.google.com".to_owned(),
        _ => iss.clone(),
    })
}

fn check_audience(claims: &Claims, client_id: &str) -> Result<(), IdTokenError> {
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(list)) => list
            .iter()
            .map(|v| v.as_str().ok_or(IdTokenError::Audience("not a string")))
            .collect::<Result<_, _>>()?,
        _ => return Err(IdTokenError::Audience("missing")),
    };
    if !audiences.contains(&client_id) {
        return Err(IdTokenError::Audience("not issued to this client"));
    }
    if audiences.iter().any(|a| *a != client_id) {
        return Err(IdTokenError::Audience("untrusted additional audience"));
    }
    match claims.get("azp") {
        None => Ok(()),
        Some(Value::String(azp)) if azp == client_id => Ok(()),
        Some(_) => Err(IdTokenError::AuthorizedParty),
    }
}

fn check_times(claims: &Claims, now: i64) -> Result<(), IdTokenError> {
    let exp = number(claims, "exp")?.ok_or(IdTokenError::Expired)?;
    if now >= exp.saturating_add(LEEWAY_SECS) {
        return Err(IdTokenError::Expired);
    }
    let iat = number(claims, "iat")?.ok_or(IdTokenError::IssuedAt("missing"))?;
    if iat > now.saturating_add(MAX_IAT_FUTURE_SECS) {
        return Err(IdTokenError::IssuedAt("in the future"));
    }
    if iat < now.saturating_sub(MAX_IAT_AGE_SECS) {
        return Err(IdTokenError::IssuedAt("too old"));
    }
    if let Some(nbf) = number(claims, "nbf")?
        && nbf > now.saturating_add(LEEWAY_SECS)
    {
        return Err(IdTokenError::NotYetValid);
    }
    Ok(())
}

fn check_nonce(claims: &Claims, expected: &str) -> Result<(), IdTokenError> {
    match claims.get("nonce") {
        None => Err(IdTokenError::Nonce("missing")),
        Some(Value::String(n)) if !expected.is_empty() && n == expected => Ok(()),
        Some(_) => Err(IdTokenError::Nonce("does not belong to this login")),
    }
}

fn check_subject(claims: &Claims) -> Result<Subject, IdTokenError> {
    match claims.get("sub") {
        None => Err(IdTokenError::Subject("missing")),
        Some(Value::String(s)) => {
            Subject::parse(s).map_err(|_| IdTokenError::Subject("not a valid subject"))
        }
        Some(_) => Err(IdTokenError::Subject("not a string")),
    }
}

/// `at_hash` (Core §3.1.3.8): base64url of the left half of the hash of the access token,
/// the hash being the one of the token's `alg` (SHA-512 for EdDSA/Ed25519).
pub(crate) fn access_token_hash(access_token: &str, alg: Algorithm) -> String {
    let digest: Vec<u8> = match alg {
        Algorithm::RS384 | Algorithm::PS384 | Algorithm::ES384 => {
            Sha384::digest(access_token.as_bytes()).to_vec()
        }
        Algorithm::RS512 | Algorithm::PS512 | Algorithm::EdDSA => {
            Sha512::digest(access_token.as_bytes()).to_vec()
        }
        _ => Sha256::digest(access_token.as_bytes()).to_vec(),
    };
    URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
}

fn check_access_token_hash(
    claims: &Claims,
    access_token: &str,
    alg: Algorithm,
) -> Result<(), IdTokenError> {
    match claims.get("at_hash") {
        None => Ok(()),
        Some(Value::String(h)) if *h == access_token_hash(access_token, alg) => Ok(()),
        Some(_) => Err(IdTokenError::AccessTokenHash),
    }
}

/// Every claim check, in the order of Core §3.1.3.7.
pub(crate) fn validate_claims(
    claims: &Claims,
    expect: &Expectations<'_>,
) -> Result<ValidatedClaims, IdTokenError> {
    let issuer = check_issuer(claims, expect.issuer)?;
    check_audience(claims, expect.client_id)?;
    check_times(claims, expect.now)?;
    check_nonce(claims, expect.nonce)?;
    let subject = check_subject(claims)?;
    check_access_token_hash(claims, expect.access_token, expect.alg)?;
    Ok(ValidatedClaims { issuer, subject })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;

    fn good() -> Claims {
        let Value::Object(map) = json!({
            "iss": "https://idp.example",
            "aud": "braid",
            "sub": "user-1",
            "exp": NOW + 300,
            "iat": NOW,
            "nonce": "n-123",
            "at_hash": access_token_hash("at-1", Algorithm::RS256),
        }) else {
            unreachable!()
        };
        map
    }

    fn check(claims: &Claims) -> Result<ValidatedClaims, IdTokenError> {
        let issuer = ExpectedIssuer::Exact("https://idp.example".into());
        validate_claims(
            claims,
            &Expectations {
                issuer: &issuer,
                client_id: "braid",
                nonce: "n-123",
                alg: Algorithm::RS256,
                access_token: "at-1",
                now: NOW,
            },
        )
    }

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn key_from(jwk: Value) -> VerificationKey {
        VerificationKey::from(serde_json::from_value::<Jwk>(jwk).unwrap())
    }

    /// The parsed-once path for EC and OKP keys: a good signature verifies (twice: the second
    /// time from the kept key), a tampered message does not, and a key asked for another
    /// algorithm than the one kept is not accepted for it.
    #[test]
    fn es256_and_eddsa_keys_verify_from_the_kept_parse() {
        use aws_lc_rs::rand::SystemRandom;
        use aws_lc_rs::signature::{
            ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
        };
        let message = b"header.payload";
        let ec = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let point = ec.public_key().as_ref().to_vec();
        let ec_key = key_from(json!({
            "kty": "EC", "crv": "P-256", "kid": "ec",
            "x": b64(&point[1..33]), "y": b64(&point[33..65]),
        }));
        let ec_sig = b64(ec.sign(&SystemRandom::new(), message).unwrap().as_ref());
        assert!(ec_key.verifies(Algorithm::ES256, message, &ec_sig));
        assert!(ec_key.verifies(Algorithm::ES256, message, &ec_sig));
        assert!(!ec_key.verifies(Algorithm::ES256, b"header.payloaD", &ec_sig));
        assert!(!ec_key.verifies(Algorithm::ES384, message, &ec_sig));

        let ed = Ed25519KeyPair::generate().unwrap();
        let ed_key = key_from(json!({
            "kty": "OKP", "crv": "Ed25519", "kid": "ed",
            "x": b64(ed.public_key().as_ref()),
        }));
        let ed_sig = b64(ed.sign(message).as_ref());
        assert!(ed_key.verifies(Algorithm::EdDSA, message, &ed_sig));
        assert!(ed_key.verifies(Algorithm::EdDSA, message, &ed_sig));
        assert!(!ed_key.verifies(Algorithm::EdDSA, b"header.payloaD", &ed_sig));
        assert!(!ed_key.verifies(Algorithm::EdDSA, message, "not base64url!"));
        assert!(!ed_key.verifies(Algorithm::ES256, message, &ed_sig));
    }

    fn with(name: &str, value: Value) -> Claims {
        let mut c = good();
        c.insert(name.into(), value);
        c
    }

    fn without(name: &str) -> Claims {
        let mut c = good();
        c.remove(name);
        c
    }

    #[test]
    fn a_good_token_passes() {
        let v = check(&good()).unwrap();
        assert_eq!(v.subject.as_str(), "user-1");
        assert_eq!(v.issuer, "https://idp.example");
    }

    #[test]
    fn b08_issuer_must_match_exactly() {
        for iss in [
            json!("https://evil.example"),
            json!("https://idp.example/"),
            json!(1),
        ] {
            assert_eq!(check(&with("iss", iss)).unwrap_err(), IdTokenError::Issuer);
        }
        assert_eq!(check(&without("iss")).unwrap_err(), IdTokenError::Issuer);
    }

    #[test]
    fn b09_audience_must_be_ours_alone() {
        assert!(matches!(
            check(&with("aud", json!("other"))),
            Err(IdTokenError::Audience(_))
        ));
        assert!(matches!(
            check(&with("aud", json!(["braid", "other-app"]))),
            Err(IdTokenError::Audience(_))
        ));
        assert!(matches!(
            check(&with("aud", json!([]))),
            Err(IdTokenError::Audience(_))
        ));
        assert!(matches!(
            check(&without("aud")),
            Err(IdTokenError::Audience(_))
        ));
        assert!(check(&with("aud", json!(["braid"]))).is_ok());
    }

    #[test]
    fn b10_azp_if_present_must_be_us() {
        assert_eq!(
            check(&with("azp", json!("other-client"))).unwrap_err(),
            IdTokenError::AuthorizedParty
        );
        assert!(check(&with("azp", json!("braid"))).is_ok());
    }

    #[test]
    fn b11_expiry_with_one_minute_leeway() {
        assert_eq!(
            check(&with("exp", json!(NOW - 61))).unwrap_err(),
            IdTokenError::Expired
        );
        assert_eq!(
            check(&with("exp", json!(NOW - 60))).unwrap_err(),
            IdTokenError::Expired
        );
        assert!(check(&with("exp", json!(NOW - 59))).is_ok());
        assert_eq!(check(&without("exp")).unwrap_err(), IdTokenError::Expired);
        assert!(matches!(
            check(&with("exp", json!("soon"))),
            Err(IdTokenError::Malformed(_))
        ));
    }

    #[test]
    fn b12_iat_window_is_five_minutes_ahead_and_a_day_back() {
        assert!(matches!(
            check(&with("iat", json!(NOW + 3600))),
            Err(IdTokenError::IssuedAt(_))
        ));
        assert!(matches!(
            check(&with("iat", json!(NOW - 24 * 3600 - 1))),
            Err(IdTokenError::IssuedAt(_))
        ));
        assert!(matches!(
            check(&without("iat")),
            Err(IdTokenError::IssuedAt(_))
        ));
        assert!(check(&with("iat", json!(NOW + 299))).is_ok());
        assert!(check(&with("iat", json!(NOW - 23 * 3600))).is_ok());
    }

    #[test]
    fn b13_nbf_in_the_future_is_refused() {
        assert_eq!(
            check(&with("nbf", json!(NOW + 600))).unwrap_err(),
            IdTokenError::NotYetValid
        );
        assert!(check(&with("nbf", json!(NOW))).is_ok());
    }

    #[test]
    fn a15_a16_nonce_must_be_present_and_ours() {
        assert_eq!(
            check(&without("nonce")).unwrap_err(),
            IdTokenError::Nonce("missing")
        );
        assert!(matches!(
            check(&with("nonce", json!("n-other"))),
            Err(IdTokenError::Nonce(_))
        ));
        assert!(matches!(
            check(&with("nonce", json!(123))),
            Err(IdTokenError::Nonce(_))
        ));
    }

    #[test]
    fn b14_bad_subjects_are_refused() {
        for sub in [
            json!(""),
            json!("a".repeat(256)),
            json!(123),
            json!("abc\u{0000}def"),
            json!(null),
        ] {
            assert!(matches!(
                check(&with("sub", sub)),
                Err(IdTokenError::Subject(_))
            ));
        }
        assert!(matches!(
            check(&without("sub")),
            Err(IdTokenError::Subject(_))
        ));
    }

    #[test]
    fn b15_at_hash_is_checked_when_present() {
        assert_eq!(
            check(&with("at_hash", json!("AAAAAAAAAAAAAAAAAAAAAA"))).unwrap_err(),
            IdTokenError::AccessTokenHash
        );
        assert!(check(&without("at_hash")).is_ok());
    }

    #[test]
    fn b15_at_hash_matches_the_openid_example() {
        // OpenID Connect Core, Appendix A.3 (RS256).
        assert_eq!(
            access_token_hash(
                "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y",
                Algorithm::RS256
            ),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }

    #[test]
    fn b08_microsoft_issuer_follows_the_tokens_tenant() {
        let tid = "72f988bf-86f1-41af-91ab-2d7cd011db47";
        let expect_common = ExpectedIssuer::MicrosoftTenant {
            authority: "https://login.microsoftonline.com".into(),
            tenant: MicrosoftTenant::Common,
        };
        let run = |claims: &Claims, issuer: &ExpectedIssuer| {
            validate_claims(
                claims,
                &Expectations {
                    issuer,
                    client_id: "braid",
                    nonce: "n-123",
                    alg: Algorithm::RS256,
                    access_token: "at-1",
                    now: NOW,
                },
            )
        };
        let mut c = with(
            "iss",
            json!(format!("https://login.microsoftonline.com/{tid}/v2.0")),
        );
        c.insert("tid".into(), json!(tid));
        assert_eq!(
            run(&c, &expect_common).unwrap().issuer,
            format!("https://login.microsoftonline.com/{tid}/v2.0")
        );
        // iss tenant differs from tid
        c.insert("tid".into(), json!("00000000-0000-0000-0000-000000000001"));
        assert_eq!(run(&c, &expect_common).unwrap_err(), IdTokenError::Issuer);
        // no tid at all
        c.remove("tid");
        assert_eq!(run(&c, &expect_common).unwrap_err(), IdTokenError::Issuer);
        // personal accounts are not allowed on `organizations`
        let consumers = crate::preset_endpoints::MICROSOFT_CONSUMERS_TENANT;
        let mut c = with(
            "iss",
            json!(format!(
                "https://login.microsoftonline.com/{consumers}/v2.0"
            )),
        );
        c.insert("tid".into(), json!(consumers));
        assert!(run(&c, &expect_common).is_ok());
        let orgs = ExpectedIssuer::MicrosoftTenant {
            authority: "https://login.microsoftonline.com".into(),
            tenant: MicrosoftTenant::Organizations,
        };
        assert_eq!(run(&c, &orgs).unwrap_err(), IdTokenError::Issuer);
    }

    #[test]
    fn google_issuer_has_two_documented_forms() {
        let run = |iss: &str| {
            validate_claims(
                &with("iss", json!(iss)),
                &Expectations {
                    issuer: &ExpectedIssuer::Google,
                    client_id: "braid",
                    nonce: "n-123",
                    alg: Algorithm::RS256,
                    access_token: "at-1",
                    now: NOW,
                },
            )
        };
        assert_eq!(
            run("accounts.google.com").unwrap().issuer,
            "https://accounts.google.com"
        );
        assert!(run("https://accounts.google.com").is_ok());
        assert!(run("https://accounts.google.com.evil.example").is_err());
    }

    fn jwt(header: Value, claims: Value) -> String {
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string()),
            URL_SAFE_NO_PAD.encode("sig")
        )
    }

    #[test]
    fn b01_b03_header_alg_must_be_the_pinned_one() {
        for alg in ["none", "None", "HS256", "RS512", "PS256", "ES256"] {
            let raw = jwt(json!({"alg": alg}), json!({}));
            let token = UnverifiedJwt::parse(&raw).unwrap();
            assert_eq!(
                token.check_header(&[Algorithm::RS256]).unwrap_err(),
                IdTokenError::Algorithm,
                "{alg}"
            );
        }
        let raw = jwt(json!({"kid": "k"}), json!({}));
        assert_eq!(
            UnverifiedJwt::parse(&raw)
                .unwrap()
                .check_header(&[Algorithm::RS256])
                .unwrap_err(),
            IdTokenError::Algorithm
        );
    }

    #[test]
    fn the_header_alg_must_be_one_of_the_allowed_ones() {
        let allowed = [Algorithm::RS256, Algorithm::ES256];
        for (alg, expected) in [("RS256", Algorithm::RS256), ("ES256", Algorithm::ES256)] {
            let raw = jwt(json!({"alg": alg}), json!({}));
            let token = UnverifiedJwt::parse(&raw).unwrap();
            assert_eq!(token.check_header(&allowed).unwrap().0, expected);
        }
        for alg in ["none", "HS256", "PS256", "es256"] {
            let raw = jwt(json!({"alg": alg}), json!({}));
            let token = UnverifiedJwt::parse(&raw).unwrap();
            assert_eq!(
                token.check_header(&allowed).unwrap_err(),
                IdTokenError::Algorithm,
                "{alg}"
            );
        }
    }

    #[test]
    fn a_key_fits_only_the_algorithms_of_its_own_type_and_alg() {
        let rsa: Jwk =
            serde_json::from_value(json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"})).unwrap();
        assert!(fits(&rsa, Algorithm::RS256) && fits(&rsa, Algorithm::PS384));
        assert!(!fits(&rsa, Algorithm::ES256) && !fits(&rsa, Algorithm::EdDSA));
        let rs256_only: Jwk =
            serde_json::from_value(json!({"kty": "RSA", "alg": "RS256", "n": "AQAB", "e": "AQAB"}))
                .unwrap();
        assert!(fits(&rs256_only, Algorithm::RS256) && !fits(&rs256_only, Algorithm::PS256));
        let p256: Jwk =
            serde_json::from_value(json!({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}))
                .unwrap();
        assert!(fits(&p256, Algorithm::ES256) && !fits(&p256, Algorithm::ES384));
        assert!(!fits(&p256, Algorithm::RS256));
        let encryption: Jwk =
            serde_json::from_value(json!({"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"}))
                .unwrap();
        assert!(!fits(&encryption, Algorithm::RS256));
    }

    #[test]
    fn a_repeated_member_in_the_header_or_the_claims_is_refused() {
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","alg":"none"}"#);
        let claims = URL_SAFE_NO_PAD.encode(r#"{"sub":"a"}"#);
        assert_eq!(
            UnverifiedJwt::parse(&format!("{header}.{claims}.sig")).err(),
            Some(IdTokenError::DuplicateMember(Document::IdTokenHeader))
        );
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256"}"#);
        let claims =
            URL_SAFE_NO_PAD.encode(r#"{"sub":"a","address":{"country":"DE","country":"FR"}}"#);
        assert_eq!(
            UnverifiedJwt::parse(&format!("{header}.{claims}.sig")).err(),
            Some(IdTokenError::DuplicateMember(Document::IdTokenClaims))
        );
    }

    #[test]
    fn b06_crit_is_refused() {
        let raw = jwt(
            json!({"alg": "RS256", "crit": ["bork"], "bork": 1}),
            json!({}),
        );
        let token = UnverifiedJwt::parse(&raw).unwrap();
        assert_eq!(
            token.check_header(&[Algorithm::RS256]).unwrap_err(),
            IdTokenError::CriticalHeader
        );
    }

    #[test]
    fn b04_a_kid_not_in_the_key_set_is_an_unknown_key() {
        let raw = jwt(json!({"alg": "RS256", "kid": "nope"}), json!({}));
        let token = UnverifiedJwt::parse(&raw).unwrap();
        assert_eq!(
            token
                .verify_signature(&[], &[Algorithm::RS256])
                .unwrap_err(),
            IdTokenError::UnknownKey
        );
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for raw in ["", "a.b", "a.b.c.d", "!!.e30.sig", &"a".repeat(70_000)] {
            assert!(
                matches!(UnverifiedJwt::parse(raw), Err(IdTokenError::Malformed(_))),
                "{raw:.20}"
            );
        }
        let raw = format!(
            "{}.{}.sig",
            URL_SAFE_NO_PAD.encode("[]"),
            URL_SAFE_NO_PAD.encode("{}")
        );
        assert!(UnverifiedJwt::parse(&raw).is_err());
    }
}
