package io.palisade.backup.store;

import io.palisade.spi.PalisadeException;

/**
 * The one rule for archive object keys and list prefixes, shared by every {@link ArchiveStore}: characters
 * {@code [A-Za-z0-9._/-]}, at most {@value #MAX_LENGTH} characters, no leading {@code /}, no empty segment, no
 * {@code ..}, and no segment starting with {@code .} (the local store keeps its temporary files under such names).
 * A key also does not end with {@code /}; a prefix may, and may be empty. Thread-safe (stateless).
 */
public final class ArchiveKeys {
    public static final int MAX_LENGTH = 512;

    private ArchiveKeys() {}

    /** Returns {@code key} if it is a valid object key, else throws an invalid-request error that says why. */
    public static String checkKey(String key) {
        if (key == null || key.isEmpty()) {
            throw PalisadeException.invalid("archive key '' is invalid: it is empty");
        }
        checkCommon(key, "archive key");
        if (key.endsWith("/")) {
            throw invalid("archive key", key, "it ends with '/' (that names a prefix, not an object)");
        }
        return key;
    }

    /** Returns {@code prefix} if it is a valid list/delete prefix ({@code ""} means everything), else throws. */
    public static String checkPrefix(String prefix) {
        if (prefix == null) {
            throw PalisadeException.invalid("archive prefix is null: pass \"\" for every object");
        }
        if (!prefix.isEmpty()) {
            checkCommon(prefix, "archive prefix");
        }
        return prefix;
    }

    private static void checkCommon(String value, String what) {
        if (value.length() > MAX_LENGTH) {
            throw invalid(what, value.substring(0, 40) + "…", "it has " + value.length() + " characters, more than "
                    + MAX_LENGTH);
        }
        for (int i = 0; i < value.length(); i++) {
            char c = value.charAt(i);
            boolean ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                    || c == '.' || c == '_' || c == '/' || c == '-';
            if (!ok) {
                throw invalid(what, value, "character " + describe(c) + " at " + i
                        + " is not one of A-Z a-z 0-9 . _ / -");
            }
        }
        if (value.startsWith("/")) {
            throw invalid(what, value, "it starts with '/' (keys are relative to the store)");
        }
        if (value.contains("..")) {
            throw invalid(what, value, "it contains '..'");
        }
        if (value.contains("//")) {
            throw invalid(what, value, "it has an empty segment ('//')");
        }
        if (value.startsWith(".") || value.contains("/.")) {
            throw invalid(what, value, "a segment starts with '.' (reserved for the store's temporary files)");
        }
    }

    private static String describe(char c) {
        return c >= 0x21 && c < 0x7f ? "'" + c + "'" : String.format("U+%04X", (int) c);
    }

    private static PalisadeException invalid(String what, String value, String why) {
        // a key never holds a secret, but an invalid one may hold anything: show only the safe characters
        String shown = value.replaceAll("[^A-Za-z0-9._/-]", "?");
        return PalisadeException.invalid(what + " '" + shown + "' is invalid: " + why);
    }
}
