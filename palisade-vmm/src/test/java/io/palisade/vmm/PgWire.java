package io.palisade.vmm;

import io.palisade.spi.Endpoint;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.Base64;
import javax.crypto.Mac;
import javax.crypto.SecretKeyFactory;
import javax.crypto.spec.PBEKeySpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * A raw PostgreSQL protocol client for tests: a StartupMessage, SCRAM-SHA-256 by hand, and what the server hands out
 * on the way (its SCRAM nonce, the BackendKeyData cancel key). Stateless.
 */
final class PgWire {
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
            byte[] params = ("user\0" + user + "\0database\0" + database + "\0\0").getBytes(StandardCharsets.UTF_8);
            out.writeInt(8 + params.length);
            out.writeInt(196608);
            out.write(params);
            out.flush();
            String clientNonce = randomNonce();
            String clientFirstBare = "n=,r=" + clientNonce;
            String serverNonce = null;
            Integer pid = null;
            Integer key = null;
            byte[] saltedKey = null;
            String authMessageStart = null;
            while (true) {
                int type = in.readByte();
                byte[] body = new byte[in.readInt() - 4];
                in.readFully(body);
                switch (type) {
                    case 'R' -> {
                        int code = java.nio.ByteBuffer.wrap(body).getInt();
                        if (code == 10) { // AuthenticationSASL
                            byte[] first = ("n,," + clientFirstBare).getBytes(StandardCharsets.UTF_8);
                            byte[] mech = "SCRAM-SHA-256\0".getBytes(StandardCharsets.UTF_8);
                            out.writeByte('p');
                            out.writeInt(4 + mech.length + 4 + first.length);
                            out.write(mech);
                            out.writeInt(first.length);
                            out.write(first);
                            out.flush();
                        } else if (code == 11) { // SASLContinue: r=...,s=...,i=...
                            String serverFirst = new String(body, 4, body.length - 4, StandardCharsets.UTF_8);
                            String nonce = attribute(serverFirst, "r");
                            serverNonce = nonce.substring(clientNonce.length());
                            byte[] salt = Base64.getDecoder().decode(attribute(serverFirst, "s"));
                            int iterations = Integer.parseInt(attribute(serverFirst, "i"));
                            saltedKey = pbkdf2(password, salt, iterations);
                            String finalWithoutProof = "c=biws,r=" + nonce;
                            authMessageStart = clientFirstBare + "," + serverFirst + "," + finalWithoutProof;
                            byte[] clientKey = hmac(saltedKey, "Client Key");
                            byte[] storedKey = MessageDigest.getInstance("SHA-256").digest(clientKey);
                            byte[] signature = hmac(storedKey, authMessageStart);
                            byte[] proof = new byte[clientKey.length];
                            for (int i = 0; i < proof.length; i++) {
                                proof[i] = (byte) (clientKey[i] ^ signature[i]);
                            }
                            byte[] fin = (finalWithoutProof + ",p=" + Base64.getEncoder().encodeToString(proof))
                                    .getBytes(StandardCharsets.UTF_8);
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

    private static String attribute(String message, String name) {
        for (String part : message.split(",")) {
            if (part.startsWith(name + "=")) {
                return part.substring(name.length() + 1);
            }
        }
        throw new IllegalArgumentException("no " + name + " in " + message);
    }

    private static String randomNonce() {
        byte[] bytes = new byte[18];
        new SecureRandom().nextBytes(bytes);
        return Base64.getEncoder().encodeToString(bytes);
    }

    private static byte[] pbkdf2(String password, byte[] salt, int iterations) throws Exception {
        SecretKeyFactory factory = SecretKeyFactory.getInstance("PBKDF2WithHmacSHA256");
        return factory.generateSecret(new PBEKeySpec(password.toCharArray(), salt, iterations, 256)).getEncoded();
    }

    private static byte[] hmac(byte[] key, String text) throws Exception {
        Mac mac = Mac.getInstance("HmacSHA256");
        mac.init(new SecretKeySpec(key, "HmacSHA256"));
        return mac.doFinal(text.getBytes(StandardCharsets.UTF_8));
    }
}
