package io.palisade.vmm;

/**
 * A template snapshot made ready by {@link VmDriver#prepareTemplateNow}: its key, whether this call did not build it
 * (it was there already, or another palisade sharing the templates directory built it while this call waited for the
 * build lock), and how long the call took.
 */
public record PreparedTemplate(String key, boolean alreadyReady, long elapsedMs) {}
