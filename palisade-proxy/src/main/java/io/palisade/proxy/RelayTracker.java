package io.palisade.proxy;

import static java.nio.charset.StandardCharsets.UTF_8;

import io.netty.buffer.ByteBuf;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Follows the message boundaries of one relayed session in both directions, so that the proxy knows whether the
 * backend is idle when the client sends Terminate and may be reset and pooled ({@link BackendPool}). It reads only
 * message headers as buffers pass (no copy, no re-framing): from the client, which requests expect a ReadyForQuery
 * (Query, Sync, FunctionCall) and whether extended-protocol messages wait for a Sync; from the backend, each
 * ReadyForQuery's transaction status and the ParameterStatus reports (the one body it copies, a few bytes, rare; at
 * most {@link BackendPool#MAX_REPORTS} names).
 * Anything it cannot vouch for (an unknown message type, a ReadyForQuery nobody asked for, a report split oddly)
 * makes the session not reusable; it never makes one reusable by mistake. Confined to the session's event loop; not
 * thread-safe.
 */
final class RelayTracker {
    /** The largest ParameterStatus body copied; a larger one makes the session not reusable. */
    private static final int MAX_REPORT = 4096;

    private final Framer client = new Framer();
    private final Framer backend = new Framer();
    private final Map<String, String> reported = new LinkedHashMap<>();
    private int outstanding;
    private boolean unsynced;
    private byte status = 'I';
    private boolean broken;
    private boolean terminated;

    /**
     * Reads the headers of client bytes about to go to the backend. Returns the index (in {@code buf}) at which a
     * whole Terminate message starts when it is the last thing in the buffer, else -1. Does not move the buffer's
     * indexes.
     */
    int fromClient(ByteBuf buf) {
        int terminateAt = -1;
        int index = buf.readerIndex();
        int end = buf.writerIndex();
        while (index < end) {
            if (terminated) {
                broken = true; // bytes after Terminate
                return -1;
            }
            int start = index;
            boolean headerHere = client.atBoundary();
            index = client.advance(buf, index, end);
            if (client.headerJustCompleted) {
                client.headerJustCompleted = false;
                switch (client.type) {
                    case 'Q', 'F' -> outstanding++;
                    case 'S' -> {
                        outstanding++;
                        unsynced = false;
                    }
                    case 'P', 'B', 'E', 'D', 'C', 'H' -> unsynced = true;
                    case 'd', 'c', 'f' -> { }
                    case 'X' -> {
                        terminated = true;
                        if (headerHere && client.length == 4) {
                            terminateAt = start;
                        } else {
                            broken = true;
                        }
                    }
                    default -> broken = true;
                }
            }
        }
        return terminated && !broken ? terminateAt : -1;
    }

    /** Reads the headers of backend bytes about to go to the client. Does not move the buffer's indexes. */
    void fromBackend(ByteBuf buf) {
        int index = buf.readerIndex();
        int end = buf.writerIndex();
        while (index < end) {
            index = backend.advance(buf, index, end);
            if (backend.headerJustCompleted) {
                backend.headerJustCompleted = false;
                if (backend.type == 'Z' || backend.type == 'S') {
                    backend.capture(backend.type == 'Z' ? 1 : MAX_REPORT);
                    if (backend.captureFailed) {
                        broken = true;
                    }
                }
            }
            if (backend.captured != null && backend.skip == 0) {
                onBackendMessage(backend.type, backend.captured);
                backend.captured = null;
            }
        }
    }

    private void onBackendMessage(byte type, byte[] body) {
        if (type == 'Z') {
            if (outstanding <= 0 || body.length != 1) {
                broken = true;
                return;
            }
            outstanding--;
            status = body[0];
        } else {
            int nul = indexOf(body, 0);
            int end = nul < 0 ? -1 : indexOf(body, nul + 1);
            if (end < 0) {
                broken = true;
                return;
            }
            String name = new String(body, 0, nul, UTF_8);
            if (!reported.containsKey(name) && reported.size() >= BackendPool.MAX_REPORTS) {
                broken = true; // only a hostile server reports this many names: it must not grow the map
                return;
            }
            reported.put(name, new String(body, nul + 1, end - nul - 1, UTF_8));
        }
    }

    private static int indexOf(byte[] body, int from) {
        for (int i = from; i < body.length; i++) {
            if (body[i] == 0) {
                return i;
            }
        }
        return -1;
    }

    /**
     * Whether the client ended cleanly with the backend idle: Terminate seen as the client's last message, every
     * request answered with ReadyForQuery, the last one outside a transaction ({@code I}), no extended-protocol
     * messages waiting for a Sync, and the backend's stream at a message boundary.
     */
    boolean reusable() {
        return terminated && !broken && outstanding == 0 && !unsynced && status == 'I' && backend.atBoundary()
                && client.atBoundary() && !client.captureFailed && !backend.captureFailed;
    }

    /** The ParameterStatus reports the backend sent during the relay, in order, the latest value per name. */
    Map<String, String> reported() {
        return reported;
    }

    /**
     * One direction's framing state across buffers: the 5-byte header (type, length) may straddle buffers, then the
     * body is skipped, or copied when a caller asked for it.
     */
    private static final class Framer {
        private final byte[] header = new byte[5];
        private int headerRead;
        int skip;
        byte type;
        int length;
        boolean headerJustCompleted;
        byte[] captured;
        private int capturedFill;
        boolean captureFailed;

        boolean atBoundary() {
            return headerRead == 0 && skip == 0;
        }

        /** Copies the current message's body as it passes, if it is at most {@code max} bytes. */
        void capture(int max) {
            if (skip > max) {
                captureFailed = true;
                return;
            }
            captured = new byte[skip];
            capturedFill = 0;
        }

        /** Consumes bytes from {@code index}; returns the new index. Sets headerJustCompleted when a header ends. */
        int advance(ByteBuf buf, int index, int end) {
            if (skip > 0) {
                int n = Math.min(skip, end - index);
                if (captured != null) {
                    buf.getBytes(index, captured, capturedFill, n);
                    capturedFill += n;
                }
                skip -= n;
                return index + n;
            }
            if (headerRead == 0 && end - index >= 5) {
                type = buf.getByte(index);
                length = buf.getInt(index + 1);
                return headerDone(index + 5);
            }
            while (headerRead < 5 && index < end) {
                header[headerRead++] = buf.getByte(index++);
            }
            if (headerRead == 5) {
                type = header[0];
                length = ((header[1] & 0xFF) << 24) | ((header[2] & 0xFF) << 16) | ((header[3] & 0xFF) << 8)
                        | (header[4] & 0xFF);
                return headerDone(index);
            }
            return index;
        }

        private int headerDone(int index) {
            headerRead = 0;
            headerJustCompleted = true;
            if (length < 4) {
                captureFailed = true;
                length = 4;
            }
            skip = length - 4;
            return index;
        }
    }
}
