-- The shared rungs (database, schema): the role and database the shared server knows a tenant by. NULL on the rungs with
-- a server of their own, where the server knows the tenant by the names in its URL.
ALTER TABLE databases ADD COLUMN server_user text;
ALTER TABLE databases ADD COLUMN server_database text;
ALTER TABLE databases ADD CONSTRAINT databases_server_login_whole
    CHECK ((server_user IS NULL) = (server_database IS NULL));
