//! The audit trail an operator reads: who signed in from where (the client's address, behind
//! trusted proxies only through the header they write, and its user agent), and every failed
//! sign-in with the `error_code` its app was given.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use braid_http::client_addr::ClientIpHeader;
use braid_http::settings::OnAmbiguity;
use support::USER_AGENT;
use support::flow::*;
use support::link::*;

/// `kind result reason ip user_agent detail client_id` of every audit row, oldest first.
fn rows(env: &Env) -> Vec<String> {
    env.app.db.texts(
        "SELECT kind || ' ' || COALESCE(result, '-') || ' ' || COALESCE(reason, '-') || ' ' \
         || COALESCE(ip, '-') || ' ' || COALESCE(user_agent, '-') || ' ' \
         || COALESCE(detail, '-') || ' ' || COALESCE(client_id, '-') AS t \
         FROM audit_events ORDER BY at, id",
    )
}

async fn callback_without_flow(env: &Env, headers: &[(&str, &str)]) -> Landing {
    // A browser that never started a sign-in here: no flow cookie.
    let mut req = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(USER_AGENT)
        .build()
        .unwrap()
        .get(env.url("/auth/connect/idp/callback?code=c&state=s"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    land(req.send().await.unwrap()).await
}

#[tokio::test]
async fn sign_ins_record_the_client_address_and_user_agent_and_failures_their_error_code() {
    let env = env().await;
    let landing = env.login_as("sub-1", "ann@example.com", true).await;
    assert_eq!(landing.status, 303, "{}", landing.body);
    assert_eq!(
        rows(&env),
        [format!(
            "federated_login skipped no_candidates 127.0.0.1 {USER_AGENT} - {CLIENT_ID}"
        )]
    );

    // The state the provider echoes is not this browser's: the flow was known, so the row
    // names its client.
    let upstream = env.start_default().await;
    let back = env.idp.authorize(&upstream).await.location;
    let pairs: Vec<(String, String)> = back
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "state" {
                "forged".into()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    let mut forged = back.clone();
    forged.query_pairs_mut().clear().extend_pairs(pairs);
    let landing = env.follow(&forged).await;
    assert_eq!(landing.status, 400, "{}", landing.body);

    let landing = callback_without_flow(&env, &[]).await;
    assert_eq!(landing.status, 400, "{}", landing.body);
    let all = rows(&env);
    assert_eq!(all.len(), 3, "{all:?}");
    assert_eq!(
        all[1],
        format!(
            "federated_login failed state_mismatch 127.0.0.1 {USER_AGENT} {{\"error_code\":\"flow_mismatch\"}} {CLIENT_ID}"
        )
    );
    assert_eq!(
        all[2],
        format!(
            "federated_login failed no_flow 127.0.0.1 {USER_AGENT} {{\"error_code\":\"flow_expired\"}} -"
        )
    );
}

#[tokio::test]
async fn a_refused_linking_decision_records_its_error_code_once() {
    let env = env_with(|s| s.account_linking.on_ambiguity = OnAmbiguity::Conflict).await;
    create_user(&env, "shared@example.com", None);
    user_with(&env, Some(("shared@example.com", false)), None);
    let landing = env.login_as("sub-1", "shared@example.com", true).await;
    assert_eq!(landing.status, 409, "{}", landing.body);
    assert_eq!(
        rows(&env),
        [format!(
            "federated_login conflict ambiguous_match 127.0.0.1 {USER_AGENT} {{\"error_code\":\"link_conflict\"}} {CLIENT_ID}"
        )]
    );
}

#[tokio::test]
async fn forwarded_addresses_count_only_from_a_trusted_proxy_and_only_in_its_header() {
    let spoof = [
        ("x-forwarded-for", "198.51.100.7"),
        ("forwarded", "for=192.0.2.1"),
    ];
    // No trusted proxies: whatever the client writes, the socket's address is recorded.
    let direct = env().await;
    callback_without_flow(&direct, &spoof).await;
    assert!(
        rows(&direct)[0].contains(" 127.0.0.1 "),
        "{:?}",
        rows(&direct)
    );

    // The peer (127.0.0.1) is a trusted proxy writing X-Forwarded-For.
    let proxied = env_with(|s| s.server.trusted_proxies = vec!["127.0.0.0/8".into()]).await;
    callback_without_flow(&proxied, &spoof).await;
    callback_without_flow(
        &proxied,
        &[("x-forwarded-for", "203.0.113.5, 198.51.100.8, 127.0.0.2")],
    )
    .await;
    let all = rows(&proxied);
    assert!(all[0].contains(" 198.51.100.7 "), "{all:?}");
    assert!(all[1].contains(" 198.51.100.8 "), "{all:?}");

    // The same proxy configured as writing RFC 7239 Forwarded.
    let forwarded = env_with(|s| {
        s.server.trusted_proxies = vec!["127.0.0.1".into()];
        s.server.client_ip_header = ClientIpHeader::Forwarded;
    })
    .await;
    callback_without_flow(&forwarded, &spoof).await;
    assert!(
        rows(&forwarded)[0].contains(" 192.0.2.1 "),
        "{:?}",
        rows(&forwarded)
    );
}
