package io.palisade.backup.store;

import static java.util.Objects.requireNonNull;

import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.AwsCredentialsProvider;
import software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.core.checksums.RequestChecksumCalculation;
import software.amazon.awssdk.core.checksums.ResponseChecksumValidation;
import software.amazon.awssdk.core.exception.SdkClientException;
import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.core.sync.RequestBody;
import software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.s3.LegacyMd5Plugin;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.S3ClientBuilder;
import software.amazon.awssdk.services.s3.model.Delete;
import software.amazon.awssdk.services.s3.model.DeleteObjectsResponse;
import software.amazon.awssdk.services.s3.model.NoSuchBucketException;
import software.amazon.awssdk.services.s3.model.NoSuchKeyException;
import software.amazon.awssdk.services.s3.model.ObjectIdentifier;
import software.amazon.awssdk.services.s3.model.S3Error;
import software.amazon.awssdk.services.s3.model.S3Exception;
import software.amazon.awssdk.services.s3.model.S3Object;

/**
 * An {@link ArchiveStore} in a bucket of AWS S3 or an S3-compatible server (AWS SDK v2, blocking
 * {@code HttpURLConnection} transport). Keys are stored under {@link S3Settings#prefix()}. Puts carry a Content-MD5 the
 * server checks before it stores anything; a successful PutObject is durable by S3's contract. Construction checks the
 * bucket with one HeadBucket, so a missing bucket or rejected credentials fail at startup rather than at the first
 * backup. Thread-safe (the SDK client is).
 */
public final class S3ArchiveStore implements ArchiveStore {
    private static final Logger log = LoggerFactory.getLogger(S3ArchiveStore.class);
    /** DeleteObjects takes at most this many keys per request. */
    private static final int DELETE_BATCH = 1000;

    private final S3Settings settings;
    private final S3Client client;
    private final String description;
    private final AtomicBoolean closed = new AtomicBoolean();

    /** Connects and checks that the bucket exists and the credentials may use it; closes everything if not. */
    public S3ArchiveStore(S3Settings settings) {
        this.settings = requireNonNull(settings, "settings is null");
        this.description = settings.location() + settings.endpoint().map(uri -> " at " + uri)
                .orElse(" in AWS region " + settings.region());
        this.client = newClient(settings);
        try {
            checkBucket();
        } catch (RuntimeException e) {
            client.close();
            throw e;
        }
        log.info("Backups go to {}", description);
    }

    private static S3Client newClient(S3Settings settings) {
        AwsCredentialsProvider credentials = settings.accessKeyId().isEmpty()
                ? DefaultCredentialsProvider.builder().build()
                : StaticCredentialsProvider.create(
                        AwsBasicCredentials.create(settings.accessKeyId(), settings.secretAccessKey()));
        S3ClientBuilder builder = S3Client.builder()
                .httpClientBuilder(UrlConnectionHttpClient.builder()
                        .connectionTimeout(Duration.ofSeconds(10))
                        .socketTimeout(Duration.ofSeconds(60)))
                .region(Region.of(settings.region()))
                .credentialsProvider(credentials)
                .forcePathStyle(settings.pathStyle())
                // the checksum headers S3 itself understands and S3-compatible servers may not: send Content-MD5
                // (PutObject below, DeleteObjects by the plugin) and only what an operation requires
                .requestChecksumCalculation(RequestChecksumCalculation.WHEN_REQUIRED)
                .responseChecksumValidation(ResponseChecksumValidation.WHEN_REQUIRED)
                .addPlugin(LegacyMd5Plugin.create());
        settings.endpoint().ifPresent(builder::endpointOverride);
        return builder.build();
    }

    private void checkBucket() {
        String bucket = settings.bucket();
        try {
            client.headBucket(request -> request.bucket(bucket));
        } catch (NoSuchBucketException e) {
            throw noBucket(e);
        } catch (S3Exception e) {
            throw switch (e.statusCode()) {
                case 404 -> noBucket(e);
                case 401, 403 -> new PalisadeException(ErrorCode.DRIVER_FAILURE, "S3 rejected the credentials of "
                        + credentialsName() + " for bucket " + bucket + " at " + endpointName() + " (HTTP "
                        + e.statusCode() + "): check the access key id and secret, and that they may read and write "
                        + "the bucket", e);
                case 301 -> new PalisadeException(ErrorCode.DRIVER_FAILURE, "S3 bucket " + bucket + " is not in region "
                        + settings.region() + " (HTTP 301 from " + endpointName() + "): set the bucket's region", e);
                default -> new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot check S3 bucket " + bucket + " at "
                        + endpointName() + ": " + e.getMessage(), e);
            };
        } catch (SdkClientException e) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot reach S3 at " + endpointName() + " to check "
                    + "bucket " + bucket + ": " + e.getMessage() + "; check the endpoint and that the server runs", e);
        }
    }

    private PalisadeException noBucket(S3Exception e) {
        return new PalisadeException(ErrorCode.DRIVER_FAILURE, "S3 bucket " + settings.bucket() + " does not exist at "
                + endpointName() + ": create it (palisade never creates buckets) or fix the bucket name", e);
    }

    private String endpointName() {
        return settings.endpoint().map(Object::toString).orElse("AWS region " + settings.region());
    }

    private String credentialsName() {
        return settings.accessKeyId().isEmpty() ? "the default AWS credentials"
                : "access key id " + settings.accessKeyId();
    }

    @Override
    public void put(String key, byte[] bytes) {
        ArchiveKeys.checkKey(key);
        requireNonNull(bytes, "bytes is null");
        try {
            client.putObject(
                    request -> request.bucket(settings.bucket())
                            .key(settings.prefix() + key)
                            .contentLength((long) bytes.length)
                            .contentMD5(md5(bytes)),
                    RequestBody.fromBytes(bytes));
        } catch (SdkException e) {
            throw failure("put", key, e);
        }
    }

    @Override
    public byte[] get(String key) {
        ArchiveKeys.checkKey(key);
        try {
            return client.getObjectAsBytes(request -> request.bucket(settings.bucket()).key(settings.prefix() + key))
                    .asByteArray();
        } catch (NoSuchKeyException e) {
            throw missing(key);
        } catch (NoSuchBucketException e) {
            throw noBucket(e);
        } catch (S3Exception e) {
            if (e.statusCode() == 404) {
                throw missing(key);
            }
            throw failure("read", key, e);
        } catch (SdkException e) {
            throw failure("read", key, e);
        }
    }

    private PalisadeException missing(String key) {
        return PalisadeException.notFound("archived object " + key + " does not exist in " + description
                + ": it was never written, was pruned, or the archive was moved");
    }

    @Override
    public List<StoredObject> list(String prefix) {
        ArchiveKeys.checkPrefix(prefix);
        String storePrefix = settings.prefix();
        List<StoredObject> out = new ArrayList<>();
        try {
            for (S3Object object : client.listObjectsV2Paginator(
                            request -> request.bucket(settings.bucket()).prefix(storePrefix + prefix))
                    .contents()) {
                if (object.key().startsWith(storePrefix)) {
                    out.add(new StoredObject(object.key().substring(storePrefix.length()), object.size(),
                            object.lastModified()));
                }
            }
        } catch (SdkException e) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot list archived objects under '" + prefix
                    + "' in " + description + ": " + e.getMessage(), e);
        }
        // S3 lists in UTF-8 byte order, which for the keys' ASCII alphabet is String order; not every server does
        out.sort(Comparator.comparing(StoredObject::key));
        return List.copyOf(out);
    }

    @Override
    public void delete(String key) {
        ArchiveKeys.checkKey(key);
        try {
            client.deleteObject(request -> request.bucket(settings.bucket()).key(settings.prefix() + key));
        } catch (NoSuchKeyException e) {
            // already gone
        } catch (SdkException e) {
            throw failure("delete", key, e);
        }
    }

    @Override
    public void deletePrefix(String prefix) {
        ArchiveKeys.checkPrefix(prefix);
        if (prefix.isEmpty()) {
            throw PalisadeException.invalid("refusing to delete every object in " + description
                    + ": name a prefix such as archives/<id>/");
        }
        List<StoredObject> objects = list(prefix);
        for (int from = 0; from < objects.size(); from += DELETE_BATCH) {
            List<ObjectIdentifier> batch = objects.subList(from, Math.min(objects.size(), from + DELETE_BATCH)).stream()
                    .map(object -> ObjectIdentifier.builder().key(settings.prefix() + object.key()).build())
                    .toList();
            DeleteObjectsResponse response;
            try {
                response = client.deleteObjects(request -> request.bucket(settings.bucket())
                        .delete(Delete.builder().objects(batch).quiet(true).build()));
            } catch (SdkException e) {
                throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot delete " + batch.size()
                        + " archived objects under '" + prefix + "' in " + description + ": " + e.getMessage(), e);
            }
            List<S3Error> errors = response.errors().stream()
                    .filter(error -> !"NoSuchKey".equals(error.code()))
                    .toList();
            if (!errors.isEmpty()) {
                S3Error first = errors.getFirst();
                throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "S3 did not delete " + errors.size() + " of "
                        + batch.size() + " archived objects under '" + prefix + "' in " + description + "; first: "
                        + first.key() + ": " + first.code() + " " + first.message() + "; retry the delete");
            }
        }
    }

    private PalisadeException failure(String action, String key, SdkException e) {
        return new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot " + action + " archived object " + key + " in "
                + description + ": " + e.getMessage(), e);
    }

    private static String md5(byte[] bytes) {
        try {
            return Base64.getEncoder().encodeToString(MessageDigest.getInstance("MD5").digest(bytes));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    @Override
    public String describe() {
        return description;
    }

    @Override
    public void close() {
        if (closed.compareAndSet(false, true)) {
            client.close();
        }
    }

    @Override
    public String toString() {
        return describe();
    }
}
