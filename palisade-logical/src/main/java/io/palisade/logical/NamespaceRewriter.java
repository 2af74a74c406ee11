package io.palisade.logical;

import static java.util.Objects.requireNonNull;

import java.util.Map;

/**
 * Replaces schema names where SQL text uses them to qualify a name, and nowhere else: {@code public.orders} becomes
 * {@code tenant_abc.orders}. The text is scanned the way PostgreSQL's lexer splits it: comments, string constants
 * ({@code '…'}, {@code E'…'}), dollar-quoted strings and quoted identifiers are recognised, so a column that merely
 * contains the word, or the word alone in a string, stays as it is. A schema name counts as a qualifier when it is an
 * identifier (unquoted, compared case-folded; or quoted, compared exactly) that is followed by {@code .} and not
 * itself preceded by one.
 *
 * <p>{@link #code} rewrites identifiers outside string constants only: right for text PostgreSQL deparsed
 * ({@code pg_get_viewdef}, {@code pg_get_expr}, …), where a string constant is data. {@link #routine} also looks
 * inside string constants and dollar-quoted bodies, recursively: a function body is a string constant, and inside it
 * dynamic SQL ({@code EXECUTE 'select … from public.t'}) and {@code 'public.t'::regclass} are strings too. The price
 * is that a message text such as {@code RAISE NOTICE 'see public.t'} is rewritten as well. Names built at run time
 * ({@code format('%I.%I', 'public', 't')}, {@code quote_ident(schema_var)}) cannot be recognised and are not rewritten.
 * Immutable and thread-safe.
 */
final class NamespaceRewriter {
    private final Map<String, String> replacements;

    /** {@code replacements}: a schema name as the catalog spells it → the SQL text (quoted if needed) to put there. */
    NamespaceRewriter(Map<String, String> replacements) {
        this.replacements = Map.copyOf(requireNonNull(replacements, "replacements is null"));
    }

    String code(String sql) {
        return rewrite(sql, false);
    }

    String routine(String sql) {
        return rewrite(sql, true);
    }

    private String rewrite(String sql, boolean deep) {
        if (replacements.isEmpty()) {
            return sql;
        }
        StringBuilder out = new StringBuilder(sql.length() + 16);
        char previous = ' ';
        boolean escapeString = false;
        int i = 0;
        int n = sql.length();
        while (i < n) {
            char c = sql.charAt(i);
            if (c == '-' && i + 1 < n && sql.charAt(i + 1) == '-') {
                int end = sql.indexOf('\n', i);
                end = end < 0 ? n : end;
                out.append(sql, i, end);
                i = end;
            } else if (c == '/' && i + 1 < n && sql.charAt(i + 1) == '*') {
                int end = blockCommentEnd(sql, i);
                out.append(sql, i, end);
                i = end;
            } else if (c == '\'') {
                int end = stringEnd(sql, i, escapeString);
                escapeString = false;
                appendConstant(out, sql, i + 1, end - 1, "'", end > n ? "" : "'", deep);
                end = Math.min(end, n);
                i = end;
                previous = '\'';
            } else if (c == '$' && dollarTag(sql, i) != null) {
                String tag = dollarTag(sql, i);
                int close = sql.indexOf(tag, i + tag.length());
                int end = close < 0 ? n : close + tag.length();
                int bodyEnd = close < 0 ? n : close;
                appendConstant(out, sql, i + tag.length(), bodyEnd, tag, close < 0 ? "" : tag, deep);
                i = end;
                previous = '$';
            } else if (c == '"') {
                int end = quotedIdentifierEnd(sql, i);
                String name = sql.substring(i + 1, Math.max(i + 1, end - 1)).replace("\"\"", "\"");
                appendIdentifier(out, sql, i, end, name, previous);
                i = end;
                previous = '"';
            } else if (isIdentifierStart(c)) {
                int end = i + 1;
                while (end < n && isIdentifierPart(sql.charAt(end))) {
                    end++;
                }
                String word = sql.substring(i, end);
                if (end < n && sql.charAt(end) == '\'' && isStringPrefix(word)) {
                    out.append(word);
                    escapeString = word.equalsIgnoreCase("e");
                    previous = 'a';
                } else {
                    appendIdentifier(out, sql, i, end, fold(word), previous);
                    previous = 'a';
                }
                i = end;
            } else if (Character.isDigit(c)) {
                int end = i + 1;
                while (end < n && (isIdentifierPart(sql.charAt(end)) || sql.charAt(end) == '.')) {
                    end++;
                }
                out.append(sql, i, end);
                i = end;
                previous = '0';
            } else {
                out.append(c);
                if (!Character.isWhitespace(c)) {
                    previous = c;
                }
                i++;
            }
        }
        return out.toString();
    }

    private void appendIdentifier(StringBuilder out, String sql, int start, int end, String name, char previous) {
        String replacement = replacements.get(name);
        if (replacement != null && previous != '.' && followedByDot(sql, end)) {
            out.append(replacement);
        } else {
            out.append(sql, start, end);
        }
    }

    private void appendConstant(StringBuilder out, String sql, int from, int to, String open, String close,
            boolean deep) {
        out.append(open);
        String body = sql.substring(from, Math.max(from, to));
        out.append(deep ? rewrite(body, true) : body);
        out.append(close);
    }

    private static boolean followedByDot(String sql, int from) {
        int i = from;
        while (i < sql.length() && Character.isWhitespace(sql.charAt(i))) {
            i++;
        }
        return i + 1 < sql.length() && sql.charAt(i) == '.' && sql.charAt(i + 1) != '.';
    }

    private static int blockCommentEnd(String sql, int start) {
        int depth = 0;
        int i = start;
        while (i < sql.length()) {
            if (sql.startsWith("/*", i)) {
                depth++;
                i += 2;
            } else if (sql.startsWith("*/", i)) {
                depth--;
                i += 2;
                if (depth == 0) {
                    return i;
                }
            } else {
                i++;
            }
        }
        return sql.length();
    }

    /** The index just past the closing quote of the string constant opening at {@code start}. */
    private static int stringEnd(String sql, int start, boolean backslashEscapes) {
        int i = start + 1;
        while (i < sql.length()) {
            char c = sql.charAt(i);
            if (backslashEscapes && c == '\\') {
                i += 2;
            } else if (c == '\'') {
                if (i + 1 < sql.length() && sql.charAt(i + 1) == '\'') {
                    i += 2;
                } else {
                    return i + 1;
                }
            } else {
                i++;
            }
        }
        return sql.length() + 1;
    }

    private static int quotedIdentifierEnd(String sql, int start) {
        int i = start + 1;
        while (i < sql.length()) {
            if (sql.charAt(i) == '"') {
                if (i + 1 < sql.length() && sql.charAt(i + 1) == '"') {
                    i += 2;
                } else {
                    return i + 1;
                }
            } else {
                i++;
            }
        }
        return sql.length();
    }

    /** {@code $tag$} starting at {@code start}, or null when the dollar sign starts no dollar quote ({@code $1}). */
    private static String dollarTag(String sql, int start) {
        if (start > 0 && isIdentifierPart(sql.charAt(start - 1))) {
            return null;
        }
        int i = start + 1;
        if (i < sql.length() && Character.isDigit(sql.charAt(i))) {
            return null;
        }
        while (i < sql.length() && sql.charAt(i) != '$') {
            char c = sql.charAt(i);
            if (!isIdentifierPart(c) || c == '$') {
                return null;
            }
            i++;
        }
        return i < sql.length() ? sql.substring(start, i + 1) : null;
    }

    /** {@code E'…'} (backslash escapes), {@code B'…'}, {@code X'…'}, {@code N'…'}. */
    private static boolean isStringPrefix(String word) {
        return word.length() == 1 && "EeBbXxNn".indexOf(word.charAt(0)) >= 0;
    }

    private static boolean isIdentifierStart(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
    }

    private static boolean isIdentifierPart(char c) {
        return isIdentifierStart(c) || (c >= '0' && c <= '9') || c == '$';
    }

    /** PostgreSQL folds only ASCII letters of an unquoted identifier. */
    private static String fold(String word) {
        StringBuilder folded = new StringBuilder(word.length());
        for (int i = 0; i < word.length(); i++) {
            char c = word.charAt(i);
            folded.append(c >= 'A' && c <= 'Z' ? (char) (c + 32) : c);
        }
        return folded.toString();
    }
}
