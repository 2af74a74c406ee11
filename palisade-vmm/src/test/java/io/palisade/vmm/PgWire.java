package io.palisade.vmm;

import io.palisade.pgwire.PgMessages;
import io.palisade.pgwire.ScramClient;
import io.palisade.spi.Endpoint;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;

/**
 * A raw PostgreSQL protocol client for tests: a StartupMessage, SCRAM-SHA-256 with pgwire's client, and what the
 * server hands out on the way (its SCRAM nonce, the BackendKeyData cancel key). Stateless.
 */
final class PgWire {
    /** The client's part of the SCRAM nonce; the server's part is what the tests compare. */
    private static final String NONCE = "cGFsaXNhZGUtdGVzdC1ub25jZQ==";

    private PgWire() {}

    /** What one login showed: the server's part of the SCRAM nonce, and the cancel key (null if the login failed). */
    record Login(String serverNonce, Integer backendPid, Integer cancelKey, String error) {
        boolean ok() {
            return cancelKey != null;
        }
    }

    static Login login(Endpoint endpoint, String user, String database, String password) throws Exception {
        try (Socket socket = new Socket()) {
            socket.connect(new InetSocketAddress(endpoint.host(), endpoint.port()), 10_000);
            socket.setSoTimeout(20_000);
            DataOutputStream out = new DataOutputStream(socket.getOutputStream());
            DataInputStream in = new DataInputStream(socket.getInputStream());
            out.write(PgMessages.startupMessage(user, database));
            out.flush();
            ScramClient scram = new ScramClient("", password, NONCE);
            String serverNonce = null;
            Integer pid = null;
            Integer key = null;
            while (true) {
                int type = in.readByte();
                byte[] body = new byte[in.readInt() - 4];
                in.readFully(body);
                switch (type) {
                    case 'R' -> {
                        int code = java.nio.ByteBuffer.wrap(body).getInt();
                        if (code == 10) { // AuthenticationSASL
                            byte[] first = scram.clientFirstMessage().getBytes(StandardCharsets.UTF_8);
                            byte[] mech = (ScramClient.MECHANISM + "\0").getBytes(StandardCharsets.UTF_8);
                            out.writeByte('p');
                            out.writeInt(4 + mech.length + 4 + first.length);
                            out.write(mech);
                            out.writeInt(first.length);
                            out.write(first);
                            out.flush();
                        } else if (code == 11) { // SASLContinue: r=<client nonce><server nonce>,s=...,i=...
                            String serverFirst = new String(body, 4, body.length - 4, StandardCharsets.UTF_8);
                            serverNonce = serverFirst.substring(2, serverFirst.indexOf(',')).substring(NONCE.length());
                            byte[] fin = scram.clientFinalMessage(serverFirst).getBytes(StandardCharsets.UTF_8);
                            out.writeByte('p');
                            out.writeInt(4 + fin.length);
                            out.write(fin);
                            out.flush();
                        }
                    }
                    case 'K' -> {
                        java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(body);
                        pid = b.getInt();
                        key = b.getInt();
                    }
                    case 'Z' -> {
                        out.writeByte('X');
                        out.writeInt(4);
                        out.flush();
                        return new Login(serverNonce, pid, key, null);
                    }
                    case 'E' -> {
                        return new Login(serverNonce, null, null,
                                new String(body, StandardCharsets.UTF_8).replace('\0', ' '));
                    }
                    default -> {
                        // ParameterStatus, NoticeResponse, SASLFinal: not needed
                    }
                }
            }
        }
    }
}
