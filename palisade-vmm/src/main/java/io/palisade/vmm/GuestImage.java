package io.palisade.vmm;

import static java.util.Objects.requireNonNull;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import io.palisade.spi.PostgresVersion;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The guest artifacts built by {@code guest/build.sh}: kernel, initramfs, shared read-only rootfs, one template data
 * volume per PostgreSQL major, and the management role's template secret (which never leaves the host). Immutable.
 */
public record GuestImage(
        Path dir,
        String key,
        Path kernel,
        Path initramfs,
        Path rootfs,
        Map<String, Path> templateVolumes,
        Path adminSecretFile,
        String adminRole,
        String guestAddress,
        String guestGateway,
        int postgresUid,
        int postgresGid) {
    /** The guest's postgres uid and gid in images whose manifest does not name them (guest/build.sh GUEST_UID). */
    static final int DEFAULT_POSTGRES_ID = 70;
    public static final String BUILD_HINT =
            "build it with guest/build.sh (the README's run command and .ci/run do this)";

    public GuestImage {
        requireNonNull(dir, "dir is null");
        requireNonNull(key, "key is null");
        requireNonNull(kernel, "kernel is null");
        requireNonNull(initramfs, "initramfs is null");
        requireNonNull(rootfs, "rootfs is null");
        templateVolumes = Map.copyOf(requireNonNull(templateVolumes, "templateVolumes is null"));
        requireNonNull(adminSecretFile, "adminSecretFile is null");
        requireNonNull(adminRole, "adminRole is null");
        requireNonNull(guestAddress, "guestAddress is null");
        requireNonNull(guestGateway, "guestGateway is null");
        if (postgresUid < 1 || postgresGid < 1) {
            throw new IllegalArgumentException("the guest's postgres uid/gid must be positive: " + postgresUid + "/"
                    + postgresGid);
        }
    }

    /** Reads {@code manifest.json} in {@code dir} and checks every artifact is there. */
    public static GuestImage load(Path dir) {
        Path manifest = dir.resolve("manifest.json");
        if (!Files.isRegularFile(manifest)) {
            throw new PalisadeException(
                    ErrorCode.DRIVER_FAILURE,
                    "no guest image at " + dir + " (manifest.json missing); " + BUILD_HINT);
        }
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(Files.readString(manifest, StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new PalisadeException(
                    ErrorCode.DRIVER_FAILURE, "cannot read " + manifest + ": " + e.getMessage() + "; " + BUILD_HINT, e);
        }
        Map<String, Path> volumes = new HashMap<>();
        JsonNode pg = root.path("pg");
        for (var it = pg.properties().iterator(); it.hasNext(); ) {
            var entry = it.next();
            String volume = entry.getValue().path("volume").asText("data-" + entry.getKey() + ".ext4");
            volumes.put(entry.getKey(), dir.resolve(volume));
        }
        GuestImage image = new GuestImage(
                dir,
                root.path("key").asText("unknown"),
                dir.resolve("vmlinux"),
                dir.resolve("initramfs.cpio"),
                dir.resolve("rootfs.ext4"),
                volumes,
                dir.resolve("admin-secret"),
                root.path("admin_role").asText("palisade_admin"),
                stripPrefix(root.path("guest_ip").asText("172.31.255.2/30")),
                stripPrefix(root.path("guest_gw").asText("172.31.255.1")),
                root.path("postgres_uid").asInt(DEFAULT_POSTGRES_ID), // images built before the field: build.sh's 70
                root.path("postgres_gid").asInt(DEFAULT_POSTGRES_ID));
        List<Path> missing = new java.util.ArrayList<>();
        for (Path file : List.of(image.kernel, image.initramfs, image.rootfs, image.adminSecretFile)) {
            if (!Files.isRegularFile(file)) {
                missing.add(file);
            }
        }
        volumes.values().stream().filter(p -> !Files.isRegularFile(p)).forEach(missing::add);
        if (!missing.isEmpty()) {
            throw new PalisadeException(
                    ErrorCode.DRIVER_FAILURE, "the guest image at " + dir + " is incomplete, missing " + missing + "; "
                            + BUILD_HINT);
        }
        return image;
    }

    private static String stripPrefix(String address) {
        int slash = address.indexOf('/');
        return slash < 0 ? address : address.substring(0, slash);
    }

    /** The template data volume for a PostgreSQL major, or a clear error naming the ones this image has. */
    public Path templateVolume(PostgresVersion version) {
        Path volume = templateVolumes.get(version.major());
        if (volume == null) {
            throw PalisadeException.invalid(
                    "the vm guest image has no PostgreSQL " + version.major() + " (it has " + templateVolumes.keySet()
                            + "); use one of those versions or another isolation");
        }
        return volume;
    }

    /** The template's management secret; read on demand, never logged. */
    public String adminSecret() {
        try {
            return Files.readString(adminSecretFile, StandardCharsets.UTF_8).strip();
        } catch (IOException e) {
            throw new PalisadeException(
                    ErrorCode.DRIVER_FAILURE, "cannot read " + adminSecretFile + "; " + BUILD_HINT, e);
        }
    }
}
