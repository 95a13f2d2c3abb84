DROP TABLE account_codes;
DROP TABLE local_accounts;
