//! The UserInfo endpoint (Core §5.3). Its answer is used only if its `sub` is the ID token's
//! (§5.3.2, B16).

use crate::ProviderError;
use crate::http_client::HttpClient;
use crate::oidc::id_token::Claims;
use crate::upstream_json::Document;
use braid_core::Subject;
use serde_json::Value;
use url::Url;

pub(crate) async fn fetch_userinfo(
    http: &HttpClient,
    endpoint: &Url,
    access_token: &str,
    subject: &Subject,
) -> Result<Claims, ProviderError> {
    let Value::Object(claims) = http
        .get_json(
            endpoint,
            access_token,
            "application/json",
            &[],
            Document::UserInfo,
        )
        .await?
    else {
        return Err(ProviderError::UserInfo("not a JSON object"));
    };
    match claims.get("sub") {
        Some(Value::String(sub)) if sub == subject.as_str() => Ok(claims),
        _ => Err(ProviderError::UserInfo("sub differs from the ID token's")),
    }
}
