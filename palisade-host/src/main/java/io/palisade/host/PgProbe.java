package io.palisade.host;

import io.palisade.spi.Endpoint;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;

/**
 * Readiness at the PostgreSQL protocol level: sends a StartupMessage and reads the first answer. A server that asks for
 * authentication (or refuses the probe user with an auth error) accepts connections; one that says it is starting up,
 * a NAT that accepts TCP with nothing behind it, or silence, does not. Stateless.
 */
public final class PgProbe {
    private PgProbe() {}

    /**
     * Whether a PostgreSQL server answers at all: any authentication request or error, "starting up" and "too many
     * connections" included. False for silence, a refused or reset connection, or anything else.
     */
    public static boolean answers(Endpoint endpoint, Duration timeout) {
        try (Socket socket = new Socket()) {
            int type = firstAnswer(socket, endpoint, timeout);
            return type == 'R' || type == 'E';
        } catch (IOException e) {
            return false;
        }
    }

    /** Connects, sends the probe's StartupMessage and reads the type byte of the first answer (-1 at end of stream). */
    private static int firstAnswer(Socket socket, Endpoint endpoint, Duration timeout) throws IOException {
        socket.connect(new InetSocketAddress(endpoint.host(), endpoint.port()), (int) timeout.toMillis());
        socket.setSoTimeout((int) timeout.toMillis());
        OutputStream out = socket.getOutputStream();
        out.write(io.palisade.pgwire.PgMessages.startupMessage("palisade_probe", "postgres"));
        out.flush();
        return socket.getInputStream().read();
    }

    /**
     * Whether the server accepts connections (see the class comment): it asks for authentication, or refuses the
     * probe's login with an authentication or unknown-database error.
     */
    public static boolean isReady(Endpoint endpoint, Duration timeout) {
        try (Socket socket = new Socket()) {
            int type = firstAnswer(socket, endpoint, timeout);
            DataInputStream in = new DataInputStream(socket.getInputStream());
            if (type == 'R') {
                return true;
            }
            if (type != 'E') {
                return false;
            }
            int length = in.readInt();
            if (length < 4 || length > 65536) {
                return false;
            }
            byte[] body = new byte[length - 4];
            in.readFully(body);
            String sqlState = field(body, 'C');
            // 57P03 cannot_connect_now (starting up, shutting down, recovery); 53300 too many connections
            return sqlState != null && (sqlState.startsWith("28") || sqlState.startsWith("3D"));
        } catch (IOException e) {
            return false;
        }
    }

    static String field(byte[] body, char code) {
        int i = 0;
        while (i < body.length && body[i] != 0) {
            byte fieldType = body[i++];
            int end = i;
            while (end < body.length && body[end] != 0) {
                end++;
            }
            if (fieldType == code) {
                return new String(body, i, end - i, StandardCharsets.UTF_8);
            }
            i = end + 1;
        }
        return null;
    }
}
