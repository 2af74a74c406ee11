package io.palisade.backup.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.palisade.spi.PalisadeException;
import io.palisade.testing.TestingDirectories;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

class TestLocalArchiveStore extends AbstractTestArchiveStore {
    private Path workDir;
    private Path root;

    @Override
    protected ArchiveStore createStore() {
        workDir = TestingDirectories.newWorkDir("bk");
        root = workDir.resolve("backups/archive");
        return new LocalArchiveStore(root);
    }

    @Override
    protected void assertNothingStoredUnder(String prefix) {
        assertThat(root.resolve(prefix)).doesNotExist();
    }

    @Override
    protected void cleanUp() {
        TestingDirectories.deleteRecursively(workDir);
    }

    @Test
    void onlyTheOwnerCanReadTheArchive() throws IOException {
        String p = newPrefix();
        store().put(p + "archives/db-m/wal/1", randomBytes(10));

        assertThat(mode(root)).isEqualTo("rwx------");
        assertThat(mode(root.resolve(p))).isEqualTo("rwx------");
        assertThat(mode(root.resolve(p + "archives/db-m/wal"))).isEqualTo("rwx------");
        assertThat(mode(root.resolve(p + "archives/db-m/wal/1"))).isEqualTo("rw-------");
    }

    @Test
    void reopeningTightensTheRootAndKeepsObjects() throws IOException {
        String p = newPrefix();
        store().put(p + "x", randomBytes(3));
        Files.setPosixFilePermissions(root, PosixFilePermissions.fromString("rwxr-xr-x"));

        LocalArchiveStore reopened = new LocalArchiveStore(root);

        assertThat(mode(root)).isEqualTo("rwx------");
        assertThat(reopened.list(p)).hasSize(1);
        assertThat(reopened.describe()).isEqualTo("local " + root);
    }

    @Test
    void putLeavesNoTemporaryFiles() throws IOException {
        String p = newPrefix();
        for (int i = 0; i < 5; i++) {
            store().put(p + "obj", randomBytes(100));
        }
        try (Stream<Path> files = Files.list(root.resolve(p))) {
            assertThat(files.map(f -> f.getFileName().toString())).containsExactly("obj");
        }
    }

    @Test
    void leftoversOfACrashedPutAreNotListedAndGoWithTheirPrefix() throws IOException {
        String p = newPrefix();
        store().put(p + "archives/db-c/wal/1", randomBytes(10));
        // what a crash between create and rename leaves behind
        Path dir = root.resolve(p + "archives/db-c/wal");
        Files.write(dir.resolve(".put-5f3a.tmp"), randomBytes(10));
        Files.createDirectories(root.resolve(p + "archives/db-c/base/empty"));

        assertThat(store().list(p)).extracting(StoredObject::key).containsExactly(p + "archives/db-c/wal/1");

        store().deletePrefix(p + "archives/db-c/");
        assertThat(root.resolve(p)).doesNotExist();
    }

    @Test
    void anObjectAndADirectoryOfTheSameNameConflictClearly() {
        String p = newPrefix();
        store().put(p + "a/b", randomBytes(1));
        assertThatThrownBy(() -> store().put(p + "a/b/c", randomBytes(1)))
                .isInstanceOf(PalisadeException.class)
                .hasMessageContaining(p + "a/b/c")
                .hasMessageContaining("in the way");
        store().put(p + "d/e/f", randomBytes(1));
        assertThatThrownBy(() -> store().put(p + "d/e", randomBytes(1)))
                .isInstanceOf(PalisadeException.class)
                .hasMessageContaining("holds other objects");
        assertThatThrownBy(() -> store().get(p + "d/e")).hasMessageContaining("does not exist");
    }

    @Test
    void anUnwritableRootFailsClearly() throws IOException {
        Path file = Files.writeString(workDir.resolve("not-a-dir"), "x");
        assertThatThrownBy(() -> new LocalArchiveStore(file.resolve("archive")))
                .isInstanceOf(PalisadeException.class)
                .hasMessageContaining("cannot create the backup directory " + file.resolve("archive"));
    }

    private static String mode(Path path) throws IOException {
        return PosixFilePermissions.toString(Files.getPosixFilePermissions(path));
    }
}
