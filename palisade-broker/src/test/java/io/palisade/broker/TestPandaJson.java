package io.palisade.broker;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class TestPandaJson {
    @Test
    void typeNamesAsPandaStacksDriverWritesThem() {
        assertThat(PandaJson.typeName(23)).isEqualTo("INT4");
        assertThat(PandaJson.typeName(1184)).isEqualTo("TIMESTAMPTZ");
        assertThat(PandaJson.typeName(1007)).isEqualTo("_INT4");
        assertThat(PandaJson.typeName(3802)).isEqualTo("JSONB");
        assertThat(PandaJson.typeName(987_654)).isEmpty();
    }
}
