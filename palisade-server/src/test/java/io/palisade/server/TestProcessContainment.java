package io.palisade.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import io.palisade.host.Processes;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The process rung's caps are real: a tenant that exhausts its memory or spins its CPUs hurts only itself, while a
 * neighbour's queries keep succeeding. Needs writable cgroups (CI runs as root, where they are).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TestProcessContainment {
    private TestingPalisade palisade;
    private JsonNode noisy;
    private JsonNode victim;

    @BeforeAll
    void start() {
        palisade = new TestingPalisade();
        String mode = palisade.get("/v1/health").json().path("cgroups").path("mode").asText();
        if (!"v1".equals(mode) && !"v2".equals(mode)) {
            if ("true".equals(System.getenv("CI"))) {
                throw new AssertionError("cgroups must be usable in CI, got " + mode);
            }
            System.out.println("SKIPPED TestProcessContainment: no writable cgroups on this host (" + mode + ")");
            Assumptions.abort("no writable cgroups on this host (" + mode + ")");
        }
        noisy = palisade.post("/v1/databases", "{\"label\":\"noisy\",\"cpu\":1,\"memory_mb\":256}").json();
        victim = palisade.post("/v1/databases", "{\"label\":\"victim\"}").json();
    }

    @AfterAll
    void stop() {
        if (noisy != null) {
            palisade.delete("/v1/databases/" + noisy.get("id").asText());
            palisade.delete("/v1/databases/" + victim.get("id").asText());
        }
        palisade.close();
    }

    @Test
    void memoryExhaustionHitsOnlyTheTenant() throws Exception {
        AtomicBoolean running = new AtomicBoolean(true);
        AtomicInteger victimOk = new AtomicInteger();
        AtomicInteger victimFailed = new AtomicInteger();
        Thread neighbour = Thread.ofVirtual().name("victim-queries").start(() -> {
            try (Connection c = PgUrls.connect(victim.get("connection_url").asText()); Statement s = c.createStatement()) {
                while (running.get()) {
                    try (ResultSet rs = s.executeQuery("SELECT count(*) FROM generate_series(1, 1000)")) {
                        rs.next();
                        victimOk.incrementAndGet();
                    } catch (SQLException e) {
                        victimFailed.incrementAndGet();
                    }
                    Processes.sleep(Duration.ofMillis(20));
                }
            } catch (SQLException e) {
                victimFailed.incrementAndGet();
            }
        });
        try (Connection c = PgUrls.connect(noisy.get("connection_url").asText()); Statement s = c.createStatement()) {
            s.execute("SET work_mem = '2GB'");
            // ~1 GiB of live strings in one backend: far over the 256 MiB cap
            assertThatThrownBy(() -> s.executeQuery(
                            "SELECT count(*) FROM (SELECT repeat(md5(g::text), 32768) AS v FROM generate_series(1, 1000) g "
                                    + "ORDER BY v) t"))
                    .isInstanceOf(SQLException.class);
        }
        running.set(false);
        neighbour.join(Duration.ofSeconds(30));
        System.out.printf("memory containment: victim %d ok, %d failed during the episode%n", victimOk.get(), victimFailed.get());
        assertThat(victimOk.get()).isPositive();
        assertThat(victimFailed.get()).isZero();
        // the noisy tenant recovers by itself (postgres crash recovery or the reconciler)
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        boolean recovered = false;
        while (!recovered && System.nanoTime() < deadline) {
            try (Connection c = PgUrls.connect(noisy.get("connection_url").asText())) {
                recovered = c.isValid(5);
            } catch (SQLException e) {
                Processes.sleep(Duration.ofMillis(200));
            }
        }
        assertThat(recovered).as("noisy tenant recovered").isTrue();
    }

    @Test
    void cpuQuotaHoldsUnderTwoSpinningBackends() throws Exception {
        String id = noisy.get("id").asText();
        Path usage = cpuUsageFile(io.palisade.agent.ProcessDriver.cgroupPrefix(
                palisade.dataDir().resolve("instances/process")) + id);
        AtomicBoolean running = new AtomicBoolean(true);
        Thread[] spinners = new Thread[2];
        for (int i = 0; i < spinners.length; i++) {
            spinners[i] = Thread.ofVirtual().name("spinner-" + i).start(() -> {
                try (Connection c = PgUrls.connect(noisy.get("connection_url").asText()); Statement s = c.createStatement()) {
                    s.execute("SET statement_timeout = '6s'");
                    s.execute("SELECT count(*) FROM generate_series(1, 2000000000)");
                } catch (SQLException e) {
                    // the statement timeout ends the spin
                }
            });
        }
        Processes.sleep(Duration.ofSeconds(1));
        long cpuBefore = readCpuNanos(usage);
        long wallBefore = System.nanoTime();
        Processes.sleep(Duration.ofSeconds(3));
        double cores = (readCpuNanos(usage) - cpuBefore) / (double) (System.nanoTime() - wallBefore);
        running.set(false);
        for (Thread spinner : spinners) {
            spinner.join(Duration.ofSeconds(30));
        }
        System.out.printf("cpu containment: 2 spinning backends used %.2f cores with a 1-core cap%n", cores);
        assertThat(cores).as("cores used by a 1-vCPU tenant").isLessThan(1.15).isGreaterThan(0.3);
    }

    private static Path cpuUsageFile(String group) {
        Path v1 = Path.of("/sys/fs/cgroup/cpuacct/palisade-test", group, "cpuacct.usage");
        if (Files.exists(v1)) {
            return v1;
        }
        return Path.of("/sys/fs/cgroup/palisade-test", group, "cpu.stat");
    }

    private static long readCpuNanos(Path file) throws Exception {
        String text = Files.readString(file);
        if (file.getFileName().toString().equals("cpu.stat")) {
            for (String line : text.split("\n")) {
                if (line.startsWith("usage_usec ")) {
                    return Long.parseLong(line.substring(11).strip()) * 1000;
                }
            }
            throw new IllegalStateException("no usage_usec in " + file);
        }
        return Long.parseLong(text.strip());
    }
}
