package io.palisade.server;

import java.util.LinkedHashSet;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Reads the metric names out of a PromQL expression as a Grafana dashboard writes it (with {@code $variables} and
 * {@code label_values(metric, label)} queries): what is left after label matchers, ranges, grouping clauses, strings,
 * numbers, functions and keywords are taken away. Enough for the expressions of our dashboard, not a PromQL parser.
 * Stateless.
 */
final class PromQl {
    private static final Set<String> KEYWORDS = Set.of("by", "without", "on", "ignoring", "group_left", "group_right",
            "bool", "and", "or", "unless", "offset", "inf", "nan");
    private static final Pattern IDENTIFIER = Pattern.compile("[A-Za-z_:][A-Za-z0-9_:]*");

    private PromQl() {}

    static Set<String> metricNames(String expression) {
        String text = expression
                .replaceAll("label_values\\(\\s*([^,()]+),[^)]*\\)", "$1")
                .replaceAll("\"(\\\\.|[^\"\\\\])*\"", " ")
                .replaceAll("'(\\\\.|[^'\\\\])*'", " ")
                .replaceAll("\\$\\{[^}]*}", " ")
                .replaceAll("\\$[A-Za-z_][A-Za-z0-9_]*", " ")
                .replaceAll("\\{[^}]*}", " ")
                .replaceAll("\\[[^]]*]", " ")
                .replaceAll("\\b(by|without|on|ignoring|group_left|group_right)\\s*\\([^)]*\\)", " ")
                .replaceAll("\\b\\d+(\\.\\d+)?([eE][+-]?\\d+)?[smhdwy]?\\b", " ");
        Set<String> names = new LinkedHashSet<>();
        Matcher matcher = IDENTIFIER.matcher(text);
        while (matcher.find()) {
            String name = matcher.group();
            int after = matcher.end();
            while (after < text.length() && Character.isWhitespace(text.charAt(after))) {
                after++;
            }
            boolean function = after < text.length() && text.charAt(after) == '(';
            if (!function && !KEYWORDS.contains(name.toLowerCase(java.util.Locale.ROOT))) {
                names.add(name);
            }
        }
        return names;
    }
}
