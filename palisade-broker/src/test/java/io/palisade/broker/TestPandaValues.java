package io.palisade.broker;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.core.JsonGenerator;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** The values PandaStack's broker (lib/pq text decoding, Go's encoding/json) answers, type by type. */
class TestPandaValues {
    private static String json(int oid, String text) throws Exception {
        byte[] bytes = text == null ? new byte[0] : text.getBytes(StandardCharsets.ISO_8859_1);
        return json(oid, bytes, text == null ? -1 : bytes.length);
    }

    private static String json(int oid, byte[] bytes, int length) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (JsonGenerator json = JsonValues.mapper().getFactory().createGenerator(out)) {
            PandaValues.write(json, oid, bytes, 0, length);
        }
        return out.toString(StandardCharsets.UTF_8);
    }

    @Test
    void numbersAndBooleans() throws Exception {
        assertThat(json(20, "9223372036854775807")).isEqualTo("9223372036854775807");
        assertThat(json(21, "-32768")).isEqualTo("-32768");
        assertThat(json(23, "42")).isEqualTo("42");
        assertThat(json(16, "t")).isEqualTo("true");
        assertThat(json(16, "f")).isEqualTo("false");
        assertThat(json(23, null)).isEqualTo("null");
        // numeric stays PostgreSQL's text, as lib/pq hands it over as bytes
        assertThat(json(1700, "12345678901234567890.000100")).isEqualTo("\"12345678901234567890.000100\"");
    }

    @Test
    void floatsAsGoWritesAFloat64() throws Exception {
        assertThat(json(701, "1.5")).isEqualTo("1.5");
        assertThat(json(700, "0.1")).isEqualTo("0.1");
        assertThat(json(701, "100")).isEqualTo("100");
        assertThat(json(701, "1e+20")).isEqualTo("100000000000000000000");
        assertThat(json(701, "1e+21")).isEqualTo("1e+21");
        assertThat(json(701, "1.2345e+100")).isEqualTo("1.2345e+100");
        assertThat(json(701, "1e-06")).isEqualTo("0.000001");
        assertThat(json(701, "1.5e-07")).isEqualTo("1.5e-7");
        assertThat(json(701, "-2.5e-10")).isEqualTo("-2.5e-10");
        assertThat(json(701, "5e-324")).isEqualTo("5e-324");
        assertThat(json(701, "-0")).isEqualTo("-0");
        assertThat(json(701, "0")).isEqualTo("0");
        assertThat(json(701, "123.456")).isEqualTo("123.456");
        assertThat(json(701, "0.0123")).isEqualTo("0.0123");
        // Go's encoder fails on these (PandaStack answers an empty body): palisade answers PostgreSQL's text
        assertThat(json(701, "NaN")).isEqualTo("\"NaN\"");
        assertThat(json(700, "Infinity")).isEqualTo("\"Infinity\"");
        assertThat(json(701, "-Infinity")).isEqualTo("\"-Infinity\"");
    }

    @Test
    void timesAsGoMarshalsTimeTime() throws Exception {
        assertThat(json(1184, "2026-06-13 00:00:00+00")).isEqualTo("\"2026-06-13T00:00:00Z\"");
        assertThat(json(1184, "2026-06-13 10:00:00.5+02")).isEqualTo("\"2026-06-13T10:00:00.5+02:00\"");
        assertThat(json(1184, "2026-06-13 10:00:00.123456-03:30")).isEqualTo("\"2026-06-13T10:00:00.123456-03:30\"");
        assertThat(json(1184, "1850-01-01 00:00:00+00:53:28")).isEqualTo("\"1850-01-01T00:00:00+00:53\"");
        assertThat(json(1184, "1850-01-01 00:00:00-00:00:30")).isEqualTo("\"1850-01-01T00:00:00+00:00\"");
        assertThat(json(1114, "2026-06-13 10:00:00.120")).isEqualTo("\"2026-06-13T10:00:00.12Z\"");
        assertThat(json(1082, "2026-06-13")).isEqualTo("\"2026-06-13T00:00:00Z\"");
        assertThat(json(1082, "0001-03-15 BC")).isEqualTo("\"0000-03-15T00:00:00Z\"");
        assertThat(json(1184, "0001-03-15 12:00:00+00 BC")).isEqualTo("\"0000-03-15T12:00:00Z\"");
        assertThat(json(1083, "10:00:00.25")).isEqualTo("\"0000-01-01T10:00:00.25Z\"");
        assertThat(json(1083, "24:00:00")).isEqualTo("\"0000-01-02T00:00:00Z\"");
        assertThat(json(1266, "10:00:00+05:30")).isEqualTo("\"0000-01-01T10:00:00+05:30\"");
        assertThat(json(1266, "10:00:00-02")).isEqualTo("\"0000-01-01T10:00:00-02:00\"");
        // lib/pq hands infinity over as bytes (a string); years Go cannot write as RFC 3339 stay PostgreSQL's text
        assertThat(json(1184, "infinity")).isEqualTo("\"infinity\"");
        assertThat(json(1082, "-infinity")).isEqualTo("\"-infinity\"");
        assertThat(json(1184, "0044-03-15 12:00:00+00 BC")).isEqualTo("\"0044-03-15 12:00:00+00 BC\"");
        assertThat(json(1082, "10000-01-01")).isEqualTo("\"10000-01-01\"");
    }

    @Test
    void byteaIsItsBytesAsAString() throws Exception {
        assertThat(json(17, "\\x68690a")).isEqualTo("\"hi\\n\"");
        assertThat(json(17, "\\x00")).isEqualTo("\"\\u0000\"");
        assertThat(json(17, "\\xc3a9")).isEqualTo("\"\u00e9\"");
        // invalid UTF-8: one U+FFFD per byte, as Go's encoder writes it
        assertThat(json(17, "\\xe282ff41")).isEqualTo("\"\uFFFD\uFFFD\uFFFDA\"");
        assertThat(json(17, "\\xeda080")).isEqualTo("\"\uFFFD\uFFFD\uFFFD\"");
        assertThat(json(17, "a\\\\b\\001")).isEqualTo("\"a\\\\b\\u0001\"");
        assertThat(json(17, "\\x")).isEqualTo("\"\"");
    }

    @Test
    void everythingElseIsPostgresText() throws Exception {
        assertThat(json(114, "{\"a\": [1, 2]}")).isEqualTo("\"{\\\"a\\\": [1, 2]}\"");
        assertThat(json(3802, "{\"a\": 1}")).isEqualTo("\"{\\\"a\\\": 1}\"");
        assertThat(json(1007, "{1,2,NULL}")).isEqualTo("\"{1,2,NULL}\"");
        assertThat(json(2950, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"))
                .isEqualTo("\"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\"");
        assertThat(json(26, "12345")).isEqualTo("\"12345\"");
        assertThat(json(25, "caf\u00c3\u00a9")).isEqualTo("\"caf\u00e9\"");
        byte[] invalid = {'a', (byte) 0xff};
        assertThat(json(25, invalid, 2)).isEqualTo("\"a\uFFFD\"");
    }
}
