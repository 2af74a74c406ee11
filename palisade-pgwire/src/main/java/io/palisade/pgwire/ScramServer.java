package io.palisade.pgwire;

import static java.nio.charset.StandardCharsets.UTF_8;
import static java.util.Objects.requireNonNull;

import java.security.SecureRandom;
import java.util.Base64;
import java.util.Optional;

/**
 * The server side of one SCRAM-SHA-256 exchange as PostgreSQL runs it (no channel binding; the user name in the
 * client-first message is ignored, the startup user counts). The salt and iteration count are fixed when the exchange
 * starts, so a server can answer the client-first message before it knows the secret; the proof is checked later
 * against a {@link ScramSecret}. Every malformed message ends in the same {@code false} as a wrong proof. One exchange
 * per instance; not thread-safe.
 */
public final class ScramServer {
    private static final SecureRandom RANDOM = new SecureRandom();
    private static final int MAX_NONCE_LENGTH = 256;

    private final byte[] salt;
    private final int iterations;
    private String gs2Header;
    private String clientFirstBare;
    private String serverFirst;
    private String nonce;
    private String authMessage;

    public ScramServer(byte[] salt, int iterations) {
        this.salt = requireNonNull(salt, "salt is null").clone();
        if (iterations < 1 || iterations > ScramClient.MAX_ITERATIONS) {
            throw new IllegalArgumentException("SCRAM iterations must be 1.." + ScramClient.MAX_ITERATIONS + ", got "
                    + iterations);
        }
        this.iterations = iterations;
    }

    /**
     * Reads the client-first message ({@code n,,n=<user>,r=<nonce>}) and returns the server-first message
     * ({@code r=<client nonce><server nonce>,s=<salt>,i=<iterations>}), or empty if the message is malformed or asks
     * for channel binding (which a TLS-terminating proxy cannot offer).
     */
    public Optional<String> serverFirst(String clientFirst) {
        requireNonNull(clientFirst, "clientFirst is null");
        if (serverFirst != null) {
            throw new IllegalStateException("the client-first message was already read");
        }
        // gs2-header: cbind-flag "," [authzid] ","
        if (!(clientFirst.startsWith("n,") || clientFirst.startsWith("y,"))) {
            return Optional.empty();
        }
        int secondComma = clientFirst.indexOf(',', 2);
        if (secondComma < 0 || secondComma != 2) {
            return Optional.empty(); // an authzid is not supported, as in PostgreSQL
        }
        String header = clientFirst.substring(0, secondComma + 1);
        String bare = clientFirst.substring(secondComma + 1);
        String[] parts = bare.split(",", -1);
        if (parts.length < 2 || !parts[0].startsWith("n=") || !parts[1].startsWith("r=")) {
            return Optional.empty();
        }
        String clientNonce = parts[1].substring(2);
        if (!printable(clientNonce)) {
            return Optional.empty();
        }
        byte[] serverNonce = new byte[18];
        RANDOM.nextBytes(serverNonce);
        gs2Header = header;
        clientFirstBare = bare;
        nonce = clientNonce + Base64.getEncoder().encodeToString(serverNonce);
        serverFirst = "r=" + nonce + ",s=" + Base64.getEncoder().encodeToString(salt) + ",i=" + iterations;
        return Optional.of(serverFirst);
    }

    /**
     * Checks the client-final message ({@code c=<gs2 header>,r=<nonce>,p=<proof>}) against {@code secret}: true only
     * if the message is well formed, repeats our nonce and header, and the proof verifies. Costs the same for a
     * malformed message as for a wrong proof.
     */
    public boolean verify(String clientFinal, ScramSecret secret) {
        requireNonNull(clientFinal, "clientFinal is null");
        requireNonNull(secret, "secret is null");
        boolean wellFormed = serverFirst != null;
        int proofAt = clientFinal.lastIndexOf(",p=");
        String withoutProof = proofAt < 0 ? clientFinal : clientFinal.substring(0, proofAt);
        byte[] proof = new byte[0];
        if (proofAt < 0) {
            wellFormed = false;
        } else {
            try {
                proof = Base64.getDecoder().decode(clientFinal.substring(proofAt + 3));
            } catch (IllegalArgumentException e) {
                wellFormed = false;
            }
        }
        String[] parts = withoutProof.split(",", -1);
        if (parts.length < 2 || !parts[0].startsWith("c=") || !parts[1].startsWith("r=")) {
            wellFormed = false;
        } else if (wellFormed) {
            String channelBinding = Base64.getEncoder().encodeToString(gs2Header.getBytes(UTF_8));
            wellFormed = parts[0].substring(2).equals(channelBinding) && parts[1].substring(2).equals(nonce);
        }
        String message = (clientFirstBare == null ? "" : clientFirstBare) + "," + (serverFirst == null ? ""
                : serverFirst) + "," + withoutProof;
        boolean proven = secret.verifyProof(message, proof);
        if (wellFormed && proven) {
            authMessage = message;
            return true;
        }
        return false;
    }

    /** The server-final message {@code v=<ServerSignature>}, after {@link #verify} returned true. */
    public String serverFinal(ScramSecret secret) {
        requireNonNull(secret, "secret is null");
        if (authMessage == null) {
            throw new IllegalStateException("the client proof was not verified");
        }
        return "v=" + Base64.getEncoder().encodeToString(secret.serverSignature(authMessage));
    }

    private static boolean printable(String value) {
        if (value.isEmpty() || value.length() > MAX_NONCE_LENGTH) {
            return false;
        }
        for (int i = 0; i < value.length(); i++) {
            char c = value.charAt(i);
            if (c < 0x21 || c > 0x7e || c == ',') {
                return false;
            }
        }
        return true;
    }
}
