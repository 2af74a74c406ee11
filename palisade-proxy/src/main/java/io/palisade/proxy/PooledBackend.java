package io.palisade.proxy;

import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.ScheduledFuture;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One backend connection between clients: sends {@code DISCARD ALL} and expects exactly its CommandComplete and
 * ReadyForQuery {@code I} (ParameterStatus reports, notices and notifications before them are allowed; the reports
 * update what the next client is shown), then waits in the {@link BackendPool} until a client takes it or its idle
 * time ends. Anything else (an error, another message, a byte while parked, the server closing) closes it; it is never
 * pooled then. The idle timer runs from the offer, so a reset that hangs is bounded too. On the connection's event
 * loop; not thread-safe otherwise.
 */
final class PooledBackend extends ChannelInboundHandlerAdapter {
    private static final Logger log = LoggerFactory.getLogger(PooledBackend.class);
    private static final String RESET = "DISCARD ALL";
    /** Nothing {@code DISCARD ALL} answers is legitimately this large. */
    private static final int MAX_MESSAGE = 64 * 1024;
    /**
     * All a server may send answering {@code DISCARD ALL} (notices and notifications included): a server that keeps
     * sending during the reset is closed rather than buffered.
     */
    private static final long MAX_RESET_BYTES = 1024 * 1024;

    private enum State {
        RESETTING,
        PARKED,
        TAKEN,
        CLOSED
    }

    private final BackendPool pool;
    private final BackendPool.Key key;
    private final long generation;
    private final Map<String, String> parameters;
    private final int processId;
    private final int secretKey;
    private final PoolCounts database;
    private final PoolCounts server;
    private ChannelHandlerContext ctx;
    private State state = State.RESETTING;
    private boolean completed;
    private ByteBuf pending;
    /** Bytes the server sent since the reset began. */
    private long resetBytes;
    private ScheduledFuture<?> idleTimer;

    PooledBackend(BackendPool pool, BackendPool.Key key, long generation, BackendPool.Login login,
            PoolCounts database, PoolCounts server) {
        this.pool = pool;
        this.key = key;
        this.generation = generation;
        this.parameters = new LinkedHashMap<>(login.parameters());
        this.processId = login.processId();
        this.secretKey = login.secretKey();
        this.database = database;
        this.server = server;
    }

    BackendPool.Key key() {
        return key;
    }

    long generation() {
        return generation;
    }

    Channel channel() {
        return ctx.channel();
    }

    /** What the next client is shown and where its cancel requests go: the login's, updated by the reset. */
    BackendPool.Login login() {
        return new BackendPool.Login(parameters, processId, secretKey);
    }

    @Override
    public void handlerAdded(ChannelHandlerContext context) {
        this.ctx = context;
    }

    /** Sends the reset and starts the idle timer. */
    void reset() {
        idleTimer = ctx.executor().schedule(() -> {
            if (state == State.RESETTING || state == State.PARKED) {
                log.debug("closing an idle pooled connection to {} after {}", key.databaseId(), pool.idleTimeout());
                close();
            }
        }, pool.idleTimeout().toNanos(), TimeUnit.NANOSECONDS);
        ctx.channel().config().setAutoRead(true);
        ctx.writeAndFlush(PgWire.query(RESET)).addListener(future -> {
            if (!future.isSuccess()) {
                close();
            }
        });
    }

    /** A client takes the connection: true if it was parked (it leaves the pool and its bounds). */
    boolean take() {
        if (state != State.PARKED || !ctx.channel().isActive()) {
            return false;
        }
        state = State.TAKEN;
        idleTimer.cancel(false);
        ctx.channel().config().setAutoRead(false);
        release();
        return true;
    }

    /** Puts {@code handler} in this one's place on the taken connection. */
    void handOver(ChannelHandler handler, String name) {
        ctx.pipeline().replace(this, name, handler);
    }

    @Override
    public void channelRead(ChannelHandlerContext context, Object msg) {
        if (!(msg instanceof ByteBuf buf)) {
            ReferenceCountUtil.release(msg);
            return;
        }
        if (state != State.RESETTING) {
            buf.release();
            if (state == State.PARKED) {
                log.debug("a parked connection to {} sent bytes; closing it", key.databaseId());
                close();
            }
            return;
        }
        resetBytes += buf.readableBytes();
        if (resetBytes > MAX_RESET_BYTES) {
            buf.release();
            log.debug("a connection to {} sent more than {} bytes answering {}; closing it", key.databaseId(),
                    MAX_RESET_BYTES, RESET);
            close();
            return;
        }
        if (pending == null) {
            pending = context.alloc().buffer(Math.max(256, buf.readableBytes()));
        } else {
            pending.discardReadBytes();
        }
        pending.writeBytes(buf);
        buf.release();
        while (state == State.RESETTING && pending.readableBytes() >= 5) {
            int start = pending.readerIndex();
            byte type = pending.getByte(start);
            int length = pending.getInt(start + 1);
            if (length < 4 || length > MAX_MESSAGE) {
                close();
                return;
            }
            if (pending.readableBytes() < 1 + length) {
                return;
            }
            ByteBuf body = pending.slice(start + 5, length - 4);
            pending.skipBytes(1 + length);
            if (!handle(type, body)) {
                close();
                return;
            }
        }
        if (state != State.RESETTING) {
            discardPending();
        }
    }

    private boolean handle(byte type, ByteBuf body) {
        switch (type) {
            case 'N', 'A' -> {
                return true;
            }
            case 'S' -> {
                String name = PgWire.readCString(body);
                String value = name == null ? null : PgWire.readCString(body);
                if (value == null || name.length() + value.length() > BackendPool.MAX_REPORT_CHARS
                        || !parameters.containsKey(name) && parameters.size() >= BackendPool.MAX_REPORTS) {
                    return false; // only a hostile server reports this much: it must not grow what is kept
                }
                parameters.put(name, value);
                return true;
            }
            case 'C' -> {
                String tag = PgWire.readCString(body);
                if (completed || !RESET.equals(tag)) {
                    return false;
                }
                completed = true;
                return true;
            }
            case 'Z' -> {
                if (!completed || body.readableBytes() != 1 || body.getByte(body.readerIndex()) != 'I') {
                    return false;
                }
                if (pending.isReadable()) {
                    return false;
                }
                state = State.PARKED;
                pool.park(this);
                return true;
            }
            default -> {
                if (type == 'E') {
                    log.debug("{} failed on a connection to {}: {}", RESET, key.databaseId(),
                            PgWire.errorFields(body).get('M'));
                }
                return false;
            }
        }
    }

    @Override
    public void channelInactive(ChannelHandlerContext context) {
        close();
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext context, Throwable cause) {
        log.debug("pooled connection to {} failed: {}", key.databaseId(), cause.toString());
        close();
    }

    @Override
    public void handlerRemoved(ChannelHandlerContext context) {
        discardPending();
    }

    private void discardPending() {
        if (pending != null) {
            pending.release();
            pending = null;
        }
    }

    /** Leaves the pool and closes the connection. Idempotent; does nothing once a client took it. */
    void close() {
        if (leave()) {
            BackendLink.closeOnFlush(ctx.channel());
        }
    }

    /**
     * Gives the connection back: leaves the pool and ends the backend so that its server has let go of it when the
     * returned future completes: sends Terminate and waits for the server to close the connection (PostgreSQL frees a
     * backend's slot before its socket closes), closing it from this side after {@code wait} at most. Counted as a
     * give-back of its database and server ({@link PoolCounts}). On the connection's event loop.
     */
    ChannelFuture terminate(Duration wait) {
        if (state == State.RESETTING || state == State.PARKED) {
            // before leave() takes it out of the pooled counts: see PoolCounts.mayFreeSlots
            database.givingBack();
            server.givingBack();
            ctx.channel().closeFuture().addListener(f -> {
                database.givenBack();
                server.givenBack();
            });
        }
        if (leave()) {
            ctx.writeAndFlush(PgWire.terminate());
            ScheduledFuture<?> forced =
                    ctx.executor().schedule(() -> ctx.close(), wait.toNanos(), TimeUnit.NANOSECONDS);
            ctx.channel().closeFuture().addListener(f -> forced.cancel(false));
        }
        return ctx.channel().closeFuture();
    }

    /** Leaves the pool and its bounds; false when it had already left (closed, or taken by a client). */
    private boolean leave() {
        if (state == State.CLOSED || state == State.TAKEN) {
            return false;
        }
        state = State.CLOSED;
        if (idleTimer != null) {
            idleTimer.cancel(false);
        }
        pool.removed(this);
        release();
        discardPending();
        return true;
    }

    private void release() {
        database.unpool();
        server.unpool();
        pool.released();
    }

    @Override
    public String toString() {
        return "PooledBackend[" + key.databaseId() + ", " + state + "]";
    }
}
