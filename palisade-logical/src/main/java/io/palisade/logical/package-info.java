/**
 * The logical path of a move between rungs (issue 13), first part: a tenant's schema reproduced from the catalog,
 * since the PostgreSQL binaries palisade ships have no pg_dump.
 *
 * <ul>
 *   <li>{@link io.palisade.logical.Refusals#find} names, before a move starts, every object the logical path cannot
 *       take along (large objects, unlogged tables and sequences, foreign and typed tables, rules, aggregates, C
 *       functions, base types, operators and their classes, collations, text search objects, casts, objects owned by
 *       other roles or by the tenant outside its namespace, privileges and policies naming other roles, dependencies on
 *       objects outside the namespace, event triggers).</li>
 *   <li>{@link io.palisade.logical.SchemaExtractor#extract} turns the source namespace into a
 *       {@link io.palisade.logical.SchemaScript} for a {@link io.palisade.logical.Target} namespace, role and
 *       extension schema; {@link io.palisade.logical.SchemaReplayer} runs it on the target in one transaction, as the
 *       target role, and after the data copy runs its {@code afterCopy} part.</li>
 *   <li>{@link io.palisade.logical.LogicalCopy} copies the rows by logical replication (initial copy plus change
 *       stream) while the tenant writes, reports {@link io.palisade.logical.CopyProgress}, waits until caught up,
 *       syncs sequences at cutover, and leaves nothing behind when finished or cancelled.</li>
 *   <li>{@link io.palisade.logical.Fingerprint} compares a source and its copy: structure and data.</li>
 * </ul>
 *
 * <p>Limits, on purpose or not yet done:
 * <ul>
 *   <li>The namespace is the unit: the schema's own ACL and comment, and database-level settings
 *       ({@code ALTER DATABASE/ROLE … SET}), are the rung's business and not reproduced.</li>
 *   <li>Routine bodies are text. Qualified references to the source schema are rewritten (also inside the body's
 *       strings, so a message mentioning {@code public.x} changes too); names built at run time are not. A body that
 *       qualifies an extension's object with the tenant's own schema (extensions installed in {@code public}) points
 *       at the target namespace, where that object is not if the target keeps extensions in another schema; bodies
 *       that leave such names unqualified work on both.</li>
 *   <li>Extensions are found through recorded dependencies; an extension used only inside a routine body is missed
 *       (the replayed body then fails when called). Extensions in {@code pg_catalog} ({@code plpgsql}) are assumed
 *       present. The target must offer the source's extension versions.</li>
 *   <li>A dependency cycle among objects created before the data (a column default calling a function that takes the
 *       table's row type) is reported, not broken.</li>
 *   <li>Security labels, publications and subscriptions, and tablespaces other than the default are refused, not
 *       reproduced. Invalid indexes are refused.</li>
 *   <li>The extraction reads in one repeatable-read snapshot, but PostgreSQL's {@code pg_get_*def} functions read the
 *       newest catalog: DDL running during an extraction can be seen half-way (as with pg_dump). The move should hold
 *       DDL off meanwhile.</li>
 * </ul>
 */
package io.palisade.logical;
