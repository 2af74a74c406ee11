package io.palisade.logical;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class TestNamespaceRewriter {
    private final NamespaceRewriter rewriter = new NamespaceRewriter(Map.of("public", "tenant_abc", "Ext", "\"x y\""));

    @Test
    void rewritesQualifiersOnly() {
        assertThat(rewriter.code("select public.f(a.public) from public.t public join public . u on true"))
                .isEqualTo("select tenant_abc.f(a.public) from tenant_abc.t public join tenant_abc . u on true");
        assertThat(rewriter.code("select PUBLIC.t, \"public\".t, \"Public\".t, public_x.t, x.public.t"))
                .isEqualTo("select tenant_abc.t, tenant_abc.t, \"Public\".t, public_x.t, x.public.t");
        assertThat(rewriter.code("select \"Ext\".f(), ext.f(), \"Ext\""))
                .isEqualTo("select \"x y\".f(), ext.f(), \"Ext\"");
    }

    @Test
    void leavesConstantsAndCommentsOfDeparsedSqlAlone() {
        String constants = "select 'public.t', $$public.t$$, E'it\\'s public.t' -- public.t\n";
        String comment = "/* public.t /* public.t */ */ ";
        assertThat(rewriter.code(constants + comment + "public.t")).isEqualTo(constants + comment + "tenant_abc.t");
    }

    @Test
    void rewritesInsideRoutineBodiesAndTheirStrings() {
        String function = """
                CREATE OR REPLACE FUNCTION public.f(p integer DEFAULT 1)
                 LANGUAGE plpgsql
                 SET search_path TO 'public'
                AS $function$
                begin
                    perform 1 from public.t where x = $1;
                    execute 'select * from public.u where y = ''public.v''';
                    perform $inner$ select public.w $inner$;
                    raise notice 'public';
                end $function$""";
        assertThat(rewriter.routine(function)).isEqualTo("""
                CREATE OR REPLACE FUNCTION tenant_abc.f(p integer DEFAULT 1)
                 LANGUAGE plpgsql
                 SET search_path TO 'public'
                AS $function$
                begin
                    perform 1 from tenant_abc.t where x = $1;
                    execute 'select * from tenant_abc.u where y = ''tenant_abc.v''';
                    perform $inner$ select tenant_abc.w $inner$;
                    raise notice 'public';
                end $function$""");
    }

    @Test
    void survivesUnterminatedText() {
        assertThat(rewriter.routine("select 'public.x")).isEqualTo("select 'tenant_abc.x");
        assertThat(rewriter.code("select $a$ public.x")).isEqualTo("select $a$ public.x");
        assertThat(rewriter.code("select \"public")).isEqualTo("select \"public");
    }

    @Test
    void nothingToDoWithoutReplacements() {
        assertThat(new NamespaceRewriter(Map.of()).routine("select public.t")).isEqualTo("select public.t");
    }

    @Test
    void mapsSearchPathSettings() {
        Map<String, List<String>> schemas = Map.of("public", List.of("tenant_abc", "extensions"),
                "extensions", List.of("tenant_abc"));
        assertThat(RoutineDdl.searchPath("public, pg_temp", schemas))
                .isEqualTo("\"tenant_abc\", \"extensions\", \"pg_temp\"");
        // a stored element that is SQL, not a name, comes back as one quoted (inert) identifier
        assertThat(RoutineDdl.searchPath("x/**/AS/**/'';RESET/**/ROLE", schemas))
                .isEqualTo("\"x/**/as/**/'';reset/**/role\"");
        assertThat(RoutineDdl.searchPath("\"$user\", \"public\"", schemas))
                .isEqualTo("\"$user\", \"tenant_abc\", \"extensions\"");
        assertThat(RoutineDdl.searchPath("tenant_x, extensions", Map.of("tenant_x", List.of("public"),
                "extensions", List.of("public")))).isEqualTo("\"public\"");
    }

    @Test
    void replacesARoutinesSearchPathSetting() {
        String definition = """
                CREATE OR REPLACE FUNCTION tenant_abc.f()
                 RETURNS bigint
                 LANGUAGE sql
                 SET search_path TO 'public', 'pg_temp'
                AS $function$ select 1 $function$
                """;
        assertThat(RoutineDdl.withSearchPath(definition, "\"tenant_abc\", pg_temp")).isEqualTo("""
                CREATE OR REPLACE FUNCTION tenant_abc.f()
                 RETURNS bigint
                 LANGUAGE sql
                 SET search_path TO "tenant_abc", pg_temp
                AS $function$ select 1 $function$
                """);
    }
}
