package io.palisade.backup.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadLocalRandom;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The contract every {@link ArchiveStore} passes. Subclasses create the store once per class; each test works under its
 * own random prefix, so tests never see each other's objects.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
abstract class AbstractTestArchiveStore {
    private ArchiveStore store;

    protected abstract ArchiveStore createStore();

    /** Asserts the backing storage holds nothing at all under {@code prefix} (files, directories, leftovers). */
    protected abstract void assertNothingStoredUnder(String prefix);

    /** Runs after the store was closed. */
    protected void cleanUp() {}

    protected ArchiveStore store() {
        return store;
    }

    @BeforeAll
    final void setUpStore() {
        store = createStore();
    }

    @AfterAll
    final void tearDownStore() {
        if (store != null) {
            store.close();
            store.close();
        }
        cleanUp();
    }

    protected static String newPrefix() {
        return "t" + Long.toString(ThreadLocalRandom.current().nextLong(Long.MAX_VALUE), 36) + "/";
    }

    protected static byte[] randomBytes(int n) {
        byte[] bytes = new byte[n];
        ThreadLocalRandom.current().nextBytes(bytes);
        return bytes;
    }

    @Test
    void putThenGetReturnsTheSameBytes() {
        String p = newPrefix();
        byte[] small = "hello".getBytes(StandardCharsets.UTF_8);
        byte[] large = randomBytes(3 << 20);
        String walKey = p + "archives/db-x/wal/00000001/0000000001000000-0000000001002000";
        store.put(walKey, large);
        store.put(p + "small", small);
        store.put(p + "empty", new byte[0]);

        assertThat(store.get(walKey)).isEqualTo(large);
        assertThat(store.get(p + "small")).isEqualTo(small);
        assertThat(store.get(p + "empty")).isEmpty();
    }

    @Test
    void putOverwrites() {
        String key = newPrefix() + "base/manifest";
        store.put(key, randomBytes(5000));
        byte[] second = randomBytes(1234);
        store.put(key, second);

        assertThat(store.get(key)).isEqualTo(second);
        assertThat(store.list(key)).singleElement().satisfies(object -> {
            assertThat(object.key()).isEqualTo(key);
            assertThat(object.size()).isEqualTo(1234);
        });
    }

    @Test
    void listReturnsExactlyTheKeysUnderAPrefixSortedWithSizes() {
        String p = newPrefix();
        Instant before = Instant.now().minusSeconds(5);
        for (String key : List.of("a/x/2", "a/x/1", "a/xy", "a/y/1", "b/1", "a/x/sub/3")) {
            store.put(p + key, new byte[key.length() * 10]);
        }

        List<StoredObject> underX = store.list(p + "a/x/");
        assertThat(underX).extracting(StoredObject::key).containsExactly(p + "a/x/1", p + "a/x/2", p + "a/x/sub/3");
        assertThat(underX).extracting(StoredObject::size).containsExactly(50L, 50L, 90L);
        assertThat(underX).allSatisfy(object -> assertThat(object.lastModified())
                .isBetween(before, Instant.now().plusSeconds(5)));
        // a prefix may end inside a segment, like S3's
        assertThat(store.list(p + "a/x")).extracting(StoredObject::key)
                .containsExactly(p + "a/x/1", p + "a/x/2", p + "a/x/sub/3", p + "a/xy");
        assertThat(store.list(p)).hasSize(6);
        assertThat(store.list(p + "c/")).isEmpty();
        assertThat(store.list(p + "a/x/1")).extracting(StoredObject::key).containsExactly(p + "a/x/1");
    }

    /**
     * Stores each key with its own name as content, for tests that need many objects. Through {@link ArchiveStore#put}
     * by default; a store whose puts are slow may write its backing storage directly.
     */
    protected void seed(List<String> keys) throws Exception {
        try (ExecutorService pool = Executors.newFixedThreadPool(4)) {
            List<Future<?>> puts = new ArrayList<>();
            for (String key : keys) {
                puts.add(pool.submit(() -> store.put(key, key.getBytes(StandardCharsets.UTF_8))));
            }
            for (Future<?> put : puts) {
                put.get();
            }
        }
    }

    @Test
    void listAndDeletePrefixAreCompletePastOneThousandObjects() throws Exception {
        // S3 answers at most 1000 keys per list page and deletes at most 1000 per request
        String p = newPrefix();
        List<String> keys = IntStream.range(0, 1013).mapToObj(i -> p + "wal/" + i).toList();
        seed(keys);

        List<StoredObject> listed = store.list(p + "wal/");
        assertThat(listed).extracting(StoredObject::key).containsExactlyElementsOf(keys.stream().sorted().toList());
        assertThat(listed).allSatisfy(object -> assertThat(object.size()).isEqualTo(object.key().length()));
        assertThat(store.get(p + "wal/1012")).asString(StandardCharsets.UTF_8).isEqualTo(p + "wal/1012");

        store.deletePrefix(p);
        assertThat(store.list(p)).isEmpty();
        assertNothingStoredUnder(p);
    }

    @Test
    void deleteRemovesOneObjectAndIsIdempotent() {
        String p = newPrefix();
        store.put(p + "keep", randomBytes(10));
        store.put(p + "dir/gone", randomBytes(10));

        store.delete(p + "dir/gone");
        store.delete(p + "dir/gone");
        store.delete(p + "never/existed");

        assertThatThrownBy(() -> store.get(p + "dir/gone")).isInstanceOf(PalisadeException.class);
        assertThat(store.list(p)).extracting(StoredObject::key).containsExactly(p + "keep");
        assertNothingStoredUnder(p + "dir/");
    }

    @Test
    void deletePrefixLeavesNothingAndKeepsNeighbours() {
        String p = newPrefix();
        for (String key : List.of("archives/db-a/wal/1", "archives/db-a/base/b1/data.0", "archives/db-a/key",
                "archives/db-ab/wal/1", "archives/db-b/wal/1")) {
            store.put(p + key, randomBytes(100));
        }

        store.deletePrefix(p + "archives/db-a/");
        store.deletePrefix(p + "archives/db-a/");
        store.deletePrefix(p + "archives/db-none/");

        assertThat(store.list(p + "archives/db-a/")).isEmpty();
        assertNothingStoredUnder(p + "archives/db-a/");
        assertThat(store.list(p)).extracting(StoredObject::key)
                .containsExactly(p + "archives/db-ab/wal/1", p + "archives/db-b/wal/1");
        assertThatThrownBy(() -> store.deletePrefix(""))
                .isInstanceOf(PalisadeException.class)
                .hasMessageContaining("refusing to delete every object");
    }

    @Test
    void missingObjectIsNotFoundNamingTheKey() {
        String key = newPrefix() + "archives/db-q/wal/00000001/0000000001000000-0000000001002000";
        assertThatThrownBy(() -> store.get(key))
                .isInstanceOfSatisfying(PalisadeException.class,
                        e -> assertThat(e.errorCode()).isEqualTo(ErrorCode.NOT_FOUND))
                .hasMessageContaining(key)
                .hasMessageContaining(store.describe());
    }

    @Test
    void invalidKeysAreRejected() {
        String p = newPrefix();
        List<String> invalid = List.of("", "/abs", p + "a/../b", p + "..", p + "a//b", p + "a b", p + "caf\u00e9",
                p + "dir/", ".hidden", p + ".tmp", p + "a/.x", p + "a\\b", p + "a?b", p + "a\nb", "x".repeat(513));
        for (String key : invalid) {
            assertThatThrownBy(() -> store.put(key, new byte[1])).as("put %s", key)
                    .isInstanceOfSatisfying(PalisadeException.class,
                            e -> assertThat(e.errorCode()).isEqualTo(ErrorCode.INVALID_REQUEST));
            assertThatThrownBy(() -> store.get(key)).as("get %s", key).isInstanceOf(PalisadeException.class)
                    .hasMessageContaining("invalid");
            assertThatThrownBy(() -> store.delete(key)).as("delete %s", key).isInstanceOf(PalisadeException.class)
                    .hasMessageContaining("invalid");
        }
        assertThatThrownBy(() -> store.list("/x")).hasMessageContaining("starts with '/'");
        assertThatThrownBy(() -> store.deletePrefix("a/../")).hasMessageContaining("'..'");
        assertThat(store.list(p)).isEmpty();

        // the longest valid key works (segments stay under file systems' 255-byte name limit)
        StringBuilder longest = new StringBuilder(p);
        while (longest.length() < ArchiveKeys.MAX_LENGTH) {
            longest.append(longest.length() % 200 == 0 ? '/' : 'k');
        }
        byte[] bytes = randomBytes(7);
        store.put(longest.toString(), bytes);
        assertThat(store.get(longest.toString())).isEqualTo(bytes);
    }

    @Test
    void concurrentPutsOfOneKeyLeaveOneWholeObject() throws Exception {
        String key = newPrefix() + "contended";
        List<byte[]> contents = IntStream.range(0, 8).mapToObj(i -> randomBytes(256 << 10)).toList();
        try (ExecutorService pool = Executors.newFixedThreadPool(8)) {
            List<Future<?>> puts = new ArrayList<>();
            for (int round = 0; round < 3; round++) {
                for (byte[] content : contents) {
                    puts.add(pool.submit(() -> store.put(key, content)));
                }
            }
            for (Future<?> put : puts) {
                put.get();
            }
        }
        byte[] stored = store.get(key);
        assertThat(contents).anySatisfy(content -> assertThat(stored).isEqualTo(content));
        assertThat(store.list(key)).hasSize(1);
    }

    @Test
    void concurrentPutsDeletesAndListsOfNeighboursDoNotFail() throws Exception {
        // deletes remove directories they empty; puts into the same directories must still land, lists must not trip
        String p = newPrefix();
        Set<String> kept = new HashSet<>();
        try (ExecutorService pool = Executors.newFixedThreadPool(6)) {
            List<Future<?>> work = new ArrayList<>();
            for (int i = 0; i < 30; i++) {
                String doomed = p + "d" + (i % 3) + "/doomed" + i;
                String keep = p + "d" + (i % 3) + "/kept" + i;
                kept.add(keep);
                work.add(pool.submit(() -> {
                    store.put(doomed, new byte[10]);
                    store.delete(doomed);
                }));
                work.add(pool.submit(() -> store.put(keep, new byte[10])));
                if (i % 5 == 0) {
                    work.add(pool.submit(() -> store.list(p)));
                }
            }
            for (Future<?> future : work) {
                future.get();
            }
        }
        assertThat(store.list(p)).extracting(StoredObject::key).containsExactlyInAnyOrderElementsOf(kept);
    }

    @Test
    void describeNamesTheStore() {
        assertThat(store.describe()).isNotBlank();
        assertThat(store.toString()).isEqualTo(store.describe());
    }
}
