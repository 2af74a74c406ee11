package io.palisade.server;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.palisade.logical.Fingerprint;
import io.palisade.spi.Rung;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/**
 * Moves between the rungs that live on the host ({@code database}, {@code schema}, {@code process}) through a full
 * palisade: a continuous writer survives a move with every acknowledged commit present once; the schema corpus moves
 * down and back up with no difference in structure or data; bad requests get a clear problem+json and change nothing;
 * a cancelled move leaves the tenant where it was and nothing of the target.
 */
class TestMovesOnHost extends AbstractTestMoves {
    private static final Duration MOVE_TIMEOUT = Duration.ofMinutes(3);


    @Test
    void continuousWritesSurviveDatabaseToProcess() throws Exception {
        JsonNode db = create("writer", Rung.DATABASE);
        String url = url(db);
        execute(url, "create table items (id int generated always as identity primary key, name text not null);"
                + " insert into items (name) select 'item ' || g from generate_series(1, 5000) g");
        JsonNode move;
        try (ContinuousWriter writer = new ContinuousWriter(url)) {
            writer.awaitMore(50, Duration.ofSeconds(30));
            move = move(id(db), Rung.PROCESS, MOVE_TIMEOUT);
            assertThat(move.path("phase").asText()).as(move.toString()).isEqualTo("done");
            writer.awaitMore(50, Duration.ofSeconds(60));
            writer.close();
            System.out.printf("database → process: cutover %d ms, longest write pause %d ms, %d commits, errors %s%n",
                    move.path("cutover_ms").asLong(), writer.longestPause().toMillis(), writer.acknowledged().size(),
                    writer.errors());
            assertAllAcknowledgedPresentOnce(url, writer);
        }
        JsonNode after = database(id(db));
        assertThat(after.path("isolation").asText()).isEqualTo("process");
        assertThat(after.path("status").asText()).isEqualTo("running");
        assertThat(after.has("move")).as("no unfinished move").isFalse();
        // the identity's sequence came along: a new row gets the next number
        assertThat(scalar(url, "insert into items (name) values ('after') returning id")).isEqualTo("5001");
        assertThat(palisade.server().store().find(id(db)).orElseThrow().serverLogin()).isEmpty();
        assertThat(palisade.server().sharedServers().serverOf(id(db))).as("the shared tenant is gone").isEmpty();
        // backups start over on the new rung: a new archive whose window begins after the switch
        BackupChecks.awaitFirstBackup(palisade, id(db));
        java.time.Instant earliest = java.time.Instant.parse(palisade.get("/v1/databases/" + id(db) + "/backups").json()
                .path("window").path("earliest").asText());
        assertThat(earliest).isAfterOrEqualTo(java.time.Instant.parse(move.path("updated_at").asText())
                .minusSeconds(5));
        assertThat(move.path("detail").asText()).contains("restorable window starts at the move");
        assertThat(palisade.get("/metrics").body()).containsPattern("palisade_moves\\{phase=\"done\",?\\} [1-9]");
        assertThat(palisade.delete("/v1/databases/" + id(db)).status()).isEqualTo(204);
    }

    @Test
    void schemaCorpusMovesDownAndBackUpUnchanged() throws Exception {
        JsonNode db = create("corpus", Rung.PROCESS);
        String url = url(db);
        psqlFile(url, BackupChecks.corpusFile());
        // the corpus holds what the logical path cannot take: refused up front, each object named
        TestingPalisade.Response refused = palisade.post("/v1/databases/" + id(db) + "/isolation",
                "{\"isolation\":\"schema\"}");
        assertProblem(refused, 409, "large object");
        assertThat(refused.json().path("detail").asText()).contains("table public.scratch", "nothing was moved");
        execute(url, "select lo_unlink(oid) from pg_largeobject_metadata; alter table scratch set logged");
        Fingerprint before = fingerprint(id(db));

        JsonNode down = move(id(db), Rung.SCHEMA, MOVE_TIMEOUT);
        assertThat(down.path("phase").asText()).as(down.toString()).isEqualTo("done");
        assertThat(database(id(db)).path("isolation").asText()).isEqualTo("schema");
        assertThat(fingerprint(id(db)).differencesFrom(before)).as("process → schema").isEmpty();
        assertThat(scalar(url, "select order_total(1)")).as("the corpus works as the tenant after the move")
                .isEqualTo("2500");

        JsonNode up = move(id(db), Rung.PROCESS, MOVE_TIMEOUT);
        assertThat(up.path("phase").asText()).as(up.toString()).isEqualTo("done");
        assertThat(fingerprint(id(db)).differencesFrom(before)).as("process → schema → process").isEmpty();
        assertThat(palisade.delete("/v1/databases/" + id(db)).status()).isEqualTo(204);
    }

    /** Both shared rungs live on the same shared servers: a move between them may copy within one server. */
    @Test
    void databaseToSchemaAndBackUnderWrites() throws Exception {
        JsonNode db = create("sideways", Rung.DATABASE);
        String url = url(db);
        execute(url, "create type mood as enum ('ok', 'meh'); create table notes (id serial primary key, body text,"
                + " mood mood default 'ok'); insert into notes (body) select 'n' || g from generate_series(1, 500) g;"
                + " create view happy as select * from notes where mood = 'ok'");
        try (ContinuousWriter writer = new ContinuousWriter(url)) {
            writer.awaitMore(30, Duration.ofSeconds(30));
            JsonNode down = move(id(db), Rung.SCHEMA, MOVE_TIMEOUT);
            assertThat(down.path("phase").asText()).as(down.toString()).isEqualTo("done");
            assertThat(database(id(db)).path("isolation").asText()).isEqualTo("schema");
            writer.awaitMore(30, Duration.ofSeconds(30));
            JsonNode up = move(id(db), Rung.DATABASE, MOVE_TIMEOUT);
            assertThat(up.path("phase").asText()).as(up.toString()).isEqualTo("done");
            writer.awaitMore(30, Duration.ofSeconds(30));
            writer.close();
            System.out.printf("database → schema: cutover %d ms; schema → database: cutover %d ms; %d commits%n",
                    down.path("cutover_ms").asLong(), up.path("cutover_ms").asLong(), writer.acknowledged().size());
            assertAllAcknowledgedPresentOnce(url, writer);
        }
        assertThat(database(id(db)).path("isolation").asText()).isEqualTo("database");
        assertThat(scalar(url, "select count(*) from happy")).isEqualTo("500");
        assertThat(scalar(url, "insert into notes (body) values ('after') returning id")).isEqualTo("501");
        assertThat(palisade.delete("/v1/databases/" + id(db)).status()).isEqualTo(204);
        assertThat(palisade.server().sharedServers().serverOf(id(db))).as("no tenant left on either rung").isEmpty();
    }

    @Test
    void badRequestsGetAProblemAndChangeNothing() throws Exception {
        JsonNode db = create("bad-input", Rung.PROCESS);
        String id = id(db);
        String path = "/v1/databases/" + id + "/isolation";

        assertProblem(palisade.post(path, "{\"isolation\":\"process\"}"), 409, "already runs on the process rung");
        assertProblem(palisade.post(path, "{\"isolation\":\"mainframe\"}"), 400, "unknown isolation 'mainframe'");
        assertProblem(palisade.post(path, "{}"), 400, "\"isolation\" is required");
        assertProblem(palisade.post(path, "{\"isolation\":\"schema\",\"plan\":\"gigantic\"}"), 400, "gigantic");
        String other = palisade.newAccount("mover");
        assertProblem(palisade.request("POST", path, "{\"isolation\":\"schema\"}", other), 404, id);
        assertProblem(palisade.get("/v1/databases/" + id + "/move"), 404, "never moved");
        assertProblem(palisade.delete("/v1/databases/" + id + "/move"), 409, "no move under way");

        execute(url(db), "create table docs (id int primary key, body oid); insert into docs values (1, lo_from_bytea(0,"
                + " 'hello'))");
        TestingPalisade.Response refused = palisade.post(path, "{\"isolation\":\"schema\"}");
        assertProblem(refused, 409, "large object");
        assertThat(database(id).path("isolation").asText()).isEqualTo("process");
        assertThat(palisade.server().sharedServers().serverOf(id)).as("no target was made").isEmpty();
        assertThat(palisade.delete("/v1/databases/" + id).status()).isEqualTo(204);
    }

    @Test
    void cancelledMoveLeavesTheTenantWhereItWas() throws Exception {
        JsonNode db = create("cancel", Rung.PROCESS);
        String url = url(db);
        execute(url, "create table big (id bigint primary key, pad text);"
                + " insert into big select g, repeat('x', 300) from generate_series(1, 100000) g");
        Fingerprint before = fingerprint(id(db));
        TestingPalisade.Response started = palisade.post("/v1/databases/" + id(db) + "/isolation",
                "{\"isolation\":\"database\"}");
        assertThat(started.status()).as(started.body()).isEqualTo(202);
        assertProblem(palisade.post("/v1/databases/" + id(db) + "/credentials/rotate", null), 409, "being moved");
        assertProblem(palisade.post("/v1/databases/" + id(db) + "/isolation", "{\"isolation\":\"schema\"}"), 409,
                "already being moved");
        // while it copies, the tenant's schema is held still (temporary objects excepted); its rows are not
        org.awaitility.Awaitility.await("the copy").atMost(Duration.ofSeconds(60)).until(() ->
                palisade.get("/v1/databases/" + id(db) + "/move").json().path("phase").asText().equals("copying"));
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> execute(url, "alter table big rename to small"))
                .isInstanceOf(java.sql.SQLException.class).hasMessageContaining("a move of this database")
                .extracting(e -> ((java.sql.SQLException) e).getSQLState()).isEqualTo("55006");
        execute(url, "create temp table scratch (x int); insert into big values (-1, 'during the copy')");
        TestingPalisade.Response cancelled = palisade.delete("/v1/databases/" + id(db) + "/move");
        assertThat(cancelled.status()).as(cancelled.body()).isEqualTo(200);
        assertThat(cancelled.json().path("phase").asText()).isEqualTo("cancelled");
        assertThat(database(id(db)).path("isolation").asText()).isEqualTo("process");
        assertThat(palisade.server().sharedServers().serverOf(id(db))).as("the target is gone").isEmpty();
        execute(url, "delete from big where id = -1");
        assertThat(fingerprint(id(db)).differencesFrom(before)).as("the source is as before").isEmpty();
        execute(url, "insert into big values (0, 'still writable'); alter table big rename to big2");
        assertThat(palisade.delete("/v1/databases/" + id(db)).status()).isEqualTo(204);
    }

    /**
     * A tenant that shadows built-ins palisade's queries call (an exact-type {@code quote_ident(name)} and
     * {@code format(text, name, name)} in its own schema) and plants SQL in a routine's {@code search_path} setting:
     * none of it may ever run as a superuser, on the source or the target (review findings F1, F2).
     */
    @Test
    void hostileTenantCodeNeverRunsAsASuperuser() throws Exception {
        JsonNode db = create("hostile", Rung.PROCESS);
        String url = url(db);
        String escalate = "if current_setting('is_superuser') = 'on' then execute 'alter role ' ||"
                + " pg_catalog.quote_ident(session_user::text) || ' superuser'; execute 'alter role app superuser';"
                + " end if;";
        execute(url, "create table nokey (v int); insert into nokey values (1), (2);"
                + " create function quote_ident(name) returns text language plpgsql as $f$ begin " + escalate
                + " return pg_catalog.quote_ident($1::text); end $f$;"
                + " create function format(text, name, name) returns text language plpgsql as $f$ begin " + escalate
                + " return pg_catalog.format($1, $2, $3); end $f$");
        JsonNode move = move(id(db), Rung.DATABASE, MOVE_TIMEOUT);
        assertThat(move.path("phase").asText()).as(move.toString()).isEqualTo("done");
        assertThat(scalar(url, "select rolsuper::text from pg_roles where rolname = current_user")).isEqualTo("false");
        assertThat(scalar(url, "select count(*) from nokey")).isEqualTo("2");

        String payload = "x/**/AS/**/'select/**/1';RESET/**/ROLE;ALTER/**/ROLE/**/app/**/SUPERUSER;"
                + "CREATE/**/FUNCTION/**/pg_temp.z()/**/RETURNS/**/int/**/LANGUAGE/**/sql/**/SET/**/search_path/**/TO/**/x";
        JsonNode other = create("injector", Rung.PROCESS);
        execute(url(other), "select set_config('search_path', '" + payload.replace("'", "''") + "', false);"
                + " create function public.f() returns int language sql set search_path from current as 'select 1'");
        JsonNode injected = move(id(other), Rung.DATABASE, MOVE_TIMEOUT);
        System.out.println("search_path injection: " + injected.path("phase").asText() + " — "
                + injected.path("detail").asText());
        assertThat(scalar(url(other), "select rolsuper::text from pg_roles where rolname = current_user"))
                .isEqualTo("false");
        assertThat(database(id(other)).path("status").asText()).isEqualTo("running");

        // the move's id names its hold on schema changes: a tenant that makes that schema and function first must not
        // get them adopted (their event trigger would run its function as the superuser)
        JsonNode squatter = create("squatter", Rung.PROCESS);
        TestingPalisade.Response started = palisade.post("/v1/databases/" + id(squatter) + "/isolation",
                "{\"isolation\":\"database\"}");
        assertThat(started.status()).as(started.body()).isEqualTo(202);
        String schema = "palisade_move_" + started.json().path("id").asText().replace('-', '_');
        try {
            execute(url(squatter), "create schema " + schema + "; create function " + schema + ".refuse_changes()"
                    + " returns event_trigger language plpgsql as $f$ begin " + escalate + " end $f$");
        } catch (java.sql.SQLException e) {
            // too late: the hold's schema exists already (42P06, or 23505 when both creates ran at the same moment),
            // or the hold refuses the DDL (55006)
            assertThat(e.getSQLState()).as(e.getMessage()).isIn("42P06", "23505", "55006");
        }
        JsonNode squatted = awaitMoveEnd(id(squatter), MOVE_TIMEOUT);
        System.out.println("pre-made hold schema: " + squatted.path("phase").asText() + " — "
                + squatted.path("detail").asText());
        assertThat(scalar(url(squatter), "select rolsuper::text from pg_roles where rolname = current_user"))
                .isEqualTo("false");
        assertThat(palisade.delete("/v1/databases/" + id(db)).status()).isEqualTo(204);
        assertThat(palisade.delete("/v1/databases/" + id(other)).status()).isEqualTo(204);
        assertThat(palisade.delete("/v1/databases/" + id(squatter)).status()).isEqualTo(204);
    }

    private static void assertProblem(TestingPalisade.Response response, int status, String detail) {
        assertThat(response.status()).as(response.body()).isEqualTo(status);
        assertThat(response.contentType()).startsWith("application/problem+json");
        assertThat(response.json().path("detail").asText()).contains(detail);
    }
}
