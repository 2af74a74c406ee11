package io.palisade.vmm;

import java.util.Locale;

/**
 * Where the default plan's template snapshot stands, as {@code /v1/health} shows it ({@code template_state}): the
 * first two before its key is known, the rest as {@link TemplateCache#status} reports the key.
 */
enum TemplateState {
    /** The preparation has not looked yet. */
    PENDING,
    /** The preparation cannot run here (e.g. the vm rung is not usable); {@code template_error} says why. */
    UNAVAILABLE,
    /** Neither built nor being built. */
    MISSING,
    /** Being built, by the preparation or by a create. */
    BUILDING,
    READY,
    /** The build failed; creates of the plan cold boot and it is not retried for this key. */
    FAILED;

    /** The lower-case name {@code /v1/health} shows. */
    String wireName() {
        return name().toLowerCase(Locale.ROOT);
    }
}
