package io.palisade.logical;

import static java.util.Objects.requireNonNull;

import io.palisade.spi.Endpoint;
import java.util.regex.Pattern;

/**
 * What a {@link LogicalCopy} copies: the move's id (it names the publication, subscription, slot and temporary login,
 * all {@code palisade_move_<id>}), the tenant on the source ({@link Source}: namespace and the role owning its
 * objects), the source database, the address the <em>target server</em> reaches the source server at (loopback for
 * two servers on one host, the host's address as a microVM guest sees it), and where the schema was replayed
 * ({@link Target}).
 */
public record CopyPlan(String moveId, Source source, String sourceDatabase, Endpoint publisher, Target target) {
    private static final Pattern MOVE_ID = Pattern.compile("[a-z0-9_]{1,40}");

    public CopyPlan {
        requireNonNull(moveId, "moveId is null");
        requireNonNull(source, "source is null");
        requireNonNull(sourceDatabase, "sourceDatabase is null");
        requireNonNull(publisher, "publisher is null");
        requireNonNull(target, "target is null");
        if (!MOVE_ID.matcher(moveId).matches()) {
            throw new IllegalArgumentException("move id must be 1 to 40 characters of a-z, 0-9 and _: " + moveId);
        }
        if (sourceDatabase.isEmpty()) {
            throw new IllegalArgumentException("sourceDatabase must not be empty");
        }
    }

    /** The publication, subscription, replication slot and temporary login are all called this. */
    public String name() {
        return "palisade_move_" + moveId;
    }

    /**
     * The schema the target's tables sit in while the subscription runs: the source's namespace, because logical
     * replication finds a table on the subscriber by the publisher's schema and table name and cannot map them.
     * Empty when both namespaces have the same name.
     */
    public java.util.Optional<String> staging() {
        return source.namespace().equals(target.namespace()) ? java.util.Optional.empty()
                : java.util.Optional.of(source.namespace());
    }
}
