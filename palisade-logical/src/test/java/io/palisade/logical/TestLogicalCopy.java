package io.palisade.logical;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.palisade.logical.CopyProgress.TableState;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import io.palisade.spi.PostgresVersion;
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
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * {@link LogicalCopy} between two real PostgreSQL 16 servers with {@code wal_level = logical}: the tenant schema corpus
 * (shared/corpus/tenant-schema.sql and logical-corpus.sql, without what a move refuses) in its own database's
 * {@code public} on server A is moved up into schema {@code tenant_abc} of a shared-style database on server B, then
 * back down into a database of its own on A, each time while a writer commits continuously (synchronous commit,
 * counting acknowledged commits). After each move the fingerprints, data included, are equal, every acknowledged commit
 * is on the target exactly once, and nothing of the copy is left on either server. A cancel in the middle of the
 * initial copy leaves both servers as they were.
 */
class TestLogicalCopy {
    private static final Map<String, String> LOGICAL = Map.of("wal_level", "logical");
    private static final List<String> SHARED_EXTENSIONS = List.of("pg_trgm", "hstore", "citext", "btree_gist",
            "pgcrypto", "uuid-ossp", "unaccent", "fuzzystrmatch", "intarray", "ltree", "cube", "earthdistance",
            "tablefunc");

    private static TestingPostgres serverA;
    private static TestingPostgres serverB;

    @BeforeAll
    static void start() throws Exception {
        serverA = new TestingPostgres(PostgresVersion.DEFAULT, LOGICAL);
        serverB = new TestingPostgres(PostgresVersion.DEFAULT, LOGICAL);
        try (Connection tenant = DriverManager.getConnection(url(serverA, "app") + "?preferQueryMode=simple", "app",
                        serverA.credentials().password());
                Statement statement = tenant.createStatement()) {
            statement.execute(Files.readString(TestingDirectories.tenantSchemaCorpus()));
            statement.execute(resource("logical-corpus.sql"));
            // the writer's table: no primary key, so the copy must give it a replica identity for the updates
            statement.execute("create table commits (id bigint generated always as identity, n bigint not null,"
                    + " note text)");
        }
        // what the corpus leaves that a move refuses (see TestSchemaMoves)
        sql(serverA, "app", "drop table scratch", "select lo_unlink(oid) from pg_largeobject_metadata");
    }

    @AfterAll
    static void stop() {
        for (TestingPostgres server : new TestingPostgres[] {serverA, serverB}) {
            if (server != null) {
                server.close();
            }
        }
    }

    @Test
    void movesUpToASchemaAndBackDownWhileAWriterCommits() throws Exception {
        sql(serverB, "postgres", "create role tenant_abc");
        sharedDatabase(serverB, "tenants", "tenant_abc");
        Source own = new Source("public", "app");
        Target onSchema = new Target("tenant_abc", "tenant_abc", "extensions");
        move(new CopyPlan("up1", own, "app", serverA.endpoint(), onSchema), serverA, serverB, "tenants");
        assertThat(value(serverB, "tenants", "select count(*) from pg_class"
                + " where relnamespace = 'public'::regnamespace"))
                .as("the shared database's public held the tables only during the copy").isEqualTo("0");

        sql(serverA, "postgres", "create role tenant_home", "create database home owner tenant_home");
        Target home = Target.ownDatabase("public", "tenant_home");
        move(new CopyPlan("down1", new Source("tenant_abc", "tenant_abc"), "tenants", serverB.endpoint(), home),
                serverB, serverA, "home");
        assertThat(value(serverA, "home", "select count(*) from pg_namespace where nspname = 'tenant_abc'"))
                .as("the staging schema created for the copy is gone").isEqualTo("0");
    }

    @Test
    void cancelInTheMiddleOfTheCopyLeavesBothServersAsTheyWere() throws Exception {
        sql(serverA, "postgres", "create database bulky owner app");
        sql(serverA, "bulky", "set role app",
                "create table big (id bigint, pad text)",
                "insert into big select g, repeat('x', 300) from generate_series(1, 300000) g",
                "create table guarded (id integer primary key, owner_name text)",
                "alter table guarded enable row level security",
                "alter table guarded force row level security",
                "create policy mine on guarded using (owner_name = current_user)",
                "insert into guarded values (1, 'app')",
                "create sequence counter",
                "select nextval('counter')");
        sql(serverB, "postgres", "create role tenant_bulk");
        sharedDatabase(serverB, "bulk", "tenant_bulk");
        Source source = new Source("public", "app");
        Target target = new Target("tenant_bulk", "tenant_bulk", "extensions");
        Fingerprint before = fingerprint(serverA, "bulky", source.namespace(), source.role());
        CopyPlan plan = new CopyPlan("cancelled", source, "bulky", serverA.endpoint(), target);
        try (Connection from = admin(serverA, "bulky"); Connection to = admin(serverB, "bulk")) {
            SchemaReplayer.replay(to, SchemaExtractor.extract(from, source, target));
            LogicalCopy copy = LogicalCopy.start(from, to, plan);
            await().atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofMillis(20)).until(() ->
                    copy.progress().tables().get("big") == TableState.DATA_COPY
                            && value(serverA, "bulky", "select count(*) from pg_replication_slots").equals("2"));
            CopyProgress midway = copy.progress();
            assertThat(midway.copied()).isFalse();
            assertThat(midway.totalBytes()).isGreaterThan(100_000_000L);
            assertThat(midway.copiedBytes()).isLessThan(midway.totalBytes());

            copy.cancel();
            copy.cancel();
            assertThatThrownBy(copy::progress).isInstanceOfSatisfying(PalisadeException.class,
                    e -> assertThat(e.errorCode()).isEqualTo(ErrorCode.CONFLICT)).hasMessageContaining("cancelled");
        }
        assertNothingLeft(serverA, "bulky", serverB, "bulk", plan);
        assertThat(fingerprint(serverA, "bulky", source.namespace(), source.role()).differencesFrom(before)).isEmpty();
        // no publication left: the table without replica identity takes updates again
        sql(serverA, "bulky", "update big set pad = 'y' where id = 1");
        assertThat(value(serverB, "bulk", "select string_agg(c.relname || ':' || n.nspname || ':'"
                + " || c.relforcerowsecurity, ',' order by c.relname) from pg_class c join pg_namespace n"
                + " on n.oid = c.relnamespace where c.relname in ('big', 'guarded')"))
                .as("the target's tables are back in their schema, row level security forced again")
                .isEqualTo("big:tenant_bulk:false,guarded:tenant_bulk:true");
    }

    @Test
    void refusesASourceWithoutLogicalWalAndChangesNothing() throws Exception {
        try (TestingPostgres replica = new TestingPostgres();
                Connection from = admin(replica, "app"); Connection to = admin(serverB, "postgres")) {
            CopyPlan plan = new CopyPlan("nowal", new Source("public", "app"), "app", replica.endpoint(),
                    Target.ownDatabase("public", "app"));
            assertThatThrownBy(() -> LogicalCopy.start(from, to, plan))
                    .isInstanceOfSatisfying(PalisadeException.class,
                            e -> assertThat(e.errorCode()).isEqualTo(ErrorCode.CONFLICT))
                    .hasMessageContaining("wal_level = replica").hasMessageContaining("wal_level = logical");
            assertNothingLeft(replica, "app", serverB, "postgres", plan);
        }
    }

    @Test
    void cleanUpRemovesACopyWhoseOwnerIsGone() throws Exception {
        sql(serverA, "postgres", "create database lost owner app");
        sql(serverA, "lost", "set role app", "create table t (a integer)", "insert into t values (1)");
        sql(serverB, "postgres", "create role tenant_lost", "create database lost owner tenant_lost");
        Source source = new Source("public", "app");
        Target target = Target.ownDatabase("public", "tenant_lost");
        CopyPlan plan = new CopyPlan("lost", source, "lost", serverA.endpoint(), target);
        Fingerprint before = fingerprint(serverA, "lost", "public", "app");
        try (Connection from = admin(serverA, "lost"); Connection to = admin(serverB, "lost")) {
            SchemaReplayer.replay(to, SchemaExtractor.extract(from, source, target));
            LogicalCopy.start(from, to, plan);
            assertThatThrownBy(() -> LogicalCopy.start(from, to, plan))
                    .isInstanceOfSatisfying(PalisadeException.class,
                            e -> assertThat(e.errorCode()).isEqualTo(ErrorCode.CONFLICT))
                    .hasMessageContaining("already has publication palisade_move_lost, role palisade_move_lost");
        }
        try (Connection from = admin(serverA, "lost"); Connection to = admin(serverB, "lost")) {
            LogicalCopy.cleanUp(from, to, plan);
            LogicalCopy.cleanUp(from, to, plan);
        }
        assertNothingLeft(serverA, "lost", serverB, "lost", plan);
        assertThat(fingerprint(serverA, "lost", "public", "app").differencesFrom(before)).isEmpty();
    }

    private static void move(CopyPlan plan, TestingPostgres sourceServer, TestingPostgres targetServer,
            String targetDatabase) throws Exception {
        try {
            copyWhileWriting(plan, sourceServer, targetServer, targetDatabase);
        } catch (Exception | AssertionError e) {
            for (TestingPostgres server : List.of(sourceServer, targetServer)) {
                List<String> log = Files.readAllLines(server.logFile()).stream()
                        .filter(l -> l.contains("ERROR") || l.contains("FATAL") || l.contains("WARNING")).toList();
                System.err.println("--- " + server.endpoint() + " log, errors\n"
                        + String.join("\n", log.subList(0, Math.min(40, log.size()))));
            }
            throw e;
        }
    }

    private static void copyWhileWriting(CopyPlan plan, TestingPostgres sourceServer, TestingPostgres targetServer,
            String targetDatabase) throws Exception {
        String namespace = plan.source().namespace();
        SchemaScript script;
        try (Connection source = admin(sourceServer, plan.sourceDatabase());
                Connection target = admin(targetServer, targetDatabase)) {
            script = SchemaExtractor.extract(source, plan.source(), plan.target());
            SchemaReplayer.replay(target, script);
        }
        long first = Long.parseLong(value(sourceServer, plan.sourceDatabase(), "select coalesce(max(n), 0) + 1 from "
                + namespace + ".commits"));
        try (Writer writer = new Writer(admin(sourceServer, plan.sourceDatabase()), namespace, first);
                Connection source = admin(sourceServer, plan.sourceDatabase());
                Connection target = admin(targetServer, targetDatabase)) {
            writer.start();
            await().atMost(Duration.ofSeconds(30)).until(() -> writer.acknowledged() >= first + 20);
            LogicalCopy copy = LogicalCopy.start(source, target, plan);
            List<CopyProgress> seen = new CopyOnWriteArrayList<>();
            await().atMost(Duration.ofSeconds(40)).pollInterval(Duration.ofMillis(50)).until(() -> {
                seen.add(copy.progress());
                return seen.getLast().copied();
            });
            System.out.println(plan.name() + ": " + seen.size() + " progress reports until copied, the first "
                    + seen.getFirst().summary() + ", the last " + seen.getLast().summary());
            long copiedAt = writer.acknowledged();
            await().atMost(Duration.ofSeconds(30)).until(() -> writer.acknowledged() >= copiedAt + 100);
            long last = writer.stop();

            CopyProgress caughtUp = copy.awaitCaughtUp(Duration.ofSeconds(60));
            assertThat(caughtUp.copied()).isTrue();
            assertThat(caughtUp.copiedBytes()).isEqualTo(caughtUp.totalBytes()).isPositive();
            assertThat(caughtUp.errors()).isZero();
            assertThat(seen).anyMatch(p -> !p.tables().isEmpty());
            assertThat(seen.getLast().tables()).containsKeys("commits", "widgets", "events_2025")
                    .doesNotContainKeys("events", "measurements");
            assertThat(copy.syncSequences()).isGreaterThanOrEqualTo(3);
            copy.finish();
            SchemaReplayer.afterCopy(target, script);

            assertThat(fingerprint(sourceServer, plan.sourceDatabase(), namespace, plan.source().role())
                    .differencesFrom(fingerprint(targetServer, targetDatabase, plan.target().namespace(),
                            plan.target().role()))).isEmpty();
            assertThat(value(targetServer, targetDatabase, "select count(*) || ' ' || count(distinct n) || ' '"
                    + " || min(n) || ' ' || max(n) || ' ' || count(*) filter (where note = 'updated') from "
                    + plan.target().namespace() + ".commits"))
                    .as("every acknowledged commit exactly once; the updates applied")
                    .isEqualTo(last + " " + last + " 1 " + last + " " + (last - 1));
        }
        assertNothingLeft(sourceServer, plan.sourceDatabase(), targetServer, targetDatabase, plan);
    }

    private static void assertNothingLeft(TestingPostgres sourceServer, String sourceDatabase,
            TestingPostgres targetServer, String targetDatabase, CopyPlan plan) throws SQLException {
        assertThat(value(sourceServer, sourceDatabase, "select (select count(*) from pg_publication) || '/'"
                + " || (select count(*) from pg_replication_slots) || '/' || (select count(*) from pg_roles"
                + " where rolname like 'palisade_move%') || '/' || (select count(*) from pg_stat_replication)"
                + " || '/' || (select count(*) from pg_class where relreplident = 'f')"))
                .as("publications/slots/move logins/walsenders/replica identity full on the source")
                .isEqualTo("0/0/0/0/0");
        assertThat(value(targetServer, targetDatabase, "select (select count(*) from pg_subscription) || '/'"
                + " || (select count(*) from pg_replication_origin) || '/' || (select count(*) from pg_namespace"
                + " where obj_description(oid, 'pg_namespace') like 'palisade move%')"))
                .as("subscriptions/replication origins/staging schemas on the target of " + plan.name())
                .isEqualTo("0/0/0");
    }

    /** Commits continuously, one row per transaction and an update of the previous one, synchronous commit on. */
    private static final class Writer implements AutoCloseable {
        private final Connection connection;
        private final String namespace;
        private final Thread thread;
        private volatile long acknowledged;
        private volatile boolean stopping;
        private volatile Exception failure;

        Writer(Connection connection, String namespace, long first) {
            this.connection = connection;
            this.namespace = namespace;
            this.acknowledged = first - 1;
            this.thread = Thread.ofPlatform().name("commit-writer").unstarted(this::run);
        }

        void start() {
            thread.start();
        }

        long acknowledged() {
            if (failure != null) {
                throw new IllegalStateException("the writer failed", failure);
            }
            return acknowledged;
        }

        private void run() {
            try (Statement statement = connection.createStatement()) {
                statement.execute("set synchronous_commit = on");
                connection.setAutoCommit(false);
                for (long n = acknowledged + 1; !stopping; n++) {
                    statement.execute("insert into " + namespace + ".commits (n, note) values (" + n + ", 'new')");
                    statement.execute("update " + namespace + ".commits set note = 'updated' where n = " + (n - 1));
                    if (n % 10 == 0) {
                        statement.execute("update " + namespace + ".widgets set label = 'label " + n + "'"
                                + " where id = (select min(id) from " + namespace + ".widgets)");
                    }
                    connection.commit();
                    acknowledged = n;
                    Thread.sleep(2);
                }
            } catch (Exception e) {
                failure = e;
            }
        }

        long stop() throws InterruptedException {
            stopping = true;
            thread.join(Duration.ofSeconds(10));
            return acknowledged();
        }

        @Override
        public void close() throws Exception {
            stopping = true;
            thread.join(Duration.ofSeconds(10));
            connection.close();
        }
    }

    /** Like a shared server's database for the schema rung: the shared extensions in {@code extensions}. */
    private static void sharedDatabase(TestingPostgres server, String database, String schemaAndRole)
            throws SQLException {
        sql(server, "postgres", "create database " + database);
        List<String> shared = new ArrayList<>(List.of("revoke all on schema public from public",
                "create schema extensions", "grant usage on schema extensions to public"));
        SHARED_EXTENSIONS.forEach(e -> shared.add("create extension \"" + e + "\" schema extensions"));
        shared.add("create schema " + schemaAndRole + " authorization " + schemaAndRole);
        sql(server, database, shared.toArray(String[]::new));
    }

    private static Fingerprint fingerprint(TestingPostgres server, String database, String namespace, String role)
            throws SQLException {
        try (Connection connection = admin(server, database)) {
            return Fingerprint.of(connection, namespace, role);
        }
    }

    private static String url(TestingPostgres server, String database) {
        return "jdbc:postgresql://" + server.endpoint() + "/" + database;
    }

    private static Connection admin(TestingPostgres server, String database) throws SQLException {
        return DriverManager.getConnection(url(server, database), server.adminUser(), server.adminPassword());
    }

    private static void sql(TestingPostgres server, String database, String... statements) throws SQLException {
        try (Connection connection = admin(server, database); Statement statement = connection.createStatement()) {
            for (String sql : statements) {
                statement.execute(sql);
            }
        }
    }

    private static String value(TestingPostgres server, String database, String sql) throws SQLException {
        try (Connection connection = admin(server, database); Statement statement = connection.createStatement();
                ResultSet rs = statement.executeQuery(sql)) {
            rs.next();
            return rs.getString(1);
        }
    }

    private static String resource(String name) throws IOException {
        try (InputStream in = TestLogicalCopy.class.getResourceAsStream("/" + name)) {
            if (in == null) {
                throw new IOException("test resource " + name + " is missing");
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }
}
