package io.palisade.proxy;

import static java.util.Objects.requireNonNull;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/** A parsed StartupMessage: protocol version and parameters in the order the client sent them. Immutable. */
record StartupMessage(int majorVersion, int minorVersion, Map<String, String> parameters) {
    StartupMessage {
        requireNonNull(parameters, "parameters is null");
        parameters = Collections.unmodifiableMap(new LinkedHashMap<>(parameters));
    }

    /**
     * Parses the body of a StartupMessage after its Int32 length, i.e. the Int32 version followed by
     * {@code (name\0value\0)* \0}.
     *
     * @throws ProtocolException if the layout is invalid
     */
    static StartupMessage parse(ByteBuf body) {
        if (body.readableBytes() < 4) {
            throw new ProtocolException("invalid startup packet: too short");
        }
        int version = body.readInt();
        Map<String, String> parameters = new LinkedHashMap<>();
        while (true) {
            if (!body.isReadable()) {
                throw new ProtocolException("invalid startup packet layout: expected terminator as last byte");
            }
            if (body.getByte(body.readerIndex()) == 0) {
                body.skipBytes(1);
                break;
            }
            String name;
            String value;
            try {
                name = PgWire.readStrictCString(body);
                value = name == null ? null : PgWire.readStrictCString(body);
            } catch (IllegalArgumentException e) {
                throw new ProtocolException("invalid startup packet: parameter names and values must be valid UTF-8");
            }
            if (value == null) {
                throw new ProtocolException("invalid startup packet layout: expected terminator as last byte");
            }
            if (parameters.put(name, value) != null) {
                throw new ProtocolException("invalid startup packet: parameter \"" + name + "\" appears twice");
            }
        }
        if (body.isReadable()) {
            throw new ProtocolException("invalid startup packet layout: data after the terminator");
        }
        return new StartupMessage(version >>> 16, version & 0xFFFF, parameters);
    }

    String user() {
        return parameters.get("user");
    }

    /** The full message, length included, as protocol 3.0. */
    ByteBuf encode(ByteBufAllocator alloc) {
        ByteBuf buf = alloc.buffer();
        buf.writeInt(0);
        buf.writeInt((majorVersion << 16) | minorVersion);
        parameters.forEach((name, value) -> {
            PgWire.writeCString(buf, name);
            PgWire.writeCString(buf, value);
        });
        buf.writeByte(0);
        buf.setInt(0, buf.writerIndex());
        return buf;
    }

    StartupMessage withParameters(Map<String, String> newParameters) {
        return new StartupMessage(majorVersion, minorVersion, newParameters);
    }

    StartupMessage withVersion(int major, int minor) {
        return new StartupMessage(major, minor, parameters);
    }

    /** The startup packet broke the protocol; the message is safe to show the client. */
    static final class ProtocolException extends RuntimeException {
        ProtocolException(String message) {
            super(message, null, false, false);
        }
    }
}
