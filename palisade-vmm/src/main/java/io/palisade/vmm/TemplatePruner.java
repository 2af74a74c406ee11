package io.palisade.vmm;

import static java.util.Objects.requireNonNull;

import io.palisade.host.Processes;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Deletes the template snapshots nobody wants any more from a templates directory — those of older guest images,
 * QEMU builds or plans — so that every image upgrade does not leave ~0.2 GB behind for good. A template is unwanted
 * when none of its clones, builds or preparations marked it ({@link TemplateCache#markUsed}) for {@link #UNUSED_FOR}:
 * a running {@code palisade serve} marks its default plan's template every few seconds, and every clone marks its own,
 * so only the templates of no running server and no recent create go. The template a caller names is always kept.
 * A template is deleted under its two locks (this JVM's and the host-wide {@code <key>.lock}, which another process
 * holds while it builds or deletes that template; a held lock skips it): renamed to {@code <key>.deleting} first, so
 * that no lookup finds it any more, then its mark is read again (a create that marked it meanwhile gets it back).
 * Running clones keep their private mapping of a deleted memory file; suspended ones have their own. Thread-safe (no
 * state of its own).
 */
final class TemplatePruner {
    private static final Logger log = LoggerFactory.getLogger(VmDriver.class);
    /** How long a template may go unmarked before it is deleted. */
    static final Duration UNUSED_FOR = Duration.ofDays(1);
    /** A template being deleted is renamed to its key plus this first (keys have no dots). */
    private static final String DELETING_SUFFIX = ".deleting";

    private final TemplateCache cache;

    TemplatePruner(TemplateCache cache) {
        this.cache = requireNonNull(cache, "cache is null");
    }

    /**
     * Deletes the complete templates other than {@code keep} unmarked since before {@code now} minus {@link
     * #UNUSED_FOR}; returns their keys. Builds in progress ({@code <key>.building}), anything else with a dot in its
     * name and anything that is not a complete template are left alone; a failure to delete one is logged and the
     * others go on.
     */
    List<String> prune(String keep, Instant now) {
        requireNonNull(keep, "keep is null");
        Instant cutoff = now.minus(UNUSED_FOR);
        List<String> deleted = new ArrayList<>();
        List<Path> candidates;
        try (Stream<Path> entries = Files.list(cache.dir())) {
            candidates = entries.filter(Files::isDirectory).toList();
        } catch (IOException e) {
            return deleted; // no templates directory yet: nothing to prune
        }
        for (Path dir : candidates) {
            TemplateCache.Template template = new TemplateCache.Template(dir);
            String key = dir.getFileName().toString();
            if (key.endsWith(DELETING_SUFFIX)) {
                removeLeftover(key.substring(0, key.length() - DELETING_SUFFIX.length()), dir);
                continue;
            }
            if (key.equals(keep) || key.contains(".") || !TemplateCache.isComplete(template)
                    || lastWanted(template).map(t -> t.isAfter(cutoff)).orElse(true)) {
                continue;
            }
            synchronized (cache.lock(key)) {
                try {
                    Optional<FileChannel> hostLock = cache.tryLockAcrossProcesses(key);
                    if (hostLock.isEmpty()) {
                        continue; // another palisade is building or deleting it right now
                    }
                    try (FileChannel held = hostLock.get()) {
                        long bytes = Math.max(0, VmFiles.allocatedBytes(template.memory()))
                                + Math.max(0, VmFiles.allocatedBytes(template.volume()));
                        // out of the creates' way first (a lookup no longer finds it complete), then the mark read
                        // again: a create that marked it just before is not left with a template deleted under it
                        Path doomed = cache.dir().resolve(key + DELETING_SUFFIX);
                        Processes.check(List.of("rm", "-rf", "--", doomed.toString()), Duration.ofMinutes(1));
                        Files.move(dir, doomed, StandardCopyOption.ATOMIC_MOVE);
                        Optional<Instant> wanted = lastWanted(new TemplateCache.Template(doomed));
                        if (wanted.isEmpty() || wanted.get().isAfter(cutoff)) {
                            Files.move(doomed, dir, StandardCopyOption.ATOMIC_MOVE); // marked meanwhile: kept
                            continue;
                        }
                        Processes.check(List.of("rm", "-rf", "--", doomed.toString()), Duration.ofMinutes(1));
                        log.info("deleted the template snapshot {} (unused since {}, {} MiB on disk)", key,
                                wanted.get(), bytes >> 20);
                        deleted.add(key);
                    }
                } catch (IOException | RuntimeException e) {
                    log.warn("cannot delete the unused template snapshot {}: {}", key, VmDriver.safeMessage(e));
                }
            }
        }
        return deleted;
    }

    /** A {@code <key>.deleting} directory that a pruner which stopped half-way left: removed under its key's locks. */
    private void removeLeftover(String key, Path dir) {
        synchronized (cache.lock(key)) {
            try {
                Optional<FileChannel> hostLock = cache.tryLockAcrossProcesses(key);
                if (hostLock.isPresent()) {
                    try (FileChannel held = hostLock.get()) {
                        Processes.check(List.of("rm", "-rf", "--", dir.toString()), Duration.ofMinutes(1));
                    }
                }
            } catch (IOException | RuntimeException e) {
                log.warn("cannot remove {}: {}", dir, VmDriver.safeMessage(e));
            }
        }
    }

    /** When the template was last marked, or published if it never was; empty when it is gone. */
    private static Optional<Instant> lastWanted(TemplateCache.Template template) {
        for (String name : List.of(TemplateCache.USED, TemplateCache.COMPLETE)) {
            try {
                return Optional.of(Files.getLastModifiedTime(template.dir().resolve(name)).toInstant());
            } catch (IOException e) {
                // not marked yet: the publication counts
            }
        }
        return Optional.empty();
    }
}
