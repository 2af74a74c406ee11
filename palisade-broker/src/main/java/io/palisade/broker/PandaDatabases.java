package io.palisade.broker;

import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.databind.JsonNode;
import io.palisade.broker.PandaHttp.Call;
import io.palisade.broker.SqlBroker.NoAccess;
import io.palisade.broker.pg.PgError;
import io.palisade.broker.pg.QueryResult;
import io.palisade.pgwire.PgServerException;
import io.palisade.spi.ServerDatabases;
import io.palisade.spi.TenantCredentials;
import java.io.IOException;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * PandaStack's {@code GET|POST v1/databases} and {@code DELETE v1/databases/{name}} under {@code broker_url}: the
 * databases inside the tenant's server. Listing runs as the tenant; creating and dropping go through
 * {@link ServerDatabases} (palisade's management user; the tenant's role has no CREATEDB) and only where the tenant
 * has a server of its own (process and vm rungs). On the shared {@code database} and {@code schema} rungs the list
 * shows only the tenant's own database and create/drop answer 403. Stateless apart from the broker.
 */
final class PandaDatabases {
    private static final Set<String> SYSTEM = Set.of("postgres", "template0", "template1");
    private static final String SHARED = "creating or dropping databases needs a server of the database's own (the "
            + "process or vm rung); this database is on a shared server: create another palisade database instead";

    private final SqlBroker broker;

    PandaDatabases(SqlBroker broker) {
        this.broker = broker;
    }

    int list(Call call, JsonGenerator json) throws PandaError, IOException, NoAccess {
        TenantCredentials tenant = call.tenant();
        boolean shared = call.backend().rewrites();
        // on a shared server only the tenant's own database, under the name in its URL; its neighbours stay unseen
        String sql = shared
                ? "SELECT current_database(), pg_encoding_to_char(encoding), datcollate, "
                        + "pg_database_size(current_database()) FROM pg_database WHERE datname = current_database()"
                // every database but the server's templates (one the tenant flagged IS_TEMPLATE is still its own)
                : "SELECT datname, pg_encoding_to_char(encoding), datcollate, CASE WHEN has_database_privilege("
                        + "datname, 'CONNECT') THEN pg_database_size(datname) END FROM pg_database "
                        + "WHERE datname NOT IN ('template0', 'template1') ORDER BY datname";
        QueryResult result = call.open(tenant.database()).execute(sql, List.of(), 10_000, 1 << 22,
                call.guard(PandaRequest.QUERY_TIMEOUT));
        json.writeStartObject();
        json.writeArrayFieldStart("databases");
        for (byte[] row : result.rows()) {
            json.writeStartObject();
            json.writeStringField("name", shared ? tenant.database() : QueryResult.value(row, 0));
            json.writeStringField("encoding", QueryResult.value(row, 1));
            json.writeStringField("collate", QueryResult.value(row, 2));
            String size = QueryResult.value(row, 3);
            if (size == null) {
                json.writeNullField("size_bytes");
            } else {
                json.writeNumberField("size_bytes", Long.parseLong(size));
            }
            json.writeEndObject();
        }
        json.writeEndArray();
        json.writeEndObject();
        return 200;
    }

    int create(Call call, JsonGenerator json) throws PandaError, IOException, NoAccess {
        JsonNode body = call.body();
        String name = PandaRequest.text(body, "name");
        if (name.isEmpty()) {
            throw PandaError.badRequest("name required");
        }
        PandaRequest.checkName(name);
        TenantCredentials tenant = call.tenant();
        String owner = PandaRequest.text(body, "owner");
        if (!owner.isEmpty() && !owner.equals(tenant.username())) {
            throw PandaError.badRequest("owner must be the database's role '" + tenant.username()
                    + "' (or left out): palisade makes no other role an owner");
        }
        if (call.isOwnDatabase(name) || SYSTEM.contains(name)) {
            throw PandaError.badRequest("database name " + name + " is taken: it names this server's own database");
        }
        ServerDatabases databases = writable(call);
        change(() -> databases.create(call.databaseId, name));
        json.writeStartObject();
        json.writeStringField("name", name);
        json.writeStringField("owner", tenant.username());
        json.writeBooleanField("created", true);
        json.writeEndObject();
        return 201;
    }

    int drop(Call call, JsonGenerator json) throws PandaError, IOException, NoAccess {
        String name = call.ctx.pathParam("name");
        PandaRequest.checkName(name);
        if (SYSTEM.contains(name)) {
            throw PandaError.of(403, "cannot drop system database");
        }
        if (call.isOwnDatabase(name)) {
            throw PandaError.of(403, "cannot drop " + name + ": it is this database's own; delete the palisade "
                    + "database with DELETE /v1/databases/{id} instead");
        }
        ServerDatabases databases = writable(call);
        broker.evict(call.databaseId);
        change(() -> databases.drop(call.databaseId, name));
        call.ctx.status(204);
        return 204;
    }

    private ServerDatabases writable(Call call) throws PandaError, NoAccess {
        if (call.backend().rewrites()) {
            throw PandaError.of(403, SHARED);
        }
        return broker.serverDatabases().orElseThrow(() ->
                PandaError.of(501, "creating and dropping databases is not available on this broker"));
    }

    private static void change(Runnable change) throws PandaError {
        try {
            change.run();
        } catch (PgServerException e) {
            Map<Character, String> fields = new LinkedHashMap<>(e.fields());
            throw PandaError.sql(new PgError(fields));
        }
    }
}
