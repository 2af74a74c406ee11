package io.palisade.broker;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

class TestJsonValues {
    private static final ObjectMapper JSON = JsonValues.mapper();

    private static String param(String json) throws Exception {
        return JsonValues.param(JSON.readTree(json));
    }

    @Test
    void paramsAreConvertedLikeNeon() throws Exception {
        assertThat(param("null")).isNull();
        assertThat(param("\"text\"")).isEqualTo("text");
        assertThat(param("42")).isEqualTo("42");
        assertThat(param("1.50")).isEqualTo("1.50");
        assertThat(param("true")).isEqualTo("true");
        assertThat(param("{\"a\":[1,2]}")).isEqualTo("{\"a\":[1,2]}");
        assertThat(param("[1,null,\"a\\\"b\",[2,3]]")).isEqualTo("{\"1\",NULL,\"a\\\"b\",{\"2\",\"3\"}}");
    }

    @Test
    void parsesPostgresArrayOutput() {
        assertThat(JsonValues.parseArray("{1,NULL,3}")).containsExactly("1", null, "3");
        assertThat(JsonValues.parseArray("{\"a b\",\"c\\\"d\",\"NULL\"}")).containsExactly("a b", "c\"d", "NULL");
        assertThat(JsonValues.parseArray("{{1,2},{3,4}}"))
                .containsExactly(Arrays.asList("1", "2"), Arrays.asList("3", "4"));
        assertThat(JsonValues.parseArray("[0:1]={5,6}")).containsExactly("5", "6");
        assertThat(JsonValues.parseArray("{}")).isEmpty();
        assertThatThrownBy(() -> JsonValues.parseArray("{1,2")).isInstanceOf(RuntimeException.class);
    }

    @Test
    void typeNames() {
        assertThat(JsonValues.typeName(23)).isEqualTo("int4");
        assertThat(JsonValues.typeName(1184)).isEqualTo("timestamptz");
        assertThat(JsonValues.typeName(99999)).isEqualTo("oid:99999");
    }

    @Test
    void connectionStrings() throws Exception {
        NeonHttp.ConnInfo info = NeonHttp.parseConnectionString(
                "postgresql://al%40ice:p%2Fss+w@DB-abc123.db.example.com:5432/my%20db?sslmode=require");
        assertThat(info).isEqualTo(new NeonHttp.ConnInfo("db-abc123", "al@ice", "p/ss+w", "my db"));
        assertThat(NeonHttp.parseConnectionString("postgres://u:p@db-x.db.localhost").database()).isEqualTo("u");
        assertThatThrownBy(() -> NeonHttp.parseConnectionString("mysql://u:p@db-x/d"))
                .hasMessage("invalid header: neon-connection-string");
        assertThatThrownBy(() -> NeonHttp.parseConnectionString("postgres://db-x.example/d"))
                .hasMessage("missing username");
        assertThatThrownBy(() -> NeonHttp.parseConnectionString("postgres://u@db-x.example/d"))
                .hasMessage("missing password");
        assertThatThrownBy(() -> NeonHttp.parseConnectionString("postgres://u:p@api.example/d"))
                .hasMessageStartingWith("invalid header: neon-connection-string");
    }
}
