package io.palisade.bench;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/** Latency samples in milliseconds with percentiles (nearest rank). Not thread-safe. */
final class Stats {
    private final List<Double> samples = new ArrayList<>();

    /** One sample. */
    static Stats of(double millis) {
        Stats stats = new Stats();
        stats.add(millis);
        return stats;
    }

    void add(double millis) {
        samples.add(millis);
    }

    int count() {
        return samples.size();
    }

    double percentile(double p) {
        List<Double> sorted = new ArrayList<>(samples);
        Collections.sort(sorted);
        int rank = (int) Math.ceil(p / 100.0 * sorted.size());
        return sorted.get(Math.max(0, Math.min(sorted.size() - 1, rank - 1)));
    }

    double max() {
        return Collections.max(samples);
    }
}
