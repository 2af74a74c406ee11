package io.palisade.backup.store;

import static java.util.Objects.requireNonNull;

import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import io.palisade.store.SecretBox;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.Base64;
import javax.crypto.SecretKey;
import javax.crypto.spec.SecretKeySpec;

/**
 * The random AES-256 key that seals one archive (one database's backups). It is stored only wrapped by the control
 * plane's master key ({@link #wrap}), so the archive alone, e.g. a leaked bucket, reveals nothing. Immutable and
 * thread-safe; {@link #toString()} never shows the key.
 */
public final class DataKey {
    public static final int BYTES = 32;
    private static final SecureRandom RANDOM = new SecureRandom();

    private final SecretKeySpec key;

    private DataKey(byte[] bytes) {
        if (bytes.length != BYTES) {
            throw new IllegalArgumentException("a data key has " + BYTES + " bytes, not " + bytes.length);
        }
        this.key = new SecretKeySpec(bytes, "AES");
    }

    /** A new random key. */
    public static DataKey generate() {
        byte[] bytes = new byte[BYTES];
        RANDOM.nextBytes(bytes);
        try {
            return new DataKey(bytes);
        } finally {
            Arrays.fill(bytes, (byte) 0);
        }
    }

    /** This key encrypted under {@code master}, as text to store in the control plane's metadata. */
    public String wrap(SecretBox master) {
        requireNonNull(master, "master is null");
        return master.encrypt(Base64.getEncoder().encodeToString(key.getEncoded()));
    }

    /** The key {@link #wrap} produced; fails clearly if {@code master} is not the key that wrapped it. */
    public static DataKey unwrap(String wrapped, SecretBox master) {
        requireNonNull(wrapped, "wrapped is null");
        requireNonNull(master, "master is null");
        String encoded;
        try {
            encoded = master.decrypt(wrapped);
        } catch (PalisadeException e) {
            throw new PalisadeException(ErrorCode.INTERNAL, "cannot unwrap an archive's data key with this master key: "
                    + "the archive belongs to another palisade installation or the master key file was replaced; "
                    + "restore the original master key to read this archive", e);
        }
        byte[] bytes;
        try {
            bytes = Base64.getDecoder().decode(encoded);
        } catch (IllegalArgumentException e) {
            throw new PalisadeException(ErrorCode.INTERNAL, "an archive's wrapped data key decrypts to something that "
                    + "is not a key: its stored form is damaged", e);
        }
        if (bytes.length != BYTES) {
            throw new PalisadeException(ErrorCode.INTERNAL, "an archive's wrapped data key has " + bytes.length
                    + " bytes, not " + BYTES + ": its stored form is damaged");
        }
        try {
            return new DataKey(bytes);
        } finally {
            Arrays.fill(bytes, (byte) 0);
        }
    }

    SecretKey secretKey() {
        return key;
    }

    @Override
    public String toString() {
        return "DataKey[***]";
    }
}
