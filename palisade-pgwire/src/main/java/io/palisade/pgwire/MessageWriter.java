package io.palisade.pgwire;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * Builds frontend messages (type byte, length, body) into one growable buffer: {@link #start} or
 * {@link #startUntyped}, the fields, {@link #end}; then send {@link #buffer()} up to {@link #size()}. Used by pgwire's
 * own sessions and the SQL broker's connections. Not thread-safe.
 */
public final class MessageWriter {
    private byte[] buffer = new byte[1024];
    private int size;
    private int lengthAt = -1;

    public MessageWriter reset() {
        size = 0;
        lengthAt = -1;
        return this;
    }

    /** Starts a message with a type byte. */
    public MessageWriter start(char type) {
        int8(type);
        return startUntyped();
    }

    /** Starts a message without a type byte (StartupMessage, CancelRequest). */
    public MessageWriter startUntyped() {
        lengthAt = size;
        return int32(0);
    }

    public MessageWriter end() {
        if (lengthAt < 0) {
            throw new IllegalStateException("no message started");
        }
        put32(lengthAt, size - lengthAt);
        lengthAt = -1;
        return this;
    }

    public MessageWriter int8(int value) {
        ensure(1);
        buffer[size++] = (byte) value;
        return this;
    }

    public MessageWriter int16(int value) {
        ensure(2);
        buffer[size++] = (byte) (value >>> 8);
        buffer[size++] = (byte) value;
        return this;
    }

    public MessageWriter int32(int value) {
        ensure(4);
        put32(size, value);
        size += 4;
        return this;
    }

    public MessageWriter int64(long value) {
        int32((int) (value >>> 32));
        return int32((int) value);
    }

    public MessageWriter cstring(String value) {
        if (value.indexOf('\0') >= 0) {
            throw new IllegalArgumentException("protocol strings cannot contain NUL characters");
        }
        byte[] bytes = value.getBytes(StandardCharsets.UTF_8);
        bytes(bytes, 0, bytes.length);
        return int8(0);
    }

    public MessageWriter bytes(byte[] bytes, int offset, int length) {
        ensure(length);
        System.arraycopy(bytes, offset, buffer, size, length);
        size += length;
        return this;
    }

    public byte[] buffer() {
        return buffer;
    }

    public int size() {
        return size;
    }

    public byte[] toByteArray() {
        return Arrays.copyOf(buffer, size);
    }

    private void put32(int at, int value) {
        buffer[at] = (byte) (value >>> 24);
        buffer[at + 1] = (byte) (value >>> 16);
        buffer[at + 2] = (byte) (value >>> 8);
        buffer[at + 3] = (byte) value;
    }

    private void ensure(int extra) {
        if (size + extra > buffer.length) {
            buffer = Arrays.copyOf(buffer, Math.max(buffer.length * 2, size + extra));
        }
    }
}
