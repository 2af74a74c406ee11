package io.palisade.backup;

import static org.assertj.core.api.Assertions.assertThat;

import io.palisade.pgwire.Lsn;
import org.junit.jupiter.api.Test;

class TestArchiveLayout {
    @Test
    void walChunkKeysSortInLsnOrderAndParseBack() {
        String early = ArchiveLayout.walChunk("ar-x", 1, Lsn.parse("0/9000000"), Lsn.parse("0/9001000"));
        String late = ArchiveLayout.walChunk("ar-x", 1, Lsn.parse("0/10000000"), Lsn.parse("0/10000800"));
        assertThat(early).isEqualTo("archives/ar-x/wal/00000001/0000000009000000-0000000009001000");
        assertThat(early).isLessThan(late);
        ArchiveLayout.WalChunk parsed = ArchiveLayout.parseWalChunk(late).orElseThrow();
        assertThat(parsed.timeline()).isEqualTo(1);
        assertThat(parsed.start()).isEqualTo(Lsn.parse("0/10000000"));
        assertThat(parsed.end()).isEqualTo(Lsn.parse("0/10000800"));
        assertThat(ArchiveLayout.parseWalChunk("archives/ar-x/base/bb-1/part-00000")).isEmpty();
    }

    @Test
    void walFileNamesAreThoseOfPostgres() {
        assertThat(ArchiveLayout.walFileName(1, Lsn.parse("0/16B3748").value())).isEqualTo("000000010000000000000001");
        assertThat(ArchiveLayout.walFileName(2, Lsn.parse("1/FF000000").value())).isEqualTo("0000000200000001000000FF");
        assertThat(ArchiveLayout.segmentStart(Lsn.parse("0/16B3748").value())).isEqualTo(Lsn.parse("0/1000000").value());
    }
}
