package io.palisade.vmm;

import static java.util.Objects.requireNonNull;

import io.palisade.spi.Endpoint;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;

/**
 * The per-agent IPv4 pool the VMs' /30 veth links come from (a /16 holds 16,384 slots). Slot {@code n} is the /30 at
 * {@code base + 4n}: {@code .1} is the host end of the veth, {@code .2} the end inside the VM's namespace (the address
 * the proxy dials). Allocations are persisted as one file per slot ({@code <dir>/<n>} holding the id), so they survive
 * a restart of palisade and are freed by {@link #release(String)}. Thread-safe (all state guarded by {@code this}).
 */
public final class NetworkPool {
    private final int base;
    private final int prefix;
    private final Path dir;
    private final Map<String, Integer> slotById = new HashMap<>();
    private final TreeMap<Integer, String> idBySlot = new TreeMap<>();

    /** One allocated /30. */
    public record Slot(int index, int network) {
        public String hostAddress() {
            return format(network + 1);
        }

        public String namespaceAddress() {
            return format(network + 2);
        }

        /** Where the guest's PostgreSQL is reached from the host: the namespace's veth address, PostgreSQL's port. */
        public Endpoint postgresEndpoint() {
            return new Endpoint(namespaceAddress(), VmNetwork.POSTGRES_PORT);
        }

        public String cidr() {
            return format(network) + "/30";
        }
    }

    /** A parsed pool CIDR. */
    public record Cidr(int base, int prefix) {
        public int slots() {
            return 1 << (30 - prefix);
        }

        public boolean contains(String address) {
            int ip = parseAddress(address);
            int mask = prefix == 0 ? 0 : -1 << (32 - prefix);
            return (ip & mask) == base;
        }
    }

    NetworkPool(String cidr, Path dir) {
        Cidr parsed = parse(cidr);
        this.base = parsed.base();
        this.prefix = parsed.prefix();
        this.dir = requireNonNull(dir, "dir is null");
        load();
    }

    public static Cidr parse(String cidr) {
        requireNonNull(cidr, "cidr is null");
        int slash = cidr.indexOf('/');
        if (slash < 0) {
            throw PalisadeException.invalid(
                    "vm.network-pool must be an IPv4 CIDR like 10.213.0.0/16, got '" + cidr + "'");
        }
        int prefix;
        try {
            prefix = Integer.parseInt(cidr.substring(slash + 1));
        } catch (NumberFormatException e) {
            throw PalisadeException.invalid("vm.network-pool has a bad prefix length: '" + cidr + "'");
        }
        if (prefix < 8 || prefix > 30) {
            throw PalisadeException.invalid("vm.network-pool prefix must be between /8 and /30, got '" + cidr + "'");
        }
        int address = parseAddress(cidr.substring(0, slash));
        int mask = -1 << (32 - prefix);
        if ((address & mask) != address) {
            throw PalisadeException.invalid(
                    "vm.network-pool '" + cidr + "' has host bits set; did you mean " + format(address & mask) + "/"
                            + prefix + "?");
        }
        if (new Cidr(address, prefix).contains("172.31.255.2") || new Cidr(address, prefix).contains("172.31.255.1")) {
            throw PalisadeException.invalid(
                    "vm.network-pool '" + cidr + "' overlaps the guests' baked link 172.31.255.0/30");
        }
        return new Cidr(address, prefix);
    }

    static int parseAddress(String text) {
        String[] parts = text.strip().split("\\.");
        if (parts.length != 4) {
            throw PalisadeException.invalid("not an IPv4 address: '" + text + "'");
        }
        int value = 0;
        for (String part : parts) {
            int octet;
            try {
                octet = Integer.parseInt(part);
            } catch (NumberFormatException e) {
                throw PalisadeException.invalid("not an IPv4 address: '" + text + "'");
            }
            if (octet < 0 || octet > 255) {
                throw PalisadeException.invalid("not an IPv4 address: '" + text + "'");
            }
            value = (value << 8) | octet;
        }
        return value;
    }

    static String format(int address) {
        return ((address >>> 24) & 0xff) + "." + ((address >>> 16) & 0xff) + "." + ((address >>> 8) & 0xff) + "."
                + (address & 0xff);
    }

    public Cidr cidr() {
        return new Cidr(base, prefix);
    }

    private synchronized void load() {
        slotById.clear();
        idBySlot.clear();
        if (!Files.isDirectory(dir)) {
            return;
        }
        try (var files = Files.list(dir)) {
            for (Path file : files.toList()) {
                String name = file.getFileName().toString();
                if (!name.matches("\\d+")) {
                    continue;
                }
                int index = Integer.parseInt(name);
                String id = Files.readString(file, StandardCharsets.UTF_8).strip();
                if (index < cidr().slots() && !id.isEmpty()) {
                    slotById.put(id, index);
                    idBySlot.put(index, id);
                }
            }
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.INTERNAL, "cannot read the network slot files in " + dir, e);
        }
    }

    /** The slot of {@code id}, allocating the lowest free one if it has none. */
    public synchronized Slot allocate(String id) {
        requireNonNull(id, "id is null");
        Integer existing = slotById.get(id);
        if (existing != null) {
            return slot(existing);
        }
        try {
            Files.createDirectories(dir);
            for (int index = 0; index < cidr().slots(); index++) {
                if (idBySlot.containsKey(index)) {
                    continue;
                }
                try {
                    Files.writeString(dir.resolve(Integer.toString(index)), id + "\n", StandardCharsets.UTF_8,
                            java.nio.file.StandardOpenOption.CREATE_NEW, java.nio.file.StandardOpenOption.WRITE);
                } catch (FileAlreadyExistsException e) {
                    // another driver process took it since we loaded; skip
                    continue;
                }
                slotById.put(id, index);
                idBySlot.put(index, id);
                return slot(index);
            }
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.INTERNAL, "cannot persist a network slot under " + dir, e);
        }
        throw new PalisadeException(
                ErrorCode.CAPACITY_EXHAUSTED,
                "the VM network pool " + format(base) + "/" + prefix + " has no free /30 (" + cidr().slots()
                        + " slots in use); destroy unused databases or configure a larger vm.network-pool");
    }

    public synchronized Optional<Slot> find(String id) {
        Integer index = slotById.get(id);
        return index == null ? Optional.empty() : Optional.of(slot(index));
    }

    /** Frees the slot of {@code id}; a no-op if it has none. */
    public synchronized void release(String id) {
        Integer index = slotById.remove(id);
        if (index == null) {
            return;
        }
        idBySlot.remove(index);
        try {
            Files.deleteIfExists(dir.resolve(Integer.toString(index)));
        } catch (IOException e) {
            throw new PalisadeException(ErrorCode.INTERNAL, "cannot free network slot " + index + " in " + dir, e);
        }
    }

    public synchronized Map<String, Slot> allocations() {
        Map<String, Slot> result = new HashMap<>();
        slotById.forEach((id, index) -> result.put(id, slot(index)));
        return result;
    }

    Slot slot(int index) {
        if (index < 0 || index >= cidr().slots()) {
            throw new IllegalArgumentException("slot out of range: " + index);
        }
        return new Slot(index, base + 4 * index);
    }
}
