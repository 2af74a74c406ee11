package io.palisade.logical;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.palisade.logical.SchemaScript.Extension;
import io.palisade.logical.SchemaScript.Step;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import io.palisade.testing.TestingDirectories;
import io.palisade.testing.TestingPostgres;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The tenant schema corpus (shared/corpus/tenant-schema.sql) plus this module's logical-corpus.sql, loaded by the
 * tenant role (no superuser) into its database's {@code public}, moved: into another database's {@code public} (a rung
 * of its own), into schema {@code tenant_abc} of a shared database with the shared extensions in {@code extensions}
 * (the schema rung), and from there back down into a third database. Each copy's fingerprint, data included, equals
 * the source's. One real PostgreSQL server for the class; every database and role on it.
 */
class TestSchemaMoves {
    private static final Source SOURCE = new Source("public", "app");
    private static final List<String> SHARED_EXTENSIONS = List.of("pg_trgm", "hstore", "citext", "btree_gist",
            "pgcrypto", "uuid-ossp", "unaccent", "fuzzystrmatch", "intarray", "ltree", "cube", "earthdistance",
            "tablefunc");

    private static TestingPostgres postgres;

    @BeforeAll
    static void loadCorpora() throws Exception {
        postgres = new TestingPostgres();
        try (Connection tenant = tenant("app"); Statement statement = tenant.createStatement()) {
            statement.execute(Files.readString(TestingDirectories.tenantSchemaCorpus()));
            statement.execute(resource("logical-corpus.sql"));
        }
        // what the corpus leaves that a move refuses (tested below on a copy of the corpus that keeps them)
        sql("app", "drop table scratch", "select lo_unlink(oid) from pg_largeobject_metadata");
    }

    @AfterAll
    static void stop() {
        if (postgres != null) {
            postgres.close();
        }
    }

    @Test
    void refusesTheLargeObjectAndTheUnloggedTableBeforeAMove() throws Exception {
        sql("postgres", "create database refusing owner app");
        try (Connection tenant = tenant("refusing"); Statement statement = tenant.createStatement()) {
            statement.execute(Files.readString(TestingDirectories.tenantSchemaCorpus()));
        }
        String largeObject = value("refusing", "select oid::text from pg_largeobject_metadata");
        try (Connection source = admin("refusing")) {
            List<Refusal> refusals = Refusals.find(source, SOURCE);
            assertThat(refusals).extracting(Refusal::object)
                    .containsExactlyInAnyOrder("table public.scratch", "large object " + largeObject);
            assertThat(refusals).allSatisfy(r -> assertThat(r.reason()).isNotBlank());
            assertThatThrownBy(() -> SchemaExtractor.extract(source, SOURCE, Target.ownDatabase("public", "app")))
                    .isInstanceOfSatisfying(PalisadeException.class,
                            e -> assertThat(e.errorCode()).isEqualTo(ErrorCode.CONFLICT))
                    .hasMessageContaining("table public.scratch").hasMessageContaining("large object " + largeObject)
                    .hasMessageContaining("nothing was moved");
        }
        try (Connection source = admin("app")) {
            assertThat(Refusals.find(source, SOURCE)).isEmpty();
        }
    }

    @Test
    void refusesWhatItCannotReproduce() throws Exception {
        sql("postgres", "create database odd owner app", "create role other_role");
        sql("odd",
                "create foreign data wrapper dummy_fdw",
                "create server dummy_server foreign data wrapper dummy_fdw",
                "create foreign table public.remote (a integer) server dummy_server",
                "alter foreign table public.remote owner to app",
                "create table public.not_mine (a integer)",
                "alter table public.not_mine owner to other_role",
                "create schema elsewhere authorization app");
        try (Connection tenant = tenant("odd"); Statement statement = tenant.createStatement()) {
            statement.execute("""
                    create table elsewhere.outside (a integer primary key);
                    create table shared_with (a integer);
                    grant select on shared_with to other_role;
                    create policy for_other on shared_with to other_role using (true);
                    create view looks_outside as select a from elsewhere.outside;
                    create table rules (a integer);
                    create rule no_delete as on delete to rules do instead nothing;
                    create aggregate total(integer) (sfunc = int4pl, stype = integer);
                    create function same(integer, integer) returns boolean language sql immutable as 'select $1 = $2';
                    create operator === (leftarg = integer, rightarg = integer, function = same);
                    create collation ci (locale = 'C');
                    create unlogged sequence scratch_seq;
                    create function on_ddl() returns event_trigger language plpgsql as $$ begin end $$;
                    """);
        }
        sql("odd", "create event trigger ddl_watch on ddl_command_end execute function public.on_ddl()");
        try (Connection source = admin("odd")) {
            List<String> objects = Refusals.find(source, SOURCE).stream().map(Refusal::object).toList();
            assertThat(objects).contains(
                    "foreign table public.remote",
                    "table public.not_mine (other_role)",
                    "schema elsewhere",
                    "table elsewhere.outside",
                    "table public.shared_with (other_role)",
                    "policy for_other on table public.shared_with",
                    "view public.looks_outside (table elsewhere.outside)",
                    "rule no_delete on table public.rules",
                    "function public.total(integer)",
                    "operator public.===(integer,integer)",
                    "collation public.ci",
                    "sequence public.scratch_seq",
                    "event trigger ddl_watch");
            assertThat(objects).noneMatch(o -> o.contains("same(") || o.contains("on_ddl"));
        }
    }

    @Test
    void movesToADatabaseOfItsOwn() throws Exception {
        sql("postgres", "create role tenant_own", "create database own owner tenant_own");
        Target target = Target.ownDatabase("public", "tenant_own");
        SchemaScript script = move("app", SOURCE, "own", target);

        assertThat(script.extensions()).extracting(Extension::name)
                .containsExactly("pg_trgm", "hstore", "citext", "btree_gist", "uuid-ossp", "ltree");
        assertSameFingerprint("app", SOURCE, "own", target);
        assertThat(value("own", "select string_agg(extname || ':' || extowner::regrole, ',' order by extname)"
                + " from pg_extension where extname <> 'plpgsql'")).isEqualTo("btree_gist:tenant_own,citext:tenant_own,"
                + "hstore:tenant_own,ltree:tenant_own,pg_trgm:tenant_own,uuid-ossp:tenant_own");

        // the fingerprint is not blind: a changed body, comment, privilege or row shows
        sql("own", "create or replace function public.widget_prefix() returns text language sql immutable"
                        + " as $$ select 'V-' $$",
                "comment on column public.widgets.weight is 'in pounds'",
                "grant insert on public.heavy_widgets to public",
                "update public.buckets set v = 'uno' where k = 1");
        Fingerprint changed = fingerprint("own", target.namespace(), target.role());
        assertThat(fingerprint("app", SOURCE.namespace(), SOURCE.role()).differencesFrom(changed))
                .anyMatch(d -> d.contains("routine widget_prefix()"))
                .anyMatch(d -> d.contains("comment column weight of table widgets"))
                .anyMatch(d -> d.contains("acl view heavy_widgets"))
                .anyMatch(d -> d.contains("data buckets_"))
                .hasSize(4);
    }

    @Test
    void movesUpToTheSchemaRungAndBackDown() throws Exception {
        sql("postgres", "create role tenant_abc", "create role tenant_down", "create database down owner tenant_down");
        sharedDatabase("tenants", "tenant_abc", "tenant_abc");
        String sharedObjects = "select (select count(*) from pg_class where relnamespace in ('public'::regnamespace,"
                + " 'extensions'::regnamespace)) || '/' || (select count(*) from pg_proc where pronamespace in"
                + " ('public'::regnamespace, 'extensions'::regnamespace))";
        String before = value("tenants", sharedObjects);

        Source onSchema = new Source("tenant_abc", "tenant_abc");
        Target schemaRung = new Target("tenant_abc", "tenant_abc", "extensions");
        move("app", SOURCE, "tenants", schemaRung);
        assertSameFingerprint("app", SOURCE, "tenants", schemaRung);
        assertThat(value("tenants", sharedObjects)).as("nothing lands in public or extensions").isEqualTo(before);

        // qualified names in bodies (static, dynamic, a routine's search_path) now point at the tenant's schema
        String calls = "select widget_count() || ',' || widget_count_dynamic() || ',' || secure_count() || ','"
                + " || order_total(1) || ',' || (select count(*) from widgets_heavier())";
        assertThat(value("tenants", "set role tenant_abc; set search_path = tenant_abc, extensions; " + calls))
                .isEqualTo(value("app", "set role app; " + calls)).isEqualTo("3,3,3,2500,1");

        Target down = Target.ownDatabase("public", "tenant_down");
        SchemaScript script = move("tenants", onSchema, "down", down);
        assertThat(script.steps()).extracting(Step::sql).noneMatch(sql -> sql.contains("tenant_abc"));
        assertSameFingerprint("app", SOURCE, "down", down);
        assertThat(value("down", "set role tenant_down; " + calls)).isEqualTo("3,3,3,2500,1");
    }

    @Test
    void replaysAllOrNothingAndOnlyIntoAnEmptyNamespace() throws Exception {
        sql("postgres", "create role tenant_half", "create database half owner tenant_half");
        Target target = Target.ownDatabase("public", "tenant_half");
        SchemaScript script;
        try (Connection source = admin("app")) {
            script = SchemaExtractor.extract(source, SOURCE, target);
        }
        List<Step> broken = new ArrayList<>(script.steps());
        broken.add(new Step("table late", "create table public.late (a no_such_type)"));
        SchemaScript failing = new SchemaScript(script.source(), target, script.extensions(), broken, List.of());
        try (Connection half = admin("half")) {
            assertThatThrownBy(() -> SchemaReplayer.replay(half, failing))
                    .isInstanceOf(PalisadeException.class)
                    .hasMessageContaining("step " + (broken.size() + script.extensions().size()))
                    .hasMessageContaining("(table late)")
                    .hasMessageContaining("no_such_type");
        }
        assertThat(value("half", "select count(*) from pg_class where relnamespace = 'public'::regnamespace"))
                .isEqualTo("0");
        assertThat(value("half", "select count(*) from pg_extension")).isEqualTo("1");

        SchemaScript missing = new SchemaScript(script.source(), target,
                List.of(new Extension("no_such_extension", "1.0"), new Extension("adminpack", "2.1")), List.of(),
                List.of());
        try (Connection half = admin("half")) {
            assertThatThrownBy(() -> SchemaReplayer.replay(half, missing))
                    .isInstanceOfSatisfying(PalisadeException.class,
                            e -> assertThat(e.errorCode()).isEqualTo(ErrorCode.CONFLICT))
                    .hasMessageContaining("no_such_extension 1.0 (not available on the target server)")
                    .hasMessageContaining("adminpack (only a superuser may install it");
        }

        sql("half", "create table public.squatter (a integer)");
        try (Connection half = admin("half")) {
            assertThatThrownBy(() -> SchemaReplayer.replay(half, script))
                    .isInstanceOf(PalisadeException.class)
                    .hasMessageContaining("already holds objects (table squatter");
        }
    }

    @Test
    void movesIntoAndOutOfANamespaceWhoseNameNeedsQuotes() throws Exception {
        sql("postgres", "create role \"Tenant Q\"", "create role tenant_out", "create database out owner tenant_out");
        sharedDatabase("quoted", "Tenant \"Q\"", "Tenant Q");
        Target quoted = new Target("Tenant \"Q\"", "Tenant Q", "extensions");
        move("app", SOURCE, "quoted", quoted);
        assertSameFingerprint("app", SOURCE, "quoted", quoted);
        assertThat(value("quoted", "select prosrc from pg_proc where proname = 'widget_count'"))
                .isEqualTo(" select count(*) from \"Tenant \"\"Q\"\"\".widgets ");

        Target out = Target.ownDatabase("public", "tenant_out");
        move("quoted", new Source(quoted.namespace(), quoted.role()), "out", out);
        assertSameFingerprint("app", SOURCE, "out", out);
    }

    /** Like a shared server's database for the schema rung: the shared extensions in {@code extensions}. */
    private static void sharedDatabase(String database, String schema, String role) throws SQLException {
        sql("postgres", "create database " + database);
        List<String> shared = new ArrayList<>(List.of("revoke all on schema public from public",
                "create schema extensions", "grant usage on schema extensions to public"));
        SHARED_EXTENSIONS.forEach(e -> shared.add("create extension \"" + e + "\" schema extensions"));
        shared.add("create schema \"" + schema.replace("\"", "\"\"") + "\" authorization \"" + role + "\"");
        sql(database, shared.toArray(String[]::new));
    }

    private static SchemaScript move(String fromDatabase, Source from, String toDatabase, Target to) throws Exception {
        try (Connection source = admin(fromDatabase); Connection target = admin(toDatabase)) {
            SchemaScript script = SchemaExtractor.extract(source, from, to);
            SchemaReplayer.replay(target, script);
            TestingCopy.copy(source, from.namespace(), target, to.namespace());
            SchemaReplayer.afterCopy(target, script);
            return script;
        }
    }

    private static void assertSameFingerprint(String sourceDatabase, Source source, String targetDatabase,
            Target target) throws SQLException {
        Fingerprint original = fingerprint(sourceDatabase, source.namespace(), source.role());
        Fingerprint copy = fingerprint(targetDatabase, target.namespace(), target.role());
        assertThat(original.differencesFrom(copy)).isEmpty();
        assertThat(original.entries()).hasSizeGreaterThan(450)
                .containsKeys("data widgets", "data events_2025", "data sequence invoice_no", "routine widget_count()",
                        "trigger measurements_us.measurements_check", "policy widgets.widgets_write",
                        "default privileges in schema r", "type numeric_span", "index events_2025_pkey");
        assertThat(original.entries().get("owner table widgets")).isEqualTo("<tenant>");
        assertThat(original.entries().get("data widgets")).startsWith("3 rows");
    }

    private static Fingerprint fingerprint(String database, String namespace, String role) throws SQLException {
        try (Connection connection = admin(database)) {
            return Fingerprint.of(connection, namespace, role);
        }
    }

    private static String url(String database) {
        return "jdbc:postgresql://" + postgres.endpoint() + "/" + database;
    }

    /** The tenant role, with the simple query protocol: scripts go to the server whole, as psql -f would send them. */
    private static Connection tenant(String database) throws SQLException {
        return DriverManager.getConnection(url(database) + "?preferQueryMode=simple", "app",
                postgres.credentials().password());
    }

    private static Connection admin(String database) throws SQLException {
        return DriverManager.getConnection(url(database), postgres.adminUser(), postgres.adminPassword());
    }

    private static void sql(String database, String... statements) throws SQLException {
        try (Connection connection = admin(database); Statement statement = connection.createStatement()) {
            for (String sql : statements) {
                statement.execute(sql);
            }
        }
    }

    private static String value(String database, String sql) throws SQLException {
        try (Connection connection = admin(database); Statement statement = connection.createStatement()) {
            boolean results = statement.execute(sql);
            while (!results) {
                if (statement.getUpdateCount() == -1) {
                    throw new IllegalStateException("no result from " + sql);
                }
                results = statement.getMoreResults();
            }
            try (ResultSet rs = statement.getResultSet()) {
                rs.next();
                return rs.getString(1);
            }
        }
    }

    private static String resource(String name) throws IOException {
        try (InputStream in = TestSchemaMoves.class.getResourceAsStream("/" + name)) {
            if (in == null) {
                throw new IOException("test resource " + name + " is missing");
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }
}
