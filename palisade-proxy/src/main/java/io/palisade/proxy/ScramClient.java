package io.palisade.proxy;

import static java.nio.charset.StandardCharsets.UTF_8;
import static java.util.Objects.requireNonNull;

import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.Base64;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.Map;
import javax.crypto.Mac;
import javax.crypto.SecretKeyFactory;
import javax.crypto.spec.PBEKeySpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * The client side of SCRAM-SHA-256 (RFC 5802/7677, no channel binding) for the cleartext-password route, where the
 * proxy logs in to the database on the client's behalf. One exchange per instance; not thread-safe.
 */
final class ScramClient {
    static final String MECHANISM = "SCRAM-SHA-256";
    /** Caps the PBKDF2 work a hostile server can make us do on an event loop. */
    static final int MAX_ITERATIONS = 100_000;

    private final char[] password;
    private final String clientNonce;
    private final String username;
    private String clientFirstBare;
    private byte[] expectedServerSignature;

    /** PostgreSQL ignores the SCRAM user name (it uses the startup user), so the proxy sends an empty one. */
    ScramClient(String password, SecureRandom random) {
        this(password, randomNonce(random), "");
    }

    ScramClient(String password, String clientNonce, String username) {
        this.password = requireNonNull(password, "password is null").toCharArray();
        this.clientNonce = requireNonNull(clientNonce, "clientNonce is null");
        this.username = requireNonNull(username, "username is null");
    }

    private static String randomNonce(SecureRandom random) {
        byte[] nonce = new byte[18];
        random.nextBytes(nonce);
        return Base64.getEncoder().encodeToString(nonce);
    }

    String clientFirstMessage() {
        clientFirstBare = "n=" + username + ",r=" + clientNonce;
        return "n,," + clientFirstBare;
    }

    /** Computes the client-final message from the server-first message. */
    String clientFinalMessage(String serverFirst) {
        Map<Character, String> attributes = attributes(serverFirst);
        String nonce = attributes.get('r');
        String salt = attributes.get('s');
        String iterationText = attributes.get('i');
        if (nonce == null || salt == null || iterationText == null || !nonce.startsWith(clientNonce)) {
            throw new IllegalStateException("malformed SCRAM server-first message");
        }
        int iterations;
        try {
            iterations = Integer.parseInt(iterationText);
        } catch (NumberFormatException e) {
            throw new IllegalStateException("malformed SCRAM iteration count");
        }
        if (iterations < 1 || iterations > MAX_ITERATIONS) {
            throw new IllegalStateException("SCRAM iteration count out of range: " + iterations);
        }
        byte[] saltedPassword = pbkdf2(password, Base64.getDecoder().decode(salt), iterations);
        java.util.Arrays.fill(password, '\0');
        String withoutProof = "c=biws,r=" + nonce;
        String authMessage = clientFirstBare + "," + serverFirst + "," + withoutProof;
        byte[] clientKey = hmac(saltedPassword, "Client Key".getBytes(UTF_8));
        byte[] storedKey = sha256(clientKey);
        byte[] clientSignature = hmac(storedKey, authMessage.getBytes(UTF_8));
        byte[] proof = new byte[clientKey.length];
        for (int i = 0; i < proof.length; i++) {
            proof[i] = (byte) (clientKey[i] ^ clientSignature[i]);
        }
        byte[] serverKey = hmac(saltedPassword, "Server Key".getBytes(UTF_8));
        expectedServerSignature = hmac(serverKey, authMessage.getBytes(UTF_8));
        return withoutProof + ",p=" + Base64.getEncoder().encodeToString(proof);
    }

    /** True if the server-final message proves the server knew the password's verifier. */
    boolean verifyServerFinal(String serverFinal) {
        String verifier = attributes(serverFinal).get('v');
        if (verifier == null || expectedServerSignature == null) {
            return false;
        }
        try {
            return MessageDigest.isEqual(expectedServerSignature, Base64.getDecoder().decode(verifier));
        } catch (IllegalArgumentException e) {
            return false;
        }
    }

    /** PostgreSQL's MD5 password response: {@code "md5" + md5hex(md5hex(password + user) + salt)}. */
    static String md5Response(String password, String user, byte[] salt) {
        try {
            MessageDigest md5 = MessageDigest.getInstance("MD5");
            String inner = HexFormat.of().formatHex(md5.digest((password + user).getBytes(UTF_8)));
            md5.update(inner.getBytes(UTF_8));
            md5.update(salt);
            return "md5" + HexFormat.of().formatHex(md5.digest());
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("MD5 is not available", e);
        }
    }

    private static Map<Character, String> attributes(String message) {
        Map<Character, String> attributes = new HashMap<>();
        for (String part : message.split(",")) {
            if (part.length() >= 2 && part.charAt(1) == '=') {
                attributes.putIfAbsent(part.charAt(0), part.substring(2));
            }
        }
        return attributes;
    }

    private static byte[] pbkdf2(char[] password, byte[] salt, int iterations) {
        try {
            PBEKeySpec spec = new PBEKeySpec(password, salt, iterations, 256);
            return SecretKeyFactory.getInstance("PBKDF2WithHmacSHA256").generateSecret(spec).getEncoded();
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("PBKDF2WithHmacSHA256 is not available", e);
        }
    }

    static byte[] hmac(byte[] key, byte[] data) {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(key, "HmacSHA256"));
            return mac.doFinal(data);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("HmacSHA256 is not available", e);
        }
    }

    private static byte[] sha256(byte[] data) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(data);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("SHA-256 is not available", e);
        }
    }
}
