package io.palisade.api;

import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import io.palisade.spi.Plan;
import io.palisade.store.DatabaseRecord;
import java.util.List;
import java.util.Optional;

/**
 * What one account (one API key's owner) may hold: how many databases, how large one database's plan may be and how
 * much vCPU, memory and disk all its databases may have together. Checked before a database is created, restored,
 * forked or moved to another plan; a request beyond a quota gets {@link ErrorCode#QUOTA_EXCEEDED} (403) naming the
 * quota, what the account holds and the configuration key that raises it. Immutable.
 */
public record AccountQuotas(
        int maxDatabases,
        int maxCpuPerDatabase,
        int maxMemoryMbPerDatabase,
        int maxDiskMbPerDatabase,
        int maxCpuTotal,
        int maxMemoryMbTotal,
        long maxDiskMbTotal) {
    /** The defaults of {@code palisade serve} (see the {@code quota.*} configuration keys). */
    public static final AccountQuotas DEFAULTS = new AccountQuotas(100, 8, 16_384, 65_536, 128, 262_144, 1_048_576);

    public AccountQuotas {
        if (maxDatabases < 0 || maxCpuPerDatabase < 1 || maxMemoryMbPerDatabase < Plan.MIN_MEMORY_MB
                || maxDiskMbPerDatabase < 64 || maxCpuTotal < 1 || maxMemoryMbTotal < Plan.MIN_MEMORY_MB
                || maxDiskMbTotal < 64) {
            throw PalisadeException.invalid("quotas must be positive (databases ≥ 0, cpu ≥ 1, memory ≥ "
                    + Plan.MIN_MEMORY_MB + " MB, disk ≥ 64 MB)");
        }
    }

    /**
     * Fails unless the account, holding {@code held}, may have a database with {@code plan}; {@code replacing} names a
     * held database whose plan this one replaces (a move to another plan), not counted twice.
     */
    public void check(String accountId, List<DatabaseRecord> held, Plan plan, Optional<String> replacing) {
        perDatabase(plan.cpu(), maxCpuPerDatabase, "vCPU", "", "quota.cpu-per-database");
        perDatabase(plan.memoryMb(), maxMemoryMbPerDatabase, "memory", " MB", "quota.memory-mb-per-database");
        perDatabase(plan.diskMb(), maxDiskMbPerDatabase, "disk", " MB", "quota.disk-mb-per-database");
        List<DatabaseRecord> others = held.stream()
                .filter(db -> replacing.map(id -> !id.equals(db.id())).orElse(true))
                .toList();
        if (replacing.isEmpty() && others.size() + 1 > maxDatabases) {
            throw exceeded("account " + accountId + " already has " + others.size() + " of its " + maxDatabases
                    + " databases; delete one first, or ask the operator to raise quota.databases");
        }
        total(others.stream().mapToLong(db -> db.plan().cpu()).sum(), plan.cpu(), maxCpuTotal, "vCPU", "",
                accountId, "quota.cpu-total");
        total(others.stream().mapToLong(db -> db.plan().memoryMb()).sum(), plan.memoryMb(), maxMemoryMbTotal,
                "memory", " MB", accountId, "quota.memory-mb-total");
        total(others.stream().mapToLong(db -> db.plan().diskMb()).sum(), plan.diskMb(), maxDiskMbTotal, "disk",
                " MB", accountId, "quota.disk-mb-total");
    }

    private static void perDatabase(int asked, int max, String what, String unit, String key) {
        if (asked > max) {
            throw exceeded("a database may have at most " + max + unit + " " + what + ", asked for " + asked + unit
                    + "; choose a smaller plan, or ask the operator to raise " + key);
        }
    }

    private static void total(long held, int asked, long max, String what, String unit, String accountId, String key) {
        if (held + asked > max) {
            throw exceeded("account " + accountId + " holds " + held + unit + " " + what + " of its " + max + unit
                    + "; " + asked + unit + " more would exceed that; delete or shrink a database, or ask the operator"
                    + " to raise " + key);
        }
    }

    private static PalisadeException exceeded(String detail) {
        return new PalisadeException(ErrorCode.QUOTA_EXCEEDED, detail);
    }
}
