package io.palisade.logical;

import io.palisade.logical.SchemaScript.Extension;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * The extensions a tenant's namespace uses, and whether a target server can have them. Used means: installed in the
 * namespace, or providing a type, function, operator class … that an object of the namespace depends on, and what
 * those extensions require in turn. A function whose body calls an extension's function without any other use of the
 * extension is not noticed (PostgreSQL records no dependency for a body). Extensions in {@code pg_catalog}
 * ({@code plpgsql}) are in every database and left out. Stateless.
 */
final class Extensions {
    private Extensions() {}

    /** The extensions used, in creation order, and the schemas they live in (besides {@code pg_catalog}). */
    record Used(List<Extension> extensions, List<String> schemas) {
        Used {
            extensions = List.copyOf(extensions);
            schemas = List.copyOf(schemas);
        }
    }

    static Used used(Catalog catalog, long namespace) throws SQLException {
        String sql = CatalogSql.NAMESPACE + ",\n" + CatalogSql.OBJECTS + ",\n" + CatalogSql.REFERENCED + """
                ,
                used(oid) as (
                    select e.refobjid from referenced r join pg_depend e
                        on e.classid = r.refclassid and e.objid = r.refobjid and e.deptype = 'e'
                    union select x.oid from pg_extension x where x.extnamespace = (select oid from ns)
                    union select d.refobjid from used u join pg_depend d on d.classid = 'pg_extension'::regclass
                        and d.objid = u.oid and d.refclassid = 'pg_extension'::regclass
                )
                select x.extname, x.extversion, n.nspname from pg_extension x
                join pg_namespace n on n.oid = x.extnamespace
                where x.oid in (select oid from used) and n.nspname <> 'pg_catalog'
                order by x.oid""";
        List<Extension> extensions = new ArrayList<>();
        Set<String> schemas = new LinkedHashSet<>();
        for (Catalog.Row row : catalog.rows(sql, namespace)) {
            extensions.add(new Extension(row.text("extname"), row.text("extversion")));
            schemas.add(row.text("nspname"));
        }
        return new Used(extensions, List.copyOf(schemas));
    }

    /**
     * Refuses a target that cannot have the script's extensions: not available on its server at the source's version,
     * needing a superuser to install, or installed in a schema the tenant's search path does not reach.
     */
    static void checkTarget(Catalog target, SchemaScript script) throws SQLException {
        List<String> problems = new ArrayList<>();
        for (Extension extension : script.extensions()) {
            List<Catalog.Row> installed = target.rows("select n.nspname, x.extversion from pg_extension x"
                    + " join pg_namespace n on n.oid = x.extnamespace where x.extname = ?", extension.name());
            if (!installed.isEmpty()) {
                String schema = installed.getFirst().text("nspname");
                if (!schema.equals(script.target().namespace()) && !schema.equals(script.target().extensionSchema())
                        && !schema.equals("pg_catalog")) {
                    problems.add(extension.name() + " (installed in schema " + schema + ", which the tenant's search"
                            + " path " + script.target().namespace() + ", " + script.target().extensionSchema()
                            + " does not reach)");
                }
                continue;
            }
            List<Catalog.Row> available = target.rows("select trusted, superuser from pg_available_extension_versions"
                    + " where name = ? and version = ?", extension.name(), extension.version());
            if (available.isEmpty()) {
                problems.add(extension.name() + " " + extension.version() + " (not available on the target server)");
            } else if (available.getFirst().flag("superuser") && !available.getFirst().flag("trusted")) {
                problems.add(extension.name()
                        + " (only a superuser may install it; it is not installed on the target)");
            } else if (!"true".equals(target.value("select has_database_privilege(?, current_database(), 'CREATE')"
                    + "::text", script.target().role()))) {
                problems.add(extension.name() + " (not installed in the target database, and the tenant's role may"
                        + " not create extensions there)");
            }
        }
        if (!problems.isEmpty()) {
            throw new PalisadeException(ErrorCode.CONFLICT, "the target cannot have the extensions the tenant's schema "
                    + script.source().namespace() + " uses: " + String.join("; ", problems)
                    + "; install them on the target server or move the tenant elsewhere");
        }
    }
}
