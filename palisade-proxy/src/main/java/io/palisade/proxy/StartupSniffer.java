package io.palisade.proxy;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.ByteToMessageDecoder;
import java.util.List;

/**
 * The first handler of every client connection, for the plaintext phase: a TLS ClientHello (direct TLS), SSLRequest
 * (answer {@code S}, then TLS), GSSENCRequest (answer {@code N}, once), CancelRequest (routed by key, then close), or a
 * plaintext StartupMessage (rejected: TLS is required). Once TLS starts it removes itself; the bytes it buffered go
 * to the TLS handler that replaces it. One instance per connection; used on its event loop only.
 */
final class StartupSniffer extends ByteToMessageDecoder {
    private static final byte[] ACCEPT_TLS = {'S'};
    private static final byte[] REFUSE = {'N'};

    private final ClientSession session;
    private final int maxStartupPacketSize;
    private boolean gssencAnswered;
    private boolean done;

    StartupSniffer(ClientSession session, int maxStartupPacketSize) {
        this.session = session;
        this.maxStartupPacketSize = maxStartupPacketSize;
    }

    @Override
    protected void decode(ChannelHandlerContext ctx, ByteBuf in, List<Object> out) {
        while (in.isReadable() && !done) {
            int start = in.readerIndex();
            if (in.getByte(start) == PgWire.TLS_HANDSHAKE_RECORD) {
                done = true;
                session.startTls(ctx.pipeline(), ctx.name(), true);
                ctx.pipeline().remove(this);
                return;
            }
            if (in.readableBytes() < 4) {
                return;
            }
            int length = in.getInt(start);
            if (length < 8 || length > maxStartupPacketSize) {
                // PostgreSQL logs "invalid length of startup packet" and closes without an answer; a client that
                // sends Terminate before anything else (node-postgres on connect() + end()) lands here
                done = true;
                in.skipBytes(in.readableBytes());
                session.closeQuietly();
                return;
            }
            if (in.readableBytes() < 8) {
                return;
            }
            int code = in.getInt(start + 4);
            if (code == PgWire.SSL_REQUEST && length == 8) {
                in.skipBytes(8);
                done = true;
                if (in.isReadable()) {
                    in.skipBytes(in.readableBytes());
                    session.fail(PgWire.SQLSTATE_PROTOCOL_VIOLATION, "received unencrypted data after SSL request");
                    return;
                }
                ctx.writeAndFlush(Unpooled.wrappedBuffer(ACCEPT_TLS));
                session.startTls(ctx.pipeline(), ctx.name(), false);
                ctx.pipeline().remove(this);
                return;
            }
            if (code == PgWire.GSSENC_REQUEST && length == 8) {
                in.skipBytes(8);
                if (gssencAnswered) {
                    reject(in, PgWire.SQLSTATE_PROTOCOL_VIOLATION, "GSSENCRequest sent twice");
                    return;
                }
                gssencAnswered = true;
                ctx.writeAndFlush(Unpooled.wrappedBuffer(REFUSE));
                continue;
            }
            if (code == PgWire.CANCEL_REQUEST) {
                if (length != 16) {
                    done = true;
                    in.skipBytes(in.readableBytes());
                    session.closeQuietly();
                    return;
                }
                if (in.readableBytes() < 16) {
                    return;
                }
                in.skipBytes(8);
                int processId = in.readInt();
                int secretKey = in.readInt();
                done = true;
                in.skipBytes(in.readableBytes());
                session.cancel(processId, secretKey);
                return;
            }
            if (code >>> 16 == 3) {
                reject(in, PgWire.SQLSTATE_INVALID_AUTHORIZATION,
                        "connection is insecure (try using `sslmode=require`)");
            } else {
                reject(in, PgWire.SQLSTATE_FEATURE_NOT_SUPPORTED, "unsupported frontend protocol " + (code >>> 16) + "."
                        + (code & 0xFFFF) + ": this server requires TLS and protocol 3.0 (try `sslmode=require`)");
            }
            return;
        }
        if (done && in.isReadable()) {
            in.skipBytes(in.readableBytes());
        }
    }

    private void reject(ByteBuf in, String sqlState, String message) {
        done = true;
        in.skipBytes(in.readableBytes());
        session.fail(sqlState, message);
    }
}
