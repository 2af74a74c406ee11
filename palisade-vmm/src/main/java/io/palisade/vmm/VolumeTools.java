package io.palisade.vmm;

import io.palisade.host.Processes;
import io.palisade.host.ServiceUser;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * Runs e2fsprogs ({@code debugfs}, {@code e2fsck}) on a volume a guest has written, never as root: the guest controls
 * every byte of that file system, and a parser bug must not run with root's rights on the host.
 *
 * <p>The tool runs as the service user with the volume on its standard input, opened by palisade, and is given
 * {@link #DEVICE} as the device: the instance directory stays closed to it (mode 700, root). For the duration of the
 * command the volume is owned by the service user, so that the tool may reopen its standard input (read-write for
 * {@code e2fsck}); the owner is put back afterwards, also when the command fails or times out. When palisade does not
 * run as root, everything already runs as one unprivileged user and the command runs as is.
 *
 * <p>Thread-safe for different volumes; the caller must not run two commands on the same volume at once.
 */
final class VolumeTools {
    /** The device name to give the tool: its standard input, which is the volume. */
    static final String DEVICE = "/dev/stdin";

    private VolumeTools() {}

    /** Runs {@code command} (naming {@link #DEVICE} as the file system) on {@code volume} as {@code user}. */
    static Processes.Result run(ServiceUser user, Path volume, List<String> command, Duration timeout) {
        if (!Files.isRegularFile(volume, LinkOption.NOFOLLOW_LINKS)) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "volume " + volume + " is not a regular file");
        }
        if (!user.dropsPrivileges()) {
            return Processes.run(command, timeout, null, volume);
        }
        int owner;
        try {
            owner = (Integer) Files.getAttribute(volume, "unix:uid", LinkOption.NOFOLLOW_LINKS);
            Files.setAttribute(volume, "unix:uid", user.uid(), LinkOption.NOFOLLOW_LINKS);
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE,
                    "cannot lend volume " + volume + " to " + user + ": " + e.getMessage(), e);
        }
        try {
            return Processes.run(user.wrap(command), timeout, null, volume);
        } finally {
            try {
                Files.setAttribute(volume, "unix:uid", owner, LinkOption.NOFOLLOW_LINKS);
            } catch (IOException e) {
                throw new PalisadeException(ErrorCode.DRIVER_FAILURE,
                        "cannot give volume " + volume + " back to uid " + owner + ": " + e.getMessage(), e);
            }
        }
    }
}
