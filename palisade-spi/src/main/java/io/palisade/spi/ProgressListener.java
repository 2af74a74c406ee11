package io.palisade.spi;

/** Receives the phases of long work (guest image build, create, restore), for logs and progress output. */
@FunctionalInterface
public interface ProgressListener {
    ProgressListener NONE = phase -> {};

    void phase(String description);
}
