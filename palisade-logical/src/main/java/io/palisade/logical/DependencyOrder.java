package io.palisade.logical;

import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;
import java.util.Set;

/**
 * Orders the objects created before the data so that each comes after what it depends on, as {@code pg_depend} records
 * it: a column's type or default, a check constraint's function, a view's rule, a partition's parent, a routine's
 * argument types or {@code BEGIN ATOMIC} body. Where dependencies leave a choice, kinds go in {@link Node.Kind} order
 * and objects of a kind in creation (oid) order. A sequence's ownership by a column is not a dependency here (it is set
 * after the tables). Routine bodies other than {@code BEGIN ATOMIC} record no dependencies; the replay turns
 * {@code check_function_bodies} off so they are not checked at creation. Stateless.
 */
final class DependencyOrder {
    private DependencyOrder() {}

    private static final String EDGES = CatalogSql.NAMESPACE + """
            , nodes(classid, objid, node) as (
                select 'pg_class'::regclass::oid, c.oid,
                    case when c.relkind = 'c' then 'pg_type:' || c.reltype else 'pg_class:' || c.oid end
                    from pg_class c where c.relnamespace = (select oid from ns)
                union all
                select 'pg_type'::regclass::oid, t.oid,
                    case when r.relkind is not null and r.relkind <> 'c' then 'pg_class:' || r.oid
                        else 'pg_type:' || b.oid end
                    from pg_type t
                    left join pg_range m on m.rngmultitypid = t.oid
                    join pg_type b on b.oid = case
                        when t.typelem <> 0 and t.typsubscript = 'array_subscript_handler'::regproc then t.typelem
                        when m.rngtypid is not null then m.rngtypid else t.oid end
                    left join pg_class r on r.oid = b.typrelid
                    where t.typnamespace = (select oid from ns)
                union all
                select 'pg_proc'::regclass::oid, p.oid, 'pg_proc:' || p.oid
                    from pg_proc p where p.pronamespace = (select oid from ns)
                union all
                select 'pg_attrdef'::regclass::oid, d.oid, 'pg_class:' || d.adrelid
                    from pg_attrdef d join pg_class c on c.oid = d.adrelid where c.relnamespace = (select oid from ns)
                union all
                select 'pg_constraint'::regclass::oid, k.oid,
                    case when k.contypid <> 0 then 'pg_type:' || k.contypid else 'pg_class:' || k.conrelid end
                    from pg_constraint k where k.connamespace = (select oid from ns) and k.contype = 'c'
                union all
                select 'pg_rewrite'::regclass::oid, w.oid, 'pg_class:' || w.ev_class
                    from pg_rewrite w join pg_class c on c.oid = w.ev_class where c.relnamespace = (select oid from ns)
            )
            select distinct a.node as dependent, b.node as referenced
            from pg_depend d
            join nodes a on a.classid = d.classid and a.objid = d.objid
            join nodes b on b.classid = d.refclassid and b.objid = d.refobjid
            where d.deptype in ('n', 'a') and a.node <> b.node
            """;

    static List<Node> sort(ScriptContext ctx, List<Node> nodes) throws SQLException {
        Map<String, Node> byKey = new LinkedHashMap<>();
        for (Node node : nodes) {
            byKey.put(node.key(), node);
        }
        Map<String, Set<String>> waitingFor = new HashMap<>();
        Map<String, List<String>> dependents = new HashMap<>();
        for (Node node : nodes) {
            waitingFor.put(node.key(), new HashSet<>());
        }
        for (Catalog.Row edge : ctx.catalog().rows(EDGES, ctx.namespace())) {
            Node dependent = byKey.get(edge.text("dependent"));
            Node referenced = byKey.get(edge.text("referenced"));
            if (dependent == null || referenced == null || dependent.kind() == Node.Kind.SEQUENCE) {
                continue;
            }
            if (waitingFor.get(dependent.key()).add(referenced.key())) {
                dependents.computeIfAbsent(referenced.key(), k -> new ArrayList<>()).add(dependent.key());
            }
        }
        PriorityQueue<Node> ready = new PriorityQueue<>(
                Comparator.comparing(Node::kind).thenComparingLong(Node::oid));
        for (Node node : nodes) {
            if (waitingFor.get(node.key()).isEmpty()) {
                ready.add(node);
            }
        }
        List<Node> sorted = new ArrayList<>(nodes.size());
        while (!ready.isEmpty()) {
            Node next = ready.poll();
            sorted.add(next);
            for (String key : dependents.getOrDefault(next.key(), List.of())) {
                Set<String> waiting = waitingFor.get(key);
                waiting.remove(next.key());
                if (waiting.isEmpty()) {
                    ready.add(byKey.get(key));
                }
            }
        }
        if (sorted.size() < nodes.size()) {
            List<String> stuck = nodes.stream().filter(n -> !sorted.contains(n)).map(Node::object).toList();
            throw new PalisadeException(ErrorCode.CONFLICT, "cannot order the tenant's objects for creation: "
                    + String.join(", ", stuck) + " depend on each other in a cycle (e.g. a column default calling a"
                    + " function that takes the table's row type); break the cycle in the source schema and try again");
        }
        return sorted;
    }
}
