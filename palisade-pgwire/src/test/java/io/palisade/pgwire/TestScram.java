package io.palisade.pgwire;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.security.MessageDigest;
import java.util.Base64;
import org.junit.jupiter.api.Test;

/** RFC 7677 section 3's SCRAM-SHA-256 example, from the client's side and the server verifier's. */
class TestScram {
    private static final String CLIENT_NONCE = "rOprNGfwEbeRWgbNEkqO";
    private static final String SERVER_FIRST =
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    private static final String CLIENT_FINAL = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
            + "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    private static final String SERVER_FINAL = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    @Test
    void clientMatchesTheRfcExample() {
        ScramClient client = new ScramClient("user", "pencil", CLIENT_NONCE);
        assertThat(client.clientFirstMessage()).isEqualTo("n,,n=user,r=" + CLIENT_NONCE);
        assertThat(client.clientFinalMessage(SERVER_FIRST)).isEqualTo(CLIENT_FINAL);
        assertThat(client.verifyServerFinal(SERVER_FINAL)).isTrue();
    }

    @Test
    void aWrongServerSignatureIsRejected() {
        ScramClient client = new ScramClient("user", "pencil", CLIENT_NONCE);
        client.clientFirstMessage();
        client.clientFinalMessage(SERVER_FIRST);
        assertThat(client.verifyServerFinal("v=" + Base64.getEncoder().encodeToString(new byte[32]))).isFalse();
        assertThat(client.verifyServerFinal("e=invalid-proof")).isFalse();
        assertThat(client.verifyServerFinal("v=%%%")).isFalse();
    }

    @Test
    void hostileOrMalformedServerFirstMessagesAreRefused() {
        ScramClient tooCostly = new ScramClient("", "pencil", CLIENT_NONCE);
        tooCostly.clientFirstMessage();
        assertThatThrownBy(() -> tooCostly.clientFinalMessage(SERVER_FIRST.replace("i=4096", "i=4097")))
                .hasMessageContaining("asks for 4097 SCRAM iterations; palisade accepts 1 to 4096");
        ScramClient wrongNonce = new ScramClient("", "pencil", CLIENT_NONCE);
        wrongNonce.clientFirstMessage();
        assertThatThrownBy(() -> wrongNonce.clientFinalMessage(SERVER_FIRST.replace("r=rOpr", "r=XXpr")))
                .hasMessageContaining("does not extend our nonce");
        ScramClient noSalt = new ScramClient("", "pencil", CLIENT_NONCE);
        noSalt.clientFirstMessage();
        assertThatThrownBy(() -> noSalt.clientFinalMessage("r=" + CLIENT_NONCE + "abc,i=4096"))
                .hasMessageContaining("malformed");
    }

    @Test
    void verifierLetsTheServerCheckTheRfcProofAndSign() throws Exception {
        byte[] salt = Base64.getDecoder().decode("W22ZaJ0SNY7soEsUEjb6gQ==");
        String verifier = ScramVerifier.of("pencil", salt, 4096);
        String[] parts = verifier.split("[$:]");
        assertThat(parts[0]).isEqualTo("SCRAM-SHA-256");
        assertThat(parts[1]).isEqualTo("4096");
        assertThat(parts[2]).isEqualTo("W22ZaJ0SNY7soEsUEjb6gQ==");
        byte[] storedKey = Base64.getDecoder().decode(parts[3]);
        byte[] serverKey = Base64.getDecoder().decode(parts[4]);

        byte[] authMessage = ("n=user,r=" + CLIENT_NONCE + "," + SERVER_FIRST + ","
                + CLIENT_FINAL.substring(0, CLIENT_FINAL.indexOf(",p="))).getBytes(UTF_8);
        // the server's check: H(proof XOR HMAC(StoredKey, AuthMessage)) == StoredKey
        byte[] proof = Base64.getDecoder().decode(CLIENT_FINAL.substring(CLIENT_FINAL.indexOf(",p=") + 3));
        byte[] signature = ScramClient.hmac(storedKey, authMessage);
        byte[] clientKey = new byte[proof.length];
        for (int i = 0; i < proof.length; i++) {
            clientKey[i] = (byte) (proof[i] ^ signature[i]);
        }
        assertThat(MessageDigest.getInstance("SHA-256").digest(clientKey)).isEqualTo(storedKey);
        assertThat("v=" + Base64.getEncoder().encodeToString(ScramClient.hmac(serverKey, authMessage)))
                .isEqualTo(SERVER_FINAL);
    }

    @Test
    void verifiersAreSaltedRandomly() {
        assertThat(ScramVerifier.of("same")).isNotEqualTo(ScramVerifier.of("same")).startsWith("SCRAM-SHA-256$4096:");
    }

    @Test
    void md5ResponseMatchesPostgres() {
        // md5(md5("secret" + "alice") + salt): the value libpq computes for this user, password and salt
        String inner = "md5" + java.util.HexFormat.of().formatHex(md5("secretalice"));
        assertThat(inner).hasSize(35);
        byte[] salt = {1, 2, 3, 4};
        byte[] outerInput = new byte[32 + 4];
        System.arraycopy(inner.substring(3).getBytes(UTF_8), 0, outerInput, 0, 32);
        System.arraycopy(salt, 0, outerInput, 32, 4);
        assertThat(Md5Password.response("secret", "alice", salt))
                .isEqualTo("md5" + java.util.HexFormat.of().formatHex(md5(outerInput)));
    }

    private static byte[] md5(String text) {
        return md5(text.getBytes(UTF_8));
    }

    private static byte[] md5(byte[] bytes) {
        try {
            return MessageDigest.getInstance("MD5").digest(bytes);
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        }
    }

    @Test
    void aRepeatedLoginDerivesTheSaltedPasswordOnce() {
        ScramClient first = new ScramClient("", "pencil", CLIENT_NONCE);
        first.clientFirstMessage();
        String expected = first.clientFinalMessage(SERVER_FIRST);
        ScramClient again = new ScramClient("", "pencil", CLIENT_NONCE);
        again.clientFirstMessage();
        assertThat(again.clientFinalMessage(SERVER_FIRST)).as("the same proof from the cached key").isEqualTo(expected);
        ScramClient other = new ScramClient("", "pencil2", CLIENT_NONCE);
        other.clientFirstMessage();
        assertThat(other.clientFinalMessage(SERVER_FIRST)).as("another password is another key").isNotEqualTo(expected);
    }
}
