package io.palisade.broker;

import io.palisade.testing.RawHttpClient;
import io.palisade.testing.TestingPostgres;
import java.io.IOException;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Benchmark of the SQL broker: {@code SELECT 1} and a 100-row select through Neon's {@code POST /sql} over HTTP/1.1
 * keep-alive (one raw socket per client, so the client adds almost nothing), at 1 and 16 concurrent clients, against
 * the same statements over PgJDBC (one pooled connection per client, prepared) as the baseline, in the same run on the
 * same PostgreSQL. Each cell runs {@code -Dbench.seconds} (default 5) after a 1 s warm-up. Prints a table.
 *
 * <p>Run: {@code mvn -pl palisade-broker test-compile} then
 * {@code java -cp palisade-broker/target/test-classes:palisade-broker/target/classes:<test classpath>
 * io.palisade.broker.BrokerBench}.
 */
public final class BrokerBench {
    private static final String SELECT_1 = "SELECT 1";
    private static final String SELECT_100 = "SELECT id, name, price FROM bench_rows ORDER BY id";

    private BrokerBench() {}

    interface Client extends AutoCloseable {
        void run() throws Exception;

        @Override
        void close() throws Exception;
    }

    interface ClientFactory {
        Client open() throws Exception;
    }

    record Cell(String query, String transport, int clients, long requests, double seconds, long p50Nanos,
            long p99Nanos) {
        double perSecond() {
            return requests / seconds;
        }
    }

    public static void main(String[] args) throws Exception {
        Duration cell = Duration.ofSeconds(Long.getLong("bench.seconds", 5));
        List<Cell> cells = new ArrayList<>();
        try (TestingPostgres postgres = new TestingPostgres();
                TestingBroker broker = new TestingBroker(postgres, BrokerConfig.defaults())) {
            try (Connection c = postgres.connect(); Statement s = c.createStatement()) {
                s.execute("CREATE TABLE bench_rows (id int PRIMARY KEY, name text, price numeric(10,2))");
                s.execute("INSERT INTO bench_rows SELECT i, 'item ' || i, i * 1.25 FROM generate_series(1, 100) i");
            }
            for (String query : List.of(SELECT_1, SELECT_100)) {
                for (int clients : new int[] {1, 16}) {
                    cells.add(measure(query, "broker /sql (HTTP keep-alive)", clients, cell,
                            () -> new HttpClient(broker, query)));
                    cells.add(measure(query, "PgJDBC (pooled, prepared)", clients, cell,
                            () -> new JdbcClient(postgres, query)));
                }
            }
        }
        System.out.println();
        System.out.printf(Locale.ROOT, "%-52s %-30s %7s %10s %10s %10s%n", "query", "transport", "clients",
                "p50 (ms)", "p99 (ms)", "req/s");
        for (Cell c : cells) {
            System.out.printf(Locale.ROOT, "%-52s %-30s %7d %10.3f %10.3f %10.0f%n", c.query(), c.transport(),
                    c.clients(), c.p50Nanos() / 1e6, c.p99Nanos() / 1e6, c.perSecond());
        }
    }

    static Cell measure(String query, String transport, int clients, Duration duration, ClientFactory factory)
            throws Exception {
        List<Client> opened = new ArrayList<>();
        try {
            for (int i = 0; i < clients; i++) {
                opened.add(factory.open());
            }
            run(opened, Duration.ofSeconds(1));
            long start = System.nanoTime();
            List<long[]> samples = run(opened, duration);
            double seconds = (System.nanoTime() - start) / 1e9;
            int total = samples.stream().mapToInt(s -> (int) s[0]).sum();
            long[] all = new long[total];
            int at = 0;
            for (long[] s : samples) {
                System.arraycopy(s, 1, all, at, (int) s[0]);
                at += (int) s[0];
            }
            Arrays.sort(all);
            Cell cell = new Cell(query.length() > 50 ? query.substring(0, 50) : query, transport, clients, total,
                    seconds, all[total / 2], all[Math.min(total - 1, (int) (total * 0.99))]);
            System.out.printf(Locale.ROOT, "%s | %s | %d clients: %.0f req/s%n", cell.query(), transport, clients,
                    cell.perSecond());
            return cell;
        } finally {
            for (Client client : opened) {
                client.close();
            }
        }
    }

    /** Runs every client in its own thread until the deadline; per thread: [count, latency...]. */
    private static List<long[]> run(List<Client> clients, Duration duration) throws Exception {
        long deadline = System.nanoTime() + duration.toNanos();
        List<long[]> results = new ArrayList<>();
        AtomicReference<Exception> failure = new AtomicReference<>();
        CountDownLatch done = new CountDownLatch(clients.size());
        int index = 0;
        for (Client client : clients) {
            long[] samples = new long[2_000_001];
            results.add(samples);
            Thread.ofPlatform().name("bench-client-" + index++).daemon().start(() -> {
                try {
                    int n = 0;
                    while (n < samples.length - 1) {
                        long t0 = System.nanoTime();
                        if (t0 >= deadline) {
                            break;
                        }
                        client.run();
                        samples[++n] = System.nanoTime() - t0;
                    }
                    samples[0] = n;
                } catch (Exception e) {
                    failure.compareAndSet(null, e);
                } finally {
                    done.countDown();
                }
            });
        }
        done.await();
        if (failure.get() != null) {
            throw failure.get();
        }
        return results;
    }

    /** A keep-alive HTTP/1.1 client on a raw socket that posts one Neon /sql request per call. */
    static final class HttpClient implements Client {
        private final RawHttpClient http;
        private final byte[] request;

        HttpClient(TestingBroker broker, String query) throws IOException {
            http = new RawHttpClient(broker.port());
            request = RawHttpClient.post("/sql", "Neon-Connection-String: " + broker.connectionString()
                    + "\r\nNeon-Raw-Text-Output: true\r\nNeon-Array-Mode: true\r\n",
                    "{\"query\":\"" + query + "\",\"params\":[]}");
        }

        @Override
        public void run() throws IOException {
            http.send(request);
        }

        @Override
        public void close() throws IOException {
            http.close();
        }
    }

    /** One PgJDBC connection with a prepared statement; reads every value as text like the broker does. */
    static final class JdbcClient implements Client {
        private final Connection connection;
        private final PreparedStatement statement;

        JdbcClient(TestingPostgres postgres, String query) throws Exception {
            connection = postgres.connect();
            statement = connection.prepareStatement(query);
        }

        @Override
        public void run() throws Exception {
            try (ResultSet rs = statement.executeQuery()) {
                int columns = rs.getMetaData().getColumnCount();
                while (rs.next()) {
                    for (int i = 1; i <= columns; i++) {
                        rs.getString(i);
                    }
                }
            }
        }

        @Override
        public void close() throws Exception {
            statement.close();
            connection.close();
        }
    }
}
