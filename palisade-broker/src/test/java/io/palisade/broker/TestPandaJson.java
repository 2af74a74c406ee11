package io.palisade.broker;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class TestPandaJson {
    @Test
    void timestampsBecomeRfc3339() {
        assertThat(PandaJson.rfc3339("2026-06-13 00:00:00+00", 1184)).isEqualTo("2026-06-13T00:00:00Z");
        assertThat(PandaJson.rfc3339("2026-06-13 10:00:00.5+02", 1184)).isEqualTo("2026-06-13T10:00:00.5+02:00");
        assertThat(PandaJson.rfc3339("2026-06-13 10:00:00-03:30", 1184)).isEqualTo("2026-06-13T10:00:00-03:30");
        assertThat(PandaJson.rfc3339("2026-06-13 10:00:00.123456", 1114)).isEqualTo("2026-06-13T10:00:00.123456Z");
        assertThat(PandaJson.rfc3339("2026-06-13", 1082)).isEqualTo("2026-06-13T00:00:00Z");
        // what RFC 3339 cannot hold stays as PostgreSQL wrote it
        assertThat(PandaJson.rfc3339("infinity", 1184)).isEqualTo("infinity");
        assertThat(PandaJson.rfc3339("-infinity", 1114)).isEqualTo("-infinity");
        assertThat(PandaJson.rfc3339("0044-03-15 12:00:00+00 BC", 1184)).isEqualTo("0044-03-15 12:00:00+00 BC");
        assertThat(PandaJson.rfc3339("1850-01-01 00:00:00+00:53:28", 1184)).isEqualTo("1850-01-01 00:00:00+00:53:28");
    }

    @Test
    void typeNamesAsPandaStacksDriverWritesThem() {
        assertThat(PandaJson.typeName(23)).isEqualTo("INT4");
        assertThat(PandaJson.typeName(1184)).isEqualTo("TIMESTAMPTZ");
        assertThat(PandaJson.typeName(1007)).isEqualTo("_INT4");
        assertThat(PandaJson.typeName(3802)).isEqualTo("JSONB");
        assertThat(PandaJson.typeName(987_654)).isEmpty();
    }
}
