package io.palisade.server.hostile;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

/**
 * Byte fuzzing of the proxy's public port: random and truncated SSLRequest, startup and password packets, 1 byte to
 * 1 MiB, before and inside TLS, from many loopback source addresses. The proxy never crashes, answers or closes every
 * connection within a bound (the authentication deadline plus slack), and the owner and a neighbour still connect.
 * Fixed seed, printed; {@code -Dhostile.seed=N} replays another run, {@code -Dhostile.fuzz-cases=N} changes the count.
 */
class TestProxyFuzzing extends AbstractHostileAttack {
    private static final long SEED = Long.getLong("hostile.seed", 20261202L);
    private static final int CASES = Integer.getInteger("hostile.fuzz-cases", 300);
    /** The ~10 s authentication deadline, with slack for a loaded 2-core machine. */
    private static final Duration CLOSE_BOUND = Duration.ofSeconds(25);
    private static final int MAX_BYTES = 1 << 20;


    @Override
    protected String label() {
        return "fuzz";
    }

    enum Kind { RANDOM, TRUNCATED_SSL_REQUEST, TRUNCATED_STARTUP, LYING_LENGTH, DIRECT_TLS_GARBAGE, TLS_RANDOM,
        TLS_TRUNCATED_STARTUP, TLS_BAD_PASSWORD }

    /** One case, fully decided by the seed: what to send, from where, and whether to half-close afterwards. */
    record Case(int index, Kind kind, byte[] bytes, String source, boolean halfClose) {
        @Override
        public String toString() {
            return "#" + index + " " + kind + " " + bytes.length + " bytes from " + source
                    + (halfClose ? " then FIN" : " then silence");
        }
    }

    @Test
    void randomAndTruncatedPacketsNeverHurtTheProxy() throws Exception {
        System.out.printf("proxy fuzzing: seed %d, %d cases (replay with -Dhostile.seed=%d)%n", SEED, CASES, SEED);
        Random random = new Random(SEED);
        List<Case> cases = new ArrayList<>();
        for (int i = 0; i < CASES; i++) {
            cases.add(next(i, random));
        }
        List<String> failures = Collections.synchronizedList(new ArrayList<>());
        long started = System.nanoTime();
        try (ExecutorService pool = Executors.newFixedThreadPool(32)) {
            List<Future<?>> runs = new ArrayList<>();
            for (Case c : cases) {
                runs.add(pool.submit(() -> run(c, failures)));
            }
            for (int i = 0; i < runs.size(); i++) {
                runs.get(i).get();
                if (i % 50 == 49) {
                    HostileTenants.assertAnswers(owner); // the owner keeps working during the fuzzing
                }
            }
        }
        System.out.printf("proxy fuzzing: %d cases in %d s, %d failures%n", CASES,
                Duration.ofNanos(System.nanoTime() - started).toSeconds(), failures.size());
        HostileTenants.assertAnswers(owner);
        HostileTenants.assertAnswers(neighbour);
        assertThat(failures).as("cases the proxy neither answered nor closed within %s (seed %d)", CLOSE_BOUND, SEED)
                .isEmpty();
    }

    /**
     * Review item 10: a client that sends Terminate before its SSLRequest (node-postgres on an immediate
     * {@code connect()}+{@code end()}), or right after TLS, is closed silently as PostgreSQL does, not sent an error.
     */
    @Test
    void terminateBeforeStartupClosesSilently() throws Exception {
        byte[] terminate = {'X', 0, 0, 0, 4};
        try (RawPgClient client = RawPgClient.connect("127.0.5.2", tenants.proxyPort())) {
            client.write(terminate);
            assertThat(answer(client)).as("the answer to Terminate before SSLRequest").isEqualTo("(closed)");
        }
        try (RawPgClient client = RawPgClient.connect("127.0.5.2", tenants.proxyPort())) {
            client.startTls(owner.hostname(), tenants.caCertificate());
            client.write(terminate);
            assertThat(answer(client)).as("the answer to Terminate right after TLS").isEqualTo("(closed)");
        }
        HostileTenants.assertAnswers(owner);
    }

    /** The server's first message, "(closed)" if it closed (or reset) first. */
    private static String answer(RawPgClient client) {
        try {
            return RawPgClient.describe(client.readMessage(Duration.ofSeconds(15)));
        } catch (java.net.SocketTimeoutException e) {
            return "(nothing within 15 s)";
        } catch (IOException e) {
            return "(closed)";
        }
    }

    private void run(Case c, List<String> failures) {
        try (RawPgClient client = RawPgClient.connect(c.source(), tenants.proxyPort())) {
            try {
                switch (c.kind()) {
                    case TLS_RANDOM, TLS_TRUNCATED_STARTUP -> {
                        client.startTls(owner.hostname(), tenants.caCertificate());
                        client.write(c.bytes());
                    }
                    case TLS_BAD_PASSWORD -> {
                        client.startTls(owner.hostname(), tenants.caCertificate());
                        client.write(RawPgClient.startupPacket(Map.of("user", owner.username(), "database",
                                owner.database())));
                        client.readMessage(Duration.ofSeconds(15)); // the SASL request, or an error
                        client.write(c.bytes());
                    }
                    default -> client.write(c.bytes());
                }
                if (c.halfClose()) {
                    client.shutdownOutput();
                }
            } catch (IOException e) {
                return; // refused or closed while we were still sending: an answer
            }
            if (!client.awaitClosed(CLOSE_BOUND)) {
                failures.add(c.toString());
            }
        } catch (IOException e) {
            // connection refused (e.g. a per-source cap): the proxy answered
        }
    }

    private Case next(int index, Random random) {
        Kind kind = Kind.values()[random.nextInt(Kind.values().length)];
        String source = "127.0." + random.nextInt(4) + "." + (2 + random.nextInt(250));
        boolean halfClose = random.nextInt(3) > 0;
        byte[] bytes = switch (kind) {
            case RANDOM -> randomBytes(random, size(random));
            case TRUNCATED_SSL_REQUEST ->
                    java.util.Arrays.copyOf(RawPgClient.sslRequestPacket(), 1 + random.nextInt(7));
            case TRUNCATED_STARTUP, TLS_TRUNCATED_STARTUP -> {
                byte[] startup = RawPgClient.startupPacket(Map.of("user", "u" + random.nextInt(1000), "database", "d",
                        "options", "endpoint=" + owner.id()));
                yield java.util.Arrays.copyOf(startup, random.nextInt(startup.length));
            }
            case LYING_LENGTH -> {
                byte[] body = randomBytes(random, size(random));
                int[] lengths = {0, 4, 7, 8, 9, 10_000, 10_001, 1 << 20, Integer.MAX_VALUE, -1, Integer.MIN_VALUE};
                int length = lengths[random.nextInt(lengths.length)];
                byte[] out = new byte[Math.max(8, body.length)];
                System.arraycopy(body, 0, out, 0, body.length);
                out[0] = (byte) (length >>> 24);
                out[1] = (byte) (length >>> 16);
                out[2] = (byte) (length >>> 8);
                out[3] = (byte) length;
                if (random.nextBoolean()) {
                    out[4] = 0;
                    out[5] = 3; // protocol 3.0
                    out[6] = 0;
                    out[7] = 0;
                }
                yield out;
            }
            case DIRECT_TLS_GARBAGE -> {
                byte[] out = randomBytes(random, size(random));
                out[0] = 0x16;
                yield out;
            }
            case TLS_RANDOM -> randomBytes(random, size(random));
            case TLS_BAD_PASSWORD -> {
                byte[] body = randomBytes(random, size(random) - 1);
                byte[] message = RawPgClient.typed('p', body);
                yield random.nextBoolean() ? message : java.util.Arrays.copyOf(message, random.nextInt(message.length));
            }
        };
        return new Case(index, kind, bytes, source, halfClose);
    }

    /** 1 byte to 1 MiB, log-uniform: most cases small, some large. */
    private static int size(Random random) {
        return Math.max(1, (int) Math.min(MAX_BYTES, Math.round(Math.exp(random.nextDouble() * Math.log(MAX_BYTES)))));
    }

    private static byte[] randomBytes(Random random, int length) {
        byte[] bytes = new byte[Math.max(1, length)];
        random.nextBytes(bytes);
        return bytes;
    }
}
