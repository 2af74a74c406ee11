package io.palisade.logical;

import static java.util.Objects.requireNonNull;

/**
 * One object that a move cannot take along, named as PostgreSQL describes it (e.g. {@code table public.scratch},
 * {@code large object 16500}), with the reason and what the tenant can do about it.
 */
public record Refusal(String object, String reason) {
    public Refusal {
        requireNonNull(object, "object is null");
        requireNonNull(reason, "reason is null");
    }

    @Override
    public String toString() {
        return object + ": " + reason;
    }
}
