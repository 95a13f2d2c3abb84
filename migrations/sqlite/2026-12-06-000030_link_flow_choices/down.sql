ALTER TABLE link_flows DROP COLUMN allow_create;
ALTER TABLE link_flows DROP COLUMN reason;
