package io.palisade.bench.backup;

import static java.util.Objects.requireNonNull;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;

/**
 * The REST API of an in-process palisade server, as a benchmark calls it: JSON in, JSON out, the API key on every
 * request. Thread-safe (one shared {@link HttpClient}).
 */
public final class PalisadeApi {
    private static final ObjectMapper MAPPER = new ObjectMapper();

    private final HttpClient http = HttpClient.newHttpClient();
    private final String base;
    private final String key;

    /** One answer: status and parsed body (an empty object for an empty body). */
    public record Response(int status, JsonNode json) {
        public Response {
            requireNonNull(json, "json is null");
        }
    }

    public PalisadeApi(String base, String key) {
        this.base = requireNonNull(base, "base is null");
        this.key = requireNonNull(key, "key is null");
    }

    public Response send(String method, String path, String body) {
        HttpRequest.BodyPublisher publisher = body == null ? HttpRequest.BodyPublishers.noBody()
                : HttpRequest.BodyPublishers.ofString(body);
        HttpRequest request = HttpRequest.newBuilder(URI.create(base + path))
                .header("Authorization", "Bearer " + key)
                .timeout(Duration.ofMinutes(15))
                .method(method, publisher)
                .build();
        try {
            HttpResponse<String> response = http.send(request, HttpResponse.BodyHandlers.ofString());
            String text = response.body();
            return new Response(response.statusCode(),
                    text == null || text.isBlank() ? MAPPER.createObjectNode() : MAPPER.readTree(text));
        } catch (IOException e) {
            throw new IllegalStateException(method + " " + path + " failed: " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted during " + method + " " + path, e);
        }
    }

    /** Sends and fails unless the status is 2xx; returns the body. */
    public JsonNode ok(String method, String path, String body) {
        Response response = send(method, path, body);
        if (response.status() >= 300) {
            throw new IllegalStateException(method + " " + path + " answered " + response.status() + ": "
                    + response.json());
        }
        return response.json();
    }

    public JsonNode get(String path) {
        return ok("GET", path, null);
    }

    /** A create, restore or fork that must answer 201 with the new database's connection fields. */
    public BenchDatabase created(String path, String body) {
        Response response = send("POST", path, body);
        if (response.status() != 201) {
            throw new IllegalStateException("POST " + path + " answered " + response.status() + ": " + response.json());
        }
        return BenchDatabase.from(response.json());
    }

    public void delete(String databaseId) {
        send("DELETE", "/v1/databases/" + databaseId, null);
    }

    /** {@code GET /v1/databases/{id}/backups}. */
    public JsonNode backups(String databaseId) {
        return get("/v1/databases/" + databaseId + "/backups");
    }

    /** Whether the database has a restorable window yet (its first base backup is complete). */
    public boolean restorable(String databaseId) {
        return !backups(databaseId).path("window").path("earliest").asText("").isEmpty();
    }
}
