package io.palisade.store;

import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.Base64;
import java.util.HexFormat;
import javax.crypto.Cipher;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * Encrypts the tenant secrets palisade must hand out again (password, broker token) with AES-256-GCM under a master key
 * kept in a mode-600 file on the control plane's host; hashes API keys and tokens. Thread-safe (stateless per call).
 */
public final class SecretBox {
    private static final SecureRandom RANDOM = new SecureRandom();
    private static final String ALPHABET = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";

    private final SecretKeySpec key;

    private SecretBox(byte[] key) {
        this.key = new SecretKeySpec(key, "AES");
    }

    /** Loads the master key from {@code file}, creating it (mode 600) on first use. */
    public static SecretBox open(Path file) {
        try {
            if (!Files.exists(file)) {
                Files.createDirectories(file.getParent());
                byte[] key = new byte[32];
                RANDOM.nextBytes(key);
                Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
                Files.deleteIfExists(tmp);
                Files.createFile(tmp, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
                Files.writeString(tmp, Base64.getEncoder().encodeToString(key));
                Files.move(tmp, file, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
            }
            byte[] key = Base64.getDecoder().decode(Files.readString(file).strip());
            if (key.length != 32) {
                throw new PalisadeException(ErrorCode.INTERNAL, "master key " + file + " is corrupt (expected 32 bytes)");
            }
            return new SecretBox(key);
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.INTERNAL, "cannot read or create master key " + file + ": " + e.getMessage(), e);
        }
    }

    public String encrypt(String plaintext) {
        try {
            byte[] iv = new byte[12];
            RANDOM.nextBytes(iv);
            Cipher cipher = Cipher.getInstance("AES/GCM/NoPadding");
            cipher.init(Cipher.ENCRYPT_MODE, key, new GCMParameterSpec(128, iv));
            byte[] sealed = cipher.doFinal(plaintext.getBytes(StandardCharsets.UTF_8));
            return "v1:" + Base64.getEncoder().encodeToString(iv) + ":" + Base64.getEncoder().encodeToString(sealed);
        } catch (GeneralSecurityException e) {
            throw new PalisadeException(ErrorCode.INTERNAL, "cannot encrypt a secret", e);
        }
    }

    public String decrypt(String sealed) {
        String[] parts = sealed.split(":");
        if (parts.length != 3 || !parts[0].equals("v1")) {
            throw new PalisadeException(ErrorCode.INTERNAL, "stored secret has an unknown format");
        }
        try {
            Cipher cipher = Cipher.getInstance("AES/GCM/NoPadding");
            cipher.init(Cipher.DECRYPT_MODE, key, new GCMParameterSpec(128, Base64.getDecoder().decode(parts[1])));
            return new String(cipher.doFinal(Base64.getDecoder().decode(parts[2])), StandardCharsets.UTF_8);
        } catch (GeneralSecurityException | IllegalArgumentException e) {
            throw new PalisadeException(ErrorCode.INTERNAL, "stored secret cannot be decrypted with this master key", e);
        }
    }

    /** SHA-256 hex of a high-entropy secret (API keys, broker tokens). */
    public static String hash(String secret) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(secret.getBytes(StandardCharsets.UTF_8)));
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    /** A random secret of {@code length} unambiguous alphanumerics (~5.8 bits each). */
    public static String randomSecret(int length) {
        StringBuilder out = new StringBuilder(length);
        for (int i = 0; i < length; i++) {
            out.append(ALPHABET.charAt(RANDOM.nextInt(ALPHABET.length())));
        }
        return out.toString();
    }

    /** A DNS-label-safe random id with a prefix, e.g. {@code db-7k3q9x2m}. */
    public static String randomId(String prefix) {
        String alphabet = "abcdefghijkmnpqrstuvwxyz23456789";
        StringBuilder out = new StringBuilder(prefix).append('-');
        for (int i = 0; i < 8; i++) {
            out.append(alphabet.charAt(RANDOM.nextInt(alphabet.length())));
        }
        return out.toString();
    }
}
