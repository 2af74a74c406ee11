-- Data that ever ran inside a vm guest may have been altered by the guest's root (roles, catalogs, files): it must
-- never be started by the process rung on the host. The mark follows restores and forks, and kept archives.
ALTER TABLE databases ADD COLUMN data_from_vm boolean NOT NULL DEFAULT false;
ALTER TABLE archives ADD COLUMN data_from_vm boolean NOT NULL DEFAULT false;
UPDATE databases SET data_from_vm = true WHERE isolation = 'vm';
UPDATE archives a SET data_from_vm = true FROM databases d WHERE a.database_id = d.id AND d.data_from_vm;
