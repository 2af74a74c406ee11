package io.palisade.server;

import static java.util.Objects.requireNonNull;

import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicBoolean;
import org.postgresql.util.PSQLException;

/**
 * A PgJDBC connection through palisade's proxy kept open and used once per interval, each answer or error recorded in
 * a {@link ClientTimeline}. After an error the connection is closed and a new one opened at the next tick (the
 * application's retry). An error counts as an ErrorResponse only when PgJDBC got one from the server: its own I/O
 * errors also say 08006. AutoCloseable: close stops it. Thread-safe.
 */
final class JdbcSession implements AutoCloseable {
    private final String url;
    private final ClientTimeline timeline;
    private final Duration interval;
    private final AtomicBoolean stop = new AtomicBoolean();
    private final Thread thread;

    JdbcSession(String url, ClientTimeline timeline, Duration interval) {
        this.url = requireNonNull(url, "url is null");
        this.timeline = requireNonNull(timeline, "timeline is null");
        this.interval = requireNonNull(interval, "interval is null");
        this.thread = Thread.ofPlatform().name("jdbc-session").start(this::run);
    }

    private void run() {
        Connection connection = null;
        while (!stop.get()) {
            try {
                if (connection == null) {
                    connection = PgUrls.connect(url);
                }
                try (Statement s = connection.createStatement();
                        ResultSet rs = s.executeQuery("select inet_server_port()")) {
                    rs.next();
                    timeline.answered(System.currentTimeMillis(), rs.getInt(1));
                }
            } catch (SQLException e) {
                boolean fromServer = e instanceof PSQLException p && p.getServerErrorMessage() != null;
                timeline.failed(System.currentTimeMillis(), fromServer ? e.getSQLState() : null,
                        e.getSQLState() + " " + e.getMessage() + (fromServer ? "" : " (no ErrorResponse)"));
                close(connection);
                connection = null;
            }
            try {
                Thread.sleep(interval.toMillis());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        close(connection);
    }

    private static void close(Connection connection) {
        if (connection != null) {
            try {
                connection.close();
            } catch (SQLException ignored) {
                // gone already
            }
        }
    }

    @Override
    public void close() throws InterruptedException {
        stop.set(true);
        thread.join(Duration.ofSeconds(30));
    }
}
