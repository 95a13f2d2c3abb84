-- Why a manual link was offered (the linking reason), and whether the person may choose a
-- new account instead of linking.
ALTER TABLE link_flows ADD COLUMN reason TEXT NOT NULL DEFAULT 'manual_resolution';
ALTER TABLE link_flows ADD COLUMN allow_create BOOLEAN NOT NULL DEFAULT FALSE;
