package io.palisade.server;

import static java.util.Objects.requireNonNull;

import java.time.Duration;
import java.time.InstantSource;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * One database's sampled series in two bounded rings: the last hour at the sampling step (360 slots at 10 s) and the
 * last day at 30 steps (288 buckets of 5 min at 10 s, each the mean of the samples that fell in it). A slot is
 * addressed by its time ({@code epochSecond / resolution mod capacity}) and remembers which time it holds, so a stale
 * slot is never read as a current one and memory stays fixed (about 50 KiB per database with the nine series) however
 * long it runs. A missing value is {@code NaN} inside and {@code null} outside.
 *
 * <p>Thread-safe: every method is synchronized (the sampler writes once a step; readers copy out).
 */
final class DatabaseHistory {
    /** How many steps one bucket of the day window spans (10 s steps make 5 min buckets). */
    static final int STEPS_PER_BUCKET = 30;

    /** The windows the API serves. */
    enum Window {
        HOUR("1h", Duration.ofHours(1)),
        DAY("1d", Duration.ofDays(1));

        private final String wireName;
        private final Duration length;

        Window(String wireName, Duration length) {
            this.wireName = wireName;
            this.length = length;
        }

        String wireName() {
            return wireName;
        }

        Duration length() {
            return length;
        }

        static java.util.Optional<Window> fromWire(String name) {
            return Arrays.stream(values()).filter(w -> w.wireName.equals(name)).findFirst();
        }
    }

    /** The points of one window: shared timestamps (epoch seconds, ascending) and one value array per series. */
    record Points(long stepSeconds, long[] times, List<double[]> values) {
        Points {
            requireNonNull(times, "times is null");
            values = List.copyOf(requireNonNull(values, "values is null"));
        }
    }

    private final InstantSource clock;
    private final int seriesCount;
    private final Ring fine;
    private final Ring coarse;
    private long bucketStart = Long.MIN_VALUE;
    private final double[] bucketSums;
    private final int[] bucketCounts;

    DatabaseHistory(Duration step, int seriesCount, InstantSource clock) {
        requireNonNull(step, "step is null");
        if (step.toSeconds() < 1 || step.toMillis() % 1000 != 0
                || Window.HOUR.length.toSeconds() % step.toSeconds() != 0) {
            throw new IllegalArgumentException("step must be whole seconds dividing an hour, got " + step);
        }
        if (seriesCount < 1) {
            throw new IllegalArgumentException("seriesCount must be positive, got " + seriesCount);
        }
        this.clock = requireNonNull(clock, "clock is null");
        this.seriesCount = seriesCount;
        long stepSeconds = step.toSeconds();
        this.fine = new Ring(stepSeconds, (int) (Window.HOUR.length.toSeconds() / stepSeconds), seriesCount);
        long bucketSeconds = stepSeconds * STEPS_PER_BUCKET;
        this.coarse = new Ring(bucketSeconds, (int) Math.ceilDiv(Window.DAY.length.toSeconds(), bucketSeconds),
                seriesCount);
        this.bucketSums = new double[seriesCount];
        this.bucketCounts = new int[seriesCount];
    }

    /** Records one sample taken now ({@code NaN} = unknown); a second sample in the same step replaces the first. */
    synchronized void record(double[] values) {
        if (values.length != seriesCount) {
            throw new IllegalArgumentException("expected " + seriesCount + " values, got " + values.length);
        }
        long now = clock.instant().getEpochSecond();
        fine.put(now, values);
        long start = Math.floorDiv(now, coarse.resolution) * coarse.resolution;
        if (start != bucketStart) {
            bucketStart = start;
            Arrays.fill(bucketSums, 0);
            Arrays.fill(bucketCounts, 0);
        }
        double[] means = new double[seriesCount];
        for (int i = 0; i < seriesCount; i++) {
            if (!Double.isNaN(values[i])) {
                bucketSums[i] += values[i];
                bucketCounts[i]++;
            }
            means[i] = bucketCounts[i] == 0 ? Double.NaN : bucketSums[i] / bucketCounts[i];
        }
        coarse.put(now, means);
    }

    /**
     * The window ending now: one point per slot from the oldest slot still in the window that holds a sample to the
     * current one, with {@code NaN} for the slots no sample reached (e.g. while the database was suspended).
     */
    synchronized Points window(Window window) {
        Ring ring = window == Window.HOUR ? fine : coarse;
        return ring.read(clock.instant().getEpochSecond());
    }

    /** A fixed array of slots; slot {@code i} holds the step whose number {@code mod capacity} is {@code i}. */
    private static final class Ring {
        private final long resolution;
        private final long[] slotStep;
        private final double[][] slotValues;

        Ring(long resolution, int capacity, int seriesCount) {
            this.resolution = resolution;
            this.slotStep = new long[capacity];
            Arrays.fill(slotStep, Long.MIN_VALUE);
            this.slotValues = new double[capacity][seriesCount];
        }

        void put(long epochSecond, double[] values) {
            long step = Math.floorDiv(epochSecond, resolution);
            int slot = (int) Math.floorMod(step, (long) slotStep.length);
            slotStep[slot] = step;
            System.arraycopy(values, 0, slotValues[slot], 0, values.length);
        }

        Points read(long nowEpochSecond) {
            long last = Math.floorDiv(nowEpochSecond, resolution);
            long first = last - slotStep.length + 1;
            long oldest = Long.MAX_VALUE;
            for (long step : slotStep) {
                if (step >= first && step <= last) {
                    oldest = Math.min(oldest, step);
                }
            }
            int seriesCount = slotValues[0].length;
            if (oldest == Long.MAX_VALUE) {
                List<double[]> empty = new ArrayList<>();
                for (int i = 0; i < seriesCount; i++) {
                    empty.add(new double[0]);
                }
                return new Points(resolution, new long[0], empty);
            }
            int count = (int) (last - oldest + 1);
            long[] times = new long[count];
            List<double[]> values = new ArrayList<>();
            for (int i = 0; i < seriesCount; i++) {
                double[] series = new double[count];
                Arrays.fill(series, Double.NaN);
                values.add(series);
            }
            for (int n = 0; n < count; n++) {
                long step = oldest + n;
                times[n] = step * resolution;
                int slot = (int) Math.floorMod(step, (long) slotStep.length);
                if (slotStep[slot] == step) {
                    for (int i = 0; i < seriesCount; i++) {
                        values.get(i)[n] = slotValues[slot][i];
                    }
                }
            }
            return new Points(resolution, times, values);
        }
    }
}
