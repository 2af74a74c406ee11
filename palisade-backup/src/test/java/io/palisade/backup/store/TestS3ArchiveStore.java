package io.palisade.backup.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.palisade.spi.PalisadeException;
import io.palisade.testing.TestingDirectories;
import io.palisade.testing.TestingS3;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.ConnectException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/** The contract against a real S3 API server (S3Proxy), plus what only S3 has: bucket checks, the store's prefix. */
class TestS3ArchiveStore extends AbstractTestArchiveStore {
    private static final String STORE_PREFIX = "palisade/backups/";

    private TestingS3 s3;

    @Override
    protected ArchiveStore createStore() {
        s3 = new TestingS3();
        return new S3ArchiveStore(settings(s3.settings().bucket(), "/" + STORE_PREFIX.replaceAll("/$", "")));
    }

    private S3Settings settings(String bucket, String prefix) {
        TestingS3.Settings server = s3.settings();
        return S3Settings.of(server.endpoint(), server.region(), bucket, prefix, server.accessKeyId(),
                server.secretAccessKey());
    }

    @Override
    protected void assertNothingStoredUnder(String prefix) {
        Path dir = s3.bucketDir(TestingS3.BUCKET).resolve(STORE_PREFIX + prefix);
        assertThat(filesUnder(dir)).isEmpty();
    }

    /**
     * Writes the objects straight into the server's filesystem backend: listing and deleting them still go through the
     * S3 API, while a thousand PutObject calls would take tens of seconds on a loaded two-core machine.
     */
    @Override
    protected void seed(List<String> keys) throws IOException {
        Path bucket = s3.bucketDir(TestingS3.BUCKET);
        for (String key : keys) {
            Path file = bucket.resolve(STORE_PREFIX + key);
            Files.createDirectories(file.getParent());
            Files.writeString(file, key);
        }
    }

    @Override
    protected void cleanUp() {
        if (s3 != null) {
            Path files = s3.bucketDir(TestingS3.BUCKET).getParent();
            URI endpoint = s3.settings().endpoint();
            s3.close();
            s3.close();
            assertThat(files).as("the server's files").doesNotExist();
            assertThatThrownBy(() -> new Socket(endpoint.getHost(), endpoint.getPort()).close())
                    .as("the server still listens").isInstanceOf(ConnectException.class);
        }
    }

    @Test
    void objectsLiveUnderTheStorePrefixInTheBucket() throws IOException {
        String key = newPrefix() + "archives/db-p/wal/1";
        byte[] bytes = randomBytes(100);
        store().put(key, bytes);

        Path onDisk = s3.bucketDir(TestingS3.BUCKET).resolve(STORE_PREFIX + key);
        assertThat(Files.readAllBytes(onDisk)).isEqualTo(bytes);
        assertThat(store().describe()).isEqualTo("s3://" + TestingS3.BUCKET + "/" + STORE_PREFIX + " at "
                + s3.settings().endpoint());
    }

    @Test
    void storesWithOtherPrefixesInTheSameBucketAreIsolated() {
        String p = newPrefix();
        try (S3ArchiveStore other = new S3ArchiveStore(settings(TestingS3.BUCKET, "other"))) {
            other.put(p + "x", randomBytes(5));
            store().put(p + "x", randomBytes(6));

            store().deletePrefix(p);

            assertThat(other.list(p)).singleElement().satisfies(object -> assertThat(object.size()).isEqualTo(5));
            assertThat(store().list(p)).isEmpty();
            other.deletePrefix(p);
        }
    }

    @Test
    void aStoreAtTheBucketRootWorks() {
        s3.createBucket("root-bucket");
        try (S3ArchiveStore atRoot = new S3ArchiveStore(settings("root-bucket", ""))) {
            atRoot.put("archives/db-r/key", randomBytes(3));
            assertThat(atRoot.list("")).extracting(StoredObject::key).containsExactly("archives/db-r/key");
            atRoot.deletePrefix("archives/");
            assertThat(atRoot.list("")).isEmpty();

            // the bucket goes away under a running store: say so, not that an object is missing
            TestingDirectories.deleteRecursively(s3.bucketDir("root-bucket"));
            assertThatThrownBy(() -> atRoot.get("archives/db-r/key"))
                    .hasMessageContaining("S3 bucket root-bucket does not exist");
        }
    }

    @Test
    void aMissingBucketFailsAtConstructionNamingIt() {
        assertThatThrownBy(() -> new S3ArchiveStore(settings("no-such-bucket", "")))
                .isInstanceOf(PalisadeException.class)
                .hasMessageContaining("S3 bucket no-such-bucket does not exist at " + s3.settings().endpoint())
                .hasMessageContaining("create it");
    }

    @Test
    void wrongCredentialsFailAtConstructionWithoutTheSecret() {
        TestingS3.Settings server = s3.settings();
        String wrongSecret = "wrong-" + server.secretAccessKey();
        S3Settings wrong = S3Settings.of(server.endpoint(), server.region(), server.bucket(), "", server.accessKeyId(),
                wrongSecret);
        assertThatThrownBy(() -> new S3ArchiveStore(wrong))
                .isInstanceOf(PalisadeException.class)
                .hasMessageContaining("rejected the credentials of access key id " + server.accessKeyId())
                .hasMessageContaining("bucket " + server.bucket())
                .satisfies(e -> assertThat(e.getMessage()).doesNotContain(server.secretAccessKey()));
    }

    @Test
    void anUnreachableEndpointFailsAtConstruction() throws IOException {
        int closedPort;
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            closedPort = socket.getLocalPort();
        }
        URI nowhere = URI.create("http://127.0.0.1:" + closedPort);
        TestingS3.Settings server = s3.settings();
        assertThatThrownBy(() -> new S3ArchiveStore(S3Settings.of(nowhere, server.region(), server.bucket(), "",
                        server.accessKeyId(), server.secretAccessKey())))
                .isInstanceOf(PalisadeException.class)
                .hasMessageContaining("cannot reach S3 at " + nowhere);
    }

    @Test
    void aDamagedObjectIsCaughtWhenOpenedNamingItsKey() throws IOException {
        DataKey key = DataKey.generate();
        Sealer sealer = new Sealer();
        String objectKey = newPrefix() + "archives/db-d/wal/00000001/0000000001000000-0000000001002000";
        store().put(objectKey, sealer.seal(key, objectKey, randomBytes(64 << 10)));

        // damage it behind the store's back, in the server's own storage
        Path onDisk = s3.bucketDir(TestingS3.BUCKET).resolve(STORE_PREFIX + objectKey);
        byte[] bytes = Files.readAllBytes(onDisk);
        bytes[bytes.length / 2] ^= 0x01;
        Files.write(onDisk, bytes);

        byte[] fetched = store().get(objectKey);
        assertThatThrownBy(() -> sealer.open(key, objectKey, fetched))
                .isInstanceOfSatisfying(ArchiveCorruptException.class,
                        e -> assertThat(e.objectKey()).isEqualTo(objectKey))
                .hasMessage("archived object " + objectKey + " is corrupt or was not written by this archive "
                        + "(authentication failed)");
    }

    private static List<Path> filesUnder(Path dir) {
        if (!Files.exists(dir)) {
            return List.of();
        }
        try (Stream<Path> walk = Files.walk(dir)) {
            return walk.filter(Files::isRegularFile).toList();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
