#!/usr/bin/env bash
# Boots a built guest image under QEMU microvm (user-mode networking, loopback-only port forward, restrict=on), checks
# that PostgreSQL answers at the protocol level (and a real query as the admin role when psql is installed), shuts it
# down over QMP (ACPI power button) and prints boot-phase timings from the serial markers.
#
#   guest/boot-test.sh [--dir KEYDIR] [--boots N] [--accel tcg|kvm] [--smp N] [--mem MiB] [--work DIR]
#
# KEYDIR defaults to <repo>/.cache/guest/current. Exit status 0 only if every boot succeeded.
set -euo pipefail

readonly SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly REPO=$(cd "$SCRIPT_DIR/.." && pwd)
readonly READY_TIMEOUT_S=90
readonly ANSWER_TIMEOUT_S=30
readonly STOP_TIMEOUT_S=40

dir=$REPO/.cache/guest/current
boots=1
accel=tcg
smp=1
mem=256
work_parent=

while [ $# -gt 0 ]; do
    case "$1" in
        --dir) dir=${2:?}; shift 2 ;;
        --boots) boots=${2:?}; shift 2 ;;
        --accel) accel=${2:?}; shift 2 ;;
        --smp) smp=${2:?}; shift 2 ;;
        --mem) mem=${2:?}; shift 2 ;;
        --work) work_parent=${2:?}; shift 2 ;;
        -h|--help) sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "boot-test.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
done

die() { echo "boot-test.sh: error: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (reads admin-secret)"
dir=$(cd "$dir" && pwd -P) || die "no image directory $dir (run guest/build.sh)"
for f in vmlinux initramfs.cpio rootfs.ext4 admin-secret; do [ -s "$dir/$f" ] || die "missing $dir/$f"; done
volume=$(ls "$dir"/data-*.ext4 2>/dev/null | head -1)
[ -n "$volume" ] || die "no data-*.ext4 in $dir"
case "$accel" in
    tcg) accel_opt="-accel tcg,thread=multi"; cpu=max ;;
    kvm) accel_opt="-accel kvm"; cpu=host ;;
    *) die "--accel must be tcg or kvm" ;;
esac

# The host TSC rate in kHz for tsc_early_khz (TCG guests otherwise hang ~30 % of boots in timer calibration).
tsc_khz() {
    local mhz
    mhz=$(dmesg 2>/dev/null | sed -n 's/.*tsc: Refined TSC clocksource calibration: \([0-9.]*\) MHz.*/\1/p' | tail -1)
    [ -n "$mhz" ] || mhz=$(dmesg 2>/dev/null | sed -n 's/.*tsc: Detected \([0-9.]*\) MHz.*/\1/p' | tail -1)
    [ -n "$mhz" ] || mhz=$(awk -F: '/^cpu MHz/ { gsub(/ /, "", $2); print $2; exit }' /proc/cpuinfo)
    awk -v m="$mhz" 'BEGIN { printf "%d", m * 1000 }'
}
khz=$(tsc_khz)
[ "$khz" -gt 0 ] || die "cannot determine the host TSC frequency"

work=$(mktemp -d "${work_parent:-${TMPDIR:-/tmp}}/boot-test.XXXXXX")
qemu_pid=
cleanup() {
    if [ -n "$qemu_pid" ] && kill -0 "$qemu_pid" 2>/dev/null; then kill -KILL "$qemu_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

now_ns() { date +%s%N; }
ms_since() { echo $(( ($(now_ns) - $1) / 1000000 )); }

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 40000))
        port_free "$p" && { echo "$p"; return; }
    done
}

# SSLRequest -> a PostgreSQL server answers one byte, 'N' (no TLS) or 'S'. A forwarder that accepts TCP before
# anything listens in the guest closes instead, so this is a protocol-level readiness check.
pg_answers() {
    local port=$1 reply=
    {
        exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
        printf '\x00\x00\x00\x08\x04\xd2\x16\x2f' >&3
        IFS= read -r -n 1 -t 2 reply <&3 || true
        exec 3>&-
    } 2>/dev/null
    [ "$reply" = N ] || [ "$reply" = S ]
}

qmp() {
    local port=$1 cmd=$2 line
    {
        exec 4<>"/dev/tcp/127.0.0.1/$port" || return 1
        IFS= read -r -t 5 line <&4 || { exec 4>&-; return 1; }
        printf '{"execute":"qmp_capabilities"}\n' >&4
        IFS= read -r -t 5 line <&4 || { exec 4>&-; return 1; }
        printf '{"execute":"%s"}\n' "$cmd" >&4
        # Events (e.g. POWERDOWN) may come before the command's return.
        for _ in 1 2 3 4 5; do
            IFS= read -r -t 5 line <&4 || break
            case "$line" in *'"return"'*|*'"error"'*) break ;; esac
        done
        exec 4>&-
    } 2>/dev/null
    case "$line" in *'"return"'*) return 0 ;; *) return 1 ;; esac
}

declare -a results=()
failures=0
hangs=0
have_psql=0
command -v psql >/dev/null 2>&1 && have_psql=1

echo "      boot   initramfs      init  pg-start     ready  pg-answer  stop   (ms since QEMU start; accel $accel, -smp $smp, -m ${mem}M)"
for ((b = 1; b <= boots; b++)); do
    vol=$work/vol.ext4
    rm -f "$vol"
    cp --sparse=always "$volume" "$vol"
    serial=$work/serial.$b.log
    : > "$serial"
    pg_port=$(pick_port)
    qmp_port=$(pick_port)
    [ "$pg_port" != "$qmp_port" ] || qmp_port=$(pick_port)
    t0=$(now_ns)
    # shellcheck disable=SC2086
    qemu-system-x86_64 -M microvm,pit=on,pic=on,rtc=on $accel_opt -cpu "$cpu" -smp "$smp" -m "${mem}M" \
        -nodefaults -no-user-config -nographic -no-reboot \
        -serial "file:$serial" -qmp "tcp:127.0.0.1:$qmp_port,server=on,wait=off" \
        -kernel "$dir/vmlinux" -initrd "$dir/initramfs.cpio" \
        -append "console=ttyS0 reboot=k panic=1 quiet tsc_early_khz=$khz tsc=reliable cryptomgr.notests palisade.ip=172.31.255.2/30 palisade.gw=172.31.255.1" \
        -drive "id=root,file=$dir/rootfs.ext4,format=raw,if=none,readonly=on" -device virtio-blk-device,drive=root \
        -drive "id=data,file=$vol,format=raw,if=none" -device virtio-blk-device,drive=data \
        -netdev "user,id=n0,restrict=on,net=172.31.255.0/24,host=172.31.255.1,hostfwd=tcp:127.0.0.1:$pg_port-172.31.255.2:5432" \
        -device virtio-net-device,netdev=n0 \
        > "$work/qemu.$b.out" 2>&1 &
    qemu_pid=$!

    t_ir=- t_init=- t_pgs=- t_ready=- t_ans=- t_stop=- status=ok
    while :; do
        if ! kill -0 "$qemu_pid" 2>/dev/null; then status="qemu exited early"; break; fi
        s=$(<"$serial")
        [ "$t_ir" != - ] || [[ $s != *"PALISADE-BOOT initramfs"* ]] || t_ir=$(ms_since "$t0")
        [ "$t_init" != - ] || [[ $s != *"PALISADE-BOOT init"$'\n'* && $s != *"PALISADE-BOOT init"$'\r'* ]] || t_init=$(ms_since "$t0")
        [ "$t_pgs" != - ] || [[ $s != *"PALISADE-BOOT postgres-started"* ]] || t_pgs=$(ms_since "$t0")
        if [[ $s == *"PALISADE-BOOT ready"* ]]; then t_ready=$(ms_since "$t0"); break; fi
        if [[ $s == *"PALISADE-BOOT failed"* || $s == *"PALISADE-BOOT postgres-exited"* ]]; then status="guest reported failure"; break; fi
        if [ "$(ms_since "$t0")" -gt $((READY_TIMEOUT_S * 1000)) ]; then status="hang (no ready marker in ${READY_TIMEOUT_S} s)"; hangs=$((hangs + 1)); break; fi
        sleep 0.01
    done
    if [ "$status" = ok ]; then
        deadline=$(( $(now_ns) + ANSWER_TIMEOUT_S * 1000000000 ))
        until pg_answers "$pg_port"; do
            [ "$(now_ns)" -lt "$deadline" ] || { status="postgres did not answer on 127.0.0.1:$pg_port"; break; }
            sleep 0.02
        done
        [ "$status" = ok ] && t_ans=$(ms_since "$t0")
    fi
    if [ "$status" = ok ] && [ "$have_psql" = 1 ] && [ "$b" = 1 ]; then
        got=$(PGPASSWORD=$(<"$dir/admin-secret") PGCONNECT_TIMEOUT=10 psql -X -w -At \
            -h 127.0.0.1 -p "$pg_port" -U palisade_admin -d app \
            -c "SELECT current_user || ',' || (SELECT rolname FROM pg_roles WHERE rolname = 'app' AND NOT rolsuper) || ',' || current_setting('server_version') || ',' || current_setting('shared_buffers')" 2>&1) \
            || status="psql as palisade_admin failed: $got"
        [ "$status" = ok ] && info_line="      psql as palisade_admin@app: $got"
        # The admin role must be able to open a replication connection over the network (WAL streaming, base backups).
        if [ "$status" = ok ]; then
            rep=$(PGPASSWORD=$(<"$dir/admin-secret") PGCONNECT_TIMEOUT=10 psql -X -w -At \
                "host=127.0.0.1 port=$pg_port user=palisade_admin dbname=postgres replication=database" \
                -c "IDENTIFY_SYSTEM" 2>&1) || status="replication connection as palisade_admin failed: $rep"
            [ "$status" = ok ] && info_line="$info_line
      replication connection (IDENTIFY_SYSTEM): $rep"
        fi
    fi
    # Clean stop: ACPI power button over QMP -> guest init -> fast shutdown -> poweroff -> QEMU exits.
    t_s0=$(now_ns)
    if kill -0 "$qemu_pid" 2>/dev/null; then
        if qmp "$qmp_port" system_powerdown; then
            deadline=$(( $(now_ns) + STOP_TIMEOUT_S * 1000000000 ))
            while kill -0 "$qemu_pid" 2>/dev/null && [ "$(now_ns)" -lt "$deadline" ]; do sleep 0.02; done
        fi
        if kill -0 "$qemu_pid" 2>/dev/null; then
            [ "$status" = ok ] && status="guest did not power off within ${STOP_TIMEOUT_S} s of system_powerdown"
            qmp "$qmp_port" quit || true
            sleep 1
            kill -KILL "$qemu_pid" 2>/dev/null || true
        else
            t_stop=$(ms_since "$t_s0")
        fi
    fi
    wait "$qemu_pid" 2>/dev/null || true
    qemu_pid=
    if [ "$status" = ok ]; then
        s=$(<"$serial")
        [[ $s == *"PALISADE-BOOT stopped"* ]] || status="no 'PALISADE-BOOT stopped' marker after power-off"
    fi
    if [ "$status" = ok ]; then
        pglog=$(debugfs -R "cat /log/postgresql.log" "$vol" 2>/dev/null || true)
        [[ $pglog == *"database system is shut down"* ]] \
            || status="postgresql.log on the volume does not show a clean shutdown"
    fi
    printf '      %4d %11s %9s %9s %9s %10s %5s   %s\n' "$b" "$t_ir" "$t_init" "$t_pgs" "$t_ready" "$t_ans" "$t_stop" "$status"
    [ -z "${info_line:-}" ] || { echo "$info_line"; info_line=; }
    if [ "$status" = ok ]; then
        results+=("$t_ready $t_ans $t_stop")
    else
        failures=$((failures + 1))
        echo "      --- serial console of boot $b ---"
        sed 's/^/      | /' "$serial" | tail -n 40
        echo "      --- qemu output ---"
        sed 's/^/      | /' "$work/qemu.$b.out" | tail -n 10
    fi
done

if [ ${#results[@]} -gt 1 ]; then
    printf '%s\n' "${results[@]}" | awk '
        { r[NR] = $1; a[NR] = $2; s[NR] = $3 }
        function med(x, n,   i, j, t, y) { for (i = 1; i <= n; i++) y[i] = x[i]
            for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (y[j] < y[i]) { t = y[i]; y[i] = y[j]; y[j] = t }
            return n % 2 ? y[(n + 1) / 2] : (y[n / 2] + y[n / 2 + 1]) / 2 }
        function mn(x, n,   i, m) { m = x[1]; for (i = 2; i <= n; i++) if (x[i] < m) m = x[i]; return m }
        function mx(x, n,   i, m) { m = x[1]; for (i = 2; i <= n; i++) if (x[i] > m) m = x[i]; return m }
        END { printf "      ready     min %d  median %d  max %d ms\n", mn(r, NR), med(r, NR), mx(r, NR)
              printf "      pg-answer min %d  median %d  max %d ms\n", mn(a, NR), med(a, NR), mx(a, NR)
              printf "      stop      min %d  median %d  max %d ms\n", mn(s, NR), med(s, NR), mx(s, NR) }'
fi
echo "      $((boots - failures))/$boots boots ok, $hangs hangs"
[ "$failures" = 0 ]
