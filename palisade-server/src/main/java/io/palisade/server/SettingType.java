package io.palisade.server;

import static java.util.Objects.requireNonNull;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * The type of a configuration value: how its text parses, what it must be ({@link #expected()}, used in start-up
 * errors), and its short name in {@code --help-config} and the README. A parse failure is an
 * {@link IllegalArgumentException} whose message is unused: {@link Setting#parse} reports key, value and
 * {@link #expected()}. Implementations are immutable values, safe to share between threads.
 *
 * @param <T> the parsed value's type
 */
public sealed interface SettingType<T> {
    /** The value of {@code text} (already stripped); throws IllegalArgumentException if it is not one. */
    T parse(String text);

    /** What a valid value is, completing "must be …", e.g. {@code an integer from 0 to 65535}. */
    String expected();

    /** A short name for tables, e.g. {@code int 0..65535}. */
    String name();

    /** Whether {@link #expected()} says more than {@link #name()} (help shows it then). */
    default boolean explains() {
        return true;
    }

    static SettingType<String> text() {
        return new Text("string", 0, Optional.empty(), "any text");
    }

    static SettingType<String> nonEmpty() {
        return new Text("string", 1, Optional.empty(), "non-empty text");
    }

    /** Text matching {@code regex}; {@code name} is its short name, e.g. {@code URL}. */
    static SettingType<String> matching(String name, String regex, String expected) {
        return new Text(name, 0, Optional.of(Pattern.compile(regex)), expected);
    }

    static SettingType<String> minLength(int minLength) {
        return new Text("string", minLength, Optional.empty(), "at least " + minLength + " characters long");
    }

    static SettingType<Integer> integer(int min, int max) {
        return new IntType(min, max);
    }

    static SettingType<Long> longInteger(long min, long max) {
        return new LongType(min, max);
    }

    static SettingType<Boolean> bool() {
        return new BoolType();
    }

    static SettingType<String> oneOf(String... choices) {
        return new Choice(List.of(choices));
    }

    static SettingType<Path> path() {
        return new PathType();
    }

    static SettingType<Duration> duration(Duration min, Duration max) {
        return new DurationType(min, max);
    }

    static SettingType<Duration> positiveDuration() {
        return new DurationType(Duration.ofMillis(1), Duration.ofDays(365_000));
    }

    static SettingType<Long> dataSize(long min, long max) {
        return new DataSize(min, max);
    }

    /** {@code word} (e.g. {@code never}) for "none", else a value of {@code inner}. */
    static <T> SettingType<Optional<T>> orWord(String word, SettingType<T> inner) {
        return new OrWord<>(word, inner);
    }

    record Text(String name, int minLength, Optional<Pattern> pattern, String expected) implements SettingType<String> {
        public Text {
            requireNonNull(name, "name is null");
            requireNonNull(pattern, "pattern is null");
            requireNonNull(expected, "expected is null");
        }

        @Override
        public String parse(String text) {
            if (text.length() < minLength || pattern.filter(p -> !p.matcher(text).matches()).isPresent()) {
                throw new IllegalArgumentException(expected);
            }
            return text;
        }

        @Override
        public boolean explains() {
            return pattern.isPresent() || minLength > 1;
        }
    }

    record IntType(int min, int max) implements SettingType<Integer> {
        @Override
        public Integer parse(String text) {
            int value = Integer.parseInt(text);
            if (value < min || value > max) {
                throw new IllegalArgumentException(expected());
            }
            return value;
        }

        @Override
        public String expected() {
            return "an integer " + range(min, max, Integer.MAX_VALUE);
        }

        @Override
        public String name() {
            return max == Integer.MAX_VALUE ? "int ≥ " + min : "int " + min + ".." + max;
        }
    }

    record LongType(long min, long max) implements SettingType<Long> {
        @Override
        public Long parse(String text) {
            long value = Long.parseLong(text);
            if (value < min || value > max) {
                throw new IllegalArgumentException(expected());
            }
            return value;
        }

        @Override
        public String expected() {
            return "an integer " + range(min, max, Long.MAX_VALUE);
        }

        @Override
        public String name() {
            return max == Long.MAX_VALUE ? "int ≥ " + min : "int " + min + ".." + max;
        }
    }

    record BoolType() implements SettingType<Boolean> {
        @Override
        public Boolean parse(String text) {
            return switch (text) {
                case "true" -> true;
                case "false" -> false;
                default -> throw new IllegalArgumentException(expected());
            };
        }

        @Override
        public String expected() {
            return "true or false";
        }

        @Override
        public String name() {
            return "boolean";
        }

        @Override
        public boolean explains() {
            return false;
        }
    }

    record Choice(List<String> choices) implements SettingType<String> {
        public Choice {
            choices = List.copyOf(choices);
        }

        @Override
        public String parse(String text) {
            if (!choices.contains(text)) {
                throw new IllegalArgumentException(expected());
            }
            return text;
        }

        @Override
        public String expected() {
            return "one of " + String.join(", ", choices);
        }

        @Override
        public String name() {
            return String.join(" | ", choices);
        }

        @Override
        public boolean explains() {
            return false;
        }
    }

    record PathType() implements SettingType<Path> {
        @Override
        public Path parse(String text) {
            if (text.isEmpty() || text.indexOf('\0') >= 0) {
                throw new IllegalArgumentException(expected());
            }
            return Path.of(text);
        }

        @Override
        public String expected() {
            return "a file system path";
        }

        @Override
        public String name() {
            return "path";
        }

        @Override
        public boolean explains() {
            return false;
        }
    }

    /** A duration written as a whole number with a unit: ms, s, m, h or d (or a bare 0). */
    record DurationType(Duration min, Duration max) implements SettingType<Duration> {
        public DurationType {
            requireNonNull(min, "min is null");
            requireNonNull(max, "max is null");
        }

        @Override
        public Duration parse(String text) {
            Duration value = parseDuration(text);
            if (value.compareTo(min) < 0 || value.compareTo(max) > 0) {
                throw new IllegalArgumentException(expected());
            }
            return value;
        }

        @Override
        public String expected() {
            String kind = "a duration like 500ms, 30s, 5m, 24h or 7d";
            String lower = min.equals(Duration.ofMillis(1)) ? ", positive" : ", at least " + format(min);
            return kind + lower + (max.compareTo(Duration.ofDays(365_000)) < 0 ? " and at most " + format(max) : "");
        }

        @Override
        public String name() {
            String lower = min.equals(Duration.ofMillis(1)) ? "duration > 0" : "duration ≥ " + format(min);
            return max.compareTo(Duration.ofDays(365_000)) < 0 ? lower + ", ≤ " + format(max) : lower;
        }

        static Duration parseDuration(String text) {
            String lower = text.toLowerCase(Locale.ROOT);
            int digits = 0;
            while (digits < lower.length() && Character.isDigit(lower.charAt(digits))) {
                digits++;
            }
            if (digits == 0 || digits > 15) {
                throw new IllegalArgumentException("not a duration");
            }
            long amount = Long.parseLong(lower.substring(0, digits));
            if (amount == 0 && digits == lower.length()) {
                return Duration.ZERO;
            }
            return switch (lower.substring(digits)) {
                case "ms" -> Duration.ofMillis(amount);
                case "s" -> Duration.ofSeconds(amount);
                case "m" -> Duration.ofMinutes(amount);
                case "h" -> Duration.ofHours(amount);
                case "d" -> Duration.ofDays(amount);
                default -> throw new IllegalArgumentException("not a duration");
            };
        }

        static String format(Duration duration) {
            long millis = duration.toMillis();
            if (millis % 1000 != 0) {
                return millis + "ms";
            }
            long seconds = millis / 1000;
            if (seconds != 0 && seconds % 86_400 == 0) {
                return seconds / 86_400 + "d";
            }
            if (seconds != 0 && seconds % 3600 == 0) {
                return seconds / 3600 + "h";
            }
            return seconds != 0 && seconds % 60 == 0 ? seconds / 60 + "m" : seconds + "s";
        }
    }

    /** A number of bytes: a whole number, optionally with B, KiB, MiB or GiB. */
    record DataSize(long min, long max) implements SettingType<Long> {
        @Override
        public Long parse(String text) {
            String lower = text.toLowerCase(Locale.ROOT);
            int digits = 0;
            while (digits < lower.length() && Character.isDigit(lower.charAt(digits))) {
                digits++;
            }
            if (digits == 0 || digits > 15) {
                throw new IllegalArgumentException(expected());
            }
            long amount = Long.parseLong(lower.substring(0, digits));
            long unit = switch (lower.substring(digits)) {
                case "", "b" -> 1;
                case "kib" -> 1024;
                case "mib" -> 1024 * 1024;
                case "gib" -> 1024L * 1024 * 1024;
                default -> throw new IllegalArgumentException(expected());
            };
            long value = Math.multiplyExact(amount, unit);
            if (value < min || value > max) {
                throw new IllegalArgumentException(expected());
            }
            return value;
        }

        @Override
        public String expected() {
            return "a size in bytes like 65536, 64KiB or 10MiB, from " + format(min) + " to " + format(max);
        }

        @Override
        public String name() {
            return "bytes " + format(min) + ".." + format(max);
        }

        static String format(long bytes) {
            for (String unit : List.of("GiB", "MiB", "KiB")) {
                long size = switch (unit) {
                    case "GiB" -> 1024L * 1024 * 1024;
                    case "MiB" -> 1024L * 1024;
                    default -> 1024L;
                };
                if (bytes >= size && bytes % size == 0) {
                    return bytes / size + unit;
                }
            }
            return bytes + "B";
        }
    }

    record OrWord<T>(String word, SettingType<T> inner) implements SettingType<Optional<T>> {
        public OrWord {
            requireNonNull(word, "word is null");
            requireNonNull(inner, "inner is null");
        }

        @Override
        public Optional<T> parse(String text) {
            return text.equals(word) ? Optional.empty() : Optional.of(inner.parse(text));
        }

        @Override
        public String expected() {
            return word + " or " + inner.expected();
        }

        @Override
        public String name() {
            return inner.name() + " | " + word;
        }
    }

    private static String range(long min, long max, long unbounded) {
        return max == unbounded ? "of at least " + min : "from " + min + " to " + max;
    }
}
