-- Admin user search (`/admin/api/users`, the console): names by case-insensitive prefix.
-- Emails are searched on user_emails_email (prefix as a byte range, which SQLite's BINARY
-- collation serves from the index) and users are paged by their time-ordered id.
CREATE INDEX users_display_name_lower ON users(lower(display_name));
