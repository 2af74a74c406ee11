package io.palisade.pgwire;

import static java.nio.charset.StandardCharsets.UTF_8;
import static java.util.Objects.requireNonNull;

import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.Base64;
import java.util.HashMap;
import java.util.Map;
import javax.crypto.Mac;
import javax.crypto.SecretKeyFactory;
import javax.crypto.spec.PBEKeySpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * The client side of SCRAM-SHA-256 (RFC 5802/7677) as PostgreSQL uses it: no channel binding, and an empty user name
 * by default (the server takes the startup user). The server's iteration count is capped at {@link #MAX_ITERATIONS}
 * so a hostile server cannot make us burn CPU. One exchange per instance; not thread-safe.
 */
public final class ScramClient {
    public static final String MECHANISM = "SCRAM-SHA-256";
    /**
     * PostgreSQL's default {@code scram_iterations}, which palisade sets every password with: a tenant that sets its
     * password again with more iterations (to make palisade's logins burn CPU) is refused with a clear error instead.
     */
    public static final int MAX_ITERATIONS = ScramVerifier.ITERATIONS;
    private static final SecureRandom RANDOM = new SecureRandom();

    private final char[] password;
    private final String username;
    private final String clientNonce;
    private String clientFirstBare;
    private String serverNonce;
    private byte[] expectedServerSignature;

    public ScramClient(String password) {
        this("", password, randomNonce());
    }

    /** For tests with a known nonce (RFC 7677's example). */
    public ScramClient(String username, String password, String clientNonce) {
        this.username = requireNonNull(username, "username is null").replace("=", "=3D").replace(",", "=2C");
        this.password = requireNonNull(password, "password is null").toCharArray();
        this.clientNonce = requireNonNull(clientNonce, "clientNonce is null");
    }

    private static String randomNonce() {
        byte[] nonce = new byte[18];
        RANDOM.nextBytes(nonce);
        return Base64.getEncoder().encodeToString(nonce);
    }

    /** {@code n,,n=<user>,r=<nonce>}. */
    public String clientFirstMessage() {
        clientFirstBare = "n=" + username + ",r=" + clientNonce;
        return "n,," + clientFirstBare;
    }

    /** The server's part of the nonce (what follows ours), once the server-first message was read; else null. */
    public String serverNonce() {
        return serverNonce;
    }

    /** The client-final message (with the proof) for the server-first message. */
    public String clientFinalMessage(String serverFirst) {
        if (clientFirstBare == null) {
            throw new IllegalStateException("clientFirstMessage() was not sent yet");
        }
        Map<Character, String> attributes = attributes(serverFirst);
        String nonce = attributes.get('r');
        String salt = attributes.get('s');
        String iterationText = attributes.get('i');
        if (nonce == null || salt == null || iterationText == null || !nonce.startsWith(clientNonce)
                || nonce.length() == clientNonce.length()) {
            throw failure("the server's SCRAM server-first message is malformed or does not extend our nonce");
        }
        int iterations;
        try {
            iterations = Integer.parseInt(iterationText);
        } catch (NumberFormatException e) {
            throw failure("the server's SCRAM iteration count is not a number: '" + iterationText + "'");
        }
        if (iterations < 1 || iterations > MAX_ITERATIONS) {
            throw failure("the server asks for " + iterations + " SCRAM iterations; palisade accepts 1 to "
                    + MAX_ITERATIONS + ": lower the role's password iteration count (scram_iterations) and set its"
                    + " password again");
        }
        byte[] saltBytes;
        try {
            saltBytes = Base64.getDecoder().decode(salt);
        } catch (IllegalArgumentException e) {
            throw failure("the server's SCRAM salt is not base64");
        }
        serverNonce = nonce.substring(clientNonce.length());
        byte[] salted = SaltedPasswords.of(password, saltBytes, iterations);
        Arrays.fill(password, '\0');
        String withoutProof = "c=biws,r=" + nonce;
        byte[] authMessage = (clientFirstBare + "," + serverFirst + "," + withoutProof).getBytes(UTF_8);
        byte[] clientKey = hmac(salted, "Client Key");
        byte[] clientSignature = hmac(sha256(clientKey), authMessage);
        byte[] proof = new byte[clientKey.length];
        for (int i = 0; i < proof.length; i++) {
            proof[i] = (byte) (clientKey[i] ^ clientSignature[i]);
        }
        expectedServerSignature = hmac(hmac(salted, "Server Key"), authMessage);
        return withoutProof + ",p=" + Base64.getEncoder().encodeToString(proof);
    }

    /** True if the server-final message proves the server knew the password's verifier. */
    public boolean verifyServerFinal(String serverFinal) {
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

    private static PalisadeException failure(String message) {
        return new PalisadeException(ErrorCode.DRIVER_FAILURE, "SCRAM authentication failed: " + message);
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

    static byte[] saltedPassword(char[] password, byte[] salt, int iterations) {
        try {
            PBEKeySpec spec = new PBEKeySpec(password, salt, iterations, 256);
            try {
                return SecretKeyFactory.getInstance("PBKDF2WithHmacSHA256").generateSecret(spec).getEncoded();
            } finally {
                spec.clearPassword();
            }
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("PBKDF2WithHmacSHA256 is not available in this JDK", e);
        }
    }

    static byte[] hmac(byte[] key, String message) {
        return hmac(key, message.getBytes(UTF_8));
    }

    static byte[] hmac(byte[] key, byte[] message) {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(key, "HmacSHA256"));
            return mac.doFinal(message);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("HmacSHA256 is not available in this JDK", e);
        }
    }

    static byte[] sha256(byte[] data) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(data);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("SHA-256 is not available in this JDK", e);
        }
    }
}
