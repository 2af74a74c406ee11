package io.palisade.pgwire;

import static java.nio.charset.StandardCharsets.UTF_8;

import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.util.HexFormat;

/** PostgreSQL's MD5 password response: {@code "md5" + md5hex(md5hex(password + user) + salt)}. Stateless. */
public final class Md5Password {
    private Md5Password() {}

    public static String response(String password, String user, byte[] salt) {
        try {
            MessageDigest md5 = MessageDigest.getInstance("MD5");
            String inner = HexFormat.of().formatHex(md5.digest((password + user).getBytes(UTF_8)));
            md5.update(inner.getBytes(UTF_8));
            md5.update(salt);
            return "md5" + HexFormat.of().formatHex(md5.digest());
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("MD5 is not available in this JDK", e);
        }
    }
}
