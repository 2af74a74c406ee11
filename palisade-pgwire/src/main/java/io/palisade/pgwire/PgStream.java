package io.palisade.pgwire;

import java.io.EOFException;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.StandardProtocolFamily;
import java.net.StandardSocketOptions;
import java.net.UnixDomainSocketAddress;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.SelectableChannel;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.nio.channels.WritableByteChannel;
import java.time.Duration;

/**
 * Protocol-v3 framing over a non-blocking channel with deadlines: reads whole backend messages into one growable
 * buffer and exposes the current one in place (no copy), writes whole frames. A read that times out consumes nothing,
 * so it can be retried. Thread-confined, except {@link #close()}, which any thread may call to abort a blocked read.
 */
final class PgStream implements AutoCloseable {
    /** For {@link #read(long)}: wait without a deadline. */
    static final long NO_DEADLINE = Long.MAX_VALUE;
    /** Far above any message palisade expects (WAL and backup data come in ≤ 1 MiB pieces), far below the heap. */
    private static final int MAX_MESSAGE_LENGTH = 64 << 20;
    private static final int MIN_READ_SPACE = 16 * 1024;

    private final SelectableChannel readChannel;
    private final SelectableChannel writeChannel;
    private final Selector readSelector;
    private Selector writeSelector;
    private byte[] buffer = new byte[256 * 1024];
    private int start;
    private int end;
    private int consumed;
    private int type = -1;
    private int bodyOffset;
    private int bodyLength;
    private volatile boolean closed;

    <C extends SelectableChannel & ReadableByteChannel, W extends SelectableChannel & WritableByteChannel>
            PgStream(C in, W out) throws IOException {
        this.readChannel = in;
        this.writeChannel = out;
        in.configureBlocking(false);
        out.configureBlocking(false);
        this.readSelector = Selector.open();
        in.register(readSelector, SelectionKey.OP_READ);
    }

    /** Connects with a deadline; TCP gets no-delay and keep-alive. */
    static PgStream connect(PgTarget target, Duration timeout) throws IOException {
        SocketChannel channel = switch (target) {
            case PgTarget.Tcp _ -> SocketChannel.open();
            case PgTarget.UnixSocket _ -> SocketChannel.open(StandardProtocolFamily.UNIX);
        };
        try {
            channel.configureBlocking(false);
            boolean connected = switch (target) {
                case PgTarget.Tcp tcp -> {
                    channel.setOption(StandardSocketOptions.TCP_NODELAY, true);
                    channel.setOption(StandardSocketOptions.SO_KEEPALIVE, true);
                    yield channel.connect(new InetSocketAddress(tcp.host(), tcp.port()));
                }
                case PgTarget.UnixSocket unix -> channel.connect(UnixDomainSocketAddress.of(unix.socketFile()));
            };
            if (!connected) {
                try (Selector selector = Selector.open()) {
                    channel.register(selector, SelectionKey.OP_CONNECT);
                    long deadline = System.nanoTime() + timeout.toNanos();
                    while (!channel.finishConnect()) {
                        long left = deadline - System.nanoTime();
                        if (left <= 0) {
                            throw new SocketTimeoutException("connect timed out after " + timeout);
                        }
                        selector.select(Math.max(1, left / 1_000_000));
                    }
                }
            }
            return new PgStream(channel, channel);
        } catch (IOException | RuntimeException e) {
            channel.close();
            throw e;
        }
    }

    static long deadline(Duration timeout) {
        if (timeout.isZero()) {
            return NO_DEADLINE;
        }
        long nanos = System.nanoTime() + timeout.toNanos();
        return nanos == NO_DEADLINE ? nanos - 1 : nanos;
    }

    /**
     * Reads the next whole message; false if the deadline passed first (then nothing was consumed). The previous
     * message's body is invalid afterwards.
     */
    boolean read(long deadline) throws IOException {
        start += consumed;
        consumed = 0;
        type = -1;
        if (!fill(5, deadline)) {
            return false;
        }
        int length = Bytes.int32(buffer, start + 1);
        if (length < 4 || length > MAX_MESSAGE_LENGTH) {
            throw new IOException("corrupt message from the server: type '" + (char) (buffer[start] & 0xff)
                    + "' with length " + length);
        }
        if (!fill(1 + length, deadline)) {
            return false;
        }
        type = buffer[start] & 0xff;
        bodyOffset = start + 5;
        bodyLength = length - 4;
        consumed = 1 + length;
        return true;
    }

    /** The current message's type byte. */
    char type() {
        if (type < 0) {
            throw new IllegalStateException("no current message");
        }
        return (char) type;
    }

    /** The buffer holding the current message's body at {@link #bodyOffset()}; valid until the next read. */
    byte[] buffer() {
        return buffer;
    }

    int bodyOffset() {
        return bodyOffset;
    }

    int bodyLength() {
        return bodyLength;
    }

    private boolean fill(int need, long deadline) throws IOException {
        if (start == end) {
            start = 0;
            end = 0;
        }
        while (end - start < need) {
            if (buffer.length - start < need || (buffer.length - end < MIN_READ_SPACE && start > 0)) {
                byte[] target = buffer.length < need ? new byte[Math.max(need, buffer.length * 2)] : buffer;
                System.arraycopy(buffer, start, target, 0, end - start);
                buffer = target;
                end -= start;
                start = 0;
            }
            int n = ((ReadableByteChannel) readChannel).read(ByteBuffer.wrap(buffer, end, buffer.length - end));
            if (n < 0) {
                throw new EOFException("the server closed the connection");
            }
            if (n > 0) {
                end += n;
            } else if (!await(readSelector, deadline)) {
                return false;
            }
        }
        return true;
    }

    /** Waits until the selector's channel is ready; false if the deadline has passed. */
    private boolean await(Selector selector, long deadline) throws IOException {
        if (closed) {
            throw new ClosedChannelException();
        }
        long millis = 0;
        if (deadline != NO_DEADLINE) {
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                return false;
            }
            millis = Math.max(1, (left + 999_999) / 1_000_000);
        }
        selector.selectedKeys().clear();
        selector.select(millis);
        if (closed) {
            throw new ClosedChannelException();
        }
        return true;
    }

    /** Writes all of {@code length} bytes or fails once the deadline passes. */
    void write(byte[] bytes, int offset, int length, long deadline) throws IOException {
        ByteBuffer source = ByteBuffer.wrap(bytes, offset, length);
        while (source.hasRemaining()) {
            int n = ((WritableByteChannel) writeChannel).write(source);
            if (n == 0) {
                if (writeSelector == null) {
                    writeSelector = Selector.open();
                    writeChannel.register(writeSelector, SelectionKey.OP_WRITE);
                }
                if (!await(writeSelector, deadline)) {
                    throw new SocketTimeoutException("the server did not take our data in time");
                }
            }
        }
    }

    boolean isClosed() {
        return closed;
    }

    /** Closes the channel; idempotent and safe from any thread (a blocked read then fails). */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        readSelector.wakeup();
        closeQuietly(readChannel);
        closeQuietly(writeChannel);
        closeQuietly(readSelector);
        if (writeSelector != null) {
            closeQuietly(writeSelector);
        }
    }

    private static void closeQuietly(AutoCloseable closeable) {
        try {
            closeable.close();
        } catch (Exception e) {
            // closing anyway
        }
    }
}
