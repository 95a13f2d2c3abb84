DROP INDEX users_display_name_lower;
DROP INDEX user_emails_email_prefix;
