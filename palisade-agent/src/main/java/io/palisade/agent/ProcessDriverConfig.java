package io.palisade.agent;

import static java.util.Objects.requireNonNull;

import io.palisade.host.Cgroups;
import io.palisade.host.ServiceUser;
import java.nio.file.Path;
import java.time.Duration;

/**
 * Configuration of the {@code process} rung: where instances live, where binaries and templates are cached, who runs the
 * servers and how they are capped, and whether closing the driver leaves its servers running
 * ({@code agent.stop-instances-on-exit=false}: the next start takes them over).
 */
public record ProcessDriverConfig(
        Path instancesDir, Path cacheDir, ServiceUser user, Cgroups cgroups, Duration startTimeout,
        Duration restoreTimeout, boolean keepServersOnClose) {
    /** The default bound on a restored server's first start (WAL replay included). */
    public static final Duration DEFAULT_RESTORE_TIMEOUT = Duration.ofHours(1);

    public ProcessDriverConfig(Path instancesDir, Path cacheDir, ServiceUser user, Cgroups cgroups, Duration startTimeout) {
        this(instancesDir, cacheDir, user, cgroups, startTimeout, DEFAULT_RESTORE_TIMEOUT, false);
    }

    public ProcessDriverConfig {
        requireNonNull(restoreTimeout, "restoreTimeout is null");
        if (restoreTimeout.compareTo(startTimeout) < 0) {
            throw new IllegalArgumentException("agent.restore-timeout must not be shorter than agent.start-timeout");
        }
        requireNonNull(instancesDir, "instancesDir is null");
        requireNonNull(cacheDir, "cacheDir is null");
        requireNonNull(user, "user is null");
        requireNonNull(cgroups, "cgroups is null");
        requireNonNull(startTimeout, "startTimeout is null");
        if (startTimeout.isNegative() || startTimeout.isZero()) {
            throw new IllegalArgumentException("startTimeout must be positive");
        }
    }
}
