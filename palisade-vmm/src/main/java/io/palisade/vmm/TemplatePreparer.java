package io.palisade.vmm;

import static java.util.Objects.requireNonNull;

import io.palisade.spi.ErrorCode;
import io.palisade.spi.InstanceSpec;
import io.palisade.spi.PalisadeException;
import io.palisade.spi.Plan;
import io.palisade.spi.PostgresVersion;
import io.palisade.spi.ProgressListener;
import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Prepares the template snapshot of one plan (the default plan of {@code palisade serve}) in the background, so the
 * first create clones instead of building it: at start, and again whenever the guest image's key (or anything else in
 * the template key) changes, checked every {@code interval}. A create that arrives meanwhile waits for this build in
 * {@link TemplateCache} rather than starting its own. Progress goes to the log and to {@link #status()} (shown in
 * {@code /v1/health}). Each check also marks the template wanted, and once an hour {@link TemplatePruner} deletes the
 * templates nobody marked for a day (an older image's, typically). Closing stops the checks; a build in progress
 * completes (the driver's VMs outlive it anyway).
 * Thread-safe: one named virtual thread does the work; the status is read from volatile fields and the cache.
 */
final class TemplatePreparer implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(VmDriver.class);
    private static final String PREPARE_ID = "tpl-prepare";
    /** How often a running server prunes the templates directory. */
    private static final Duration PRUNE_EVERY = Duration.ofHours(1);

    private final VmDriver driver;
    private final TemplateCache cache;
    private final InstanceSpec spec;
    private final Duration interval;
    private final Thread thread;
    private volatile boolean closed;
    private volatile String key;
    private volatile String problem = "";
    /** When the preparation thread last pruned unused templates (only that thread reads and writes it). */
    private Instant lastPrune;

    /** Starts preparing at once. */
    TemplatePreparer(VmDriver driver, TemplateCache cache, Plan plan, PostgresVersion version, Duration interval) {
        this.driver = requireNonNull(driver, "driver is null");
        this.cache = requireNonNull(cache, "cache is null");
        this.spec = new InstanceSpec(PREPARE_ID, requireNonNull(version, "version is null"),
                requireNonNull(plan, "plan is null"), "app", "app");
        this.interval = requireNonNull(interval, "interval is null");
        if (interval.isNegative() || interval.isZero()) {
            throw PalisadeException.invalid("the template check interval must be positive, got " + interval);
        }
        this.thread = Thread.ofVirtual().name("vm-template-prepare").start(this::run);
    }

    private void run() {
        while (!closed) {
            try {
                prepareOnce();
            } catch (RuntimeException e) {
                problem = VmDriver.safeMessage(e);
                log.warn("preparing the template snapshot failed ({}); creates build it on first need", problem);
            }
            synchronized (this) {
                try {
                    if (!closed) {
                        wait(interval.toMillis()); // woken by close; a build in progress is never interrupted
                    }
                } catch (InterruptedException e) {
                    return;
                }
            }
        }
    }

    /** Makes sure the template of the current image and this plan exists (blocks while it is built). */
    private void prepareOnce() {
        Target target;
        try {
            target = Target.current(driver, cache, spec);
        } catch (PalisadeException e) {
            if (e.errorCode() != ErrorCode.NOT_READY) {
                throw e;
            }
            problem = e.getMessage(); // a host without the rung: said in /v1/health, not logged at every check
            return;
        }
        String current = target.key();
        String previous = key;
        if (current.equals(previous) && cache.status(current).state() != TemplateState.MISSING) {
            // ready, failed (not retried), or being built by a create
            wanted(current);
            return;
        }
        key = current;
        problem = "";
        if (previous == null) {
            log.info("preparing the template snapshot {} for the default plan ({}, PostgreSQL {}) in the background",
                    current, spec.plan().name(), spec.version().major());
        } else if (!current.equals(previous)) {
            log.info("the template key changed from {} to {} (new guest image?); preparing the template snapshot "
                    + "again in the background", previous, current);
        }
        target.build(ProgressListener.NONE).ifPresent(prepared -> log.info(
                "template snapshot {} for the default plan is ready ({} ms after the preparation started)", current,
                prepared.elapsedMs()));
        lastPrune = null; // a new key: the previous image's template may be unused now
        wanted(current);
    }

    /**
     * This server wants the template of {@code current} (a mark, so no other palisade prunes it) and not the ones
     * nobody marked for a day: those are pruned, at most once per {@link #PRUNE_EVERY}.
     */
    private void wanted(String current) {
        if (cache.status(current).state() != TemplateState.READY) {
            return;
        }
        TemplateCache.markUsed(new TemplateCache.Template(cache.dir().resolve(current)));
        Instant now = Instant.now();
        if (lastPrune == null || !now.isBefore(lastPrune.plus(PRUNE_EVERY))) {
            lastPrune = now;
            new TemplatePruner(cache).prune(current, now);
        }
    }

    /**
     * Makes sure the template of the current guest image and {@code plan} exists, building it now if not (blocks;
     * the build's phases go to {@code progress}). Throws when the vm rung is not usable here or the build failed.
     */
    static PreparedTemplate prepareNow(VmDriver driver, TemplateCache cache, Plan plan, PostgresVersion version,
            ProgressListener progress) {
        Target target = Target.current(driver, cache, new InstanceSpec(PREPARE_ID, version, plan, "app", "app"));
        return target.build(progress).orElseThrow(() -> {
            String error = cache.status(target.key()).error();
            return new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot build the template snapshot " + target.key()
                    + (error.isEmpty() ? " (another process held its build lock too long)" : ": " + error));
        });
    }

    /** The template one spec needs for the guest image installed now: what both ways of preparing it start from. */
    private record Target(TemplateCache cache, InstanceSpec spec, GuestImage image, String key) {
        /** Throws {@link ErrorCode#NOT_READY} when the vm rung is not usable here. */
        static Target current(VmDriver driver, TemplateCache cache, InstanceSpec spec) {
            if (!driver.probe().usable()) {
                throw new PalisadeException(ErrorCode.NOT_READY,
                        "the vm rung is not usable here: " + driver.probe().reason());
            }
            GuestImage image = GuestImage.load(driver.config().imageDir());
            return new Target(cache, spec, image, cache.key(spec, image));
        }

        /**
         * The template, built now unless it exists (a build by a create or by another palisade sharing the
         * templates directory is waited for); empty when it could not be built (the cache says why).
         */
        Optional<PreparedTemplate> build(ProgressListener progress) {
            int buildsBefore = cache.builds();
            long start = System.nanoTime();
            // ready before, or built meanwhile by another palisade: not built by this cache
            return cache.template(spec, image, progress).map(template -> new PreparedTemplate(key,
                    cache.builds() == buildsBefore, (System.nanoTime() - start) / 1_000_000));
        }
    }

    /** {@code template_state}, {@code template_key}, and while building {@code template_phase} and elapsed time. */
    Map<String, String> status() {
        Map<String, String> result = new LinkedHashMap<>();
        String current = key;
        if (current == null) {
            result.put("template_state",
                (problem.isEmpty() ? TemplateState.PENDING : TemplateState.UNAVAILABLE).wireName());
            if (!problem.isEmpty()) {
                result.put("template_error", problem);
            }
            return result;
        }
        TemplateCache.Status status = cache.status(current);
        result.put("template_state", status.state().wireName());
        result.put("template_key", current);
        if (!status.phase().isEmpty()) {
            result.put("template_phase", status.phase());
            result.put("template_elapsed_ms", Long.toString(status.elapsedMs()));
        }
        if (!status.error().isEmpty()) {
            result.put("template_error", status.error());
        } else if (!problem.isEmpty()) {
            result.put("template_error", problem);
        }
        return result;
    }

    @Override
    public synchronized void close() {
        closed = true;
        notifyAll();
    }

    /** Waits (bounded) until the preparation thread has ended, e.g. after {@link #close()}. */
    boolean awaitEnd(Duration bound) throws InterruptedException {
        return thread.join(bound);
    }
}
