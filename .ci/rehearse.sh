#!/usr/bin/env bash
# CI gate (issue 8; docs/design.md §13): a deploy rehearsal on a real systemd.
#
# A Debian bookworm root (debootstrap minbase + systemd, dbus, sshd, sudo,
# logrotate), cached between runs and copied for each run, is booted with
# systemd-nspawn on this kernel, sharing the host's network so that its sshd
# listens on a loopback port and a simulated plug on the host's 127.0.0.1 is
# reachable from inside. deploy/deploy.sh then installs the host's release
# binary over ssh as a sudo user, and the script asserts what the unit
# promises: Type=notify readiness, a switched plug, restart after SIGKILL, a
# watchdog restart after SIGSTOP, a stop that leaves the plug verified off,
# a logrotate snippet that logrotate accepts, and --uninstall. Before that,
# several chambers (issue 21): two instances (kasa-thermostat@brew, @keg)
# beside the single install, each with its own plug, sensor and files; a
# third with brew's plug refused at start naming the plug and brew; `status`
# listing them; stopping the single install or uninstalling one instance
# leaving the others running.
#
#   .ci/rehearse.sh          (root, or a user with sudo)
#
# Environment: KASA_REHEARSAL_CACHE (default
# ${XDG_CACHE_HOME:-$HOME/.cache}/kasa-thermostat) holds the root;
# KASA_REHEARSAL_MIRROR (default http://deb.debian.org/debian);
# KASA_REHEARSAL_LOGS=DIR keeps the container's console, the journal and
# deploy.sh's output there (CI artifacts).
# The container, its copy of the root (on a tmpfs in a private mount
# namespace) and the simulated plug are removed on every exit, failures
# included. Prints its timings.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

readonly SUITE=bookworm
readonly PACKAGES=systemd,systemd-sysv,dbus,openssh-server,sudo,logrotate
readonly MIRROR=${KASA_REHEARSAL_MIRROR:-http://deb.debian.org/debian}
# Bump when the way the cached root is made changes.
readonly RECIPE_VERSION=1
readonly SVC=kasa-thermostat
readonly SENSOR_ID=28-0316a2797aff
# Inside the container: a tree shaped like /sys/bus/w1/devices. Under /srv,
# which the unit's ProtectSystem=strict leaves readable (not /tmp: the unit
# has PrivateTmp=yes; not /home: ProtectHome=yes).
readonly W1_ROOT=/srv/kasa-rehearsal/w1/devices
readonly REMOTE_USER=pi

gate_start=$EPOCHREALTIME
timings=()

step() { echo "== rehearse: $*"; }
ok() { echo "  ok: $*"; }
# Seconds since $1 (an $EPOCHREALTIME), one decimal.
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
timed() { # NAME START: records a phase's duration
    timings+=("$(printf '%-34s %6ss' "$1" "$(since "$2")")")
}
die() {
    echo "rehearse.sh: FAIL: $*" >&2
    if [ "${booted:-0}" = 1 ]; then
        diagnose >&2 || true
    fi
    exit 1
}

# --- root, tools, binary ---------------------------------------------------------

cache_dir=${KASA_REHEARSAL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kasa-thermostat}
if [ "$(id -u)" != 0 ]; then
    # Build as the calling user (its toolchain), then everything else as root.
    step "building the host's release binary (as $(id -un))"
    cargo build --release --locked --bin "$SVC"
    exec sudo --preserve-env=CARGO_TERM_COLOR,KASA_REHEARSAL_MIRROR,CARGO_TARGET_DIR \
        KASA_REHEARSAL_CACHE="$cache_dir" KASA_REHEARSAL_BUILT=1 bash "$0" "$@"
fi

# The run's copy of the root lives on a tmpfs mounted in a private mount
# namespace: unmounted (and its memory freed) when the last process of this
# run exits, however it exits. (Deleting 15,000 files of a copy on disk took
# 15-25 s here, longer than everything else but the watchdog.)
if [ "${KASA_REHEARSAL_PRIVATE_MOUNTS:-0}" != 1 ]; then
    exec env KASA_REHEARSAL_PRIVATE_MOUNTS=1 unshare --mount --propagation private bash "$0" "$@"
fi

t=$EPOCHREALTIME
step "tools"
packages=()
need() { command -v "$1" >/dev/null 2>&1 || packages+=("$2"); }
need debootstrap debootstrap
need systemd-nspawn systemd-container
need ssh openssh-client
need ssh-keygen openssh-client
need ss iproute2
need flock util-linux
need setpriv util-linux
if [ ${#packages[@]} -gt 0 ]; then
    mapfile -t packages < <(printf '%s\n' "${packages[@]}" | sort -u)
    echo "installing: ${packages[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}"
fi
timed "tools" "$t"

binary=${CARGO_TARGET_DIR:-target}/release/$SVC
if [ "${KASA_REHEARSAL_BUILT:-0}" != 1 ]; then
    t=$EPOCHREALTIME
    step "the host's release binary (the container runs on this kernel)"
    cargo build --release --locked --bin "$SVC"
    timed "cargo build --release" "$t"
fi
[ -x "$binary" ] || die "no $binary"
binary=$(cd "$(dirname "$binary")" && pwd)/$SVC

# --- the cached root ---------------------------------------------------------------

t=$EPOCHREALTIME
arch=$(dpkg --print-architecture)
recipe="suite=$SUITE variant=minbase arch=$arch include=$PACKAGES mirror=$MIRROR recipe=$RECIPE_VERSION"
key=$(sha256sum <<<"$recipe" | cut -c1-12)
root_cache=$cache_dir/rehearsal-root-$key
mkdir -p "$cache_dir"
# One builder at a time; a second run waits for the first one's root.
exec 9>"$cache_dir/rehearsal.lock"
flock 9
rm -rf "$cache_dir"/.building-* # a build that was killed
if [ -f "$root_cache/.rehearsal-recipe" ]; then
    step "cached root $root_cache"
    timed "root (cached)" "$t"
else
    step "debootstrap $SUITE ($recipe)"
    building=$cache_dir/.building-$key.$$
    rm -rf "$building"
    if ! debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$building" "$MIRROR" \
        >"$cache_dir/debootstrap.log" 2>&1; then
        tail -n 30 "$cache_dir/debootstrap.log" >&2
        rm -rf "$building"
        die "debootstrap failed (log: $cache_dir/debootstrap.log)"
    fi
    # The package cache and lists are not needed to boot: 95 MB less to copy.
    rm -rf "$building"/var/cache/apt/archives/*.deb "$building"/var/lib/apt/lists/*
    echo "$recipe" >"$building/.rehearsal-recipe"
    mv "$building" "$root_cache"
    # Roots of older recipes are dead weight now.
    for old in "$cache_dir"/rehearsal-root-*; do
        [ "$old" = "$root_cache" ] || rm -rf "$old"
    done
    timed "debootstrap (uncached)" "$t"
fi
flock -u 9

# --- this run's copy, prepared to boot -----------------------------------------------

t=$EPOCHREALTIME
# Mount points left by runs that were SIGKILLed (their tmpfs went with
# them): the pid in the name says whether the run is still alive.
for old in "${TMPDIR:-/var/tmp}"/kasa-rehearsal.*.*; do
    pid=${old#*/kasa-rehearsal.}
    pid=${pid%%.*}
    if [ -d "$old" ] && [ "$pid" -gt 0 ] 2>/dev/null && ! kill -0 "$pid" 2>/dev/null; then
        rmdir "$old" 2>/dev/null || true
    fi
done
work=$(mktemp -d "${TMPDIR:-/var/tmp}/kasa-rehearsal.$$.XXXXXX")
mount -t tmpfs -o size=2g,mode=0700 kasa-rehearsal "$work"
root=$work/root
nspawn_pid=""
container_pid=""
sim_pid=""
extra_sims=()
cgroups=()
booted=0

# Runs on every exit: the plug simulator, the container (poweroff, then
# SIGKILL), its cgroups and the copy of the root go.
cleanup() {
    local rc=$? t
    set +e
    trap - EXIT INT TERM
    t=$EPOCHREALTIME
    for pid in $sim_pid "${extra_sims[@]}"; do
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
        # nspawn turns SIGTERM into a clean poweroff of the container.
        kill -TERM "$nspawn_pid"
        local deadline=$((SECONDS + 30))
        while kill -0 "$nspawn_pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
            sleep 0.2
        done
        if kill -0 "$nspawn_pid" 2>/dev/null; then
            echo "rehearse: the container did not power off in 30 s; killing it" >&2
            kill -KILL "$nspawn_pid" ${container_pid:+"$container_pid"} 2>/dev/null
        fi
        wait "$nspawn_pid" 2>/dev/null
    fi
    # Anything left in our cgroups (only when we made them) is killed, then
    # the cgroups are removed leaves first.
    local cg pid
    for cg in "${cgroups[@]}"; do
        [ -d "$cg" ] || continue
        for _ in 1 2 3 4 5; do
            pids=$(find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null)
            [ -n "$pids" ] || break
            for pid in $pids; do kill -KILL "$pid" 2>/dev/null; done
            sleep 0.2
        done
        find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null
        [ ! -d "$cg" ] || echo "rehearse: could not remove cgroup $cg" >&2
    done
    if [ -n "${KASA_REHEARSAL_LOGS:-}" ] && [ -d "$work" ]; then
        mkdir -p "$KASA_REHEARSAL_LOGS"
        cp "$work"/*.log "$work"/*.out "$work"/journal* "$work/config.json" "$KASA_REHEARSAL_LOGS/" 2>/dev/null
    fi
    umount "$work" 2>/dev/null || umount -l "$work"
    rmdir "$work"
    timings+=("$(printf '%-34s %6ss' "teardown" "$(since "$t")")")
    echo "== rehearse: timings"
    printf '  %s\n' "${timings[@]}"
    printf '  %-34s %6ss\n' "total" "$(since "$gate_start")"
    if [ "$rc" = 0 ]; then
        echo "== rehearse: passed"
    else
        echo "== rehearse: FAILED (exit $rc)" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cp -a "$root_cache" "$root"
rm -f "$root/.rehearsal-recipe"

# A free loopback port for sshd (the container shares the host's network).
ssh_port=""
for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 40000))
    if [ -z "$(ss -Htln "sport = :$p")" ]; then
        ssh_port=$p
        break
    fi
done
[ -n "$ssh_port" ] || die "no free loopback port for sshd"

echo kasa-rehearsal >"$root/etc/hostname"
# As Debian's installer does: the hostname resolves (sudo asks).
printf '127.0.0.1\tlocalhost\n127.0.1.1\tkasa-rehearsal\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
# A host key and a client key made for this run; the client trusts exactly
# that host key.
rm -f "$root"/etc/ssh/ssh_host_*
ssh-keygen -q -t ed25519 -N '' -C kasa-rehearsal-host -f "$root/etc/ssh/ssh_host_ed25519_key"
ssh-keygen -q -t ed25519 -N '' -C kasa-rehearsal-client -f "$work/id_ed25519"
echo "[127.0.0.1]:$ssh_port $(cut -d' ' -f1,2 "$root/etc/ssh/ssh_host_ed25519_key.pub")" >"$work/known_hosts"
cat >"$root/etc/ssh/sshd_config.d/rehearsal.conf" <<EOF
Port $ssh_port
ListenAddress 127.0.0.1
HostKey /etc/ssh/ssh_host_ed25519_key
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
AllowUsers $REMOTE_USER
EOF
# The deploying user: passwordless sudo, as Raspberry Pi OS's first user.
chroot "$root" useradd --create-home --shell /bin/bash "$REMOTE_USER"
uid=$(chroot "$root" id -u "$REMOTE_USER")
install -d -m 0700 -o "$uid" -g "$uid" "$root/home/$REMOTE_USER/.ssh"
install -m 0600 -o "$uid" -g "$uid" "$work/id_ed25519.pub" "$root/home/$REMOTE_USER/.ssh/authorized_keys"
echo "$REMOTE_USER ALL=(ALL) NOPASSWD: ALL" >"$root/etc/sudoers.d/$REMOTE_USER"
chmod 0440 "$root/etc/sudoers.d/$REMOTE_USER"
# The manager logs every sd_notify message at debug level: that is where
# READY=1 and the watchdog pings show in the journal.
mkdir -p "$root/etc/systemd/system.conf.d"
printf '[Manager]\nLogLevel=debug\n' >"$root/etc/systemd/system.conf.d/rehearsal.conf"

# The sensor: a DS18B20 at 15 °C, below low_limit (18), in the kernel's
# w1_slave format (see tests/util/service.rs w1_text): the scratchpad as
# the project's simulator writes it, its Dallas CRC-8, t= in millidegrees.
crc8() { # hex bytes -> Dallas/Maxim CRC-8 (polynomial 0x31, reflected)
    local crc=0 byte bit mix
    for byte in "$@"; do
        byte=$((16#$byte))
        for ((bit = 0; bit < 8; bit++)); do
            mix=$(((crc ^ byte) & 1))
            crc=$((crc >> 1))
            [ "$mix" = 0 ] || crc=$((crc ^ 0x8C))
            byte=$((byte >> 1))
        done
    done
    printf '%02x' "$crc"
}
w1_text() { # celsius (a multiple of 1/16) -> the w1_slave text
    local raw pad
    raw=$(awk -v c="$1" 'BEGIN { r = int(c * 16); if (r < 0) r += 65536; print r }')
    pad=$(printf '%02x %02x 4b 46 7f ff 10 10' $((raw & 255)) $((raw >> 8)))
    # shellcheck disable=SC2086 # one argument per byte
    pad="$pad $(crc8 $pad)"
    printf '%s : crc=%s YES\n%s t=%d\n' "$pad" "${pad##* }" "$pad" "$(awk -v c="$1" 'BEGIN { printf "%d", c * 1000 }')"
}
mkdir -p "$root$W1_ROOT/$SENSOR_ID" "$root$W1_ROOT/w1_bus_master1"
w1_text 15.0 >"$root$W1_ROOT/$SENSOR_ID/w1_slave"
chmod -R a+rX "$root/srv/kasa-rehearsal"
# The binary must read that text as 15 °C before the service is asked to.
sensor_out=$("$binary" sensor read --w1-root "$root$W1_ROOT" 2>&1) ||
    die "sensor read of the fake w1 tree failed: $sensor_out"
grep -q "15.0" <<<"$sensor_out" || die "the fake w1 tree reads as: $sensor_out"
ok "fake w1 tree reads: $(head -n 1 <<<"$sensor_out")"
timed "copy and prepare the root" "$t"

# --- the simulated plug on the host ---------------------------------------------------

# --pdeathsig here and for nspawn: should this script be SIGKILLed, its
# children still go (the container powers off on SIGTERM).
setpriv --pdeathsig TERM -- "$binary" simulate-plug --bind 127.0.0.1:0 >"$work/sim.out" 2>"$work/sim.err" &
sim_pid=$!
plug=""
for _ in $(seq 1 100); do
    if [ -s "$work/sim.out" ]; then
        plug=$(head -n 1 "$work/sim.out")
        break
    fi
    sleep 0.05
done
[ -n "$plug" ] || die "simulate-plug did not print its address: $(cat "$work/sim.err")"
plug_port=${plug##*:}
ok "simulated plug on $plug"
plug_state() { "$binary" plug "$plug" state --json; }

# The service's config: the plug above, the fake sensor, short cycles so the
# rehearsal is quick, the state file in /run (issue 9).
cat >"$work/config.json" <<EOF
{
  "units": "C",
  "mode": "heat",
  "low_limit": 18.0,
  "high_limit": 20.0,
  "cycle_s": 2,
  "rate_limit_s": 2,
  "switchover_delay_s": 300,
  "reconcile_s": 10,
  "sensor": {
    "backend": "w1",
    "id": "$SENSOR_ID",
    "w1_root": "$W1_ROOT",
    "resolution_bits": 12,
    "interval_s": 1,
    "stale_after_s": 10
  },
  "heater": {
    "host": "127.0.0.1",
    "port": $plug_port,
    "deadman_s": 120,
    "fault_state": "off",
    "shutdown_state": "off"
  },
  "cooler": null,
  "log_dir": "/var/log/kasa-thermostat",
  "log_level": "info",
  "state_file": "/run/kasa-thermostat/state.json"
}
EOF
check_out=$("$binary" check-config "$work/config.json" 2>&1 >/dev/null) ||
    die "check-config rejects the rehearsal's config: $check_out"

# What the container says on a failure: the unit, its journal, the boot log.
diagnose() {
    echo "---- systemctl status $SVC"
    as_root systemctl --no-pager --lines=0 status "$SVC" 2>&1 || true
    echo "---- journalctl -u $SVC -p info (last 60)"
    as_root journalctl -u "$SVC" --no-pager -p info -n 60 2>&1 || true
    echo "---- boot log (last 10)"
    sed "s/\x1b\[[0-9;]*m//g" "$work/boot.log" 2>/dev/null | tail -n 10 || true
    echo "---- journalctl -u kasa-thermostat@* (last 40)"
    as_root journalctl -u 'kasa-thermostat@*' --no-pager -n 40 2>&1 || true
    echo "---- simulated plug"
    cat "$work/sim.err" 2>/dev/null || true
}

# --- boot -------------------------------------------------------------------------

t=$EPOCHREALTIME
step "boot (systemd-nspawn -b, sshd on 127.0.0.1:$ssh_port)"
nspawn=(setpriv --pdeathsig TERM -- systemd-nspawn -b --register=no -D "$root" --machine="kasa-rehearsal-$$"
    --link-journal=no --console=read-only)
if [ -d /run/systemd/system ] && [ -S /run/dbus/system_bus_socket ]; then
    # A systemd host: nspawn puts the container in a scope of its own.
    "${nspawn[@]}" </dev/null >"$work/boot.log" 2>&1 &
    nspawn_pid=$!
else
    # No systemd (and no system bus) on this host: nspawn stays in its own
    # cgroup (--keep-unit), which is made here, one per run, in the
    # hierarchies that the container's systemd uses, so that teardown can
    # find every process and remove the cgroups.
    if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then
        cgroups=("/sys/fs/cgroup/kasa-rehearsal-$$")
    else
        for h in /sys/fs/cgroup/unified /sys/fs/cgroup/systemd; do
            [ -d "$h" ] && cgroups+=("$h/kasa-rehearsal-$$")
        done
    fi
    [ ${#cgroups[@]} -gt 0 ] || die "no cgroup hierarchy for the container under /sys/fs/cgroup"
    # Empty cgroups of earlier runs that were killed before their teardown.
    for old in /sys/fs/cgroup/kasa-rehearsal-* /sys/fs/cgroup/{unified,systemd}/kasa-rehearsal-*; do
        if [ -d "$old" ] && ! kill -0 "${old##*-}" 2>/dev/null; then
            find "$old" -depth -type d -exec rmdir {} \; 2>/dev/null || true
        fi
    done
    mkdir "${cgroups[@]}"
    (
        for cg in "${cgroups[@]}"; do echo "$BASHPID" >"$cg/cgroup.procs"; done
        exec "${nspawn[@]}" --keep-unit
    ) </dev/null >"$work/boot.log" 2>&1 &
    nspawn_pid=$!
fi
booted=1

ssh_opts=(-F /dev/null -p "$ssh_port" -i "$work/id_ed25519" -o IdentitiesOnly=yes
    -o UserKnownHostsFile="$work/known_hosts" -o StrictHostKeyChecking=yes
    -o BatchMode=yes -o ConnectTimeout=5 -o LogLevel=ERROR)
ssh_cmd=(ssh "${ssh_opts[@]}")
login=$REMOTE_USER@127.0.0.1
# One command, as root in the container (each argument quoted for the remote shell).
as_root() { "${ssh_cmd[@]}" "$login" "sudo -n $(printf '%q ' "$@")"; }

deadline=$((SECONDS + 90))
until "${ssh_cmd[@]}" "$login" true 2>/dev/null; do
    kill -0 "$nspawn_pid" 2>/dev/null || die "systemd-nspawn exited: $(tail -n 20 "$work/boot.log")"
    [ $SECONDS -lt $deadline ] || die "sshd did not answer on 127.0.0.1:$ssh_port within 90 s"
    sleep 0.3
done
container_pid=$(pgrep -P "$nspawn_pid" | head -n 1 || true)
system_state=$(as_root systemctl is-system-running --wait 2>/dev/null || true)
ok "booted: $system_state ($("${ssh_cmd[@]}" "$login" uname -sr))"
if [ "$system_state" != running ]; then
    echo "  (failed units in the container, not ours:)"
    as_root systemctl --failed --no-legend --no-pager | sed 's/^/    /'
fi
timed "boot until ssh answers" "$t"

# --- helpers for the assertions ------------------------------------------------------

prop() { as_root systemctl show -p "$1" --value "$SVC.service"; }
# Polls CMD until it succeeds; fails with DESC after TIMEOUT seconds.
wait_for() { # DESC TIMEOUT CMD...
    local desc=$1 limit=$2
    shift 2
    local deadline=$((SECONDS + limit))
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || die "$desc: not within ${limit} s"
        sleep 0.5
    done
}
unit_running() { [ "$(prop ActiveState)/$(prop SubState)" = active/running ]; }
plug_is() { # on|off: the plug itself says so (read from the host)
    plug_state | grep -q "\"on\":$([ "$1" = on ] && echo true || echo false)"
}
main_pid() { prop MainPID; }
# The unit's journal (this boot's, the manager's debug lines included).
journal() { as_root journalctl -u "$SVC" --no-pager -o short-monotonic; }
# (Not `journal | grep -q`: grep's early exit would fail the pipe.)
journal_has() { journal >"$work/journal" && grep -qF -- "$1" "$work/journal"; }
new_main_pid() { # OLD: a running unit whose MainPID is not OLD
    unit_running && [ "$(main_pid)" != "$1" ] && [ "$(main_pid)" != 0 ]
}

# --- deploy ---------------------------------------------------------------------

deploy_env=(SSH="${ssh_cmd[*]}" SCP="scp ${ssh_opts[*]/#-p/-P}")
run_deploy() {
    env "${deploy_env[@]}" deploy/deploy.sh "$@" "$login" >"$work/deploy.out" 2>&1 || {
        cat "$work/deploy.out" >&2
        die "deploy/deploy.sh $* failed"
    }
}

t=$EPOCHREALTIME
step "deploy/deploy.sh --binary $binary --config (plug $plug)"
run_deploy --binary "$binary" --config "$work/config.json"
sed 's/^/  | /' "$work/deploy.out" | grep -v '^  | +' | tail -n 12
timed "deploy.sh (fresh install)" "$t"

t=$EPOCHREALTIME
step "active, enabled, READY=1 (Type=notify)"
unit_running || die "the unit is $(prop ActiveState)/$(prop SubState) after deploy.sh"
[ "$(as_root systemctl is-enabled "$SVC")" = enabled ] || die "the unit is not enabled"
pid=$(main_pid)
journal >"$work/journal"
grep -q "Got notification message from PID $pid (READY=1" "$work/journal" ||
    die "no READY=1 from PID $pid in the journal"
grep -q "Started $SVC.service" "$work/journal" || die "no 'Started $SVC.service' in the journal"
ok "$(as_root systemctl show -p Type,ActiveState,SubState,UnitFileState,MainPID,NRestarts,WatchdogUSec,TimeoutStopUSec "$SVC" | paste -sd' ')"
ok "journal: $(grep -m1 -o "Got notification message from PID $pid (READY=1[^)]*)" "$work/journal")"
ok "status text: $(prop StatusText)"
user=$(as_root ps -o user= -p "$pid") || die "no process $pid"
[ "$user" = "$SVC" ] || die "the service runs as $user, not $SVC"
ok "runs as $user; $(as_root systemd-analyze security "$SVC" --no-pager | grep -o 'Overall exposure level.*')"
timed "assert: active, enabled, READY" "$t"

t=$EPOCHREALTIME
step "the heater plug is switched on (15 °C < low_limit 18)"
wait_for "the simulated plug $plug on" 30 plug_is on
ok "$plug reads: $(plug_state)"
as_root test -f /run/kasa-thermostat/state.json || die "no /run/kasa-thermostat/state.json"
run_dir=$(as_root stat -c '%a %U:%G' /run/kasa-thermostat) || die "no /run/kasa-thermostat"
[ "$run_dir" = "750 $SVC:$SVC" ] || die "/run/kasa-thermostat is $run_dir, want 750 $SVC:$SVC"
if as_root test -e /var/lib/kasa-thermostat/state.json; then
    die "a state file on disk in /var/lib/kasa-thermostat"
fi
ok "state in /run: $(as_root "$SVC" status --state-file /run/kasa-thermostat/state.json | head -n 3 | paste -sd' ')"
as_root test -s /var/log/kasa-thermostat/readings.jsonl || die "no readings.jsonl on disk"
ok "readings on disk: $(as_root wc -l /var/log/kasa-thermostat/readings.jsonl)"
timed "assert: plug switched on" "$t"

t=$EPOCHREALTIME
step "logrotate accepts the snippet (-d), and a forced rotation keeps the logs whole"
as_root logrotate -d /etc/logrotate.d/"$SVC" >"$work/logrotate.out" 2>&1 || {
    cat "$work/logrotate.out" >&2
    die "logrotate -d rejected /etc/logrotate.d/$SVC"
}
if grep -qiE "^(error|warning: .*(ignor|bad|unknown))" "$work/logrotate.out"; then
    cat "$work/logrotate.out" >&2
    die "logrotate -d reported an error"
fi
ok "logrotate -d: $(grep -c 'considering log' "$work/logrotate.out") logs considered, no error"
as_root logrotate -f /etc/logrotate.d/"$SVC" >"$work/logrotate.out" 2>&1 || {
    cat "$work/logrotate.out" >&2
    die "logrotate -f failed"
}
as_root test -s /var/log/kasa-thermostat/readings.jsonl.1 || die "readings.jsonl was not rotated"
# copytruncate + O_APPEND: the next line lands at offset 0 of the emptied
# file, not after a hole of NUL bytes.
wait_for "a new readings line after the rotation" 15 as_root test -s /var/log/kasa-thermostat/readings.jsonl
first=$(as_root head -c 1 /var/log/kasa-thermostat/readings.jsonl)
[ "$first" = "{" ] || die "readings.jsonl after rotation starts with $(as_root head -c 16 /var/log/kasa-thermostat/readings.jsonl | od -c | head -n 1)"
ok "rotated: $(as_root ls /var/log/kasa-thermostat | paste -sd' '); readings.jsonl starts with '{'"
timed "assert: logrotate" "$t"

t=$EPOCHREALTIME
step "watchdog pings arrive (WATCHDOG=1 from the main PID)"
pid=$(main_pid)
wait_for "a WATCHDOG=1 from PID $pid" 40 journal_has "Got notification message from PID $pid (WATCHDOG=1)"
ok "WATCHDOG=1 from PID $pid after $(since "$t") s"
timed "assert: watchdog pings" "$t"

t=$EPOCHREALTIME
step "deploy.sh again: an upgrade restarts the service and keeps the config"
pid=$(main_pid)
run_deploy --binary "$binary" --config "$work/config.json"
grep -q "kept the existing /etc/kasa-thermostat/config.json" "$work/deploy.out" || die "the second deploy did not keep the config"
new_main_pid "$pid" || die "the second deploy did not restart the service"
wait_for "the plug on after the upgrade" 30 plug_is on
ok "restarted: MainPID $pid -> $(main_pid), config kept, plug on"
timed "deploy.sh (upgrade)" "$t"

t=$EPOCHREALTIME
step "systemctl kill -s KILL: restarted by Restart=always"
pid=$(main_pid)
restarts=$(prop NRestarts)
as_root systemctl kill -s KILL "$SVC"
wait_for "a restart after SIGKILL" 30 new_main_pid "$pid"
[ "$(prop NRestarts)" -gt "$restarts" ] || die "NRestarts stayed $restarts after SIGKILL"
journal_has "Main process exited, code=killed, status=9/KILL" || die "no SIGKILL exit in the journal"
ok "NRestarts $restarts -> $(prop NRestarts), MainPID $pid -> $(main_pid) in $(since "$t") s"
timed "assert: restart after SIGKILL" "$t"

t=$EPOCHREALTIME
step "kill -STOP of the main PID: the watchdog restarts it"
wait_for "the plug on before SIGSTOP" 30 plug_is on
pid=$(main_pid)
restarts=$(prop NRestarts)
watchdog_s=$(($(prop WatchdogUSec | sed -n 's/^\([0-9]*\)s$/\1/p')))
as_root kill -STOP "$pid"
wait_for "'Watchdog timeout' in the journal" $((watchdog_s + 20)) journal_has "Watchdog timeout"
to_timeout=$(since "$t")
wait_for "a restart after the watchdog timeout" 60 new_main_pid "$pid"
[ "$(prop NRestarts)" -gt "$restarts" ] || die "NRestarts stayed $restarts after the watchdog"
journal >"$work/journal"
ok "journal: $(grep -m1 -o 'Watchdog timeout.*' "$work/journal")"
ok "journal: $(grep -m1 -o "Failed with result 'watchdog'.*" "$work/journal" || echo "(no 'Failed with result' line)")"
ok "timeout after ${to_timeout} s (WatchdogSec=${watchdog_s}s); running again after $(since "$t") s: NRestarts $restarts -> $(prop NRestarts), MainPID $pid -> $(main_pid)"
timed "assert: watchdog restart" "$t"

t=$EPOCHREALTIME
step "systemctl stop: the plug is left verified off"
wait_for "the plug on before the stop" 30 plug_is on
pid=$(main_pid)
as_root systemctl stop "$SVC"
stop_s=$(since "$t")
[ "$(prop ActiveState)" = inactive ] || die "the unit is $(prop ActiveState) after stop"
result=$(prop Result)
status=$(prop ExecMainStatus)
plug_is off || die "the plug is not off after the stop: $(plug_state)"
journal >"$work/journal"
grep -q "shutdown: every plug verified" "$work/journal" || die "no 'shutdown: every plug verified' in the journal"
if [ "$result" != success ] || [ "$status" != 0 ]; then
    die "the stop ended with Result=$result ExecMainStatus=$status"
fi
if as_root test -e /run/kasa-thermostat; then die "/run/kasa-thermostat left after the stop"; fi
ok "stopped in ${stop_s} s (TimeoutStopSec $(prop TimeoutStopUSec)): Result=$result ExecMainStatus=$status"
ok "journal: $(grep -o 'shutdown: every plug verified.*' "$work/journal" | tail -n 1)"
ok "$plug reads (from the host): $(plug_state)"
timed "assert: stop leaves the plug off" "$t"

# --- several chambers (issue 21) ------------------------------------------------------

t=$EPOCHREALTIME
step "two instances beside the single install: deploy.sh --instance brew, --instance keg"
start_sim() { # NAME: starts a simulated plug on the host; its address lands in $work/simNAME.out
    setpriv --pdeathsig TERM -- "$binary" simulate-plug --bind 127.0.0.1:0 >"$work/sim$1.out" 2>"$work/sim$1.err" &
    extra_sims+=($!)
}
sim_address() { # NAME
    for _ in $(seq 1 100); do
        if [ -s "$work/sim$1.out" ]; then
            head -n 1 "$work/sim$1.out"
            return
        fi
        sleep 0.05
    done
    die "simulate-plug $1 did not print its address"
}
start_sim brew
start_sim keg
plug_brew=$(sim_address brew)
plug_keg=$(sim_address keg)
# Two more DS18B20s on the same w1 bus, one per instance.
for id in 28-00000000000b 28-00000000000c; do
    mkdir -p "$root$W1_ROOT/$id"
    w1_text 15.0 >"$root$W1_ROOT/$id/w1_slave"
done
chmod -R a+rX "$root/srv/kasa-rehearsal"
instance_config() { # SENSOR_ID PLUG: a config naming no path: every file is the instance's
    cat <<EOF
{
  "mode": "heat", "low_limit": 18.0, "high_limit": 20.0,
  "cycle_s": 2, "rate_limit_s": 2, "reconcile_s": 10,
  "sensor": { "backend": "w1", "id": "$1", "w1_root": "$W1_ROOT", "interval_s": 1, "stale_after_s": 10 },
  "heater": { "host": "127.0.0.1", "port": ${2##*:}, "deadman_s": 120 }
}
EOF
}
instance_config 28-00000000000b "$plug_brew" >"$work/brew.json"
instance_config 28-00000000000c "$plug_keg" >"$work/keg.json"
# A third chamber wired by mistake to brew's plug.
instance_config 28-00000000000c "$plug_brew" >"$work/third.json"
run_deploy --binary "$binary" --instance brew --config "$work/brew.json"
run_deploy --binary "$binary" --instance keg --config "$work/keg.json"
grep -q "kasa-thermostat@keg is running" "$work/deploy.out" || die "deploy --instance keg: $(tail -n 3 "$work/deploy.out")"
as_root systemctl start "$SVC"
iprop() { as_root systemctl show -p "$2" --value "$SVC@$1.service"; }
instance_running() { [ "$(iprop "$1" ActiveState)/$(iprop "$1" SubState)" = active/running ]; }
plug_of_is() { # ADDR on|off
    "$binary" plug "$1" state --json | grep -q "\"on\":$([ "$2" = on ] && echo true || echo false)"
}
wait_for "the single install running again" 30 unit_running
for name in brew keg; do
    wait_for "$SVC@$name running" 30 instance_running "$name"
done
wait_for "brew's plug on" 30 plug_of_is "$plug_brew" on
wait_for "keg's plug on" 30 plug_of_is "$plug_keg" on
wait_for "the single install's plug on" 30 plug_is on
ok "three installs running: $SVC (plug $plug), $SVC@brew (plug $plug_brew), $SVC@keg (plug $plug_keg)"
timed "deploy.sh --instance x2 (fresh)" "$t"

t=$EPOCHREALTIME
step "each instance has its own files; the locks name their holders"
for name in brew keg; do
    as_root test -f "/run/kasa-thermostat/$name/state.json" || die "no /run/kasa-thermostat/$name/state.json"
    as_root test -S "/run/kasa-thermostat/$name/control.sock" || die "no /run/kasa-thermostat/$name/control.sock"
    as_root test -s "/var/log/kasa-thermostat/$name/readings.jsonl" || die "no /var/log/kasa-thermostat/$name/readings.jsonl"
    as_root test -d "/var/lib/kasa-thermostat/$name" || die "no /var/lib/kasa-thermostat/$name"
    perms=$(as_root stat -c '%a %U:%G' "/run/kasa-thermostat/$name")
    [ "$perms" = "750 $SVC:$SVC" ] || die "/run/kasa-thermostat/$name is $perms"
done
as_root cat /run/kasa-thermostat/brew/state.json >"$work/brew-state.json"
as_root cat /run/kasa-thermostat/keg/state.json >"$work/keg-state.json"
grep -q "\"host\": *\"$plug_brew\"" "$work/brew-state.json" || die "brew's state file does not name its plug: $(head -c 300 "$work/brew-state.json")"
grep -q "\"host\": *\"$plug_keg\"" "$work/keg-state.json" || die "keg's state file does not name its plug"
as_root cat /var/log/kasa-thermostat/brew/kasa-thermostat.log >"$work/brew.log"
as_root cat /var/log/kasa-thermostat/keg/kasa-thermostat.log >"$work/keg.log"
if grep -q "$plug_keg" "$work/brew-state.json" "$work/brew.log"; then die "brew's files mention keg's plug"; fi
if grep -q "$plug_brew" "$work/keg-state.json" "$work/keg.log"; then die "keg's files mention brew's plug"; fi
# shellcheck disable=SC2016 # expanded by the container's shell
as_root sh -c 'for f in /run/kasa-thermostat/locks/*.lock; do echo "${f##*/}: $(cat "$f")"; done' >"$work/locks.out"
sed 's/^/    /' "$work/locks.out"
grep -qF "plug-127.0.0.1-${plug_brew##*:}.lock: kasa-thermostat@brew (pid $(iprop brew MainPID))" "$work/locks.out" ||
    die "no lock on brew's plug held by brew"
grep -qF "plug-127.0.0.1-$plug_port.lock: kasa-thermostat (pid $(main_pid))" "$work/locks.out" ||
    die "no lock on the single install's plug held by it"
# As the deploying user (in the service's group): one line per install.
listing=$("${ssh_cmd[@]}" "$login" "$SVC" status 2>&1) || die "status as $REMOTE_USER failed: $listing"
awk '{ print "    " $0 }' <<<"$listing"
[ "$(wc -l <<<"$listing")" = 3 ] || die "status lists $(wc -l <<<"$listing") lines, want 3"
grep -q "^(kasa-thermostat) *running" <<<"$listing" || die "status: the single install is not running"
grep -q "^brew *running .*heater on" <<<"$listing" || die "status: brew not running with its heater on"
grep -q "^keg *running .*heater on" <<<"$listing" || die "status: keg not running with its heater on"
one=$("${ssh_cmd[@]}" "$login" "$SVC" status keg 2>&1) || die "status keg failed: $one"
grep -q "heater" <<<"$one" || die "status keg: $one"
report=$("${ssh_cmd[@]}" "$login" "$SVC" report --instance brew --since 1h 2>&1) || die "report --instance brew failed: $report"
ok "status keg: $(head -n 1 <<<"$one")"
timed "assert: instances' files, locks, status" "$t"

t=$EPOCHREALTIME
step "a third instance with brew's plug is refused at start, naming the plug and brew"
brew_pid=$(iprop brew MainPID)
if env "${deploy_env[@]}" deploy/deploy.sh --binary "$binary" --instance third --config "$work/third.json" "$login" >"$work/deploy.out" 2>&1; then
    die "deploy --instance third succeeded with brew's plug"
fi
want="plug $plug_brew is already driven by kasa-thermostat@brew (pid $brew_pid)"
third_refused() {
    as_root journalctl -u "$SVC@third" --no-pager -o cat >"$work/journal-third" && grep -qF "$want" "$work/journal-third"
}
wait_for "the refusal in $SVC@third's journal" 20 third_refused
ok "journal: $(grep -F -m1 "$want" "$work/journal-third")"
[ "$(iprop brew MainPID)" = "$brew_pid" ] || die "brew restarted while third was refused"
plug_of_is "$plug_brew" on || die "brew's plug is not on after third's attempts"
run_deploy --uninstall --instance third
ok "brew untouched (pid $brew_pid, plug on); third uninstalled"
timed "assert: a held plug is refused" "$t"

t=$EPOCHREALTIME
step "stopping the single install leaves the instances running"
as_root systemctl stop "$SVC"
wait_for "the single install's plug off" 20 plug_is off
for name in brew keg; do
    instance_running "$name" || die "$SVC@$name is not running after the single install stopped"
    as_root test -S "/run/kasa-thermostat/$name/control.sock" || die "/run/kasa-thermostat/$name went with the single install"
done
as_root test -d /run/kasa-thermostat/locks || die "the locks went with the single install"
keg_state_time() { as_root stat -c %Y /run/kasa-thermostat/keg/state.json; }
before=$(keg_state_time)
keg_state_moved() { [ "$(keg_state_time)" != "$before" ]; }
wait_for "keg's state file rewritten" 10 keg_state_moved
ok "brew and keg run on; their runtime directories and the locks stay"
timed "assert: single stop spares instances" "$t"

t=$EPOCHREALTIME
step "deploy.sh --uninstall --instance brew leaves keg"
run_deploy --uninstall --instance brew
[ "$(iprop brew ActiveState)" = inactive ] || die "brew is $(iprop brew ActiveState) after its uninstall"
wait_for "brew's plug off (its shutdown state)" 20 plug_of_is "$plug_brew" off
instance_running keg || die "keg is not running after brew's uninstall"
plug_of_is "$plug_keg" on || die "keg's plug is not on after brew's uninstall"
as_root test -x /usr/local/bin/$SVC || die "the binary went while keg remains"
as_root test -f /etc/kasa-thermostat/brew.json.removed || die "brew's config was not kept aside"
if as_root test -e /run/kasa-thermostat/brew; then die "/run/kasa-thermostat/brew left after brew stopped"; fi
as_root test -d /var/lib/kasa-thermostat/brew || die "brew's state directory was removed"
listing=$("${ssh_cmd[@]}" "$login" "$SVC" status 2>&1) || die "status failed: $listing"
if grep -q "^brew" <<<"$listing"; then die "status still lists brew: $listing"; fi
grep -q "^keg *running" <<<"$listing" || die "status does not show keg running: $listing"
ok "keg runs on (pid $(iprop keg MainPID)), brew's plug off; status: $(paste -sd'|' <<<"$listing")"
run_deploy --uninstall --instance keg
wait_for "keg's plug off" 20 plug_of_is "$plug_keg" off
for f in "/etc/systemd/system/$SVC@.service" "/etc/systemd/system/$SVC.service.d"; do
    if as_root test -e "$f"; then die "$f is still there after the last instance went"; fi
done
as_root test -x /usr/local/bin/$SVC || die "the binary went while the single install's unit remains"
timed "assert: uninstall one instance" "$t"

t=$EPOCHREALTIME
step "deploy.sh --uninstall"
run_deploy --uninstall
for f in /etc/systemd/system/$SVC.service /usr/local/bin/$SVC /etc/logrotate.d/$SVC; do
    if as_root test -e "$f"; then die "$f is still there after --uninstall"; fi
done
[ "$(prop LoadState)" = not-found ] || die "systemd still knows the unit: LoadState=$(prop LoadState)"
as_root test -f /etc/kasa-thermostat/config.json || die "--uninstall removed the config"
ok "unit, binary and snippet gone (LoadState=not-found); config, logs and user kept"
timed "assert: uninstall" "$t"
