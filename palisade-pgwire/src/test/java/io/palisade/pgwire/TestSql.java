package io.palisade.pgwire;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.Map;
import org.junit.jupiter.api.Test;

class TestSql {
    @Test
    void quotesIdentifiersAndLiterals() {
        assertThat(Sql.quoteIdent("plain")).isEqualTo("\"plain\"");
        assertThat(Sql.quoteIdent("we\"ird")).isEqualTo("\"we\"\"ird\"");
        assertThat(Sql.quoteLiteral("it's")).isEqualTo("'it''s'");
        assertThat(Sql.quoteLiteral("back\\slash")).isEqualTo("'back\\slash'");
        assertThatThrownBy(() -> Sql.quoteIdent("")).hasMessageContaining("empty");
        assertThatThrownBy(() -> Sql.quoteLiteral("nul\0")).hasMessageContaining("NUL");
    }

    @Test
    void serverErrorsReadWell() {
        byte[] body = "SERROR\0VERROR\0C42P01\0Mrelation \"x\" does not exist\0P15\0\0"
                .getBytes(java.nio.charset.StandardCharsets.UTF_8);
        PgServerException error = PgServerException.parse(body, 0, body.length);
        assertThat(error).hasMessage("ERROR 42P01: relation \"x\" does not exist");
        assertThat(error.sqlState()).isEqualTo("42P01");
        assertThat(error.field('P')).contains("15");
        assertThat(error.detail()).isEmpty();

        PgServerException withHint = new PgServerException(Map.of('V', "FATAL", 'C', "28P01", 'M', "no", 'D', "why",
                'H', "do this"));
        assertThat(withHint).hasMessage("FATAL 28P01: no (detail: why) (hint: do this)");
        assertThat(withHint.isFatal()).isTrue();
    }
}
