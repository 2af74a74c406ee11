package io.palisade.broker;

import com.fasterxml.jackson.core.JsonGenerator;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.math.BigDecimal;
import java.math.MathContext;
import java.math.RoundingMode;
import java.nio.charset.StandardCharsets;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Writes PostgreSQL text values in PandaStack's value style: what its broker (Go, lib/pq scanning every column into
 * {@code any}, encoding/json) answers. NULL → null; bool → true/false; int2/int4/int8 → JSON numbers; float4/float8
 * → JSON numbers formatted as Go formats a float64 ({@code 1e+21}, {@code 1e-7}, {@code 0.000001}); timestamptz,
 * timestamp and date → RFC 3339 with up to nanosecond digits ({@code 2026-06-13T10:00:00.5+02:00}; an offset with
 * seconds is cut to minutes; no zone → {@code Z}); time and timetz → the same on 0000-01-01 ({@code 24:00:00} is
 * the next day); bytea → its bytes as a string; everything else (numeric, json/jsonb, arrays, uuid, interval,
 * text…) → the PostgreSQL text as a string. Strings carry invalid UTF-8 bytes as U+FFFD, one per byte, as Go does.
 *
 * <p>Where PandaStack's encoder fails (and its broker answers 200 with an empty body) palisade answers strings:
 * NaN and ±Infinity as PostgreSQL writes them ({@code "NaN"}, {@code "Infinity"}, {@code "-Infinity"}), and dates
 * outside years 0–9999 (before 1 BC, after 9999) as PostgreSQL's text; {@code infinity} and {@code -infinity} are
 * strings in both. Stateless.
 */
final class PandaValues {
    static final int BYTEA = 17;
    static final int DATE = 1082;
    static final int TIME = 1083;
    static final int TIMESTAMP = 1114;
    static final int TIMESTAMPTZ = 1184;
    static final int TIMETZ = 1266;

    private static final Pattern TIMESTAMP_TEXT = Pattern.compile(
            "(\\d{4,})-(\\d\\d)-(\\d\\d)(?: (\\d\\d:\\d\\d:\\d\\d)(?:\\.(\\d{1,9}))?)?"
                    + "(?:([+-])(\\d\\d)(?::(\\d\\d))?(?::(\\d\\d))?)?( BC)?");
    private static final Pattern TIME_TEXT = Pattern.compile(
            "(\\d\\d:\\d\\d:\\d\\d)(?:\\.(\\d{1,9}))?(?:([+-])(\\d\\d)(?::(\\d\\d))?(?::(\\d\\d))?)?");

    private PandaValues() {}

    /** Writes one value ({@code length} &lt; 0 is NULL) of the type {@code oid} in PandaStack's style. */
    static void write(JsonGenerator json, int oid, byte[] bytes, int offset, int length) throws IOException {
        if (length < 0) {
            json.writeNull();
            return;
        }
        switch (oid) {
            case JsonValues.BOOL -> json.writeBoolean(length == 1 && bytes[offset] == 't');
            case JsonValues.INT2, JsonValues.INT4, JsonValues.INT8 ->
                    json.writeNumber(new String(bytes, offset, length, StandardCharsets.US_ASCII));
            case JsonValues.FLOAT4, JsonValues.FLOAT8 -> {
                String text = new String(bytes, offset, length, StandardCharsets.US_ASCII);
                double value = Double.parseDouble(text);
                if (Double.isNaN(value) || Double.isInfinite(value)) {
                    json.writeString(text);
                } else {
                    json.writeNumber(goFloat(value));
                }
            }
            case BYTEA -> {
                byte[] raw = bytea(bytes, offset, length);
                writeText(json, raw, 0, raw.length);
            }
            case DATE, TIMESTAMP, TIMESTAMPTZ ->
                    json.writeString(timestamp(new String(bytes, offset, length, StandardCharsets.US_ASCII)));
            case TIME, TIMETZ -> json.writeString(time(new String(bytes, offset, length, StandardCharsets.US_ASCII)));
            default -> writeText(json, bytes, offset, length);
        }
    }

    /** A float64 as Go's encoding/json writes it: shortest digits, exponent form below 1e-6 and from 1e21 on. */
    static String goFloat(double value) {
        if (value == 0) {
            return 1 / value < 0 ? "-0" : "0";
        }
        double abs = Math.abs(value);
        BigDecimal shortest = new BigDecimal(Double.toString(abs)).stripTrailingZeros();
        if (shortest.precision() == 2) {
            // Java writes at least two digits where one already reads back (e.g. 5e-324 as 4.9E-324); Go writes one
            BigDecimal one = new BigDecimal(abs).round(new MathContext(1, RoundingMode.HALF_EVEN));
            if (one.doubleValue() == abs) {
                shortest = one.stripTrailingZeros();
            }
        }
        String digits = shortest.unscaledValue().toString();
        int exponent = digits.length() - 1 - shortest.scale();
        StringBuilder out = new StringBuilder(value < 0 ? "-" : "");
        if (abs < 1e-6 || abs >= 1e21) {
            out.append(digits.charAt(0));
            if (digits.length() > 1) {
                out.append('.').append(digits, 1, digits.length());
            }
            out.append('e').append(exponent < 0 ? '-' : '+').append(Math.abs(exponent));
        } else if (exponent >= digits.length() - 1) {
            out.append(digits).append("0".repeat(exponent - digits.length() + 1));
        } else if (exponent >= 0) {
            out.append(digits, 0, exponent + 1).append('.').append(digits, exponent + 1, digits.length());
        } else {
            out.append("0.").append("0".repeat(-exponent - 1)).append(digits);
        }
        return out.toString();
    }

    /**
     * PostgreSQL's ISO text of a timestamptz, timestamp or date in RFC 3339 as PandaStack answers it
     * ({@code 2026-06-13 10:00:00.5+02} → {@code 2026-06-13T10:00:00.5+02:00}, {@code 2026-06-13} →
     * {@code 2026-06-13T00:00:00Z}, 1 BC is year 0000); anything else (infinity, years outside 0–9999) unchanged.
     */
    static String timestamp(String text) {
        Matcher m = TIMESTAMP_TEXT.matcher(text);
        if (!m.matches()) {
            return text;
        }
        long year = Long.parseLong(m.group(1));
        if (m.group(10) != null) {
            year = 1 - year;
        }
        if (year < 0 || year > 9999) {
            return text;
        }
        String clock = m.group(4) == null ? "00:00:00" : m.group(4);
        return String.format("%04d-%s-%sT%s", year, m.group(2), m.group(3), clock) + fraction(m.group(5))
                + zone(m.group(6), m.group(7), m.group(8), m.group(9));
    }

    /**
     * PostgreSQL's text of a time or timetz as PandaStack answers it: the time of day on 0000-01-01 in RFC 3339
     * ({@code 10:00:00+02} → {@code 0000-01-01T10:00:00+02:00}; {@code 24:00:00} → {@code 0000-01-02T00:00:00}).
     */
    static String time(String text) {
        Matcher m = TIME_TEXT.matcher(text);
        if (!m.matches()) {
            return text;
        }
        String fraction = fraction(m.group(2));
        String zone = zone(m.group(3), m.group(4), m.group(5), m.group(6));
        if (m.group(1).equals("24:00:00") && fraction.isEmpty()) {
            return "0000-01-02T00:00:00" + zone;
        }
        return "0000-01-01T" + m.group(1) + fraction + zone;
    }

    /** Fractional seconds as Go writes them: trailing zeros dropped, nothing when zero. */
    private static String fraction(String digits) {
        if (digits == null) {
            return "";
        }
        int end = digits.length();
        while (end > 0 && digits.charAt(end - 1) == '0') {
            end--;
        }
        return end == 0 ? "" : "." + digits.substring(0, end);
    }

    /** A zone offset as Go writes it in RFC 3339: Z for zero, else ±hh:mm with any seconds cut (toward zero). */
    private static String zone(String sign, String hours, String minutes, String seconds) {
        if (sign == null) {
            return "Z";
        }
        int offset = Integer.parseInt(hours) * 3600 + (minutes == null ? 0 : Integer.parseInt(minutes) * 60)
                + (seconds == null ? 0 : Integer.parseInt(seconds));
        if (offset == 0) {
            return "Z";
        }
        int inMinutes = offset / 60; // a negative offset of under a minute shows as +00:00, as in Go
        return String.format("%s%02d:%02d", sign.equals("-") && inMinutes > 0 ? "-" : "+", inMinutes / 60,
                inMinutes % 60);
    }

    /** The bytes of bytea text in either output format ({@code \x0102…} or escape {@code a\\\001}). */
    static byte[] bytea(byte[] text, int offset, int length) {
        int end = offset + length;
        if (length >= 2 && text[offset] == '\\' && text[offset + 1] == 'x') {
            byte[] out = new byte[(length - 2) / 2];
            for (int i = 0; i < out.length; i++) {
                int at = offset + 2 + 2 * i;
                out[i] = (byte) (Character.digit(text[at], 16) << 4 | Character.digit(text[at + 1], 16));
            }
            return out;
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream(length);
        for (int i = offset; i < end; i++) {
            if (text[i] == '\\' && i + 1 < end && text[i + 1] == '\\') {
                out.write('\\');
                i++;
            } else if (text[i] == '\\' && i + 3 < end) {
                out.write((text[i + 1] - '0') << 6 | (text[i + 2] - '0') << 3 | (text[i + 3] - '0'));
                i += 3;
            } else {
                out.write(text[i]);
            }
        }
        return out.toByteArray();
    }

    /** Writes bytes as a JSON string, each byte that is not part of valid UTF-8 as U+FFFD (as Go does). */
    private static void writeText(JsonGenerator json, byte[] bytes, int offset, int length) throws IOException {
        int end = offset + length;
        int i = offset;
        while (i < end) {
            int size = runeLength(bytes, i, end);
            if (size == 0) {
                json.writeString(goString(bytes, offset, length));
                return;
            }
            i += size;
        }
        json.writeUTF8String(bytes, offset, length);
    }

    /** The text of bytes decoded as Go decodes them: an invalid byte becomes one U+FFFD. */
    static String goString(byte[] bytes, int offset, int length) {
        StringBuilder out = new StringBuilder(length);
        int end = offset + length;
        int i = offset;
        while (i < end) {
            int size = runeLength(bytes, i, end);
            if (size == 0) {
                out.append('\uFFFD');
                i++;
            } else {
                out.append(new String(bytes, i, size, StandardCharsets.UTF_8));
                i += size;
            }
        }
        return out.toString();
    }

    /** The length of the valid UTF-8 sequence at {@code i} (no overlong, surrogate or past U+10FFFF), else 0. */
    private static int runeLength(byte[] b, int i, int end) {
        int first = b[i] & 0xff;
        if (first < 0x80) {
            return 1;
        }
        int size;
        int low = 0x80;
        int high = 0xbf;
        if (first >= 0xc2 && first <= 0xdf) {
            size = 2;
        } else if (first >= 0xe0 && first <= 0xef) {
            size = 3;
            low = first == 0xe0 ? 0xa0 : 0x80;
            high = first == 0xed ? 0x9f : 0xbf;
        } else if (first >= 0xf0 && first <= 0xf4) {
            size = 4;
            low = first == 0xf0 ? 0x90 : 0x80;
            high = first == 0xf4 ? 0x8f : 0xbf;
        } else {
            return 0;
        }
        if (i + size > end) {
            return 0;
        }
        int second = b[i + 1] & 0xff;
        if (second < low || second > high) {
            return 0;
        }
        for (int k = 2; k < size; k++) {
            int next = b[i + k] & 0xff;
            if (next < 0x80 || next > 0xbf) {
                return 0;
            }
        }
        return size;
    }
}
