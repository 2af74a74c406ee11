package io.palisade.proxy;

import static java.util.Objects.requireNonNull;

import io.netty.channel.IoHandlerFactory;
import io.netty.channel.ServerChannel;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import java.util.Locale;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The socket transport the proxy's event loops and channels use: Netty's native epoll on Linux x86_64 (fewer copies
 * and system calls than NIO's selector), NIO wherever the native library does not load. The system property
 * {@code palisade.proxy.transport=nio} forces NIO (for comparisons). Immutable value; thread-safe.
 *
 * @param name {@code epoll} or {@code NIO}, as logged
 * @param ioHandlers the event loops' I/O handler factory
 * @param serverChannel the listening channel's class
 * @param socketChannel the class of accepted and outgoing (backend, cancel) connections
 */
record ProxyTransport(String name, Supplier<IoHandlerFactory> ioHandlers, Class<? extends ServerChannel> serverChannel,
        Class<? extends SocketChannel> socketChannel) {
    private static final Logger log = LoggerFactory.getLogger(ProxyTransport.class);

    ProxyTransport {
        requireNonNull(name, "name is null");
        requireNonNull(ioHandlers, "ioHandlers is null");
        requireNonNull(serverChannel, "serverChannel is null");
        requireNonNull(socketChannel, "socketChannel is null");
    }

    static final ProxyTransport NIO = new ProxyTransport("NIO", NioIoHandler::newFactory,
            NioServerSocketChannel.class, NioSocketChannel.class);

    /** epoll when its native library loads here (and NIO is not forced), else NIO with a log line saying why. */
    static ProxyTransport detect() {
        String forced = System.getProperty("palisade.proxy.transport", "").strip().toLowerCase(Locale.ROOT);
        if (forced.equals("nio")) {
            log.info("proxy transport: NIO (forced by -Dpalisade.proxy.transport=nio)");
            return NIO;
        }
        if (!Epoll.isAvailable()) {
            Throwable cause = Epoll.unavailabilityCause();
            log.info("proxy transport: NIO, because Netty's native epoll transport is not available on this host ({})",
                    cause == null ? "no reason given" : cause.toString());
            return NIO;
        }
        return new ProxyTransport("epoll", EpollIoHandler::newFactory, EpollServerSocketChannel.class,
                EpollSocketChannel.class);
    }
}
