-- Admin user search (`/admin/api/users`, the console): email and name prefixes are matched
-- with LIKE 'prefix%', which a text_pattern_ops index serves whatever the database collation.
CREATE INDEX user_emails_email_prefix ON user_emails(email text_pattern_ops);
CREATE INDEX users_display_name_lower ON users(lower(display_name) text_pattern_ops);
