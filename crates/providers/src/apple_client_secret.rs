//! Sign in with Apple's client secret: a short-lived ES256 JWT signed with the operator's
//! "Sign in with Apple" key (`team_id`, `key_id`, `private_key_file`). Braid signs a fresh
//! one for every token request, valid for five minutes, so no long-lived secret exists.

use crate::{ProviderError, ProviderSettings};
use braid_core::Secret;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

const LIFETIME_SECS: i64 = 300;

pub(crate) struct AppleSigningKey {
    team_id: String,
    key_id: String,
    key: EncodingKey,
}

impl std::fmt::Debug for AppleSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppleSigningKey")
            .field("team_id", &self.team_id)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct ClientSecretClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

impl AppleSigningKey {
    /// Reads the key named by the settings; `None` when the provider uses a configured secret.
    pub(crate) fn from_settings(
        settings: &ProviderSettings,
    ) -> Result<Option<Self>, ProviderError> {
        let (Some(team_id), Some(key_id), Some(path)) = (
            &settings.team_id,
            &settings.key_id,
            &settings.private_key_file,
        ) else {
            return Ok(None);
        };
        let pem = std::fs::read(path).map_err(|e| {
            ProviderError::Config(format!(
                "private_key_file: cannot read {}: {}",
                path.display(),
                e.kind()
            ))
        })?;
        Self::from_pem(team_id, key_id, &pem).map(Some)
    }

    pub(crate) fn from_pem(team_id: &str, key_id: &str, pem: &[u8]) -> Result<Self, ProviderError> {
        let key = EncodingKey::from_ec_pem(pem).map_err(|_| {
            ProviderError::Config("private_key_file: not a PKCS#8 EC (P-256) key".into())
        })?;
        Ok(Self {
            team_id: team_id.to_owned(),
            key_id: key_id.to_owned(),
            key,
        })
    }

    /// The client secret for one token request: `iss` = team, `sub` = client id (the
    /// Services ID), `aud` = Apple's issuer.
    pub(crate) fn client_secret(
        &self,
        client_id: &str,
        audience: &str,
        now: i64,
    ) -> Result<Secret, ProviderError> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.key_id.clone());
        let claims = ClientSecretClaims {
            iss: &self.team_id,
            sub: client_id,
            aud: audience,
            iat: now,
            exp: now + LIFETIME_SECS,
        };
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map(Secret::new)
            .map_err(|_| ProviderError::Config("cannot sign the Apple client secret".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use jsonwebtoken::{DecodingKey, Validation};

    fn pem(der: &[u8]) -> String {
        let b64 = STANDARD.encode(der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            lines.join("\n")
        )
    }

    #[test]
    fn apple_client_secret_is_an_es256_jwt_apple_can_verify() {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let pkcs8 = pair.to_pkcs8v1().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("AuthKey.p8");
        std::fs::write(&path, pem(pkcs8.as_ref())).unwrap();
        let mut settings = ProviderSettings::new(crate::Preset::Apple, "com.example.web");
        settings.team_id = Some("TEAM123456".into());
        settings.key_id = Some("KEY1234567".into());
        settings.private_key_file = Some(path);
        let key = AppleSigningKey::from_settings(&settings).unwrap().unwrap();
        let now = jsonwebtoken::get_current_timestamp() as i64;
        let secret = key
            .client_secret("com.example.web", "https://appleid.apple.com", now)
            .unwrap();

        // The uncompressed point, which is what jsonwebtoken's EC "DER" key holds.
        let public = pair.public_key().as_ref().to_vec();
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_audience(&["https://appleid.apple.com"]);
        validation.set_issuer(&["TEAM123456"]);
        let decoded = jsonwebtoken::decode::<serde_json::Value>(
            secret.expose(),
            &DecodingKey::from_ec_der(&public),
            &validation,
        )
        .unwrap();
        assert_eq!(decoded.header.kid.as_deref(), Some("KEY1234567"));
        assert_eq!(decoded.claims["sub"], "com.example.web");
        assert!(decoded.claims["exp"].as_i64().unwrap() <= now + 300);
    }

    #[test]
    fn an_unreadable_or_wrong_key_is_a_configuration_error() {
        let mut settings = ProviderSettings::new(crate::Preset::Apple, "c");
        settings.team_id = Some("T".into());
        settings.key_id = Some("K".into());
        settings.private_key_file = Some("/nonexistent/AuthKey.p8".into());
        assert!(matches!(
            AppleSigningKey::from_settings(&settings),
            Err(ProviderError::Config(_))
        ));
        assert!(matches!(
            AppleSigningKey::from_pem("T", "K", b"nope"),
            Err(ProviderError::Config(_))
        ));
    }
}
