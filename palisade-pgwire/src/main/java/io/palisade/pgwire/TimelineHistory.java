package io.palisade.pgwire;

import static java.util.Objects.requireNonNull;

/** A timeline history file as TIMELINE_HISTORY returns it: its name (e.g. {@code 00000002.history}) and content. */
public record TimelineHistory(String fileName, byte[] content) {
    public TimelineHistory {
        requireNonNull(fileName, "fileName is null");
        requireNonNull(content, "content is null");
        content = content.clone();
    }

    @Override
    public byte[] content() {
        return content.clone();
    }
}
