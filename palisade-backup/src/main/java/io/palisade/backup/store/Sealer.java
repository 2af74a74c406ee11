package io.palisade.backup.store;

import static java.util.Objects.requireNonNull;

import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.zip.DataFormatException;
import java.util.zip.Deflater;
import java.util.zip.Inflater;
import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.spec.GCMParameterSpec;

/**
 * Compresses and encrypts one archived object, and checks and reverses that on the way back. A sealed object is
 * {@code "PLSA"}, a format version byte ({@value #VERSION}), a random 12-byte nonce, then the AES-256-GCM ciphertext of
 * the zlib-compressed plaintext with its 16-byte tag. The additional authenticated data is the 5 header bytes followed
 * by the object's key, so an object only opens under the name it was sealed for: a renamed or swapped object fails like
 * a damaged one. {@link #open} also caps how large a plaintext may inflate to.
 *
 * <p>Objects are sealed whole in memory; callers split larger streams into parts of at most
 * {@link #RECOMMENDED_PART_BYTES}. Thread-safe (stateless apart from its limits).
 */
public final class Sealer {
    /** Plaintexts larger than this are refused by {@link #seal} and by {@link #open} (decompression bombs). */
    public static final int DEFAULT_MAX_PLAIN_BYTES = 64 << 20;
    /** The part size callers should split streams into. */
    public static final int RECOMMENDED_PART_BYTES = 32 << 20;
    public static final byte VERSION = 1;

    private static final byte[] MAGIC = {'P', 'L', 'S', 'A'};
    private static final int NONCE_BYTES = 12;
    private static final int TAG_BYTES = 16;
    private static final int HEADER_BYTES = MAGIC.length + 1 + NONCE_BYTES;
    /** Fast: archiving keeps up with WAL; WAL and heap pages still shrink well at this level. */
    private static final int COMPRESSION_LEVEL = 1;
    private static final int CHUNK = 64 << 10;
    private static final SecureRandom RANDOM = new SecureRandom();

    private final int maxPlainBytes;

    public Sealer() {
        this(DEFAULT_MAX_PLAIN_BYTES);
    }

    /** A sealer that refuses plaintexts larger than {@code maxPlainBytes}, sealing or opening. */
    public Sealer(int maxPlainBytes) {
        if (maxPlainBytes < 1 || maxPlainBytes > Integer.MAX_VALUE - CHUNK) {
            throw new IllegalArgumentException("maxPlainBytes must be between 1 and " + (Integer.MAX_VALUE - CHUNK)
                    + ", got " + maxPlainBytes);
        }
        this.maxPlainBytes = maxPlainBytes;
    }

    public int maxPlainBytes() {
        return maxPlainBytes;
    }

    /** {@code plain} compressed and encrypted under {@code key}, bound to {@code objectKey}. */
    public byte[] seal(DataKey key, String objectKey, byte[] plain) {
        requireNonNull(key, "key is null");
        requireNonNull(objectKey, "objectKey is null");
        requireNonNull(plain, "plain is null");
        if (plain.length > maxPlainBytes) {
            throw new PalisadeException(ErrorCode.INTERNAL, "cannot seal archived object " + objectKey + ": "
                    + plain.length + " bytes is more than the " + maxPlainBytes + "-byte limit per object; split it "
                    + "into parts");
        }
        Buffer compressed = deflate(plain);
        byte[] sealed = new byte[HEADER_BYTES + compressed.size() + TAG_BYTES];
        System.arraycopy(MAGIC, 0, sealed, 0, MAGIC.length);
        sealed[MAGIC.length] = VERSION;
        byte[] nonce = new byte[NONCE_BYTES];
        RANDOM.nextBytes(nonce);
        System.arraycopy(nonce, 0, sealed, MAGIC.length + 1, NONCE_BYTES);
        try {
            Cipher cipher = Cipher.getInstance("AES/GCM/NoPadding");
            cipher.init(Cipher.ENCRYPT_MODE, key.secretKey(), new GCMParameterSpec(TAG_BYTES * 8, nonce));
            cipher.updateAAD(aad(sealed, objectKey));
            int written = cipher.doFinal(compressed.array(), 0, compressed.size(), sealed, HEADER_BYTES);
            if (written != sealed.length - HEADER_BYTES) {
                throw new IllegalStateException("AES-GCM wrote " + written + " bytes, expected "
                        + (sealed.length - HEADER_BYTES));
            }
            return sealed;
        } catch (GeneralSecurityException e) {
            throw new PalisadeException(ErrorCode.INTERNAL, "cannot encrypt archived object " + objectKey + ": " + e,
                    e);
        }
    }

    /** The plaintext {@link #seal} was given for {@code objectKey}; {@link ArchiveCorruptException} if it is not. */
    public byte[] open(DataKey key, String objectKey, byte[] sealed) {
        requireNonNull(key, "key is null");
        requireNonNull(objectKey, "objectKey is null");
        requireNonNull(sealed, "sealed is null");
        if (sealed.length < HEADER_BYTES + TAG_BYTES) {
            throw new ArchiveCorruptException(objectKey, "only " + sealed.length + " bytes, shorter than any sealed "
                    + "object");
        }
        if (!Arrays.equals(sealed, 0, MAGIC.length, MAGIC, 0, MAGIC.length)) {
            throw new ArchiveCorruptException(objectKey, "it does not start with the PLSA header");
        }
        if (sealed[MAGIC.length] != VERSION) {
            throw new ArchiveCorruptException(objectKey, "unknown format version " + (sealed[MAGIC.length] & 0xff)
                    + ", this palisade reads version " + VERSION);
        }
        byte[] compressed;
        try {
            Cipher cipher = Cipher.getInstance("AES/GCM/NoPadding");
            cipher.init(Cipher.DECRYPT_MODE, key.secretKey(),
                    new GCMParameterSpec(TAG_BYTES * 8, sealed, MAGIC.length + 1, NONCE_BYTES));
            cipher.updateAAD(aad(sealed, objectKey));
            compressed = cipher.doFinal(sealed, HEADER_BYTES, sealed.length - HEADER_BYTES);
        } catch (AEADBadTagException e) {
            throw new ArchiveCorruptException(objectKey, "authentication failed", e);
        } catch (GeneralSecurityException e) {
            throw new PalisadeException(ErrorCode.INTERNAL, "cannot decrypt archived object " + objectKey + ": " + e,
                    e);
        }
        return inflate(objectKey, compressed);
    }

    private static byte[] aad(byte[] sealed, String objectKey) {
        byte[] name = objectKey.getBytes(StandardCharsets.UTF_8);
        byte[] aad = new byte[MAGIC.length + 1 + name.length];
        System.arraycopy(sealed, 0, aad, 0, MAGIC.length + 1);
        System.arraycopy(name, 0, aad, MAGIC.length + 1, name.length);
        return aad;
    }

    private static Buffer deflate(byte[] plain) {
        Deflater deflater = new Deflater(COMPRESSION_LEVEL);
        try {
            deflater.setInput(plain);
            deflater.finish();
            Buffer out = new Buffer(Math.max(CHUNK, plain.length / 2));
            byte[] chunk = new byte[CHUNK];
            while (!deflater.finished()) {
                int n = deflater.deflate(chunk);
                out.write(chunk, 0, n);
            }
            return out;
        } finally {
            deflater.end();
        }
    }

    private byte[] inflate(String objectKey, byte[] compressed) {
        Inflater inflater = new Inflater();
        try {
            inflater.setInput(compressed);
            Buffer out = new Buffer(Math.min(maxPlainBytes, Math.max(CHUNK, compressed.length * 2)));
            byte[] chunk = new byte[CHUNK];
            while (!inflater.finished()) {
                int n = inflater.inflate(chunk);
                if (n == 0 && !inflater.finished() && (inflater.needsInput() || inflater.needsDictionary())) {
                    throw new ArchiveCorruptException(objectKey, "its compressed data ends early");
                }
                if ((long) out.size() + n > maxPlainBytes) {
                    throw new ArchiveCorruptException(objectKey, "it inflates past the limit of " + maxPlainBytes
                            + " bytes per object");
                }
                out.write(chunk, 0, n);
            }
            if (inflater.getRemaining() > 0) {
                throw new ArchiveCorruptException(objectKey, inflater.getRemaining() + " bytes follow its compressed "
                        + "data");
            }
            return out.size() == out.array().length ? out.array() : Arrays.copyOf(out.array(), out.size());
        } catch (DataFormatException e) {
            throw new ArchiveCorruptException(objectKey, "decompression failed: " + e.getMessage(), e);
        } finally {
            inflater.end();
        }
    }

    /** A byte buffer whose array can be used without a copy. */
    private static final class Buffer extends ByteArrayOutputStream {
        Buffer(int size) {
            super(size);
        }

        byte[] array() {
            return buf;
        }
    }
}
