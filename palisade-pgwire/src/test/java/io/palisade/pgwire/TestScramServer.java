package io.palisade.pgwire;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Base64;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The server side of SCRAM-SHA-256: the RFC 7677 vector, a round trip with our client, and what must fail. */
class TestScramServer {
    private static final byte[] RFC_SALT = Base64.getDecoder().decode("W22ZaJ0SNY7soEsUEjb6gQ==");

    @Test
    void secretVerifiesTheRfcProofAndSignsLikeTheRfc() {
        ScramSecret secret = ScramSecret.derive("pencil", RFC_SALT, 4096);
        String authMessage = "n=user,r=rOprNGfwEbeRWgbNEkqO,"
                + "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,"
                + "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        byte[] proof = Base64.getDecoder().decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
        assertThat(secret.verifyProof(authMessage, proof)).isTrue();
        assertThat(Base64.getEncoder().encodeToString(secret.serverSignature(authMessage)))
                .isEqualTo("6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
        byte[] flipped = proof.clone();
        flipped[0] ^= 1;
        assertThat(secret.verifyProof(authMessage, flipped)).isFalse();
        assertThat(secret.verifyProof(authMessage, new byte[31])).isFalse();
        assertThat(secret.verifyProof(authMessage + "x", proof)).isFalse();
    }

    @Test
    void secretMatchesTheVerifierPostgresStores() {
        String[] parts = ScramVerifier.of("pencil", RFC_SALT, 4096).split("[$:]");
        ScramSecret secret = ScramSecret.derive("pencil", RFC_SALT, 4096);
        assertThat(Base64.getEncoder().encodeToString(secret.storedKey())).isEqualTo(parts[3]);
        assertThat(Base64.getEncoder().encodeToString(secret.serverKey())).isEqualTo(parts[4]);
        assertThat(secret.toString()).doesNotContain(parts[3]).contains("***");
        assertThat(secret).isEqualTo(ScramSecret.derive("pencil", RFC_SALT, 4096));
        assertThat(secret).isNotEqualTo(ScramSecret.derive("pencil2", RFC_SALT, 4096));
    }

    @Test
    void roundTripWithOurClient() {
        ScramSecret secret = ScramSecret.derive("s3cret-pw", RFC_SALT, 4096);
        ScramServer server = new ScramServer(RFC_SALT, 4096);
        ScramClient client = new ScramClient("s3cret-pw");
        String serverFirst = server.serverFirst(client.clientFirstMessage()).orElseThrow();
        assertThat(serverFirst).contains(",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
        assertThat(server.verify(client.clientFinalMessage(serverFirst), secret)).isTrue();
        assertThat(client.verifyServerFinal(server.serverFinal(secret))).isTrue();
    }

    @Test
    void wrongPasswordsAndTamperedMessagesFailAlike() {
        ScramSecret secret = ScramSecret.derive("right", RFC_SALT, 4096);
        Map<String, java.util.function.UnaryOperator<String>> tamperings = Map.of(
                "unchanged (wrong password)", m -> m,
                "other nonce", m -> m.replaceFirst(",r=", ",r=x"),
                "channel binding claimed", m -> m.replace("c=biws", "c=eSws"),
                "no proof", m -> m.substring(0, m.indexOf(",p=")),
                "proof not base64", m -> m.substring(0, m.indexOf(",p=")) + ",p=%%%",
                "garbage", m -> "garbage");
        tamperings.forEach((name, tamper) -> {
            ScramServer server = new ScramServer(RFC_SALT, 4096);
            ScramClient client = new ScramClient("wrong");
            String serverFirst = server.serverFirst(client.clientFirstMessage()).orElseThrow();
            assertThat(server.verify(tamper.apply(client.clientFinalMessage(serverFirst)), secret)).as(name)
                    .isFalse();
        });
        // the right password with a tampered nonce still fails
        ScramServer server = new ScramServer(RFC_SALT, 4096);
        ScramClient client = new ScramClient("right");
        String serverFirst = server.serverFirst(client.clientFirstMessage()).orElseThrow();
        assertThat(server.verify(client.clientFinalMessage(serverFirst).replaceFirst(",r=", ",r=x"), secret))
                .isFalse();
    }

    @Test
    void malformedClientFirstMessagesAreRefused() {
        for (String clientFirst : new String[] {"", "p=tls-server-end-point,,n=,r=abc", "n,a=admin,n=,r=abc",
                "n,,r=abc", "n,,n=,r=", "n,,n=,r=a b", "x,,n=,r=abc"}) {
            assertThat(new ScramServer(RFC_SALT, 4096).serverFirst(clientFirst)).as(clientFirst).isEmpty();
        }
        assertThat(new ScramServer(RFC_SALT, 4096).serverFirst("y,,n=,r=abc")).isPresent();
    }
}
