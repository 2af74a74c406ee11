package io.palisade.logical;

import static io.palisade.logical.CopySql.exec;
import static io.palisade.pgwire.Sql.quoteIdent;
import static io.palisade.pgwire.Sql.quoteLiteral;

import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.security.SecureRandom;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.OptionalLong;
import org.postgresql.PGConnection;

/**
 * The source side of a {@link LogicalCopy}, in the source database: the temporary login, replica identities and the
 * publication. Set up in one transaction, so a failure leaves nothing; torn down idempotently from what the catalog
 * shows, so a cleanup after a crash of palisade finds everything by the move's name.
 *
 * <p>The login {@code palisade_move_<id>}: {@code LOGIN REPLICATION BYPASSRLS}, a member of the tenant's role (which
 * gives it {@code CONNECT} and {@code SELECT} on the tenant's tables without a grant on any table, so the tables' ACLs
 * stay as they are and no grant guard fires), a random password sent as a SCRAM verifier computed here (the plain
 * password never reaches the source server). {@code BYPASSRLS} because the initial copy reads the tables as this login
 * and row level security would filter rows out.
 *
 * <p>Replica identity. A published table without one (no primary key and {@code REPLICA IDENTITY DEFAULT}, or
 * {@code NOTHING}) would make the tenant's UPDATE and DELETE on it fail for as long as the publication exists. Such
 * tables get {@code REPLICA IDENTITY FULL} for the move (a short {@code ACCESS EXCLUSIVE} lock each, waiting at most
 * 5 s); the previous setting is kept in the login's comment and restored at teardown. Not thread-safe.
 */
final class CopySource {
    private static final SecureRandom RANDOM = new SecureRandom();
    private static final String IDENTITY = "replica identity ";
    private static final String SUBSCRIPTION = "subscription ";

    private final CopyPlan plan;

    CopySource(CopyPlan plan) {
        this.plan = plan;
    }

    /** Creates login, replica identities and publication; returns the login's password. */
    String setUp(Connection source) throws SQLException {
        Catalog catalog = new Catalog(source);
        String walLevel = catalog.value("select current_setting('wal_level')");
        if (!"logical".equals(walLevel)) {
            throw new PalisadeException(ErrorCode.CONFLICT, "the source server runs with wal_level = " + walLevel
                    + ", logical replication needs wal_level = logical; set it and restart the source server, then"
                    + " retry the move (nothing was changed)");
        }
        long[] oids = catalog.resolve(plan.source());
        String leftOver = catalog.value("select concat_ws(', ',"
                + " (select 'publication ' || pubname from pg_publication where pubname = ?),"
                + " (select 'role ' || rolname from pg_roles where rolname = ?),"
                + " (select 'replication slot ' || slot_name from pg_replication_slots where slot_name = ?))",
                plan.name(), plan.name(), plan.name());
        if (!leftOver.isEmpty()) {
            throw new PalisadeException(ErrorCode.CONFLICT, "move " + plan.moveId() + " already has " + leftOver
                    + " on the source server, left by an earlier attempt; clean it up (LogicalCopy.cleanUp) or use"
                    + " another move id");
        }
        List<Catalog.Row> noIdentity = catalog.rows("""
                select c.oid::text as oid, c.relreplident::text as identity,
                    format('%I.%I', n.nspname, c.relname) as name
                from pg_class c join pg_namespace n on n.oid = c.relnamespace
                where c.relnamespace = ?::oid and c.relkind = 'r' and (c.relreplident = 'n' or c.relreplident = 'd'
                    and not exists (select 1 from pg_index i where i.indrelid = c.oid and i.indisprimary))
                order by c.oid""", oids[0]);
        List<String> restore = new ArrayList<>();
        noIdentity.forEach(row -> restore.add(row.text("identity") + ":" + row.text("oid")));
        String password = randomPassword();
        String role = quoteIdent(plan.name());
        CopySql.inTransaction(source, () -> {
            exec(source, "set local lock_timeout = '5s'");
            exec(source, "create role " + role + " login replication bypassrls inherit connection limit 16");
            exec(source, "grant " + quoteIdent(plan.source().role()) + " to " + role + " with inherit true");
            exec(source, "comment on role " + role + " is " + quoteLiteral(IDENTITY + String.join(",", restore)));
            source.unwrap(PGConnection.class).alterUserPassword(plan.name(), password.toCharArray(),
                    "scram-sha-256");
            for (Catalog.Row row : noIdentity) {
                exec(source, "alter table " + row.text("name") + " replica identity full");
            }
            exec(source, "create publication " + quoteIdent(plan.name()) + " for tables in schema "
                    + quoteIdent(plan.source().namespace()));
        });
        return password;
    }

    /**
     * Creates the copy's logical replication slot here rather than through the subscription: a subscription that
     * creates its slot on its own cluster (a move between the database and schema rungs of one shared server) would
     * wait for its own transaction forever. Waits for transactions running on the source to end (bounded by the
     * connection's statement timeout).
     */
    void createSlot(Connection source) throws SQLException {
        new Catalog(source).value("select pg_catalog.pg_create_logical_replication_slot(?, 'pgoutput')::text",
                plan.name());
    }

    /** Notes the subscription's oid on the login, so a later cleanup finds the initial copy's slots by name. */
    void noteSubscription(Connection source, long subscriptionOid) throws SQLException {
        Catalog catalog = new Catalog(source);
        String comment = catalog.value("select shobj_description(oid, 'pg_authid') from pg_roles where rolname = ?",
                plan.name());
        exec(source, "comment on role " + quoteIdent(plan.name()) + " is "
                + quoteLiteral(comment + "; " + SUBSCRIPTION + subscriptionOid));
    }

    /**
     * Ends the login's sessions, drops the subscription's slots (main and initial-copy ones) if the target could not,
     * drops the publication, restores replica identities, drops the login. Idempotent; the tenant's data untouched.
     */
    void tearDown(Connection source) throws SQLException {
        Catalog catalog = new Catalog(source);
        String comment = catalog.value("select coalesce((select shobj_description(oid, 'pg_authid') from pg_roles"
                + " where rolname = ?), '')", plan.name());
        OptionalLong subscription = OptionalLong.empty();
        List<String[]> identities = new ArrayList<>();
        for (String part : comment.split("; ")) {
            if (part.startsWith(SUBSCRIPTION)) {
                subscription = OptionalLong.of(Long.parseLong(part.substring(SUBSCRIPTION.length())));
            } else if (part.startsWith(IDENTITY) && part.length() > IDENTITY.length()) {
                for (String entry : part.substring(IDENTITY.length()).split(",")) {
                    identities.add(entry.split(":", 2));
                }
            }
        }
        String syncSlots = subscription.isPresent() ? "pg\\_" + subscription.getAsLong() + "\\_sync\\_%" : "";
        long deadline = System.nanoTime() + 15_000_000_000L;
        while (true) {
            catalog.rows("select pg_terminate_backend(pid, 5000)::text as done from pg_stat_activity where usename = ?",
                    plan.name());
            List<Catalog.Row> slots = catalog.rows("select slot_name::text as name, active_pid"
                    + " from pg_replication_slots where slot_name = ? or slot_name like ?", plan.name(), syncSlots);
            boolean busy = false;
            for (Catalog.Row slot : slots) {
                if (slot.text("active_pid") != null) {
                    catalog.rows("select pg_terminate_backend(?::int, 5000)::text as done", slot.text("active_pid"));
                }
                try {
                    catalog.rows("select pg_drop_replication_slot(?)::text as done", slot.text("name"));
                } catch (SQLException e) {
                    busy = true; // "is active for PID …": the walsender is still exiting
                }
            }
            if (!busy) {
                break;
            }
            if (System.nanoTime() > deadline) {
                throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot drop the replication slots of move "
                        + plan.moveId() + " on the source server: they stay active; they keep WAL on the source"
                        + " until dropped: retry the cleanup");
            }
            sleep();
        }
        exec(source, "drop publication if exists " + quoteIdent(plan.name()));
        for (String[] identity : identities) {
            String name = catalog.value("select (select format('%I.%I', n.nspname, c.relname) from pg_class c join"
                    + " pg_namespace n on n.oid = c.relnamespace where c.oid = ?::oid and c.relreplident = 'f')",
                    Long.parseLong(identity[1]));
            if (name != null) {
                exec(source, "alter table " + name + " replica identity " + ("n".equals(identity[0]) ? "nothing"
                        : "default"));
            }
        }
        if (catalog.value("select count(*)::text from pg_roles where rolname = ?", plan.name()).equals("1")) {
            exec(source, "drop owned by " + quoteIdent(plan.name()));
            exec(source, "drop role " + quoteIdent(plan.name()));
        }
    }

    private static String randomPassword() {
        byte[] bytes = new byte[24];
        RANDOM.nextBytes(bytes);
        return Base64.getUrlEncoder().withoutPadding().encodeToString(bytes);
    }

    private static void sleep() {
        try {
            Thread.sleep(100);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new PalisadeException(ErrorCode.INTERNAL, "interrupted while cleaning up a move's replication slots",
                    e);
        }
    }
}
