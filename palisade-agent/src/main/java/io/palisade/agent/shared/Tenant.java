package io.palisade.agent.shared;

import static java.util.Objects.requireNonNull;

import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import io.palisade.spi.ServerLogin;
import java.io.IOException;
import java.io.Reader;
import java.io.Writer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Properties;

/**
 * One tenant placed on a shared server, as recorded in the server's registry ({@code tenants/<id>} in its directory):
 * written before any of its SQL objects exist and removed after the last is gone, so that a crash in between leaves a
 * record to finish or undo. {@code role} is an opaque name (it reveals neither the database id nor the account);
 * {@code database} is the role's own database ({@link TenantLayout#DATABASE}) or the shared one, where {@code role} is
 * also the schema's name.
 */
public record Tenant(String id, TenantLayout layout, String server, String role, String database, TenantLimits limits) {
    public Tenant {
        requireNonNull(id, "id is null");
        requireNonNull(layout, "layout is null");
        requireNonNull(server, "server is null");
        requireNonNull(role, "role is null");
        requireNonNull(database, "database is null");
        requireNonNull(limits, "limits is null");
    }

    /** The schema a {@link TenantLayout#SCHEMA} tenant owns (its role's name). */
    public String schema() {
        return role;
    }

    public ServerLogin login() {
        return new ServerLogin(role, database);
    }

    void write(Path file) {
        Properties p = new Properties();
        p.setProperty("id", id);
        p.setProperty("layout", layout.rung().wireName());
        p.setProperty("server", server);
        p.setProperty("role", role);
        p.setProperty("database", database);
        p.setProperty("connections", Integer.toString(limits.connections()));
        p.setProperty("statement_timeout_ms", Long.toString(limits.statementTimeout().toMillis()));
        p.setProperty("idle_in_transaction_timeout_ms", Long.toString(limits.idleInTransactionTimeout().toMillis()));
        p.setProperty("temp_file_limit_kb", Long.toString(limits.tempFileLimitKb()));
        p.setProperty("memory_bytes", Long.toString(limits.memoryBytes()));
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        try {
            Files.createDirectories(file.getParent());
            try (Writer out = Files.newBufferedWriter(tmp)) {
                p.store(out, "palisade shared-rung tenant");
            }
            Files.move(tmp, file, java.nio.file.StandardCopyOption.REPLACE_EXISTING,
                    java.nio.file.StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.INTERNAL, "cannot record tenant " + id + " in " + file, e);
        }
    }

    static Tenant read(Path file) {
        Properties p = new Properties();
        try (Reader in = Files.newBufferedReader(file)) {
            p.load(in);
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.INTERNAL, "cannot read tenant record " + file, e);
        }
        return new Tenant(
                p.getProperty("id"),
                TenantLayout.of(io.palisade.spi.Rung.fromWire(p.getProperty("layout"))),
                p.getProperty("server"),
                p.getProperty("role"),
                p.getProperty("database"),
                new TenantLimits(
                        Integer.parseInt(p.getProperty("connections")),
                        Duration.ofMillis(Long.parseLong(p.getProperty("statement_timeout_ms"))),
                        Duration.ofMillis(Long.parseLong(p.getProperty("idle_in_transaction_timeout_ms"))),
                        Long.parseLong(p.getProperty("temp_file_limit_kb")),
                        Long.parseLong(p.getProperty("memory_bytes",
                                Long.toString(TenantLimits.DEFAULT_MEMORY_BYTES)))));
    }
}
