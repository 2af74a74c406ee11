package io.palisade.bench.backup;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.AppenderBase;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.slf4j.LoggerFactory;

/**
 * The in-process server's log lines under {@code io.palisade}, kept with their timestamps, so that a benchmark can time
 * the phases a server logs (restore and fork: moving the data directory into place, starting postgres, setting
 * credentials). Thread-safe; {@link #close()} detaches it.
 */
public final class ServerLog extends AppenderBase<ILoggingEvent> implements AutoCloseable {
    /** One line: when it was logged (epoch ms) and its formatted message. */
    public record Line(long epochMillis, String message) {}

    private final List<Line> lines = new ArrayList<>();
    private final Logger logger = (Logger) LoggerFactory.getLogger("io.palisade");

    private ServerLog() {}

    public static ServerLog attach() {
        ServerLog log = new ServerLog();
        log.setName("bench-server-log");
        log.setContext(log.logger.getLoggerContext());
        log.start();
        log.logger.addAppender(log);
        return log;
    }

    @Override
    protected void append(ILoggingEvent event) {
        synchronized (lines) {
            lines.add(new Line(event.getTimeStamp(), event.getFormattedMessage()));
            if (lines.size() > 100_000) {
                lines.subList(0, 50_000).clear();
            }
        }
    }

    /** The first line logged at or after {@code sinceEpochMillis} whose message starts with {@code prefix}. */
    public Optional<Line> first(long sinceEpochMillis, String prefix) {
        synchronized (lines) {
            return lines.stream().filter(l -> l.epochMillis() >= sinceEpochMillis && l.message().startsWith(prefix))
                    .findFirst();
        }
    }

    @Override
    public void close() {
        logger.detachAppender(this);
        stop();
    }
}
