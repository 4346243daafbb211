#!/usr/bin/env bash
# deploy.sh: build kasa-thermostat for a Raspberry Pi, copy it over ssh and
# install it as a systemd service (docs/design.md §13).
#
#   deploy/deploy.sh [--target TRIPLE] [--config FILE] [--binary FILE]
#                    [--instance NAME] [--dry-run] [--uninstall] USER@HOST
#
# Idempotent: a second run upgrades the binary and restarts the service. An
# existing /etc/kasa-thermostat/config.json is never overwritten. With
# --instance NAME, the same for one chamber of several: the template unit
# kasa-thermostat@.service runs /etc/kasa-thermostat/NAME.json as
# kasa-thermostat@NAME (docs/design-instances.md); the binary, the template
# and the logrotate snippet are shared, and go only with the last install. The new
# binary checks the config on the Pi before anything is installed or
# restarted. The remote part is one generated shell script run as
# `ssh HOST sudo -n sh -s` (as `sh -s` when USER is root); --dry-run prints
# it, with every local command, and changes nothing.
#
# Environment: SSH and SCP (default "ssh", "scp") may carry options, e.g.
# SSH="ssh -p 2222"; CARGO and CROSS name the build tools; CARGO_TARGET_DIR
# is honoured.
set -euo pipefail

readonly SERVICE=kasa-thermostat
readonly DEFAULT_TARGET=aarch64-unknown-linux-musl

usage() {
    cat <<EOF
usage: deploy/deploy.sh [--target TRIPLE] [--config FILE] [--binary FILE] [--instance NAME]
                        [--dry-run] [--uninstall] USER@HOST

  --target TRIPLE  build for TRIPLE (default $DEFAULT_TARGET):
                     aarch64-unknown-linux-musl     Pi 3/4/5, 64-bit OS (static)
                     aarch64-unknown-linux-gnu      Pi 3/4/5, 64-bit Raspberry Pi OS
                     armv7-unknown-linux-gnueabihf  Pi 2/3/4, 32-bit Raspberry Pi OS
                     arm-unknown-linux-gnueabihf    Pi Zero / Pi 1 (needs cross-rs)
  --config FILE    the config to install when the Pi has none yet
                   (default: deploy/config.example.json)
  --binary FILE    deploy this binary instead of building one
  --instance NAME  one chamber of several: kasa-thermostat@NAME, with its config in
                   /etc/kasa-thermostat/NAME.json (NAME: 1 to 32 of A-Z a-z 0-9 _ -,
                   starting with a letter or digit; not "config" or "locks")
  --dry-run        print every command, the remote script included; change nothing
  --uninstall      stop and remove the service, binary, unit and logrotate
                   snippet (keeps the config, logs, state and the user); with
                   --instance, that instance only (its config kept as NAME.json.removed);
                   the shared files stay while another install remains
EOF
}

die() {
    echo "deploy.sh: $*" >&2
    exit 1
}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)

target=$DEFAULT_TARGET
config=""
binary=""
dry_run=0
uninstall=0
instance=""
host=""
while [ $# -gt 0 ]; do
    case "$1" in
        --target) [ $# -ge 2 ] || die "--target needs a value"; target=$2; shift 2 ;;
        --target=*) target=${1#*=}; shift ;;
        --config) [ $# -ge 2 ] || die "--config needs a value"; config=$2; shift 2 ;;
        --config=*) config=${1#*=}; shift ;;
        --binary) [ $# -ge 2 ] || die "--binary needs a value"; binary=$2; shift 2 ;;
        --binary=*) binary=${1#*=}; shift ;;
        --instance) [ $# -ge 2 ] || die "--instance needs a value"; instance=$2; shift 2 ;;
        --instance=*) instance=${1#*=}; shift ;;
        --dry-run) dry_run=1; shift ;;
        --uninstall) uninstall=1; shift ;;
        -h | --help) usage; exit 0 ;;
        -*) usage >&2; die "unknown option $1" ;;
        *) [ -z "$host" ] || die "only one USER@HOST, got $host and $1"; host=$1; shift ;;
    esac
done
[ -n "$host" ] || { usage >&2; die "USER@HOST is required"; }
# The binary checks the name too; this catches it before any build or ssh,
# and keeps it safe to paste into the remote script.
if [ -n "$instance" ]; then
    if ! [[ $instance =~ ^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$ ]] ||
        [ "$instance" = config ] || [ "$instance" = locks ]; then
        die "--instance $instance: a name is 1 to 32 of A-Z a-z 0-9 _ -, starting with a letter or digit, not config or locks"
    fi
fi
case "$host" in
    *@*) remote_user=${host%%@*} ;;
    *) remote_user=${USER:-$(id -un)} ;;
esac

read -r -a ssh_cmd <<<"${SSH:-ssh}"
read -r -a scp_cmd <<<"${SCP:-scp}"
if [ "$remote_user" = root ]; then
    remote_shell=(sh -s)
else
    # -n: fail at once with a clear message instead of waiting for a
    # password that nobody can type (stdin is the script).
    remote_shell=(sudo -n sh -s)
fi

# Prints a command as a shell line that could be pasted.
show() {
    local out="" arg
    for arg in "$@"; do
        out+=" $(printf '%q' "$arg")"
    done
    echo "+${out}"
}

# Runs a command, or only shows it under --dry-run.
run() {
    show "$@"
    if [ "$dry_run" = 0 ]; then
        "$@"
    fi
}

# --- build ------------------------------------------------------------------

# Which tool builds $target: "cargo" when rustup's std and the linker are
# here, "cross" (cross-rs, in a container) otherwise.
pick_builder() {
    local linker=""
    case "$target" in
        arm-unknown-linux-gnueabihf)
            # Debian's armhf gcc emits ARMv7 code: SIGILL on a Pi Zero.
            echo cross
            return
            ;;
        aarch64-unknown-linux-gnu) linker=aarch64-linux-gnu-gcc ;;
        armv7-unknown-linux-gnueabihf) linker=arm-linux-gnueabihf-gcc ;;
        aarch64-unknown-linux-musl) linker="" ;;
        *) die "unknown target $target (see --help for the Pi targets)" ;;
    esac
    if [ -n "$linker" ] && ! command -v "$linker" >/dev/null 2>&1; then
        echo cross
        return
    fi
    if command -v rustup >/dev/null 2>&1 &&
        ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
        echo cross
        return
    fi
    echo cargo
}

build() {
    local builder
    builder=$(pick_builder)
    if [ "$builder" = cross ]; then
        local cross=${CROSS:-cross}
        if ! command -v "$cross" >/dev/null 2>&1 && [ "$dry_run" = 0 ]; then
            die "building $target needs cross-rs and Docker/Podman (cargo install cross),
or the rustup target and Debian's linker: rustup target add $target; see .cargo/config.toml"
        fi
        show cd "$repo"
        show env CROSS_CONFIG=cross.toml "$cross" build --release --locked --target "$target"
        if [ "$dry_run" = 0 ]; then
            (cd "$repo" && CROSS_CONFIG=cross.toml "$cross" build --release --locked --target "$target")
        fi
    else
        local cargo=${CARGO:-cargo}
        run "$cargo" build --release --locked --manifest-path "$repo/Cargo.toml" --target "$target"
    fi
}

# --- the remote script --------------------------------------------------------

# The script that runs on the Pi as root, with the staging directory as $1.
# Every path it touches is set in the block of assignments at the top.
remote_script() {
    # The account that deploys (USER@HOST's USER, else ssh's default: the
    # local user) joins the service's group, so that it may use
    # `kasa-thermostat set` (the control socket is mode 0660, group $SERVICE).
    local operator=${host%@*}
    [ "$operator" != "$host" ] || operator=$(id -un 2>/dev/null || true)
    case "$operator" in [a-z_]*) ;; *) operator="" ;; esac
    case "$operator" in *[!a-z0-9_-]*) operator="" ;; esac
    printf 'OPERATOR=%s\n' "$operator"
    printf 'INSTANCE=%s\n' "$instance"
    cat <<'EOF'
set -eu
STAGE=$1
case "$STAGE" in */kasa-thermostat-deploy.*) ;; *) echo "deploy: bad staging dir '$STAGE'" >&2; exit 1 ;; esac
BIN=/usr/local/bin/kasa-thermostat
ETC_DIR=/etc/kasa-thermostat
UNIT=/etc/systemd/system/kasa-thermostat.service
TEMPLATE=/etc/systemd/system/kasa-thermostat@.service
DROPIN_DIR=/etc/systemd/system/kasa-thermostat.service.d
LOGROTATE=/etc/logrotate.d/kasa-thermostat
LOG_DIR=/var/log/kasa-thermostat
STATE_DIR=/var/lib/kasa-thermostat
RUN_DIR=/run/kasa-thermostat
SVC=kasa-thermostat
trap 'rm -rf "$STAGE"' EXIT
command -v systemctl >/dev/null 2>&1 || { echo "deploy: systemd is required on this host" >&2; exit 1; }
if [ -n "$INSTANCE" ]; then
    UNIT_NAME="$SVC@$INSTANCE.service"
    CONFIG_FILE="$ETC_DIR/$INSTANCE.json"
else
    UNIT_NAME="$SVC.service"
    CONFIG_FILE="$ETC_DIR/config.json"
fi
# The other instances' names (their configs), one a line; $1 is left out.
other_instances() {
    for f in "$ETC_DIR"/*.json; do
        [ -e "$f" ] || continue
        n=${f##*/}
        n=${n%.json}
        case "$n" in config | config.example | "$1") continue ;; esac
        echo "$n"
    done
}
EOF
    if [ "$uninstall" = 1 ]; then
        cat <<'EOF'
if [ -n "$INSTANCE" ]; then
    if [ -f "$TEMPLATE" ]; then
        systemctl disable --now "$UNIT_NAME" || true
    fi
    if [ -e "$CONFIG_FILE" ]; then
        mv -f "$CONFIG_FILE" "$CONFIG_FILE.removed"
        echo "deploy: kept its config as $CONFIG_FILE.removed (status no longer lists it)"
    fi
    OTHERS=$(other_instances "$INSTANCE")
    if [ -z "$OTHERS" ]; then
        rm -f "$TEMPLATE" "$DROPIN_DIR/instances.conf"
        if [ -d "$DROPIN_DIR" ]; then rmdir "$DROPIN_DIR" 2>/dev/null || true; fi
    fi
    [ -n "$OTHERS" ] || [ -f "$UNIT" ] || rm -f "$LOGROTATE" "$BIN"
    systemctl daemon-reload
    systemctl reset-failed "$UNIT_NAME" 2>/dev/null || true
    echo "deploy: removed $SVC@$INSTANCE"
    echo "deploy: kept $LOG_DIR/$INSTANCE, $STATE_DIR/$INSTANCE and the user $SVC; remove them by hand if wanted:"
    echo "  rm -rf $LOG_DIR/$INSTANCE $STATE_DIR/$INSTANCE"
else
    if [ -f "$UNIT" ]; then
        systemctl disable --now "$SVC.service" || true
    fi
    rm -f "$UNIT"
    [ -n "$(other_instances "")" ] || rm -f "$LOGROTATE" "$BIN"
    systemctl daemon-reload
    systemctl reset-failed "$SVC.service" 2>/dev/null || true
    echo "deploy: removed $SVC (binary, unit, logrotate snippet)"
    echo "deploy: kept $ETC_DIR, $LOG_DIR, $STATE_DIR and the user $SVC; remove them by hand if wanted:"
    echo "  rm -rf $ETC_DIR $LOG_DIR $STATE_DIR && userdel $SVC"
fi
if [ -e "$BIN" ]; then
    REMAIN=$(other_instances "$INSTANCE" | tr '\n' ' ')
    if [ -f "$UNIT" ]; then REMAIN="$REMAIN$SVC"; fi
    echo "deploy: kept $BIN, the template unit and the logrotate snippet: other installs remain: $REMAIN"
fi
EOF
        return
    fi
    cat <<'EOF'
# 1. The new binary must run here and accept the config that it will use,
#    before anything is replaced or restarted. It is checked from its final
#    directory because /tmp may be mounted noexec.
install -m 0755 -o root -g root "$STAGE/kasa-thermostat" "$BIN.new"
if ! "$BIN.new" --version >"$STAGE/version.out" 2>&1; then
    cat "$STAGE/version.out" >&2
    rm -f "$BIN.new"
    echo "deploy: the new binary does not run on this host ($(uname -m)); pick another --target" >&2
    exit 1
fi
if [ -e "$CONFIG_FILE" ]; then
    CONFIG="$CONFIG_FILE"
    NEW_CONFIG=0
else
    CONFIG="$STAGE/config.json"
    NEW_CONFIG=1
fi
# shellcheck disable=SC2086 # no instance: no words; else two
if ! "$BIN.new" check-config "$CONFIG" ${INSTANCE:+--instance "$INSTANCE"} >"$STAGE/check-config.out" 2>&1; then
    cat "$STAGE/check-config.out" >&2
    rm -f "$BIN.new"
    echo "deploy: check-config rejected $CONFIG; nothing was installed or restarted" >&2
    exit 1
fi
# 2. The user (in the gpio group) and the directories.
getent group gpio >/dev/null || groupadd --system gpio
if ! id -u "$SVC" >/dev/null 2>&1; then
    useradd --system --user-group --no-create-home --home-dir "$STATE_DIR" \
        --shell /usr/sbin/nologin --groups gpio "$SVC"
fi
usermod -a -G gpio "$SVC"
if [ -n "$OPERATOR" ] && [ "$OPERATOR" != root ] && id -u "$OPERATOR" >/dev/null 2>&1; then
    usermod -a -G "$SVC" "$OPERATOR"
    echo "deploy: $OPERATOR is in the group $SVC: kasa-thermostat set works from its next login"
fi
install -d -m 0755 -o root -g root "$ETC_DIR"
install -d -m 0750 -o "$SVC" -g "$SVC" "$LOG_DIR" "$STATE_DIR"
if [ -n "$INSTANCE" ]; then
    install -d -m 0750 -o "$SVC" -g "$SVC" "$LOG_DIR/$INSTANCE" "$STATE_DIR/$INSTANCE"
fi
# 3. The files. The binary is replaced by rename, so a running service keeps
#    its old inode until the restart below.
mv -f "$BIN.new" "$BIN"
install -m 0644 -o root -g root "$STAGE/config.example.json" "$ETC_DIR/config.example.json"
if [ "$NEW_CONFIG" = 1 ]; then
    install -m 0640 -o root -g "$SVC" "$STAGE/config.json" "$CONFIG_FILE"
    echo "deploy: installed $CONFIG_FILE; edit the sensor id and plug host, then: systemctl restart ${UNIT_NAME%.service}"
else
    echo "deploy: kept the existing $CONFIG_FILE"
fi
if [ -n "$INSTANCE" ]; then
    install -m 0644 -o root -g root "$STAGE/kasa-thermostat@.service" "$TEMPLATE"
else
    install -m 0644 -o root -g root "$STAGE/kasa-thermostat.service" "$UNIT"
fi
if [ -n "$INSTANCE" ] || [ -n "$(other_instances "")" ]; then
    # Instances live under /run/kasa-thermostat too (their runtime
    # directories and the shared locks): stopping the single install must
    # not remove that directory from under them.
    install -d -m 0755 -o root -g root "$DROPIN_DIR"
    install -m 0644 -o root -g root "$STAGE/instances.conf" "$DROPIN_DIR/instances.conf"
fi
install -m 0644 -o root -g root "$STAGE/logrotate" "$LOGROTATE"
# 4. (Re)start. Type=notify: start/restart return once the service is ready.
systemctl daemon-reload
if systemctl is-active --quiet "$UNIT_NAME"; then
    systemctl enable "$UNIT_NAME"
    ACTION=restart
else
    ACTION="enable --now"
fi
# shellcheck disable=SC2086 # ACTION is two words on purpose
if ! systemctl $ACTION "$UNIT_NAME"; then
    systemctl --no-pager --lines=20 status "$UNIT_NAME" || true
    echo "deploy: ${UNIT_NAME%.service} did not start; see: journalctl -u ${UNIT_NAME%.service} -n 50" >&2
    exit 1
fi
systemctl --no-pager --lines=5 status "$UNIT_NAME" || true
"$BIN" --version
if [ -n "$INSTANCE" ]; then
    echo "deploy: $SVC@$INSTANCE is running. Logs: journalctl -u $SVC@$INSTANCE -f, and $LOG_DIR/$INSTANCE/; state: $SVC status $INSTANCE"
else
    echo "deploy: $SVC is running. Logs: journalctl -u $SVC -f, and $LOG_DIR/{kasa-thermostat.log,kasa_errors.log,readings.jsonl}; state: $SVC status --state-file $RUN_DIR/state.json"
fi
EOF
}

# --- main -------------------------------------------------------------------

if [ "$uninstall" = 0 ]; then
    if [ -n "$binary" ]; then
        [ -f "$binary" ] || die "--binary $binary: no such file"
    else
        build
        binary=${CARGO_TARGET_DIR:-$repo/target}/$target/release/$SERVICE
        if [ "$dry_run" = 0 ] && [ ! -f "$binary" ]; then
            die "the build did not produce $binary"
        fi
    fi
    config=${config:-$here/config.example.json}
    [ -f "$config" ] || die "--config $config: no such file"
fi

# Staged here under the fixed names that the remote script knows.
if [ "$dry_run" = 1 ]; then
    show mktemp -d "${TMPDIR:-/tmp}/kasa-deploy.XXXXXX"
    local_stage=LOCAL_STAGE
else
    local_stage=$(mktemp -d "${TMPDIR:-/tmp}/kasa-deploy.XXXXXX")
    trap 'rm -rf "$local_stage"' EXIT
fi
files=()
if [ "$uninstall" = 0 ]; then
    run cp "$binary" "$local_stage/$SERVICE"
    run cp "$config" "$local_stage/config.json"
    run cp "$here/config.example.json" "$here/kasa-thermostat.service" "$here/kasa-thermostat@.service" \
        "$here/instances.conf" "$here/logrotate" "$local_stage/"
    files=("$local_stage/$SERVICE" "$local_stage/config.json" "$local_stage/config.example.json"
        "$local_stage/kasa-thermostat.service" "$local_stage/kasa-thermostat@.service"
        "$local_stage/instances.conf" "$local_stage/logrotate")
fi

mktemp_cmd=(mktemp -d "/tmp/$SERVICE-deploy.XXXXXX")
show "${ssh_cmd[@]}" "$host" "${mktemp_cmd[@]}"
if [ "$dry_run" = 1 ]; then
    echo "  (prints the staging directory on the Pi: STAGE below)"
    stage=STAGE
else
    stage=$("${ssh_cmd[@]}" "$host" "${mktemp_cmd[@]}") ||
        die "cannot reach $host over ssh (${ssh_cmd[*]} $host)"
    case "$stage" in
        /*/"$SERVICE"-deploy.*) ;;
        *) die "unexpected answer from mktemp on $host: $stage" ;;
    esac
fi
if [ ${#files[@]} -gt 0 ]; then
    run "${scp_cmd[@]}" -q "${files[@]}" "$host:$stage/"
fi
echo "+ $(show "${ssh_cmd[@]}" "$host" "${remote_shell[@]}" -- "$stage" | cut -c3-) <<'SCRIPT'"
if [ "$dry_run" = 1 ]; then
    remote_script
    echo "SCRIPT"
    echo "deploy.sh: dry run, nothing was changed"
    exit 0
fi
if ! remote_script | "${ssh_cmd[@]}" "$host" "${remote_shell[@]}" -- "$stage"; then
    if [ "$remote_user" != root ]; then
        echo "deploy.sh: the remote part failed (see above). It needs passwordless sudo for $remote_user on ${host#*@}" >&2
        echo "  (Raspberry Pi OS's first user has it), or deploy as root@${host#*@}." >&2
    fi
    exit 1
fi
