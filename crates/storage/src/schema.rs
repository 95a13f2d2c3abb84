// Mirrors migrations/{sqlite,postgres}; only MultiConnection-portable SQL types are used.

diesel::table! {
    users (id) {
        id -> Text,
        display_name -> Nullable<Text>,
        disabled -> Bool,
        is_admin -> Bool,
        created_at -> BigInt,
        updated_at -> BigInt,
        external_id -> Nullable<Text>,
    }
}

diesel::table! {
    user_emails (id) {
        id -> Text,
        user_id -> Text,
        email -> Text,
        verified_at -> Nullable<BigInt>,
        is_primary -> Bool,
        created_at -> BigInt,
    }
}

diesel::table! {
    user_phones (id) {
        id -> Text,
        user_id -> Text,
        phone -> Text,
        verified_at -> Nullable<BigInt>,
        created_at -> BigInt,
    }
}

diesel::table! {
    identities (id) {
        id -> Text,
        user_id -> Text,
        provider -> Text,
        issuer -> Text,
        subject -> Text,
        claims -> Text,
        created_at -> BigInt,
        last_login_at -> BigInt,
    }
}

diesel::table! {
    credentials (user_id) {
        user_id -> Text,
        password_hash -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    used_login_flows (expires_at, jti) {
        expires_at -> BigInt,
        jti -> Binary,
    }
}

diesel::table! {
    link_flows (id_hash) {
        id_hash -> Binary,
        provider -> Text,
        issuer -> Text,
        subject -> Text,
        identity -> Text,
        candidates -> Text,
        selected_user_id -> Nullable<Text>,
        stage -> Text,
        client_id -> Text,
        redirect_uri -> Text,
        app_state -> Nullable<Text>,
        code_challenge -> Nullable<Text>,
        code_challenge_method -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
        expires_at -> BigInt,
        consumed_at -> Nullable<BigInt>,
        reason -> Text,
        allow_create -> Bool,
    }
}

diesel::table! {
    verification_codes (id) {
        id -> Text,
        flow_id_hash -> Binary,
        user_id -> Text,
        channel -> Text,
        destination -> Text,
        code_hash -> Binary,
        attempts -> Integer,
        max_attempts -> Integer,
        created_at -> BigInt,
        expires_at -> BigInt,
        consumed_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    exchange_codes (code_hash) {
        code_hash -> Binary,
        client_id -> Text,
        redirect_uri -> Text,
        code_challenge -> Nullable<Text>,
        code_challenge_method -> Nullable<Text>,
        user_id -> Text,
        auth_context -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        consumed_at -> Nullable<BigInt>,
        issued_family_id -> Nullable<Text>,
        issued_access_jti -> Nullable<Text>,
    }
}

diesel::table! {
    refresh_tokens (token_hash) {
        token_hash -> Binary,
        id -> Text,
        family_id -> Text,
        client_id -> Text,
        user_id -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        family_expires_at -> BigInt,
        rotated_at -> Nullable<BigInt>,
        revoked_at -> Nullable<BigInt>,
        identity_id -> Nullable<Text>,
        auth_time -> Nullable<BigInt>,
    }
}

diesel::table! {
    link_tickets (ticket_hash) {
        ticket_hash -> Binary,
        user_id -> Text,
        client_id -> Text,
        redirect_uri -> Text,
        app_state -> Nullable<Text>,
        code_challenge -> Nullable<Text>,
        created_at -> BigInt,
        expires_at -> BigInt,
        consumed_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    revoked_access_tokens (jti) {
        jti -> Text,
        expires_at -> BigInt,
    }
}

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        alg -> Text,
        private_key -> Binary,
        public_jwk -> Text,
        generation -> BigInt,
        created_at -> BigInt,
        activate_at -> BigInt,
        retire_at -> Nullable<BigInt>,
        expire_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    server_secrets (name) {
        name -> Text,
        value -> Binary,
        created_at -> BigInt,
    }
}

diesel::table! {
    sessions (id_hash) {
        id_hash -> Binary,
        state -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    audit_events (at, id) {
        id -> Text,
        at -> BigInt,
        kind -> Text,
        result -> Nullable<Text>,
        reason -> Nullable<Text>,
        user_id -> Nullable<Text>,
        provider -> Nullable<Text>,
        subject -> Nullable<Text>,
        client_id -> Nullable<Text>,
        ip -> Nullable<Text>,
        detail -> Nullable<Text>,
        user_agent -> Nullable<Text>,
    }
}

diesel::table! {
    outbox (id) {
        id -> Text,
        channel -> Text,
        recipient -> Text,
        subject -> Nullable<Text>,
        body -> Text,
        created_at -> BigInt,
        attempts -> Integer,
        next_attempt_at -> BigInt,
        sent_at -> Nullable<BigInt>,
        last_error -> Nullable<Text>,
        html_body -> Nullable<Text>,
        gave_up_at -> Nullable<BigInt>,
        expires_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    rate_limits (bucket) {
        bucket -> Text,
        window_start -> BigInt,
        hits -> Integer,
        expires_at -> BigInt,
    }
}

diesel::table! {
    local_accounts (email) {
        email -> Text,
        user_id -> Text,
        created_at -> BigInt,
        verified_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    account_codes (id) {
        id -> Text,
        user_id -> Text,
        purpose -> Text,
        email -> Text,
        code_hash -> Binary,
        attempts -> Integer,
        max_attempts -> Integer,
        created_at -> BigInt,
        expires_at -> BigInt,
        consumed_at -> Nullable<BigInt>,
    }
}

diesel::joinable!(user_emails -> users (user_id));
diesel::joinable!(user_phones -> users (user_id));
diesel::joinable!(identities -> users (user_id));
diesel::joinable!(credentials -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    user_emails,
    user_phones,
    identities,
    credentials,
    used_login_flows,
    link_flows,
    verification_codes,
    exchange_codes,
    refresh_tokens,
    link_tickets,
    revoked_access_tokens,
    signing_keys,
    server_secrets,
    sessions,
    audit_events,
    outbox,
    rate_limits,
    local_accounts,
    account_codes,
);
