-- scale to zero: per-database idle period before suspend (NULL = never)
ALTER TABLE databases ADD COLUMN suspend_after_seconds integer;
