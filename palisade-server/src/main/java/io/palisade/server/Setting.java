package io.palisade.server;

import static java.util.Objects.requireNonNull;

import io.palisade.spi.PalisadeException;
import java.util.Optional;

/**
 * One configuration key of {@code palisade serve}, declared once (in {@link ConfigKeys}): its dash-case name prefixed
 * by component, its type (which parses and validates), its default, what it means, and whether it is a secret (never
 * shown). Everything else — start-up validation, {@code --help-config} and the README table — derives from it.
 * Immutable, safe to share between threads.
 *
 * @param name the key, e.g. {@code broker.max-rows}
 * @param type parses and validates the value
 * @param defaultValue the default as written in configuration; empty when the key is unset by default
 * @param unsetMeaning what an unset key means (shown as its default when {@code defaultValue} is empty), e.g.
 *     {@code the machine's hostname}; empty if nothing needs saying
 * @param description what the key does, one or two sentences
 * @param secret true for passwords and keys: its value never appears in messages, logs or help
 * @param <T> the type of the parsed value
 */
public record Setting<T>(String name, SettingType<T> type, Optional<String> defaultValue, String unsetMeaning,
        String description, boolean secret) {
    public Setting {
        requireNonNull(name, "name is null");
        requireNonNull(type, "type is null");
        requireNonNull(defaultValue, "defaultValue is null");
        requireNonNull(unsetMeaning, "unsetMeaning is null");
        requireNonNull(description, "description is null");
        if (!name.matches("[a-z0-9]+(\\.[a-z0-9]+(-[a-z0-9]+)*)+")) {
            throw new IllegalArgumentException("a configuration key is dash-case with a component prefix: " + name);
        }
        defaultValue.ifPresent(value -> checkDefault(name, type, value));
    }

    /** A key with a default. */
    static <T> Setting<T> of(String name, SettingType<T> type, String defaultValue, String description) {
        return new Setting<>(name, type, Optional.of(defaultValue), "", description, false);
    }

    /** A key unset by default; {@code unsetMeaning} says what that means ("" for nothing). */
    static <T> Setting<T> optional(String name, SettingType<T> type, String unsetMeaning, String description) {
        return new Setting<>(name, type, Optional.empty(), unsetMeaning, description, false);
    }

    /** The same key, marked secret. */
    Setting<T> asSecret() {
        return new Setting<>(name, type, defaultValue, unsetMeaning, description, true);
    }

    /**
     * The value of {@code text}; an invalid one fails with one line naming the key, the value (unless secret) and what
     * is expected.
     */
    public T parse(String text) {
        String value = text.strip();
        try {
            return type.parse(value);
        } catch (IllegalArgumentException | ArithmeticException e) {
            String shown = secret ? "a value of " + value.length() + " characters" : "'" + masked(value) + "'";
            throw PalisadeException.invalid(name + " must be " + type.expected() + ", got " + shown);
        }
    }

    /** {@code value} with the credentials a URL may carry ({@code user:password@}, {@code password=}) masked. */
    static String masked(String value) {
        return value.replaceAll("(?i)(password=)[^&;\\s]*", "$1***")
                .replaceAll("(://[^/@:\\s]*:)[^@/]*@", "$1***@");
    }

    private static <T> void checkDefault(String name, SettingType<T> type, String value) {
        try {
            type.parse(value);
        } catch (IllegalArgumentException | ArithmeticException e) {
            throw new IllegalStateException("the default of " + name + " is not " + type.expected() + ": " + value, e);
        }
    }
}
