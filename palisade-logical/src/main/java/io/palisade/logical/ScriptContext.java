package io.palisade.logical;

import static java.util.Objects.requireNonNull;

import io.palisade.logical.SchemaScript.Step;

/**
 * What every part of the extraction needs: the source catalog and the oids of the source namespace and role, the quoted
 * names of the target namespace and role, and the rewriter from source to target schema names. Every statement names
 * the objects it creates qualified with the target namespace; references inside PostgreSQL's deparsed definitions are
 * unqualified (they are read with the source namespace on the search path) and resolve through the replay's
 * {@code search_path}. Not thread-safe (the catalog's connection is not).
 */
final class ScriptContext {
    private final Catalog catalog;
    private final long namespace;
    private final long role;
    private final String targetNamespace;
    private final String targetRole;
    private final NamespaceRewriter rewriter;

    ScriptContext(Catalog catalog, long namespace, long role, String targetNamespace, String targetRole,
            NamespaceRewriter rewriter) {
        this.catalog = requireNonNull(catalog, "catalog is null");
        this.namespace = namespace;
        this.role = role;
        this.targetNamespace = requireNonNull(targetNamespace, "targetNamespace is null");
        this.targetRole = requireNonNull(targetRole, "targetRole is null");
        this.rewriter = requireNonNull(rewriter, "rewriter is null");
    }

    Catalog catalog() {
        return catalog;
    }

    /** The source namespace's oid, bound as {@code ?::oid}. */
    Long namespace() {
        return namespace;
    }

    /** The source role's oid, bound as {@code ?::oid}. */
    Long role() {
        return role;
    }

    /** {@code quotedName} (as {@code quote_ident} gave it) qualified with the target namespace. */
    String qualified(String quotedName) {
        return targetNamespace + "." + quotedName;
    }

    /** The role a source grantee or policy role becomes: the tenant's own role is mapped, oid 0 is PUBLIC. */
    String grantee(long oid) {
        if (oid == 0) {
            return "PUBLIC";
        }
        if (oid == role) {
            return targetRole;
        }
        throw new IllegalStateException("role " + oid + " is neither the tenant's nor PUBLIC (Refusals catch this)");
    }

    /** A definition PostgreSQL deparsed, with schema-qualified references to the source moved to the target. */
    String definition(String sql) {
        return rewriter.code(sql);
    }

    /** A routine's full definition: qualified references are also moved inside its body's strings. */
    String routine(String sql) {
        return rewriter.routine(sql);
    }

    String targetNamespace() {
        return targetNamespace;
    }

    String targetRole() {
        return targetRole;
    }

    static Step step(String object, String sql) {
        return new Step(object, sql);
    }
}
