package io.palisade.broker.pg;

import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.Base64;
import javax.crypto.Mac;
import javax.crypto.SecretKeyFactory;
import javax.crypto.spec.PBEKeySpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * The client side of SCRAM-SHA-256 (RFC 5802/7677) as PostgreSQL uses it: no channel binding, empty user name (the
 * server takes the startup user). One instance per exchange; not thread-safe.
 */
final class Scram {
    private static final SecureRandom RANDOM = new SecureRandom();

    private final String password;
    private final String clientNonce;
    private String clientFirstBare;
    private byte[] expectedServerSignature;

    Scram(String password) {
        this.password = password;
        byte[] nonce = new byte[18];
        RANDOM.nextBytes(nonce);
        this.clientNonce = Base64.getEncoder().encodeToString(nonce);
    }

    byte[] clientFirst() {
        clientFirstBare = "n=,r=" + clientNonce;
        return ("n,," + clientFirstBare).getBytes(StandardCharsets.UTF_8);
    }

    byte[] clientFinal(String serverFirst) {
        String nonce = null;
        String salt = null;
        int iterations = -1;
        for (String part : serverFirst.split(",")) {
            if (part.startsWith("r=")) {
                nonce = part.substring(2);
            } else if (part.startsWith("s=")) {
                salt = part.substring(2);
            } else if (part.startsWith("i=")) {
                iterations = Integer.parseInt(part.substring(2));
            }
        }
        if (nonce == null || salt == null || iterations < 1 || !nonce.startsWith(clientNonce)) {
            throw new IllegalStateException("malformed SCRAM server-first-message from the backend");
        }
        try {
            var spec = new PBEKeySpec(password.toCharArray(), Base64.getDecoder().decode(salt), iterations, 256);
            byte[] salted = SecretKeyFactory.getInstance("PBKDF2WithHmacSHA256").generateSecret(spec).getEncoded();
            byte[] clientKey = hmac(salted, "Client Key".getBytes(StandardCharsets.UTF_8));
            byte[] storedKey = MessageDigest.getInstance("SHA-256").digest(clientKey);
            String withoutProof = "c=biws,r=" + nonce;
            byte[] authMessage = (clientFirstBare + "," + serverFirst + "," + withoutProof)
                    .getBytes(StandardCharsets.UTF_8);
            byte[] signature = hmac(storedKey, authMessage);
            byte[] proof = new byte[clientKey.length];
            for (int i = 0; i < proof.length; i++) {
                proof[i] = (byte) (clientKey[i] ^ signature[i]);
            }
            byte[] serverKey = hmac(salted, "Server Key".getBytes(StandardCharsets.UTF_8));
            expectedServerSignature = hmac(serverKey, authMessage);
            return (withoutProof + ",p=" + Base64.getEncoder().encodeToString(proof))
                    .getBytes(StandardCharsets.UTF_8);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("SCRAM primitives missing from this JDK", e);
        }
    }

    boolean verifyServerFinal(String serverFinal) {
        if (!serverFinal.startsWith("v=")) {
            return false;
        }
        String value = serverFinal.substring(2);
        int comma = value.indexOf(',');
        if (comma >= 0) {
            value = value.substring(0, comma);
        }
        return MessageDigest.isEqual(Base64.getDecoder().decode(value), expectedServerSignature);
    }

    private static byte[] hmac(byte[] key, byte[] message) throws GeneralSecurityException {
        Mac mac = Mac.getInstance("HmacSHA256");
        mac.init(new SecretKeySpec(key, "HmacSHA256"));
        return mac.doFinal(message);
    }
}
