package io.palisade.backup.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.palisade.spi.PalisadeException;
import java.net.URI;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class TestS3Settings {
    private static final URI ENDPOINT = URI.create("http://127.0.0.1:9000");

    @Test
    void prefixIsNormalisedToEndWithASlash() {
        assertThat(S3Settings.of(ENDPOINT, "us-east-1", "bkt", "", "k", "s").prefix()).isEmpty();
        assertThat(S3Settings.of(ENDPOINT, "us-east-1", "bkt", "palisade", "k", "s").prefix()).isEqualTo("palisade/");
        assertThat(S3Settings.of(ENDPOINT, "us-east-1", "bkt", "/a/b/", "k", "s").prefix()).isEqualTo("a/b/");
        assertThat(S3Settings.of(ENDPOINT, "us-east-1", "bkt", "a/b", "k", "s").location()).isEqualTo("s3://bkt/a/b/");
    }

    @Test
    void toStringNeverShowsTheSecret() {
        S3Settings settings = S3Settings.of(ENDPOINT, "eu-west-1", "bkt", "p", "AKIDEXAMPLE", "very-secret-value");
        assertThat(settings.toString())
                .doesNotContain("very-secret-value")
                .contains("AKIDEXAMPLE", "secretAccessKey=***", "http://127.0.0.1:9000", "eu-west-1", "pathStyle=true");
        S3Settings aws = new S3Settings(Optional.empty(), "eu-west-1", "bkt", "", "", "", false);
        assertThat(aws.toString()).contains("endpoint=(AWS)", "secretAccessKey=,");
    }

    @Test
    void invalidSettingsAreRejectedWithTheReason() {
        assertThatThrownBy(() -> S3Settings.of(ENDPOINT, "us-east-1", "Bad_Bucket", "", "k", "s"))
                .isInstanceOf(PalisadeException.class).hasMessageContaining("bucket name 'Bad_Bucket' is invalid");
        assertThatThrownBy(() -> S3Settings.of(ENDPOINT, " ", "bkt", "", "k", "s"))
                .hasMessageContaining("region is empty");
        assertThatThrownBy(() -> S3Settings.of(ENDPOINT, "us-east-1", "bkt", "", "k", ""))
                .hasMessageContaining("half set");
        assertThatThrownBy(() -> S3Settings.of(ENDPOINT, "us-east-1", "bkt", "a/../b", "k", "s"))
                .hasMessageContaining("'..'");
        assertThatThrownBy(() -> S3Settings.of(URI.create("ftp://h/"), "us-east-1", "bkt", "", "k", "s"))
                .hasMessageContaining("http:// or https://");
        assertThatThrownBy(() -> S3Settings.of(URI.create("http://user:pw@h/"), "us-east-1", "bkt", "", "k", "s"))
                .hasMessageContaining("must not carry credentials")
                .satisfies(e -> assertThat(e.getMessage()).doesNotContain("pw"));
    }
}
