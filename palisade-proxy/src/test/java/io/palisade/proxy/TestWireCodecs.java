package io.palisade.proxy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.Unpooled;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** StartupMessage, routing rules, error messages and the SCRAM client, without sockets. */
class TestWireCodecs {
    @Test
    void startupMessageRoundTrip() {
        Map<String, String> parameters = new LinkedHashMap<>();
        parameters.put("user", "app");
        parameters.put("database", "app");
        parameters.put("options", "-c a=b endpoint=db-x");
        ByteBuf encoded = new StartupMessage(3, 0, parameters).encode(ByteBufAllocator.DEFAULT);
        try {
            assertThat(encoded.getInt(0)).isEqualTo(encoded.readableBytes());
            assertThat(encoded).isEqualTo(Unpooled.wrappedBuffer(RawPg.startup(3, 0, parameters)));
            StartupMessage parsed = StartupMessage.parse(encoded.slice(4, encoded.readableBytes() - 4));
            assertThat(parsed.majorVersion()).isEqualTo(3);
            assertThat(parsed.minorVersion()).isZero();
            assertThat(parsed.parameters()).containsExactlyEntriesOf(parameters);
            assertThat(parsed.user()).isEqualTo("app");
        } finally {
            encoded.release();
        }
    }

    @Test
    void startupMessageRejectsBadLayouts() {
        assertThatThrownBy(() -> StartupMessage.parse(Unpooled.wrappedBuffer(new byte[] {0, 3})))
                .isInstanceOf(StartupMessage.ProtocolException.class);
        // no final terminator
        assertThatThrownBy(() -> StartupMessage.parse(Unpooled.wrappedBuffer(new byte[] {0, 3, 0, 0, 'u', 0, 'a', 0})))
                .hasMessageContaining("expected terminator");
        // name without value
        assertThatThrownBy(() -> StartupMessage.parse(Unpooled.wrappedBuffer(new byte[] {0, 3, 0, 0, 'u', 0})))
                .hasMessageContaining("expected terminator");
        // data after the terminator
        assertThatThrownBy(() -> StartupMessage.parse(Unpooled.wrappedBuffer(new byte[] {0, 3, 0, 0, 0, 'x'})))
                .hasMessageContaining("after the terminator");
        assertThat(StartupMessage.parse(Unpooled.wrappedBuffer(new byte[] {0, 3, 0, 2, 0})).minorVersion())
                .isEqualTo(2);
    }

    @Test
    void routingFromSni() {
        assertThat(Routing.fromSni("db-abc.db.localhost", "db.localhost")).contains("db-abc");
        assertThat(Routing.fromSni("DB-ABC.DB.LOCALHOST.", "db.localhost")).contains("db-abc");
        assertThat(Routing.fromSni(null, "db.localhost")).isEmpty();
        assertThat(Routing.fromSni("localhost", "db.localhost")).isEmpty();
        assertThat(Routing.fromSni("db.localhost", "db.localhost")).isEmpty();
        assertThat(Routing.fromSni("db-abc.example.com", "db.localhost")).isEmpty();
        assertThatThrownBy(() -> Routing.fromSni("a.b.db.localhost", "db.localhost"))
                .hasMessageContaining("does not name a database");
        assertThatThrownBy(() -> Routing.fromSni("-bad.db.localhost", "db.localhost"))
                .isInstanceOf(Routing.RoutingException.class);
    }

    @Test
    void routingFromOptions() {
        assertThat(Routing.fromOptions(null)).isEmpty();
        assertThat(Routing.fromOptions("-c search_path=x")).isEmpty();
        assertThat(Routing.fromOptions("endpoint=db-1")).contains("db-1");
        assertThat(Routing.fromOptions("-c a=b  endpoint=DB-1 endpoint=db-1")).contains("db-1");
        assertThatThrownBy(() -> Routing.fromOptions("endpoint=a endpoint=b")).hasMessageContaining("two databases");
        assertThat(Routing.stripEndpoint("endpoint=db-1")).isEmpty();
        assertThat(Routing.stripEndpoint("-c a=b endpoint=db-1 -c c=d")).contains("-c a=b -c c=d");
        assertThat(Routing.stripEndpoint("-c a=x\\ y endpoint=db-1")).contains("-c a=x\\ y");
        assertThat(Routing.splitOptions("-c  a=x\\ y\tz")).containsExactly("-c", "a=x\\ y", "z");
    }

    @Test
    void routingFromPassword() {
        assertThat(Routing.fromPassword("endpoint=db-1;secret;with;semis"))
                .contains(new Routing.PasswordRoute("db-1", "secret;with;semis"));
        assertThat(Routing.fromPassword("endpoint=db-1$pw")).contains(new Routing.PasswordRoute("db-1", "pw"));
        assertThat(Routing.fromPassword("endpoint=db-1;")).contains(new Routing.PasswordRoute("db-1", ""));
        assertThat(Routing.fromPassword("secret")).isEmpty();
        assertThat(Routing.fromPassword("endpoint=;pw")).isEmpty();
        assertThat(Routing.fromPassword("endpoint=db-1")).isEmpty();
        assertThat(Routing.isValidDatabaseId("db-7k3q9x2m")).isTrue();
        assertThat(Routing.isValidDatabaseId("Db")).isFalse();
        assertThat(Routing.isValidDatabaseId("a".repeat(64))).isFalse();
    }

    @Test
    void errorResponseLayout() {
        ByteBuf error = PgWire.errorResponse(ByteBufAllocator.DEFAULT, "28P01", "nope");
        try {
            assertThat(error.readByte()).isEqualTo((byte) 'E');
            assertThat(error.readInt()).isEqualTo(error.readableBytes() + 4);
            assertThat(PgWire.errorFields(error)).containsExactly(
                    Map.entry('S', "FATAL"), Map.entry('V', "FATAL"), Map.entry('C', "28P01"), Map.entry('M', "nope"));
        } finally {
            error.release();
        }
    }
}
