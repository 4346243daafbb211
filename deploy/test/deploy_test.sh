#!/usr/bin/env bash
# Tests for deploy/deploy.sh against a fake Pi: local-bin/ holds fake ssh,
# scp, cargo and rustup; the fake ssh runs the remote script here with the
# Pi's paths moved under a temporary root and remote-bin/ (fake systemctl,
# useradd, install, ...) first on PATH. Nothing leaves this machine.
#
#   deploy/test/deploy_test.sh        (prints "N passed, N failed")
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
deploy_dir=$(cd "$here/.." && pwd)
deploy=$deploy_dir/deploy.sh
work=$(mktemp -d "${TMPDIR:-/tmp}/deploy-test.XXXXXX")
trap 'rm -rf "$work"' EXIT

passed=0
failed=0
current=""
case_failed=0

fail() {
    echo "    FAIL ($current): $*"
    case_failed=1
}
check() { # check MESSAGE COMMAND...
    local msg=$1
    shift
    "$@" >/dev/null 2>&1 || fail "$msg"
}
mode_of() { stat -c %a "$FAKEROOT$1"; }
owner_of() { awk -v p="$FAKEROOT$1" '$1 == p { print $2 }' "$FAKEROOT/owners"; }

# A fresh fake Pi: the directories a Raspberry Pi OS has, a gpio group, no
# kasa-thermostat anything.
setup() {
    local case_dir="$work/$1"
    export FAKEROOT="$case_dir/root" FAKELOG="$case_dir/log"
    export CARGO_TARGET_DIR="$case_dir/target"
    mkdir -p "$FAKEROOT"/{etc/systemd/system,etc/logrotate.d,usr/local/bin,var/log,var/lib,tmp,run} "$FAKELOG"
    printf '%s\n' "root:x:0:0::/root:/bin/sh" "pi:x:1000:1000::/home/pi:/bin/sh" >"$FAKEROOT/etc/passwd"
    printf '%s\n' "root:x:0:" "gpio:x:997:" >"$FAKEROOT/etc/group"
    export PATH="$here/local-bin:$ORIG_PATH"
    unset SSH SCP CARGO CROSS
}

# Runs deploy.sh; its output goes to $FAKELOG/out.
deploy() {
    "$deploy" "$@" >"$FAKELOG/out" 2>&1
}

# Every file and directory under the fake root with its mode and content
# hash: two equal snapshots mean nothing changed.
snapshot() {
    (
        cd "$FAKEROOT" || exit 1
        find . -printf '%p %m %y\n' | grep -v '^\./owners' | sort
        find . -type f ! -name owners -exec md5sum {} + | sort -k2
        # Owners (kept by the fake install) of the paths that still exist.
        while read -r path owner; do
            [ -e "$path" ] && echo "$path $owner"
        done <owners | sort
    )
}

run_case() {
    current=$1
    case_failed=0
    setup "$1"
    "$1"
    if [ "$case_failed" = 0 ]; then
        passed=$((passed + 1))
        echo "ok   $1"
    else
        failed=$((failed + 1))
        echo "FAIL $1 (output of the last deploy.sh run:)"
        sed 's/^/    | /' "$FAKELOG/out" 2>/dev/null | tail -n 30
    fi
}

# --- cases ------------------------------------------------------------------

test_fresh_install_lays_out_every_file() {
    deploy pi@fakepi || fail "deploy.sh exited non-zero"
    local f
    for f in /usr/local/bin/kasa-thermostat:755:root:root \
        /etc/kasa-thermostat:755:root:root \
        /etc/kasa-thermostat/config.json:640:root:kasa-thermostat \
        /etc/kasa-thermostat/config.example.json:644:root:root \
        /etc/systemd/system/kasa-thermostat.service:644:root:root \
        /etc/logrotate.d/kasa-thermostat:644:root:root \
        /var/log/kasa-thermostat:750:kasa-thermostat:kasa-thermostat \
        /var/lib/kasa-thermostat:750:kasa-thermostat:kasa-thermostat; do
        IFS=: read -r path mode owner group <<<"$f"
        [ -e "$FAKEROOT$path" ] || { fail "$path missing"; continue; }
        [ "$(mode_of "$path")" = "$mode" ] || fail "$path mode $(mode_of "$path"), want $mode"
        [ "$(owner_of "$path")" = "$owner:$group" ] || fail "$path owner $(owner_of "$path"), want $owner:$group"
    done
    check "unit is the repo's unit" cmp "$FAKEROOT/etc/systemd/system/kasa-thermostat.service" "$deploy_dir/kasa-thermostat.service"
    check "logrotate is the repo's snippet" cmp "$FAKEROOT/etc/logrotate.d/kasa-thermostat" "$deploy_dir/logrotate"
    check "config is the example" cmp "$FAKEROOT/etc/kasa-thermostat/config.json" "$deploy_dir/config.example.json"
    check "binary is the built one" cmp "$FAKEROOT/usr/local/bin/kasa-thermostat" "$CARGO_TARGET_DIR/aarch64-unknown-linux-musl/release/kasa-thermostat"
    check "built with cargo for aarch64 musl, --release --locked" \
        grep -q -- "build --release --locked .*--target aarch64-unknown-linux-musl" "$FAKELOG/cargo.log"
    check "system user created" grep -q "^kasa-thermostat:" "$FAKEROOT/etc/passwd"
    check "user is in gpio" grep -q "^gpio:x:997:kasa-thermostat$" "$FAKEROOT/etc/group"
    check "the deploying user is in the service's group (for set)" grep -qE "^kasa-thermostat:x:[0-9]+:pi$" "$FAKEROOT/etc/group"
    check "ran as sudo -n sh -s" grep -q "^sudo -n sh -s -- $FAKEROOT/tmp/kasa-thermostat-deploy\." "$FAKELOG/ssh.log"
    check "daemon-reload" grep -qx "systemctl daemon-reload" "$FAKELOG/systemctl.log"
    check "enable --now" grep -qx "systemctl enable --now kasa-thermostat.service" "$FAKELOG/systemctl.log"
    check "service active" test -e "$FAKEROOT/run/fake-systemd/active"
    check "service enabled" test -e "$FAKEROOT/run/fake-systemd/enabled"
    check "status printed" grep -q "active (running)" "$FAKELOG/out"
    check "says where the logs are" grep -q "journalctl -u kasa-thermostat" "$FAKELOG/out"
    check "says to edit the new config" grep -q "edit the sensor id" "$FAKELOG/out"
    [ -z "$(find "$FAKEROOT/tmp" -mindepth 1)" ] || fail "staging dir left behind in /tmp"
    [ ! -e "$FAKEROOT/usr/local/bin/kasa-thermostat.new" ] || fail "kasa-thermostat.new left behind"
}

# The unit and the example config agree on where the service may write
# (issue 9: the state file is runtime, in /run), and the unit gives the
# service's 15 s stop budget room before SIGKILL.
test_unit_writes_only_its_directories_and_state_lives_in_run() {
    local unit=$deploy_dir/kasa-thermostat.service
    check "RuntimeDirectory=kasa-thermostat" grep -qx "RuntimeDirectory=kasa-thermostat" "$unit"
    check "LogsDirectory=kasa-thermostat" grep -qx "LogsDirectory=kasa-thermostat" "$unit"
    check "StateDirectory=kasa-thermostat" grep -qx "StateDirectory=kasa-thermostat" "$unit"
    check "ProtectSystem=strict" grep -qx "ProtectSystem=strict" "$unit"
    local rw
    rw=$(sed -n 's/^ReadWritePaths=//p' "$unit" | tr ' ' '\n' | grep -v -e '^/var/log/kasa-thermostat$' -e '^/var/lib/kasa-thermostat$' -e '^/run/kasa-thermostat$' || true)
    [ -z "$rw" ] || fail "ReadWritePaths= opens more than the service's directories: $rw"
    check "Type=notify" grep -qx "Type=notify" "$unit"
    check "Restart=always" grep -qx "Restart=always" "$unit"
    check "a watchdog" grep -qE "^WatchdogSec=[1-9][0-9]*s$" "$unit"
    local stop
    stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s$/\1/p' "$unit")
    [ -n "$stop" ] || fail "no TimeoutStopSec=Ns in the unit"
    [ "${stop:-0}" -gt 15 ] || fail "TimeoutStopSec=${stop}s does not exceed the service's 15 s stop budget"
    local example=$deploy_dir/config.example.json
    check "example state_file in /run/kasa-thermostat" grep -q '"state_file": "/run/kasa-thermostat/state.json"' "$example"
    check "example log_dir on disk" grep -q '"log_dir": "/var/log/kasa-thermostat"' "$example"
    deploy pi@fakepi || fail "deploy.sh exited non-zero"
    check "points at the state in /run" grep -qF "status --state-file $FAKEROOT/run/kasa-thermostat/state.json" "$FAKELOG/out"
    if grep -q "var/lib/kasa-thermostat/state.json" "$FAKELOG/out"; then fail "still points at /var/lib/kasa-thermostat/state.json"; fi
}

test_second_run_upgrades_keeps_config_and_is_idempotent() {
    deploy pi@fakepi || fail "first run failed"
    local cfg=$FAKEROOT/etc/kasa-thermostat/config.json
    # The user's own edit, which must survive.
    sed -i 's/"low_limit": 18.0/"low_limit": 17.5/' "$cfg"
    cp "$cfg" "$FAKELOG/config.edited"
    local before
    before=$(snapshot | grep -v 'usr/local/bin/kasa-thermostat$' | grep -v 'run/fake-systemd/active$')
    deploy pi@fakepi || fail "second run failed"
    check "existing config kept" cmp "$cfg" "$FAKELOG/config.edited"
    check "said it kept the config" grep -q "kept the existing" "$FAKELOG/out"
    check "binary upgraded" grep -q "0.0.2-fake" "$FAKEROOT/usr/local/bin/kasa-thermostat"
    check "restarted" grep -qx "systemctl restart kasa-thermostat.service" "$FAKELOG/systemctl.log"
    check "runs the new build" grep -qx "0.0.2-fake" "$FAKEROOT/run/fake-systemd/active"
    [ "$(grep -c '^kasa-thermostat:' "$FAKEROOT/etc/passwd")" = 1 ] || fail "user added twice"
    [ "$(grep -c '^useradd' "$FAKELOG/accounts.log")" = 1 ] || fail "useradd ran twice"
    check "gpio membership once" grep -qx "gpio:x:997:kasa-thermostat" "$FAKEROOT/etc/group"
    local after
    after=$(snapshot | grep -v 'usr/local/bin/kasa-thermostat$' | grep -v 'run/fake-systemd/active$')
    [ "$before" = "$after" ] || fail "second run changed more than the binary: $(diff <(echo "$before") <(echo "$after") | head -n 5)"
}

test_same_binary_twice_changes_nothing() {
    "$here/local-bin/cargo" build --target fixed
    local bin=$CARGO_TARGET_DIR/fixed/release/kasa-thermostat
    deploy --binary "$bin" pi@fakepi || fail "first run failed"
    local first
    first=$(snapshot)
    deploy --binary "$bin" pi@fakepi || fail "second run failed"
    [ "$first" = "$(snapshot)" ] || fail "second run with the same binary changed files: $(diff <(echo "$first") <(snapshot) | head -n 5)"
    check "no build with --binary" test "$(grep -c build "$FAKELOG/cargo.log")" = 1
}

test_dry_run_changes_nothing() {
    deploy pi@fakepi || fail "setup deploy failed"
    rm -f "$FAKELOG"/{ssh,systemctl,cargo}.log
    local before
    before=$(snapshot)
    local target_before
    target_before=$(find "$CARGO_TARGET_DIR" -printf '%p %T@\n' | sort)
    deploy --dry-run pi@fakepi || fail "dry run exited non-zero"
    [ "$before" = "$(snapshot)" ] || fail "dry run changed the fake Pi"
    [ "$target_before" = "$(find "$CARGO_TARGET_DIR" -printf '%p %T@\n' | sort)" ] || fail "dry run built"
    [ ! -e "$FAKELOG/ssh.log" ] || fail "dry run called ssh/scp: $(cat "$FAKELOG/ssh.log")"
    [ ! -e "$FAKELOG/cargo.log" ] || fail "dry run called cargo"
    local want
    for want in "+ cargo build --release --locked" "+ ssh pi@fakepi mktemp -d /tmp/kasa-thermostat-deploy." \
        "+ scp -q" "+ ssh pi@fakepi sudo -n sh -s -- STAGE <<'SCRIPT'" "check-config" \
        "systemctl daemon-reload" "nothing was changed"; do
        grep -qF -- "$want" "$FAKELOG/out" || fail "dry run output lacks: $want"
    done
    [ -z "$(find "${TMPDIR:-/tmp}" -maxdepth 1 -name 'kasa-deploy.*' -newer "$FAKELOG" 2>/dev/null)" ] ||
        fail "dry run left a local staging dir"
}

test_remote_script_is_posix_sh_and_shellcheck_clean() {
    deploy --dry-run pi@fakepi || fail "dry run failed"
    sed -n "/<<'SCRIPT'\$/,/^SCRIPT\$/p" "$FAKELOG/out" | sed '1d;$d' >"$FAKELOG/remote.sh"
    [ -s "$FAKELOG/remote.sh" ] || fail "no remote script in the dry-run output"
    check "remote script parses with sh -n" sh -n "$FAKELOG/remote.sh"
    if command -v shellcheck >/dev/null 2>&1; then
        shellcheck -s sh "$FAKELOG/remote.sh" >"$FAKELOG/sc.out" 2>&1 || fail "shellcheck: $(head -n 5 "$FAKELOG/sc.out")"
    fi
    deploy --dry-run --uninstall pi@fakepi || fail "dry run --uninstall failed"
    sed -n "/<<'SCRIPT'\$/,/^SCRIPT\$/p" "$FAKELOG/out" | sed '1d;$d' >"$FAKELOG/remote-un.sh"
    check "uninstall script parses with sh -n" sh -n "$FAKELOG/remote-un.sh"
    local args
    for args in "--instance brew" "--instance brew --uninstall"; do
        # shellcheck disable=SC2086 # two or three words
        deploy --dry-run $args pi@fakepi || fail "dry run $args failed"
        sed -n "/<<'SCRIPT'\$/,/^SCRIPT\$/p" "$FAKELOG/out" | sed '1d;$d' >"$FAKELOG/remote-i.sh"
        check "INSTANCE=brew in the script ($args)" grep -qx "INSTANCE=brew" "$FAKELOG/remote-i.sh"
        check "script parses with sh -n ($args)" sh -n "$FAKELOG/remote-i.sh"
        if [ "$args" = "--instance brew" ] && command -v shellcheck >/dev/null 2>&1; then
            shellcheck -s sh "$FAKELOG/remote-i.sh" >"$FAKELOG/sc.out" 2>&1 || fail "shellcheck ($args): $(head -n 5 "$FAKELOG/sc.out")"
        fi
    done
}

# Two chambers beside the single install (issue 21): each instance has its
# config, directories and unit; the single install is left as it was.
test_instances_install_beside_the_single_one() {
    deploy pi@fakepi || fail "single install failed"
    local single_before
    single_before=$(snapshot | grep -e 'etc/kasa-thermostat/config.json' -e 'kasa-thermostat.service ' -e 'var/lib/kasa-thermostat ')
    deploy --instance brew pi@fakepi || fail "deploy --instance brew failed"
    deploy --instance keg pi@fakepi || fail "deploy --instance keg failed"
    local f name
    for name in brew keg; do
        for f in /etc/kasa-thermostat/$name.json:640:root:kasa-thermostat \
            /var/log/kasa-thermostat/$name:750:kasa-thermostat:kasa-thermostat \
            /var/lib/kasa-thermostat/$name:750:kasa-thermostat:kasa-thermostat; do
            IFS=: read -r path mode owner group <<<"$f"
            [ -e "$FAKEROOT$path" ] || { fail "$path missing"; continue; }
            [ "$(mode_of "$path")" = "$mode" ] || fail "$path mode $(mode_of "$path"), want $mode"
            [ "$(owner_of "$path")" = "$owner:$group" ] || fail "$path owner $(owner_of "$path"), want $owner:$group"
        done
        check "enable --now kasa-thermostat@$name" grep -qx "systemctl enable --now kasa-thermostat@$name.service" "$FAKELOG/systemctl.log"
        check "kasa-thermostat@$name active" test -e "$FAKEROOT/run/fake-systemd/active.kasa-thermostat@$name.service"
        check "its config checked as the instance" grep -q "check-config .* --instance $name\$" "$FAKELOG/binary.log"
    done
    check "the config of a new instance is the example" cmp "$FAKEROOT/etc/kasa-thermostat/brew.json" "$deploy_dir/config.example.json"
    check "the template is the repo's" cmp "$FAKEROOT/etc/systemd/system/kasa-thermostat@.service" "$deploy_dir/kasa-thermostat@.service"
    check "the single unit keeps /run/kasa-thermostat for the instances" \
        cmp "$FAKEROOT/etc/systemd/system/kasa-thermostat.service.d/instances.conf" "$deploy_dir/instances.conf"
    check "the single install still active" test -e "$FAKEROOT/run/fake-systemd/active"
    check "says how to see it" grep -q "kasa-thermostat status keg" "$FAKELOG/out"
    [ "$single_before" = "$(snapshot | grep -e 'etc/kasa-thermostat/config.json' -e 'kasa-thermostat.service ' -e 'var/lib/kasa-thermostat ')" ] ||
        fail "installing instances changed the single install"
    if grep -q "restart kasa-thermostat.service" "$FAKELOG/systemctl.log"; then fail "an instance deploy restarted the single install"; fi
}

test_instance_upgrade_is_idempotent() {
    "$here/local-bin/cargo" build --target fixed
    local bin=$CARGO_TARGET_DIR/fixed/release/kasa-thermostat
    deploy --binary "$bin" --instance brew pi@fakepi || fail "first run failed"
    local first
    first=$(snapshot)
    deploy --binary "$bin" --instance brew pi@fakepi || fail "second run failed"
    [ "$first" = "$(snapshot)" ] || fail "a second run changed files: $(diff <(echo "$first") <(snapshot) | head -n 5)"
    check "kept the config" grep -q "kept the existing $FAKEROOT/etc/kasa-thermostat/brew.json" "$FAKELOG/out"
    check "restarted the instance" grep -qx "systemctl restart kasa-thermostat@brew.service" "$FAKELOG/systemctl.log"
}

test_uninstall_one_instance_leaves_the_others() {
    deploy --instance brew pi@fakepi || fail "brew failed"
    deploy --instance keg pi@fakepi || fail "keg failed"
    deploy --uninstall --instance brew pi@fakepi || fail "uninstall brew failed"
    check "disable --now brew" grep -qx "systemctl disable --now kasa-thermostat@brew.service" "$FAKELOG/systemctl.log"
    check "brew stopped" test ! -e "$FAKEROOT/run/fake-systemd/active.kasa-thermostat@brew.service"
    check "keg still active" test -e "$FAKEROOT/run/fake-systemd/active.kasa-thermostat@keg.service"
    check "brew's config kept aside" test -e "$FAKEROOT/etc/kasa-thermostat/brew.json.removed"
    check "brew's config no longer an install" test ! -e "$FAKEROOT/etc/kasa-thermostat/brew.json"
    local p
    for p in /usr/local/bin/kasa-thermostat /etc/systemd/system/kasa-thermostat@.service /etc/logrotate.d/kasa-thermostat \
        /etc/kasa-thermostat/keg.json /var/log/kasa-thermostat/brew /var/lib/kasa-thermostat/brew; do
        [ -e "$FAKEROOT$p" ] || fail "$p removed while keg remains"
    done
    check "says what it kept" grep -q "other installs remain: keg" "$FAKELOG/out"
    if grep -q "disable.*keg" "$FAKELOG/systemctl.log"; then fail "keg was disabled"; fi
    deploy --uninstall --instance keg pi@fakepi || fail "uninstall keg failed"
    for p in /usr/local/bin/kasa-thermostat /etc/systemd/system/kasa-thermostat@.service /etc/logrotate.d/kasa-thermostat \
        /etc/systemd/system/kasa-thermostat.service.d; do
        [ ! -e "$FAKEROOT$p" ] || fail "$p still there after the last install went"
    done
    deploy --uninstall --instance keg pi@fakepi || fail "a second uninstall of keg failed"
}

test_single_uninstall_keeps_what_instances_need() {
    deploy pi@fakepi || fail "single failed"
    deploy --instance brew pi@fakepi || fail "brew failed"
    deploy --uninstall pi@fakepi || fail "uninstall single failed"
    check "single unit gone" test ! -e "$FAKEROOT/etc/systemd/system/kasa-thermostat.service"
    check "binary kept for brew" test -e "$FAKEROOT/usr/local/bin/kasa-thermostat"
    check "brew still active" test -e "$FAKEROOT/run/fake-systemd/active.kasa-thermostat@brew.service"
}

test_bad_instance_names_are_refused_before_anything() {
    local bad
    for bad in ../x "a b" config locks -x "$(printf 'x%.0s' {1..33})"; do
        if deploy --instance "$bad" pi@fakepi; then fail "--instance '$bad' accepted"; fi
        check "names the instance '$bad'" grep -qF -- "--instance $bad: a name is" "$FAKELOG/out"
    done
    [ ! -e "$FAKELOG/ssh.log" ] || fail "contacted the Pi after a bad name"
    [ ! -e "$FAKELOG/cargo.log" ] || fail "built after a bad name"
}

test_bad_config_stops_before_anything_changes() {
    deploy pi@fakepi || fail "first run failed"
    local cfg=$FAKEROOT/etc/kasa-thermostat/config.json
    echo '{"INVALID": true}' >"$cfg"
    rm -f "$FAKELOG/systemctl.log"
    local before
    before=$(snapshot | grep -v '/tmp/')
    if deploy pi@fakepi; then fail "deploy.sh succeeded with a config that check-config rejects"; fi
    check "names check-config" grep -q "check-config rejected" "$FAKELOG/out"
    check "shows the binary's reason" grep -q "invalid config (fake)" "$FAKELOG/out"
    [ "$before" = "$(snapshot | grep -v '/tmp/')" ] || fail "a rejected config still changed files"
    [ ! -e "$FAKELOG/systemctl.log" ] || fail "systemctl called: $(cat "$FAKELOG/systemctl.log")"
}

test_failed_start_is_an_error_with_a_pointer_to_the_logs() {
    touch "$FAKELOG/fail-start"
    if deploy pi@fakepi; then fail "deploy.sh succeeded though the service did not start"; fi
    check "points at journalctl" grep -q "journalctl -u kasa-thermostat -n 50" "$FAKELOG/out"
    check "mentions sudo" grep -q "passwordless sudo" "$FAKELOG/out"
}

test_config_flag_seeds_a_new_pi_only() {
    local mine=$FAKELOG/mine.json
    sed 's/192.0.2.50/10.0.0.7/' "$deploy_dir/config.example.json" >"$mine"
    deploy --config "$mine" pi@fakepi || fail "first run failed"
    check "--config installed" cmp "$FAKEROOT/etc/kasa-thermostat/config.json" "$mine"
    echo '{"units": "F"}' >"$mine"
    deploy --config "$mine" pi@fakepi || fail "second run failed"
    check "--config does not overwrite" grep -q 10.0.0.7 "$FAKEROOT/etc/kasa-thermostat/config.json"
}

test_root_login_needs_no_sudo() {
    deploy root@fakepi || fail "deploy.sh failed"
    check "ran sh -s" grep -q "^ssh root@fakepi sh -s -- " "$FAKELOG/ssh.log"
    if grep -q '^sudo' "$FAKELOG/ssh.log"; then fail "used sudo as root"; fi
}

test_ssh_and_scp_overrides_are_used() {
    export SSH="ssh -p 2222 -o BatchMode=yes" SCP="scp -P 2222"
    deploy --target armv7-unknown-linux-gnueabihf pi@fakepi || fail "deploy.sh failed"
    check "ssh got the options" grep -q "^ssh pi@fakepi" "$FAKELOG/ssh.log"
    check "scp got the options" grep -q "^scp -P 2222 -q " "$FAKELOG/ssh.log"
    check "built for armv7" grep -q -- "--target armv7-unknown-linux-gnueabihf" "$FAKELOG/cargo.log"
    unset SSH SCP
}

test_uninstall_removes_the_service_and_keeps_the_data() {
    deploy pi@fakepi || fail "install failed"
    deploy --uninstall pi@fakepi || fail "uninstall failed"
    local p
    for p in /usr/local/bin/kasa-thermostat /etc/systemd/system/kasa-thermostat.service /etc/logrotate.d/kasa-thermostat; do
        [ ! -e "$FAKEROOT$p" ] || fail "$p still there"
    done
    for p in /etc/kasa-thermostat/config.json /var/log/kasa-thermostat /var/lib/kasa-thermostat; do
        [ -e "$FAKEROOT$p" ] || fail "$p removed"
    done
    check "disable --now" grep -qx "systemctl disable --now kasa-thermostat.service" "$FAKELOG/systemctl.log"
    check "stopped" test ! -e "$FAKEROOT/run/fake-systemd/active"
    check "not built for uninstall" test "$(grep -c build "$FAKELOG/cargo.log")" = 1
    deploy --uninstall pi@fakepi || fail "a second uninstall failed"
    [ -z "$(find "$FAKEROOT/tmp" -mindepth 1)" ] || fail "staging dir left behind"
}

test_bad_arguments_are_clear_errors() {
    if deploy; then fail "no host accepted"; fi
    check "asks for the host" grep -q "USER@HOST is required" "$FAKELOG/out"
    if deploy --target mips-unknown-linux-gnu pi@fakepi; then fail "unknown target accepted"; fi
    check "names the target" grep -q "unknown target mips-unknown-linux-gnu" "$FAKELOG/out"
    if deploy --frobnicate pi@fakepi; then fail "unknown option accepted"; fi
    check "names the option" grep -q "unknown option --frobnicate" "$FAKELOG/out"
    if deploy --binary /nonexistent pi@fakepi; then fail "missing binary accepted"; fi
    [ ! -e "$FAKELOG/ssh.log" ] || fail "contacted the Pi after a usage error"
}

test_armv6_needs_cross_with_cross_toml() {
    # A fake cross that records its environment.
    local bin=$FAKELOG/bin
    mkdir -p "$bin"
    cat >"$bin/cross" <<'EOF'
#!/bin/sh
echo "cross $* CROSS_CONFIG=$CROSS_CONFIG cwd=$(pwd)" >>"$FAKELOG/cargo.log"
exit 1
EOF
    chmod +x "$bin/cross"
    export CROSS="$bin/cross"
    if deploy --target arm-unknown-linux-gnueabihf pi@fakepi; then fail "a failed cross build went on"; fi
    check "cross called with CROSS_CONFIG=cross.toml" grep -q "^cross build --release --locked --target arm-unknown-linux-gnueabihf CROSS_CONFIG=cross.toml cwd=$(cd "$deploy_dir/.." && pwd)$" "$FAKELOG/cargo.log"
    [ ! -e "$FAKELOG/ssh.log" ] || fail "contacted the Pi after a failed build"
    unset CROSS
}

ORIG_PATH=$PATH
for t in $(declare -F | awk '{ print $3 }' | grep '^test_'); do
    run_case "$t"
done
echo "deploy tests: $passed passed, $failed failed"
[ "$failed" = 0 ]
