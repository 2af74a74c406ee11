package io.palisade.vmm;

import io.palisade.host.Processes;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Sets a restored guest's clock (it stood still while the VM was saved) and reseeds its entropy: over the platform's
 * control port ({@link #resyncOverSerial}), or, for images without it, over the management connection ({@link
 * #resyncOverSql}). Stateless; thread-safe. The exact step after a serial sync runs on a virtual thread of its own.
 */
final class GuestClock {
    private static final Logger log = LoggerFactory.getLogger(VmDriver.class);
    private static final Duration SERIAL_ACK_TIMEOUT = Duration.ofSeconds(1);
    private static final Duration CLOCK_SYNC_TIMEOUT = Duration.ofSeconds(3);
    private static final Pattern OK = Pattern.compile("ok (\\d+)\\s");

    private GuestClock() {}

    /**
     * After a restore, over the guest's control port (virtio-serial, a unix socket here): {@code tsync K0} makes the
     * root helper set the clock to the nearest host second at once, mix virtio-rng bytes into the kernel pool and
     * answer {@code ok <L>} (L = centiseconds its {@code date} took); then, in the background, {@code tset K1} is sent
     * L before the host's clock reads the next whole second K1, which puts the guest within tens of ms. {@link
     * ClockSync#SERIAL} once the coarse step was acknowledged (within {@link #SERIAL_ACK_TIMEOUT}); {@link
     * ClockSync#PENDING} for an image without the helper, then the caller resyncs over SQL.
     */
    static ClockSync resyncOverSerial(InstancePaths paths) {
        SocketChannel channel = null;
        try {
            channel = SocketChannel.open(StandardProtocolFamily.UNIX);
            channel.connect(UnixDomainSocketAddress.of(paths.controlSocket()));
            long k0 = Math.round((System.currentTimeMillis() + 20) / 1000.0);
            writeLine(channel, "tsync " + k0);
            channel.configureBlocking(false);
            ByteBuffer answer = ByteBuffer.allocate(256);
            long deadline = System.nanoTime() + SERIAL_ACK_TIMEOUT.toNanos();
            while (System.nanoTime() < deadline) {
                if (channel.read(answer) < 0) {
                    break;
                }
                Matcher m = OK.matcher(new String(answer.array(), 0, answer.position(), StandardCharsets.US_ASCII));
                if (m.find()) {
                    long lagMs = Math.min(500, Long.parseLong(m.group(1)) * 10);
                    SocketChannel line = channel;
                    channel = null; // the exact step owns it now
                    Thread.ofVirtual().name("vm-clock-" + paths.dir().getFileName())
                            .start(() -> exactStep(line, lagMs));
                    return ClockSync.SERIAL;
                }
                Processes.sleep(Duration.ofMillis(2));
            }
            return ClockSync.PENDING;
        } catch (IOException | RuntimeException e) {
            log.debug("no control line to the guest at {}: {}", paths.controlSocket(), e.getMessage());
            return ClockSync.PENDING;
        } finally {
            closeQuietly(channel);
        }
    }

    /** Sends {@code tset K1} {@code lagMs} before the host clock reads the whole second K1 (at least 100 ms away). */
    private static void exactStep(SocketChannel channel, long lagMs) {
        try {
            long now = System.currentTimeMillis();
            long k1 = (now + lagMs + 100) / 1000 + 1;
            Thread.sleep(Math.max(0, k1 * 1000 - lagMs - now));
            channel.configureBlocking(true);
            writeLine(channel, "tset " + k1);
        } catch (IOException | InterruptedException e) {
            // the VM went away (suspended or stopped) meanwhile: nothing to correct
        } finally {
            closeQuietly(channel);
        }
    }

    private static void closeQuietly(SocketChannel channel) {
        if (channel != null) {
            try {
                channel.close();
            } catch (IOException ignored) {
                // already gone
            }
        }
    }

    private static void writeLine(SocketChannel channel, String line) throws IOException {
        ByteBuffer bytes = ByteBuffer.wrap((line + "\n").getBytes(StandardCharsets.US_ASCII));
        while (bytes.hasRemaining()) {
            channel.write(bytes);
        }
    }

    /**
     * After a restore (fallback of {@link #resyncOverSerial}): asks the guest's root (through the image's resync FIFO,
     * written by the superuser with COPY TO PROGRAM) to set the system clock from the RTC and mix virtio-rng bytes into
     * the kernel pool, then waits until the guest clock is within a second of the host's. Returns the remaining offset
     * in ms (guest minus host).
     */
    static long resyncOverSql(Connection admin, String id) throws SQLException {
        try (Statement s = admin.createStatement()) {
            s.execute("SET statement_timeout = '5s'");
            try {
                long k0 = Math.round((System.currentTimeMillis() + 30) / 1000.0);
                s.execute("COPY (SELECT 1) TO PROGRAM 'echo sync " + k0 + " > /run/palisade-resync'");
            } catch (SQLException | NumberFormatException e) {
                log.warn("vm {}: the guest has no clock resync hook (rebuild the image with guest/build.sh): {}", id,
                        e.getMessage());
            }
            long deadline = System.nanoTime() + CLOCK_SYNC_TIMEOUT.toNanos();
            long offset;
            while (true) {
                long before = System.currentTimeMillis();
                try (ResultSet rs = s.executeQuery("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::int8")) {
                    rs.next();
                    long after = System.currentTimeMillis();
                    offset = rs.getLong(1) - (before + after) / 2;
                }
                if (Math.abs(offset) < 1000 || System.nanoTime() > deadline) {
                    break;
                }
                Processes.sleep(Duration.ofMillis(20));
            }
            s.execute("RESET statement_timeout");
            if (Math.abs(offset) >= 1000) {
                log.warn("vm {}: guest clock still {} ms off the host after the resync", id, offset);
            }
            return offset;
        }
    }
}
