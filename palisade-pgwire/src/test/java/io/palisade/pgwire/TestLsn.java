package io.palisade.pgwire;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class TestLsn {
    private static final long SEG = Lsn.DEFAULT_SEGMENT_SIZE;

    @Test
    void parsesAndPrintsPostgresForm() {
        Lsn lsn = Lsn.parse("16/B374D848");
        assertThat(lsn.value()).isEqualTo(0x16_B374_D848L);
        assertThat(lsn).hasToString("16/B374D848");
        assertThat(Lsn.parse("0/0")).isEqualTo(Lsn.INVALID);
        assertThat(Lsn.parse("0/0").isValid()).isFalse();
        assertThat(Lsn.parse("ffffffff/ffffffff").value()).isEqualTo(-1L);
        assertThat(new Lsn(-1L)).hasToString("FFFFFFFF/FFFFFFFF");
        assertThat(new Lsn(0x1_0000_0000L)).hasToString("1/0");
    }

    @Test
    void rejectsMalformedText() {
        for (String bad : new String[] {"", "16", "/1", "1/", "123456789/0", "0/123456789", "g/0", "1/2/3", "-1/0"}) {
            assertThatThrownBy(() -> Lsn.parse(bad)).as(bad).isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("16/B374D848");
        }
    }

    @Test
    void comparesUnsigned() {
        assertThat(Lsn.parse("FFFFFFFF/0")).isGreaterThan(Lsn.parse("7FFFFFFF/FFFFFFFF"));
        assertThat(Lsn.parse("1/0").isAfter(Lsn.parse("0/FFFFFFFF"))).isTrue();
        assertThat(Lsn.max(Lsn.parse("1/0"), Lsn.parse("0/5"))).isEqualTo(Lsn.parse("1/0"));
        assertThat(Lsn.parse("0/10").plus(0x20)).isEqualTo(Lsn.parse("0/30"));
        assertThat(Lsn.parse("0/30").minus(Lsn.parse("0/10"))).isEqualTo(0x20);
    }

    @Test
    void segmentsAndWalFileNames() {
        Lsn lsn = Lsn.parse("16/B374D848");
        assertThat(lsn.segmentStart(SEG)).isEqualTo(Lsn.parse("16/B3000000"));
        assertThat(lsn.segmentOffset(SEG)).isEqualTo(0x74D848);
        assertThat(lsn.segmentNumber(SEG)).isEqualTo(0x16L * 256 + 0xB3);
        assertThat(Lsn.walFileName(1, lsn.segmentNumber(SEG))).isEqualTo("0000000100000016000000B3");
        assertThat(lsn.segmentFileName(3, SEG)).isEqualTo("0000000300000016000000B3");
        // 64 MiB segments: 64 per 4 GiB "log id"
        assertThat(lsn.segmentFileName(1, 64L << 20)).isEqualTo("00000001000000160000002C");
        assertThat(Lsn.ofWalFileName("0000000100000016000000B3", SEG)).isEqualTo(Lsn.parse("16/B3000000"));
        assertThatThrownBy(() -> lsn.segmentStart(3_000_000)).hasMessageContaining("power of two");
        assertThatThrownBy(() -> Lsn.walFileName(0, 1)).hasMessageContaining("timeline");
        assertThatThrownBy(() -> Lsn.ofWalFileName("00000001.history", SEG)).hasMessageContaining("24 hex digits");
    }
}
