package io.palisade.backup.store;

import static java.util.Objects.requireNonNull;

import io.palisade.spi.PalisadeException;
import java.net.URI;
import java.util.Optional;

/**
 * Where an {@link S3ArchiveStore} keeps its objects.
 *
 * @param endpoint the S3 API's base URL, e.g. {@code http://127.0.0.1:9000}; empty for AWS itself (from the region)
 * @param region the signing region ({@code us-east-1} for most S3-compatible servers)
 * @param bucket an existing bucket; the store never creates one
 * @param prefix prepended to every key, e.g. {@code palisade/}; {@code ""} for the bucket's root. Normalised to end
 *     with {@code /} when not empty.
 * @param accessKeyId the access key id; {@code ""} together with an empty secret means the SDK's default credentials
 *     (environment, profile, instance role)
 * @param secretAccessKey a secret: never printed by {@link #toString()}
 * @param pathStyle {@code true} to address the bucket as {@code endpoint/bucket/key} (most self-hosted servers)
 *     rather than {@code bucket.endpoint/key}
 */
public record S3Settings(
        Optional<URI> endpoint,
        String region,
        String bucket,
        String prefix,
        String accessKeyId,
        String secretAccessKey,
        boolean pathStyle) {
    public static final int MAX_PREFIX_LENGTH = 256;

    public S3Settings {
        requireNonNull(endpoint, "endpoint is null");
        requireNonNull(region, "region is null");
        requireNonNull(bucket, "bucket is null");
        requireNonNull(prefix, "prefix is null");
        requireNonNull(accessKeyId, "accessKeyId is null");
        requireNonNull(secretAccessKey, "secretAccessKey is null");
        endpoint.ifPresent(uri -> {
            if (uri.getRawUserInfo() != null) {
                throw PalisadeException.invalid("S3 endpoint must not carry credentials (user:password@): give them as "
                        + "the access key id and secret access key");
            }
            if (!"http".equals(uri.getScheme()) && !"https".equals(uri.getScheme()) || uri.getHost() == null) {
                throw PalisadeException.invalid("S3 endpoint must be an http:// or https:// URL with a host, not '"
                        + uri + "'");
            }
        });
        if (region.isBlank()) {
            throw PalisadeException.invalid("S3 region is empty: use the bucket's region (us-east-1 for most "
                    + "S3-compatible servers)");
        }
        if (!bucket.matches("[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")) {
            throw PalisadeException.invalid("S3 bucket name '" + bucket + "' is invalid: 3 to 63 characters of a-z, "
                    + "0-9, '.' and '-', starting and ending with a letter or digit");
        }
        if (accessKeyId.isEmpty() != secretAccessKey.isEmpty()) {
            throw PalisadeException.invalid("S3 credentials are half set: give both the access key id and the "
                    + "secret access key, or neither (then the SDK's default credentials are used)");
        }
        if (prefix.startsWith("/")) {
            prefix = prefix.substring(1);
        }
        if (!prefix.isEmpty() && !prefix.endsWith("/")) {
            prefix = prefix + "/";
        }
        if (prefix.length() > MAX_PREFIX_LENGTH) {
            throw PalisadeException.invalid("S3 prefix has " + prefix.length() + " characters, more than "
                    + MAX_PREFIX_LENGTH);
        }
        ArchiveKeys.checkPrefix(prefix);
    }

    /** Settings with explicit credentials for a self-hosted S3-compatible server (path-style, given region). */
    public static S3Settings of(URI endpoint, String region, String bucket, String prefix, String accessKeyId,
            String secretAccessKey) {
        return new S3Settings(Optional.of(endpoint), region, bucket, prefix, accessKeyId, secretAccessKey, true);
    }

    /** {@code s3://bucket/prefix}. */
    public String location() {
        return "s3://" + bucket + "/" + prefix;
    }

    @Override
    public String toString() {
        return "S3Settings[endpoint=" + endpoint.map(URI::toString).orElse("(AWS)") + ", region=" + region
                + ", bucket=" + bucket + ", prefix=" + prefix + ", accessKeyId=" + accessKeyId
                + ", secretAccessKey=" + (secretAccessKey.isEmpty() ? "" : "***") + ", pathStyle=" + pathStyle + "]";
    }
}
