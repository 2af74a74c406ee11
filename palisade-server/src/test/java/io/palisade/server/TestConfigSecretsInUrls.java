package io.palisade.server;

import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.palisade.spi.PalisadeException;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Credentials written into a URL-valued key (store.url's {@code password=}, an endpoint's {@code user:password@}) are
 * not echoed when the value is refused: the message names the key and the problem, with the secret masked.
 */
class TestConfigSecretsInUrls {
    @Test
    void aRefusedStoreUrlDoesNotEchoItsPassword() {
        assertThatThrownBy(() -> ServerConfig.from(Map.of("store.url",
                "postgresql://palisade:hunter2@db.example/palisade?password=hunter2&ssl=true")))
                .isInstanceOf(PalisadeException.class)
                .hasMessageContaining("store.url")
                .hasMessageNotContaining("hunter2");
    }

    @Test
    void aRefusedS3EndpointDoesNotEchoItsUserInfo() {
        assertThatThrownBy(() -> ServerConfig.from(Map.of("backup.storage", "s3", "backup.s3.bucket", "b",
                "backup.s3.access-key-id", "id", "backup.s3.secret-access-key", "sk",
                "backup.s3.endpoint", "https://admin:hunter2@s3 .example")))
                .isInstanceOf(PalisadeException.class)
                .hasMessageContaining("backup.s3.endpoint")
                .hasMessageNotContaining("hunter2");
    }
}
