//! OpenID Connect providers (oidc, google, microsoft, apple): discovery with a cached key set,
//! ID token validation, UserInfo, and the login flow that ties them together.

pub(crate) mod discovery;
pub(crate) mod flow;
pub(crate) mod id_token;
pub(crate) mod userinfo;
