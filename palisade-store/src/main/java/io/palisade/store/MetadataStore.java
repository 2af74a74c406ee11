package io.palisade.store;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import io.palisade.spi.Endpoint;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import io.palisade.spi.Plan;
import io.palisade.spi.PostgresVersion;
import io.palisade.spi.Rung;
import io.palisade.spi.ServerLogin;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Timestamp;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.flywaydb.core.Flyway;
import org.jdbi.v3.core.Jdbi;
import org.jdbi.v3.core.statement.StatementContext;

/**
 * The control plane's metadata: accounts, hashed API keys, databases. Schema managed by Flyway. Thread-safe (a pooled
 * data source; every method is one short transaction).
 */
public final class MetadataStore implements AutoCloseable {
    private final HikariDataSource dataSource;
    private final Jdbi jdbi;

    public MetadataStore(String jdbcUrl, String username, String password) {
        HikariConfig config = new HikariConfig();
        config.setJdbcUrl(jdbcUrl);
        config.setUsername(username);
        config.setPassword(password);
        config.setMaximumPoolSize(8);
        config.setPoolName("palisade-store");
        config.setConnectionTimeout(10_000);
        try {
            this.dataSource = new HikariDataSource(config);
        } catch (RuntimeException e) {
            throw new PalisadeException(ErrorCode.INTERNAL, "cannot connect to the metadata store at "
                    + jdbcUrl.replaceAll("password=[^&]*", "password=***") + ": " + rootMessage(e), e);
        }
        Flyway.configure()
                .dataSource(dataSource)
                .locations("classpath:db/migration")
                .table("palisade_schema_history")
                .baselineOnMigrate(true)
                .load()
                .migrate();
        this.jdbi = Jdbi.create(dataSource);
    }

    /** The backup catalog, in the same store. */
    public BackupCatalog backupCatalog() {
        return new BackupCatalog(jdbi);
    }

    /** Moves between rungs, in the same store. */
    public MoveCatalog moves() {
        return new MoveCatalog(jdbi);
    }

    private static String rootMessage(Throwable e) {
        while (e.getCause() != null) {
            e = e.getCause();
        }
        return e.getMessage();
    }

    // accounts and keys

    public void createAccount(String id, String name) {
        jdbi.useHandle(h -> h.createUpdate("INSERT INTO accounts (id, name) VALUES (:id, :name) ON CONFLICT DO NOTHING")
                .bind("id", id)
                .bind("name", name)
                .execute());
    }

    public boolean hasAnyAccount() {
        return jdbi.withHandle(h -> h.createQuery("SELECT EXISTS (SELECT 1 FROM accounts)").mapTo(Boolean.class).one());
    }

    public void addApiKey(String accountId, String apiKey) {
        jdbi.useHandle(h -> h.createUpdate(
                        "INSERT INTO api_keys (key_hash, account_id, key_prefix) VALUES (:hash, :account, :prefix)")
                .bind("hash", SecretBox.hash(apiKey))
                .bind("account", accountId)
                .bind("prefix", apiKey.substring(0, Math.min(8, apiKey.length())))
                .execute());
    }

    /** The account owning this API key, if any. */
    public Optional<String> accountForKey(String apiKey) {
        return jdbi.withHandle(h -> h.createQuery("SELECT account_id FROM api_keys WHERE key_hash = :hash")
                .bind("hash", SecretBox.hash(apiKey))
                .mapTo(String.class)
                .findOne());
    }

    // databases

    public void insert(DatabaseRecord db) {
        jdbi.useHandle(h -> h.createUpdate("""
                        INSERT INTO databases (id, account_id, label, isolation, pg_version, plan_name, cpu, memory_mb,
                            disk_mb, iops, bandwidth_mbps, persistent, ttl_seconds, expires_at, suspend_after_seconds,
                            host, state, state_reason,
                            username, dbname, password_enc, broker_token_hash, broker_token_enc, labels)
                        VALUES (:id, :account, :label, :isolation, :version, :planName, :cpu, :memoryMb, :diskMb, :iops,
                            :bandwidth, :persistent, :ttl, :expiresAt, :suspendAfter, :host, :state, :reason, :username, :dbname,
                            :passwordEnc, :tokenHash, :tokenEnc, CAST(:labels AS jsonb))
                        """)
                .bind("id", db.id())
                .bind("account", db.accountId())
                .bind("label", db.label())
                .bind("isolation", db.isolation().wireName())
                .bind("version", db.version().major())
                .bind("planName", db.plan().name())
                .bind("cpu", db.plan().cpu())
                .bind("memoryMb", db.plan().memoryMb())
                .bind("diskMb", db.plan().diskMb())
                .bind("iops", db.plan().iops())
                .bind("bandwidth", db.plan().bandwidthMbps())
                .bind("persistent", db.persistent())
                .bind("ttl", db.ttlSeconds())
                .bind("expiresAt", db.expiresAt() == null ? null : Timestamp.from(db.expiresAt()))
                .bind("suspendAfter", db.suspendAfterSeconds())
                .bind("host", db.host())
                .bind("state", db.state().wireName())
                .bind("reason", db.stateReason())
                .bind("username", db.username())
                .bind("dbname", db.database())
                .bind("passwordEnc", db.passwordEnc())
                .bind("tokenHash", db.brokerTokenHash())
                .bind("tokenEnc", db.brokerTokenEnc())
                .bind("labels", Json.write(db.labels()))
                .execute());
    }

    public Optional<DatabaseRecord> find(String id) {
        return jdbi.withHandle(h -> h.createQuery("SELECT * FROM databases WHERE id = :id")
                .bind("id", id)
                .map(MetadataStore::map)
                .findOne());
    }

    /** The database if it belongs to the account; another account's database is simply absent. */
    public Optional<DatabaseRecord> find(String accountId, String id) {
        return find(id).filter(db -> db.accountId().equals(accountId));
    }

    public List<DatabaseRecord> list(String accountId) {
        return jdbi.withHandle(h -> h.createQuery(
                        "SELECT * FROM databases WHERE account_id = :account ORDER BY created_at, id")
                .bind("account", accountId)
                .map(MetadataStore::map)
                .list());
    }

    public List<DatabaseRecord> listByHost(String host) {
        return jdbi.withHandle(h -> h.createQuery("SELECT * FROM databases WHERE host = :host ORDER BY created_at, id")
                .bind("host", host)
                .map(MetadataStore::map)
                .list());
    }

    /**
     * Moves a database to {@code target} if the state machine allows it from its current state; atomically (row lock).
     * Returns the updated record.
     */
    public DatabaseRecord transition(String id, DatabaseState target, String reason) {
        return jdbi.inTransaction(h -> {
            DatabaseRecord current = h.createQuery("SELECT * FROM databases WHERE id = :id FOR UPDATE")
                    .bind("id", id)
                    .map(MetadataStore::map)
                    .findOne()
                    .orElseThrow(() -> PalisadeException.notFound("database " + id + " not found"));
            current.state().checkTransition(target, id);
            h.createUpdate("UPDATE databases SET state = :state, state_reason = :reason, updated_at = now() WHERE id = :id")
                    .bind("state", target.wireName())
                    .bind("reason", reason)
                    .bind("id", id)
                    .execute();
            return h.createQuery("SELECT * FROM databases WHERE id = :id").bind("id", id).map(MetadataStore::map).one();
        });
    }

    public void setEndpoint(String id, Optional<Endpoint> endpoint) {
        jdbi.useHandle(h -> h.createUpdate(
                        "UPDATE databases SET endpoint_host = :host, endpoint_port = :port, updated_at = now() WHERE id = :id")
                .bind("host", endpoint.map(Endpoint::host).orElse(null))
                .bind("port", endpoint.map(Endpoint::port).orElse(null))
                .bind("id", id)
                .execute());
    }

    /** Records where a started instance listens and the login its server knows the tenant by, in one statement. */
    public void setEndpoint(String id, Endpoint endpoint, Optional<ServerLogin> login) {
        jdbi.useHandle(h -> h.createUpdate("""
                        UPDATE databases SET endpoint_host = :host, endpoint_port = :port, server_user = :user,
                            server_database = :db, updated_at = now() WHERE id = :id""")
                .bind("host", endpoint.host())
                .bind("port", endpoint.port())
                .bind("user", login.map(ServerLogin::user).orElse(null))
                .bind("db", login.map(ServerLogin::database).orElse(null))
                .bind("id", id)
                .execute());
    }

    public void setSecrets(String id, String passwordEnc, String tokenHash, String tokenEnc) {
        jdbi.useHandle(h -> h.createUpdate("""
                        UPDATE databases SET password_enc = :pw, broker_token_hash = :th, broker_token_enc = :te,
                            updated_at = now() WHERE id = :id""")
                .bind("pw", passwordEnc)
                .bind("th", tokenHash)
                .bind("te", tokenEnc)
                .bind("id", id)
                .execute());
    }

    public void touch(String id, Instant at) {
        jdbi.useHandle(h -> h.createUpdate("UPDATE databases SET last_active_at = :at WHERE id = :id AND last_active_at < :at")
                .bind("at", Timestamp.from(at))
                .bind("id", id)
                .execute());
    }

    /** Whether an id was ever given to a database here that still leaves a trace (record, archive, operation). */
    public boolean idInUse(String id) {
        return jdbi.withHandle(h -> h.createQuery("""
                        SELECT EXISTS (SELECT 1 FROM databases WHERE id = :id)
                            OR EXISTS (SELECT 1 FROM archives WHERE database_id = :id)
                            OR EXISTS (SELECT 1 FROM operations WHERE database_id = :id OR source_id = :id)""")
                .bind("id", id)
                .mapTo(Boolean.class)
                .one());
    }

    public boolean delete(String id) {
        return jdbi.inTransaction(h -> {
            h.createUpdate("DELETE FROM moves WHERE database_id = :id").bind("id", id).execute();
            return h.createUpdate("DELETE FROM databases WHERE id = :id").bind("id", id).execute();
        }) > 0;
    }

    private static DatabaseRecord map(ResultSet rs, StatementContext ctx) throws SQLException {
        String endpointHost = rs.getString("endpoint_host");
        int endpointPort = rs.getInt("endpoint_port");
        Optional<Endpoint> endpoint = endpointHost == null || rs.wasNull()
                ? Optional.empty()
                : Optional.of(new Endpoint(endpointHost, endpointPort));
        String serverUser = rs.getString("server_user");
        int ttl = rs.getInt("ttl_seconds");
        Integer ttlSeconds = rs.wasNull() ? null : ttl;
        Timestamp expires = rs.getTimestamp("expires_at");
        int suspendAfter = rs.getInt("suspend_after_seconds");
        Integer suspendAfterSeconds = rs.wasNull() ? null : suspendAfter;
        return new DatabaseRecord(
                rs.getString("id"),
                rs.getString("account_id"),
                rs.getString("label"),
                Rung.fromWire(rs.getString("isolation")),
                PostgresVersion.fromMajor(rs.getString("pg_version")),
                new Plan(
                        rs.getString("plan_name"),
                        rs.getInt("cpu"),
                        rs.getInt("memory_mb"),
                        rs.getInt("disk_mb"),
                        rs.getInt("iops"),
                        rs.getInt("bandwidth_mbps")),
                rs.getBoolean("persistent"),
                ttlSeconds,
                expires == null ? null : expires.toInstant(),
                suspendAfterSeconds,
                rs.getString("host"),
                DatabaseState.fromWire(rs.getString("state")),
                rs.getString("state_reason"),
                rs.getString("username"),
                rs.getString("dbname"),
                rs.getString("password_enc"),
                rs.getString("broker_token_hash"),
                rs.getString("broker_token_enc"),
                endpoint,
                serverUser == null ? Optional.empty() : Optional.of(new ServerLogin(serverUser, rs.getString("server_database"))),
                Json.readLabels(rs.getString("labels")),
                rs.getTimestamp("created_at").toInstant(),
                rs.getTimestamp("updated_at").toInstant(),
                rs.getTimestamp("last_active_at").toInstant());
    }

    @Override
    public void close() {
        dataSource.close();
    }

    /** JSON of the flat string map of labels. */
    static final class Json {
        private static final ObjectMapper MAPPER = new ObjectMapper();
        private static final TypeReference<Map<String, String>> LABELS = new TypeReference<>() {};

        private Json() {}

        static String write(Map<String, String> labels) {
            try {
                return MAPPER.writeValueAsString(labels);
            } catch (JsonProcessingException e) {
                throw new IllegalStateException(e);
            }
        }

        static Map<String, String> readLabels(String json) {
            try {
                return json == null ? Map.of() : MAPPER.readValue(json, LABELS);
            } catch (JsonProcessingException e) {
                throw new IllegalStateException("stored labels are not valid JSON", e);
            }
        }
    }
}
