package io.palisade.agent;

import static java.util.Objects.requireNonNull;

import io.palisade.host.Cgroups;
import io.palisade.host.ServiceUser;
import java.nio.file.Path;
import java.time.Duration;

/**
 * Configuration of the {@code process} rung: where instances live, where binaries and templates are cached, who runs the
 * servers and how they are capped.
 */
public record ProcessDriverConfig(
        Path instancesDir, Path cacheDir, ServiceUser user, Cgroups cgroups, Duration startTimeout) {
    public ProcessDriverConfig {
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
