package io.palisade.api;

import static java.util.Objects.requireNonNull;

import io.palisade.pgwire.PgConnection;
import io.palisade.pgwire.Row;
import io.palisade.pgwire.Sql;
import io.palisade.pgwire.TenantBootstrap;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import io.palisade.spi.Rung;
import io.palisade.spi.ServerDatabases;
import io.palisade.spi.ServerLogin;
import io.palisade.store.DatabaseRecord;
import io.palisade.store.MetadataStore;
import java.time.Duration;
import java.util.List;
import java.util.function.Supplier;

/**
 * Creates and drops databases inside a tenant's own server for the broker's {@code v1/databases} routes, connected as
 * the instance's management user: each new database is owned by the tenant's role (which has no CREATEDB of its own),
 * and only a database that role owns can be dropped. Refused (403) on the shared rungs, whose servers other tenants
 * use, and past {@value #MAX_DATABASES} databases on one server; creating is refused (409) while the database is being
 * moved, since a move copies the tenant's one database and removes the server. Names are quoted with {@link Sql}; the
 * broker has validated them. Thread-safe (no state of its own).
 */
public final class TenantServerDatabases implements ServerDatabases {
    static final int MAX_DATABASES = 100;
    private static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(15);
    /** The session advisory lock (in the server's {@code postgres} database) that serializes creates. */
    private static final long CREATE_LOCK = 0x70616c6973616465L;

    private final MetadataStore store;
    private final Supplier<DatabaseService> service;

    public TenantServerDatabases(MetadataStore store, Supplier<DatabaseService> service) {
        this.store = requireNonNull(store, "store is null");
        this.service = requireNonNull(service, "service is null");
    }

    @Override
    public void create(String databaseId, String name) {
        DatabaseRecord record = ownServer(databaseId);
        // a move copies the one tenant database and then removes this server: one made now would be lost
        MoveRoutes.unfinished(service(), databaseId).ifPresent(move -> {
            throw new PalisadeException(ErrorCode.CONFLICT, "database " + databaseId + " is being moved (move "
                    + move.get("id") + ", " + move.get("phase") + "); create " + name + " once the move has ended");
        });
        try (PgConnection admin = PgConnection.open(service().adminAccess(databaseId), "postgres", CONNECT_TIMEOUT)) {
            // one create at a time per server, so that concurrent ones cannot all pass the count (held until close)
            admin.execute("SET lock_timeout = '" + CONNECT_TIMEOUT.toSeconds() + "s'");
            admin.simpleQuery("SELECT pg_catalog.pg_advisory_lock(" + CREATE_LOCK + ")");
            // the tenant owns its databases and may flag one IS_TEMPLATE: only the server's own templates are left out
            List<Row> count = admin.simpleQuery("SELECT count(*) FROM pg_catalog.pg_database"
                    + " WHERE datname NOT IN ('template0', 'template1')");
            if (Long.parseLong(count.getFirst().get(0)) >= MAX_DATABASES) {
                throw new PalisadeException(ErrorCode.QUOTA_EXCEEDED, "database " + databaseId + " already has "
                        + MAX_DATABASES + " databases on its server; drop one before creating " + name);
            }
            admin.execute(TenantBootstrap.createDatabase(name, role(record)));
        }
    }

    @Override
    public void drop(String databaseId, String name) {
        DatabaseRecord record = ownServer(databaseId);
        try (PgConnection admin = PgConnection.open(service().adminAccess(databaseId), "postgres", CONNECT_TIMEOUT)) {
            List<Row> owner = admin.simpleQuery("SELECT pg_catalog.pg_get_userbyid(datdba) FROM pg_catalog.pg_database"
                    + " WHERE datname = " + Sql.quoteLiteral(name));
            if (owner.isEmpty()) {
                return; // as PandaStack's DROP DATABASE IF EXISTS
            }
            if (!owner.getFirst().get(0).equals(role(record)) || name.equals(record.database())) {
                throw new PalisadeException(ErrorCode.QUOTA_EXCEEDED, "database " + name + " is not one the tenant's "
                        + "role made; only databases created through the broker's v1/databases can be dropped");
            }
            // a database flagged IS_TEMPLATE (its owner may) cannot be dropped as it is
            admin.execute("ALTER DATABASE " + Sql.quoteIdent(name) + " IS_TEMPLATE false");
            admin.execute("DROP DATABASE " + Sql.quoteIdent(name) + " WITH (FORCE)");
        }
    }

    private DatabaseRecord ownServer(String databaseId) {
        DatabaseRecord record = store.find(databaseId).orElseThrow(() ->
                new PalisadeException(ErrorCode.NOT_FOUND, "database " + databaseId + " not found"));
        if (record.isolation() == Rung.DATABASE || record.isolation() == Rung.SCHEMA) {
            throw new PalisadeException(ErrorCode.QUOTA_EXCEEDED, "database " + databaseId + " is on the shared "
                    + record.isolation().wireName() + " rung: databases can be created only on a server of its own");
        }
        return record;
    }

    private static String role(DatabaseRecord record) {
        return record.serverLogin().map(ServerLogin::user).orElse(record.username());
    }

    private DatabaseService service() {
        DatabaseService ready = service.get();
        if (ready == null) {
            throw new PalisadeException(ErrorCode.NOT_READY, "palisade is starting; retry in a moment");
        }
        return ready;
    }
}
