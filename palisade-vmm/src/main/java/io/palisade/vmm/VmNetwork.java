package io.palisade.vmm;

import static java.util.Objects.requireNonNull;

import io.palisade.host.Processes;
import io.palisade.spi.ErrorCode;
import io.palisade.spi.PalisadeException;
import java.net.NetworkInterface;
import java.net.SocketException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.TreeSet;

/**
 * The NATID network of one VM, every name derived from the instance id so that it can be removed after a crash:
 * namespace {@code pal-<id>} holding the tap {@code tap0} (the guest's gateway, 172.31.255.1/30) and the veth end
 * {@code veth0} ({@code <slot>.2/30}); the host end {@code pv-<hash>} ({@code <slot>.1/30}) stays in the root
 * namespace.
 * Inside the namespace, iptables DNATs {@code <slot>.2:5432} to the guest's baked address and SNATs to the gateway; the
 * filter table forwards nothing else, so the guest has no egress and cannot reach other VMs, the namespace or the
 * host. The one exception is a route to the host opened for a move ({@link #rules(NetworkPool.Slot, Collection)}):
 * the guest's gateway on one port, forwarded to that port on the host end of the veth link, while it is open.
 * Immutable; the commands it runs are idempotent per id.
 */
public record VmNetwork(String id, String namespace, String hostVeth, String guestAddress, String guestGateway) {
    public static final String NAMESPACE_PREFIX = "pal-";
    public static final String TAP = "tap0";
    public static final String NS_VETH = "veth0";
    /**
     * The MAC addresses of the veth link's two ends (host, namespace), the same for every namespace (each link is a
     * segment of its own; locally administered, unicast). Each end knows the other's without ARP: an ARP request sent
     * while a just-created link was not ready yet was lost, and asked again only after 1 s, so a clone's first
     * connection waited ~1 s in 1 to 6 of 20 creates (a capture showed nothing on the link until the retry). The
     * neighbour entries are permanent: they never expire and never heal, which holds because both MACs are given when
     * the link is created (udev's MACAddressPolicy leaves an address set by the creator alone) and nothing else on the
     * host has reason to change them.
     */
    static final String HOST_VETH_MAC = "02:70:61:6c:00:0a";
    static final String NS_VETH_MAC = "02:70:61:6c:00:0b";
    public static final int POSTGRES_PORT = 5432;
    private static final Duration COMMAND_TIMEOUT = Duration.ofSeconds(20);

    public VmNetwork {
        requireNonNull(id, "id is null");
        requireNonNull(namespace, "namespace is null");
        requireNonNull(hostVeth, "hostVeth is null");
        requireNonNull(guestAddress, "guestAddress is null");
        requireNonNull(guestGateway, "guestGateway is null");
        if (hostVeth.length() > 15) {
            throw new IllegalArgumentException("interface name longer than 15 characters: " + hostVeth);
        }
    }

    public static VmNetwork forId(String id, String guestAddress, String guestGateway) {
        return new VmNetwork(id, namespaceName(id), hostVethName(id), guestAddress, guestGateway);
    }

    public static String namespaceName(String id) {
        return NAMESPACE_PREFIX + id;
    }

    /** {@code pv-} and 12 hex digits of SHA-256(id): 15 characters, the kernel's limit. */
    public static String hostVethName(String id) {
        try {
            byte[] digest = MessageDigest.getInstance("SHA-256").digest(id.getBytes(StandardCharsets.UTF_8));
            return "pv-" + HexFormat.of().formatHex(digest).substring(0, 12);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    public boolean namespaceExists() {
        return Files.exists(Path.of("/run/netns", namespace));
    }

    public boolean hostVethExists() {
        return Files.exists(Path.of("/sys/class/net", hostVeth));
    }

    /** The command prefix that runs a program inside this VM's namespace. */
    public List<String> execPrefix() {
        return List.of("ip", "netns", "exec", namespace);
    }

    /**
     * Fails when another interface of the host already has the slot's host address (a namespace left by a palisade
     * that died, or another one sharing the pool): a second route to the same /30 would leave this VM unreachable, and
     * its boot would only time out.
     */
    private void requireAddressFree(NetworkPool.Slot slot) {
        Optional<String> owner;
        try {
            owner = NetworkInterface.networkInterfaces()
                    .filter(nif -> nif.inetAddresses()
                            .anyMatch(address -> address.getHostAddress().equals(slot.hostAddress())))
                    .map(NetworkInterface::getName)
                    .findFirst();
        } catch (SocketException e) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot list the host's network interfaces to"
                    + " check that " + slot.hostAddress() + " is free: " + e.getMessage(), e);
        }
        if (owner.isPresent()) {
            throw new PalisadeException(ErrorCode.CONFLICT, "the host address " + slot.hostAddress() + " of " + id
                    + "'s network slot is already on another interface (" + owner.get() + "): another"
                    + " palisade uses this VM pool, or one left a namespace behind (ip netns list); remove it or give"
                    + " this palisade another vm.network-pool");
        }
    }

    /** Creates namespace, tap, veth, addresses and NAT rules from scratch (whatever was left is removed first). */
    public void create(NetworkPool.Slot slot) {
        teardown();
        requireAddressFree(slot);
        try {
            // three processes, not fourteen: each costs ~8 ms, and a clone create waits for the network
            ipBatch(List.of(),
                    "netns add " + namespace,
                    "link add " + hostVeth + " address " + HOST_VETH_MAC + " type veth peer name " + NS_VETH
                            + " address " + NS_VETH_MAC + " netns " + namespace,
                    "addr add " + slot.hostAddress() + "/30 dev " + hostVeth,
                    "neigh replace " + slot.namespaceAddress() + " lladdr " + NS_VETH_MAC + " dev " + hostVeth
                            + " nud permanent",
                    "link set " + hostVeth + " up");
            ipBatch(List.of("-n", namespace),
                    "link set lo up",
                    "tuntap add dev " + TAP + " mode tap",
                    "addr add " + guestGateway + "/30 dev " + TAP,
                    "link set " + TAP + " up",
                    "addr add " + slot.namespaceAddress() + "/30 dev " + NS_VETH,
                    "neigh replace " + slot.hostAddress() + " lladdr " + HOST_VETH_MAC + " dev " + NS_VETH
                            + " nud permanent",
                    "link set " + NS_VETH + " up");
            inNamespace(List.of("sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward && exec iptables-restore"),
                    rules(slot));
        } catch (RuntimeException e) {
            teardown();
            throw e;
        }
    }

    /** The iptables-restore input for the namespace: DNAT to the guest, SNAT to the gateway, nothing else forwarded. */
    String rules(NetworkPool.Slot slot) {
        return rules(slot, List.of());
    }

    /**
     * The namespace's rules with routes from the guest to the host open (see {@link #applyRules}): for each port P the
     * guest dials its gateway on P, which is DNATed to the host end of the veth link on P and SNATed to the namespace's
     * veth address (the host routes replies to that address only); the filter table forwards new connections of that
     * one flow and the replies to them, nothing else.
     */
    String rules(NetworkPool.Slot slot, Collection<Integer> routePorts) {
        List<String> filter = new ArrayList<>(List.of(
                "*filter",
                ":INPUT DROP [0:0]",
                ":FORWARD DROP [0:0]",
                ":OUTPUT ACCEPT [0:0]",
                "-A INPUT -i lo -j ACCEPT",
                "-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
                "-A FORWARD -i " + NS_VETH + " -o " + TAP + " -p tcp -d " + guestAddress + " --dport " + POSTGRES_PORT
                        + " -m conntrack --ctstate NEW,ESTABLISHED -j ACCEPT",
                "-A FORWARD -i " + TAP + " -o " + NS_VETH + " -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT"));
        List<String> nat = new ArrayList<>(List.of(
                "*nat",
                ":PREROUTING ACCEPT [0:0]",
                ":INPUT ACCEPT [0:0]",
                ":OUTPUT ACCEPT [0:0]",
                ":POSTROUTING ACCEPT [0:0]",
                "-A PREROUTING -i " + NS_VETH + " -d " + slot.namespaceAddress() + " -p tcp --dport " + POSTGRES_PORT
                        + " -j DNAT --to-destination " + guestAddress + ":" + POSTGRES_PORT,
                "-A POSTROUTING -o " + TAP + " -j SNAT --to-source " + guestGateway));
        for (int port : new TreeSet<>(routePorts)) {
            if (port < 1 || port > 65535) {
                throw new IllegalArgumentException("route port out of range: " + port);
            }
            String flow = " -p tcp -s " + guestAddress + " -d " + slot.hostAddress() + " --dport " + port;
            filter.add("-A FORWARD -i " + TAP + " -o " + NS_VETH + flow
                    + " -m conntrack --ctstate NEW,ESTABLISHED -j ACCEPT");
            filter.add("-A FORWARD -i " + NS_VETH + " -o " + TAP + " -p tcp -s " + slot.hostAddress() + " --sport "
                    + port + " -d " + guestAddress + " -m conntrack --ctstate ESTABLISHED -j ACCEPT");
            nat.add("-A PREROUTING -i " + TAP + " -s " + guestAddress + " -d " + guestGateway + " -p tcp --dport "
                    + port + " -j DNAT --to-destination " + slot.hostAddress() + ":" + port);
            nat.add("-A POSTROUTING -o " + NS_VETH + flow + " -j SNAT --to-source " + slot.namespaceAddress());
        }
        filter.add("COMMIT");
        nat.add("COMMIT");
        nat.add("");
        filter.addAll(nat);
        return String.join("\n", filter);
    }

    /**
     * Replaces the namespace's rules, atomically, by the base rules plus the given routes to the host; an empty set
     * restores the base rules. Fails if the namespace does not exist.
     */
    public void applyRules(NetworkPool.Slot slot, Collection<Integer> routePorts) {
        if (!namespaceExists()) {
            throw new PalisadeException(ErrorCode.CONFLICT, "the network namespace " + namespace + " of " + id
                    + " does not exist (the VM is not running); start it first");
        }
        inNamespace(List.of("iptables-restore"), rules(slot, routePorts));
    }

    /** Removes namespace (with tap, inner veth and rules) and the host veth. Idempotent; bounded. */
    public void teardown() {
        if (namespaceExists()) {
            Processes.Result result = Processes.run(List.of("ip", "netns", "del", namespace), COMMAND_TIMEOUT, null);
            if (!result.ok() && namespaceExists()) {
                throw new PalisadeException(
                        ErrorCode.DRIVER_FAILURE,
                        "cannot delete network namespace " + namespace + ": " + Processes.tail(result.output(), 3)
                                + "; is a process still inside it? (ip netns pids " + namespace + ")");
            }
        }
        // deleting the namespace destroys veth0 and with it the host end, but the kernel does so asynchronously
        long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
        while (hostVethExists() && System.nanoTime() < deadline) {
            Processes.run(List.of("ip", "link", "del", hostVeth), COMMAND_TIMEOUT, null);
            if (hostVethExists()) {
                Processes.sleep(Duration.ofMillis(50));
            }
        }
        if (hostVethExists()) {
            throw new PalisadeException(ErrorCode.DRIVER_FAILURE, "cannot delete veth " + hostVeth + " of " + id);
        }
    }

    /** Runs a command inside the namespace and returns its output; fails on a non-zero exit. */
    public String inNamespace(List<String> command, String input) {
        List<String> full = new java.util.ArrayList<>(execPrefix());
        full.addAll(command);
        Processes.Result result = Processes.run(full, COMMAND_TIMEOUT, input);
        if (!result.ok()) {
            throw new PalisadeException(
                    ErrorCode.DRIVER_FAILURE,
                    "'" + String.join(" ", command) + "' in namespace " + namespace + " exited with "
                            + result.exitCode() + ": " + Processes.tail(result.output(), 3));
        }
        return result.output();
    }

    /** Runs {@code ip <options> -batch -} with one command per line; stops at the first that fails, and throws. */
    private static void ipBatch(List<String> options, String... commands) {
        List<String> command = new java.util.ArrayList<>(List.of("ip"));
        command.addAll(options);
        command.addAll(List.of("-batch", "-"));
        Processes.Result result = Processes.run(command, COMMAND_TIMEOUT, String.join("\n", commands) + "\n");
        if (!result.ok()) {
            throw new PalisadeException(
                    ErrorCode.DRIVER_FAILURE,
                    "'ip " + String.join(" ", options) + (options.isEmpty() ? "" : " ") + "-batch' of ["
                            + String.join("; ", commands) + "] exited with " + result.exitCode() + ": "
                            + Processes.tail(result.output(), 3));
        }
    }
}
