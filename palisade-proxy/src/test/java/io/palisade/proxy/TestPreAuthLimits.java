package io.palisade.proxy;

import static org.assertj.core.api.Assertions.assertThat;

import java.net.InetAddress;
import org.junit.jupiter.api.Test;

/** The pre-authentication caps without sockets. */
class TestPreAuthLimits {
    @Test
    void capsPerSourceAndInTotalAndMovesAuthenticatedSessionsOut() throws Exception {
        PreAuthLimits limits = new PreAuthLimits(3, 2, 1);
        InetAddress a = InetAddress.getByName("10.0.0.1");
        InetAddress b = InetAddress.getByName("10.0.0.2");
        PreAuthLimits.Ticket a1 = limits.tryEnter(a);
        PreAuthLimits.Ticket a2 = limits.tryEnter(a);
        assertThat(limits.tryEnter(a)).as("per source").isNull();
        PreAuthLimits.Ticket b1 = limits.tryEnter(b);
        assertThat(limits.tryEnter(InetAddress.getByName("10.0.0.3"))).as("in total").isNull();
        assertThat(limits.unauthenticated()).isEqualTo(3);

        assertThat(a1.authenticate()).isTrue();
        assertThat(limits.unauthenticated()).isEqualTo(2);
        assertThat(limits.authenticated()).isEqualTo(1);
        assertThat(limits.tryEnter(a)).as("a seat of a's was freed").isNotNull();
        assertThat(a2.authenticate()).as("the authenticated cap").isFalse();
        a2.leave();
        a2.leave();
        a1.leave();
        a1.leave();
        b1.leave();
        assertThat(limits.authenticated()).isZero();
        assertThat(limits.unauthenticated()).isEqualTo(1);
    }

    @Test
    void ipv6IsCountedByItsSlash64() throws Exception {
        assertThat(PreAuthLimits.sourceKey(InetAddress.getByName("2001:db8:1:2:aaaa::1")))
                .isEqualTo(PreAuthLimits.sourceKey(InetAddress.getByName("2001:db8:1:2:bbbb::2")))
                .isNotEqualTo(PreAuthLimits.sourceKey(InetAddress.getByName("2001:db8:1:3::1")));
        InetAddress v4 = InetAddress.getByName("192.0.2.7");
        assertThat(PreAuthLimits.sourceKey(v4)).isEqualTo(v4);
    }
}
