package io.palisade.api;

import io.palisade.spi.DriverProbe;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.IsolationDriver;
import io.palisade.spi.PalisadeException;
import io.palisade.spi.Rung;
import io.palisade.store.DatabaseRecord;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The isolation drivers this host runs for {@link DatabaseService}, one per rung: their probes, the default rung
 * (chosen once, explicitly), the driver of a rung or of a database, and stopping and closing them at shutdown.
 * Thread-safe: immutable after construction; the drivers are thread-safe for different ids.
 */
final class HostDrivers {
    private static final Logger log = LoggerFactory.getLogger(DatabaseService.class);

    private final Map<Rung, IsolationDriver> drivers;
    private final Map<Rung, DriverProbe> probes = new LinkedHashMap<>();
    private final Rung defaultIsolation;

    HostDrivers(List<IsolationDriver> drivers) {
        Map<Rung, IsolationDriver> byName = new LinkedHashMap<>();
        for (IsolationDriver driver : drivers) {
            byName.put(driver.rung(), driver);
            probes.put(driver.rung(), driver.probe());
        }
        this.drivers = Map.copyOf(byName);
        this.defaultIsolation = chooseDefault(probes);
    }

    /**
     * The default rung: the first usable driver that wants to be the default (vm with KVM), else {@code process}. When
     * none is usable, the message lists every candidate and why it was rejected.
     */
    static Rung chooseDefault(Map<Rung, DriverProbe> probes) {
        for (var probe : probes.entrySet()) {
            if (probe.getValue().usable() && probe.getValue().preferredDefault()) {
                return probe.getKey();
            }
        }
        DriverProbe process = probes.get(Rung.PROCESS);
        if (process != null && process.usable()) {
            return Rung.PROCESS;
        }
        for (var probe : probes.entrySet()) {
            if (probe.getValue().usable()) {
                return probe.getKey();
            }
        }
        List<String> reasons = probes.values().stream().map(p -> p.driver() + ": " + p.reason()).toList();
        throw new PalisadeException(ErrorCode.INTERNAL, "no isolation driver is usable on this host: " + reasons);
    }

    Rung defaultIsolation() {
        return defaultIsolation;
    }

    Map<Rung, DriverProbe> probes() {
        return Map.copyOf(probes);
    }

    /** Every driver by its rung (immutable). */
    Map<Rung, IsolationDriver> byRung() {
        return drivers;
    }

    /** A rung's background work for {@code /v1/health} ({@link IsolationDriver#healthDetails()}); empty if none. */
    Map<String, String> healthDetails(Rung rung) {
        IsolationDriver driver = drivers.get(rung);
        return driver == null ? Map.of() : driver.healthDetails();
    }

    /** The driver of a rung; INVALID_REQUEST naming the rungs this host runs when it runs none for that rung. */
    IsolationDriver driver(Rung rung) {
        IsolationDriver driver = drivers.get(rung);
        if (driver == null) {
            throw PalisadeException.invalid("isolation '" + rung.wireName() + "' is not run by this host; available"
                    + " here: " + drivers.keySet().stream().map(Rung::wireName).sorted().toList());
        }
        return driver;
    }

    /** The driver of a database's rung; INTERNAL when this host does not run that rung. */
    IsolationDriver driverFor(DatabaseRecord record) {
        IsolationDriver driver = drivers.get(record.isolation());
        if (driver == null) {
            throw new PalisadeException(ErrorCode.INTERNAL,
                    "database " + record.id() + " uses isolation '" + record.isolation() + "', which this host does not run");
        }
        return driver;
    }

    /**
     * Stops every instance of every driver if {@code stopInstances} (their recorded state stays, so the next start
     * brings them back), then closes the drivers.
     */
    void close(boolean stopInstances) {
        if (stopInstances) {
            try (ExecutorService stoppers = Executors.newThreadPerTaskExecutor(
                    Thread.ofVirtual().name("palisade-stop-", 0).factory())) {
                for (IsolationDriver driver : drivers.values()) {
                    for (String id : driver.listInstances()) {
                        stoppers.execute(() -> {
                            try {
                                if (driver.isRunning(id)) {
                                    driver.stop(id);
                                }
                            } catch (RuntimeException e) {
                                log.warn("stopping {} failed: {}", id, e.getMessage());
                            }
                        });
                    }
                }
            }
        }
        for (IsolationDriver driver : drivers.values()) {
            try {
                driver.close();
            } catch (RuntimeException e) {
                log.warn("closing driver {} failed: {}", driver.name(), e.getMessage());
            }
        }
    }
}
