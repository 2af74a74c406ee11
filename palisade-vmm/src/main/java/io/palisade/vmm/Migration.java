package io.palisade.vmm;

import static java.util.Objects.requireNonNull;

import com.fasterxml.jackson.databind.JsonNode;
import io.palisade.host.Processes;
import io.palisade.host.ServiceUser;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Saving and restoring a VM's state with QEMU migration over unix sockets (the {@code exec:} transport would need
 * QEMU to spawn a shell, which its {@code spawn=deny} sandbox forbids). With {@code x-ignore-shared} and guest RAM in
 * a shared memory file the stream is only device state (~70 KiB); without it the stream carries the RAM too.
 * Stateless; every call is bounded.
 */
final class Migration {
    private static final Duration QMP_TIMEOUT = Duration.ofSeconds(10);

    private Migration() {}

    /**
     * Stops the guest and saves its state to {@code state} (written completely, synced, then left for the caller to
     * rename). {@code socket} must be in a directory the QEMU user (after {@code -runas}) can reach; the socket is
     * given to {@code qemuUser} with mode 600, so that no other VM's QEMU can connect first and feed it a state.
     */
    static long save(Qmp qmp, Path socket, ServiceUser qemuUser, Path state, boolean ignoreShared, Duration timeout,
            Runnable afterStop) {
        requireNonNull(qmp, "qmp is null");
        long start = System.nanoTime();
        try {
            Files.deleteIfExists(socket);
            Files.deleteIfExists(state);
        } catch (IOException e) {
            throw failure("cannot prepare " + state, e);
        }
        qmp.execute("migrate-set-capabilities", Map.of("capabilities",
                List.of(Map.of("capability", "x-ignore-shared", "state", ignoreShared))), QMP_TIMEOUT);
        if (!ignoreShared) {
            // the whole RAM goes into the stream: lift the default 128 MiB/s cap
            qmp.execute("migrate-set-parameters", Map.of("max-bandwidth", 64L << 30), QMP_TIMEOUT);
        }
        qmp.execute("stop", Map.of(), QMP_TIMEOUT);
        afterStop.run();
        try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            server.bind(UnixDomainSocketAddress.of(socket));
            Files.setPosixFilePermissions(socket, PosixFilePermissions.fromString("rw-------"));
            if (qemuUser.dropsPrivileges()) {
                Files.setAttribute(socket, "unix:uid", qemuUser.uid(), LinkOption.NOFOLLOW_LINKS);
                Files.setAttribute(socket, "unix:gid", qemuUser.gid(), LinkOption.NOFOLLOW_LINKS);
            }
            CompletableFuture<Long> copy = CompletableFuture.supplyAsync(() -> receive(server, state),
                    r -> Thread.ofPlatform().name("vm-save-" + socket.getFileName()).daemon().start(r));
            qmp.execute("migrate", Map.of("uri", "unix:" + socket), QMP_TIMEOUT);
            long deadline = System.nanoTime() + timeout.toNanos();
            while (true) {
                JsonNode info = qmp.execute("query-migrate", Map.of(), QMP_TIMEOUT);
                String status = info.path("status").asText("");
                if (status.equals("completed")) {
                    break;
                }
                if (status.equals("failed") || status.equals("cancelled")) {
                    throw new PalisadeException(ErrorCode.DRIVER_FAILURE,
                            "saving the VM state failed: " + info.path("error-desc").asText(status));
                }
                if (System.nanoTime() > deadline) {
                    throw new PalisadeException(ErrorCode.TIMEOUT,
                            "saving the VM state did not finish within " + timeout.toSeconds() + " s (" + status + ")");
                }
                Processes.sleep(Duration.ofMillis(5));
            }
            long bytes = copy.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
            if (bytes <= 0) {
                throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "the saved VM state is empty");
            }
            return (System.nanoTime() - start) / 1_000_000;
        } catch (IOException | ExecutionException | TimeoutException e) {
            throw failure("saving the VM state to " + state + " failed", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw failure("interrupted while saving the VM state", e);
        } finally {
            try {
                Files.deleteIfExists(socket);
            } catch (IOException ignored) {
                // best effort
            }
        }
    }

    private static long receive(ServerSocketChannel server, Path state) {
        try (SocketChannel in = server.accept();
                FileChannel out = FileChannel.open(state, java.util.Set.of(StandardOpenOption.CREATE_NEW,
                        StandardOpenOption.WRITE), PosixFilePermissions.asFileAttribute(
                        PosixFilePermissions.fromString("rw-------")))) {
            ByteBuffer buffer = ByteBuffer.allocateDirect(1 << 20);
            long total = 0;
            while (in.read(buffer) >= 0) {
                buffer.flip();
                while (buffer.hasRemaining()) {
                    total += out.write(buffer);
                }
                buffer.clear();
            }
            out.force(true);
            return total;
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    /**
     * Streams a saved state into a QEMU started with {@code -incoming unix:<socket>} and waits until the guest is
     * restored and paused (the source was stopped before it was saved).
     */
    static long restore(Qmp qmp, Path socket, Path state, boolean ignoreShared, Duration timeout) {
        long start = System.nanoTime();
        qmp.execute("migrate-set-capabilities", Map.of("capabilities",
                List.of(Map.of("capability", "x-ignore-shared", "state", ignoreShared))), QMP_TIMEOUT);
        try (SocketChannel out = SocketChannel.open(StandardProtocolFamily.UNIX);
                FileChannel in = FileChannel.open(state, StandardOpenOption.READ)) {
            out.connect(UnixDomainSocketAddress.of(socket));
            long size = in.size();
            long position = 0;
            while (position < size) {
                position += in.transferTo(position, size - position, out);
            }
        } catch (IOException e) {
            throw failure("streaming the saved state into QEMU failed", e);
        }
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            JsonNode status = qmp.execute("query-status", Map.of(), QMP_TIMEOUT);
            String value = status.path("status").asText("");
            if (value.equals("paused") || value.equals("running")) {
                return (System.nanoTime() - start) / 1_000_000;
            }
            if (value.equals("shutdown") || value.equals("internal-error") || value.equals("guest-panicked")) {
                throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "restoring the saved state failed: " + value);
            }
            if (System.nanoTime() > deadline) {
                throw new PalisadeException(ErrorCode.TIMEOUT,
                        "restoring the saved state did not finish within " + timeout.toSeconds() + " s (" + value
                                + ")");
            }
            Processes.sleep(Duration.ofMillis(2));
        }
    }

    private static PalisadeException failure(String message, Throwable e) {
        Throwable cause = e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e;
        return new PalisadeException(ErrorCode.DRIVER_FAILURE, message + ": " + cause.getMessage(), cause);
    }
}
