package io.palisade.backup.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.palisade.spi.PalisadeException;
import io.palisade.store.SecretBox;
import io.palisade.testing.TestingDirectories;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadLocalRandom;
import org.junit.jupiter.api.Test;

class TestSealer {
    private static final String OBJECT = "archives/db-s/wal/00000001/0000000001000000-0000000001002000";

    private final Sealer sealer = new Sealer();
    private final DataKey key = DataKey.generate();

    @Test
    void openReturnsWhatWasSealed() {
        for (byte[] plain : List.of(new byte[0], new byte[] {42}, random(100_000), compressible(5 << 20))) {
            byte[] sealed = sealer.seal(key, OBJECT, plain);
            assertThat(sealer.open(key, OBJECT, sealed)).isEqualTo(plain);
        }
    }

    @Test
    void sealedObjectsHaveTheHeaderAndAFreshNonceEachTime() {
        byte[] plain = compressible(10_000);
        byte[] first = sealer.seal(key, OBJECT, plain);
        byte[] second = sealer.seal(key, OBJECT, plain);

        assertThat(Arrays.copyOf(first, 5)).isEqualTo(new byte[] {'P', 'L', 'S', 'A', Sealer.VERSION});
        assertThat(Arrays.copyOfRange(first, 5, 17)).isNotEqualTo(Arrays.copyOfRange(second, 5, 17));
        assertThat(first).isNotEqualTo(second);
    }

    @Test
    void anotherKeyCannotOpen() {
        byte[] sealed = sealer.seal(key, OBJECT, random(1000));
        assertThatThrownBy(() -> sealer.open(DataKey.generate(), OBJECT, sealed))
                .isInstanceOf(ArchiveCorruptException.class)
                .hasMessage("archived object " + OBJECT + " is corrupt or was not written by this archive "
                        + "(authentication failed)");
    }

    @Test
    void anyFlippedByteIsCaughtNamingTheObject() {
        byte[] sealed = sealer.seal(key, OBJECT, compressible(50_000));
        // magic, version, nonce, ciphertext start, middle, end, tag
        int[] positions = {0, 3, 4, 5, 16, 17, sealed.length / 2, sealed.length - 17, sealed.length - 1};
        for (int position : positions) {
            byte[] damaged = sealed.clone();
            damaged[position] ^= (byte) 0x40;
            assertThatThrownBy(() -> sealer.open(key, OBJECT, damaged)).as("byte %d flipped", position)
                    .isInstanceOfSatisfying(ArchiveCorruptException.class,
                            e -> assertThat(e.objectKey()).isEqualTo(OBJECT))
                    .hasMessageStartingWith("archived object " + OBJECT + " is corrupt");
        }
        byte[] wrongVersion = sealed.clone();
        wrongVersion[4] = 9;
        assertThatThrownBy(() -> sealer.open(key, OBJECT, wrongVersion))
                .hasMessageContaining("unknown format version 9");
        byte[] noMagic = sealed.clone();
        noMagic[0] = 'X';
        assertThatThrownBy(() -> sealer.open(key, OBJECT, noMagic)).hasMessageContaining("PLSA header");
        assertThatThrownBy(() -> sealer.open(key, OBJECT, Arrays.copyOf(sealed, sealed.length - 1)))
                .hasMessageContaining("authentication failed");
        assertThatThrownBy(() -> sealer.open(key, OBJECT, Arrays.copyOf(sealed, 20)))
                .hasMessageContaining("only 20 bytes");
    }

    @Test
    void anObjectOnlyOpensUnderTheKeyItWasSealedFor() {
        String other = "archives/db-s/wal/00000001/0000000001002000-0000000001004000";
        byte[] sealed = sealer.seal(key, OBJECT, random(1000));
        assertThatThrownBy(() -> sealer.open(key, other, sealed))
                .isInstanceOfSatisfying(ArchiveCorruptException.class, e -> assertThat(e.objectKey()).isEqualTo(other))
                .hasMessageContaining("authentication failed");
    }

    @Test
    void dataKeyWrappedByTheMasterKeyRoundTrips() {
        Path dir = TestingDirectories.newWorkDir("seal");
        try {
            SecretBox master = SecretBox.open(dir.resolve("master.key"));
            String wrapped = key.wrap(master);
            String raw = Base64.getEncoder().encodeToString(key.secretKey().getEncoded());
            assertThat(wrapped).doesNotContain(raw).startsWith("v1:");

            DataKey unwrapped = DataKey.unwrap(wrapped, SecretBox.open(dir.resolve("master.key")));
            byte[] plain = random(5000);
            assertThat(sealer.open(unwrapped, OBJECT, sealer.seal(key, OBJECT, plain))).isEqualTo(plain);

            SecretBox otherMaster = SecretBox.open(dir.resolve("other.key"));
            assertThatThrownBy(() -> DataKey.unwrap(wrapped, otherMaster))
                    .isInstanceOf(PalisadeException.class)
                    .hasMessageContaining("cannot unwrap an archive's data key with this master key");
            assertThatThrownBy(() -> DataKey.unwrap(otherMaster.encrypt("not a key"), otherMaster))
                    .hasMessageContaining("is not a key");
            assertThatThrownBy(() -> DataKey.unwrap(otherMaster.encrypt("AAAA"), otherMaster))
                    .hasMessageContaining("3 bytes, not 32");
            assertThat(key.toString()).doesNotContain(raw).isEqualTo("DataKey[***]");
        } finally {
            TestingDirectories.deleteRecursively(dir);
        }
    }

    @Test
    void compressibleDataShrinksAndRandomDataBarelyGrows() {
        byte[] text = compressible(4 << 20);
        byte[] zeros = new byte[16 << 20]; // a fresh WAL segment is mostly zeros
        byte[] noise = random(1 << 20);

        assertThat(sealer.seal(key, OBJECT, text).length).isLessThan(text.length / 4);
        assertThat(sealer.seal(key, OBJECT, zeros).length).isLessThan(zeros.length / 100);
        assertThat(sealer.seal(key, OBJECT, noise).length).isLessThan(noise.length + 1024);
    }

    @Test
    void inflatedSizeIsCapped() {
        Sealer small = new Sealer(1 << 20);
        byte[] exactlyAtCap = compressible(1 << 20);
        assertThat(small.open(key, OBJECT, small.seal(key, OBJECT, exactlyAtCap))).isEqualTo(exactlyAtCap);

        assertThatThrownBy(() -> small.seal(key, OBJECT, new byte[(1 << 20) + 1]))
                .isInstanceOf(PalisadeException.class)
                .hasMessageContaining("split it into parts");
        // a bomb: 64 MiB of zeros seal to ~64 KiB; a reader with a 1 MiB cap refuses it without inflating it all
        byte[] bomb = sealer.seal(key, OBJECT, new byte[64 << 20]);
        assertThat(bomb.length).isLessThan(1 << 20);
        assertThatThrownBy(() -> small.open(key, OBJECT, bomb))
                .isInstanceOf(ArchiveCorruptException.class)
                .hasMessageContaining("inflates past the limit of 1048576 bytes");
        assertThatThrownBy(() -> new Sealer(0)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void sealingIsThreadSafe() throws Exception {
        try (ExecutorService pool = Executors.newFixedThreadPool(4)) {
            List<Future<?>> work = new ArrayList<>();
            for (int i = 0; i < 32; i++) {
                String objectKey = OBJECT + "." + i;
                work.add(pool.submit(() -> {
                    byte[] plain = compressible(200_000 + ThreadLocalRandom.current().nextInt(1000));
                    assertThat(sealer.open(key, objectKey, sealer.seal(key, objectKey, plain))).isEqualTo(plain);
                }));
            }
            for (Future<?> future : work) {
                future.get();
            }
        }
    }

    private static byte[] random(int n) {
        byte[] bytes = new byte[n];
        ThreadLocalRandom.current().nextBytes(bytes);
        return bytes;
    }

    /** Text with the redundancy of real table and WAL data. */
    private static byte[] compressible(int n) {
        StringBuilder text = new StringBuilder(n + 100);
        ThreadLocalRandom random = ThreadLocalRandom.current();
        while (text.length() < n) {
            text.append("INSERT INTO orders VALUES (").append(random.nextInt(100_000)).append(", 'customer-")
                    .append(random.nextInt(500)).append("', 'pending');\n");
        }
        return Arrays.copyOf(text.toString().getBytes(StandardCharsets.US_ASCII), n);
    }
}
