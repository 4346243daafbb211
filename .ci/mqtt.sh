#!/usr/bin/env bash
# Gate: Home Assistant over MQTT against a real broker (issue 20). Debian's
# Mosquitto on a free loopback port with its own config in a temp dir; the
# service (`run --config`) on a kernel-w1-style sensor file and two simulated
# legacy plugs; the Mosquitto clients watch and command it. Checks: retained
# discovery against HA's documented keys (.ci/mqtt_check.py), availability
# `online`, a state update after a temperature change, a mode change published
# the way HA publishes it and seen in `kasa-thermostat status`, refused
# commands logged, discovery again on `homeassistant/status` = online, cycles
# going on while the broker is stopped, the broker's restart survived with
# discovery republished (the broker keeps nothing: persistence off), and the
# last will after SIGKILL. Fails when Mosquitto cannot be had.
set -euo pipefail
cd "$(dirname "$0")/.."
GATE=mqtt
fail() { echo "$GATE: FAIL: $*" >&2; [ -n "${D:-}" ] && tail -n 30 "$D/log/kasa-thermostat.log" >&2 2>/dev/null; exit 1; }
t0=$SECONDS

if ! command -v mosquitto >/dev/null 2>&1 && ! [ -x /usr/sbin/mosquitto ] || ! command -v mosquitto_sub >/dev/null 2>&1; then
    echo "$GATE: installing mosquitto and mosquitto-clients"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    ok=""
    # Another job may hold the apt lock for a while: retry.
    for _ in 1 2 3 4 5 6; do
        if DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mosquitto mosquitto-clients >/dev/null 2>&1; then ok=1; break; fi
        $SUDO apt-get update -qq >/dev/null 2>&1 || true
        sleep 10
    done
    [ -n "$ok" ] || fail "cannot install Debian's mosquitto and mosquitto-clients"
fi
MOSQUITTO=$(command -v mosquitto || echo /usr/sbin/mosquitto)
[ -x "$MOSQUITTO" ] || fail "mosquitto is not installed"
if ! command -v mosquitto_sub >/dev/null || ! command -v mosquitto_pub >/dev/null; then fail "mosquitto-clients is not installed"; fi

cargo build --quiet --bin kasa-thermostat
build_s=$((SECONDS - t0))
t0=$SECONDS
BIN=$(realpath target/debug/kasa-thermostat)
D=$(mktemp -d)
pids=()
BROKER=""
SVC=""
cleanup() {
    for p in "${pids[@]}" $BROKER $SVC; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$D"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for() { # seconds description command...: polls every 0.2 s
    local n=$(( $1 * 5 )) what="$2"
    shift 2
    for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
    fail "$what"
}

PORT=$(free_port)
mkdir -p "$D/broker"
cat >"$D/broker/mosquitto.conf" <<CONF
listener $PORT 127.0.0.1
allow_anonymous true
persistence false
log_dest file $D/broker/mosquitto.log
user $(id -un)
log_type error
CONF
start_broker() {
    "$MOSQUITTO" -c "$D/broker/mosquitto.conf" &
    BROKER=$!
    wait_for 10 "mosquitto did not listen on 127.0.0.1:$PORT" \
        mosquitto_pub -h 127.0.0.1 -p "$PORT" -t gate/ping -m x
}
start_broker
SUB=(-h 127.0.0.1 -p "$PORT")

id=28-000000000001
mkdir -p "$D/w1/$id" "$D/log" "$D/run"
w1() { # hex-lsb hex-msb millidegrees: the w1_slave file, replaced atomically
    printf '%s %s 4b 46 7f ff 0e 10 57 : crc=57 YES\n%s %s 4b 46 7f ff 0e 10 57 t=%s\n' \
        "$1" "$2" "$1" "$2" "$3" >"$D/w1/$id/w1_slave.tmp"
    mv "$D/w1/$id/w1_slave.tmp" "$D/w1/$id/w1_slave"
}
w1 72 01 23125
plug() { # name -> its port on stdout
    "$BIN" simulate-plug --model hs100 --bind 127.0.0.1:0 >"$D/$1.out" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do grep -q '127.0.0.1:[0-9]' "$D/$1.out" && break; sleep 0.1; done
    grep -o '127.0.0.1:[0-9]*' "$D/$1.out" | head -1 | cut -d: -f2
}
HEATER=$(plug heater)
COOLER=$(plug cooler)
if [ -z "$HEATER" ] || [ -z "$COOLER" ]; then fail "the simulated plugs did not start"; fi
P=kt/gate
DP=homeassistant
NODE=kt-gate
cat >"$D/config.json" <<JSON
{
  "mode": "heat", "low_limit": 22.0, "high_limit": 24.0,
  "cycle_s": 1, "rate_limit_s": 1, "switchover_delay_s": 0, "reconcile_s": 60,
  "sensor": { "backend": "w1", "id": "$id", "w1_root": "$D/w1",
              "interval_s": 1, "stale_after_s": 10, "max_step": 10 },
  "heater": { "host": "127.0.0.1", "port": $HEATER, "protocol": "legacy" },
  "cooler": { "host": "127.0.0.1", "port": $COOLER, "protocol": "legacy" },
  "log_dir": "$D/log",
  "state_file": "$D/run/state.json",
  "profile_state_file": "$D/run/profile.json",
  "overrides_file": "$D/run/overrides.json",
  "control_socket": "$D/run/control.sock",
  "mqtt": { "host": "127.0.0.1", "port": $PORT, "client_id": "$NODE",
            "topic_prefix": "$P", "publish_s": 30 }
}
JSON
"$BIN" check-config "$D/config.json" >/dev/null 2>"$D/check.err" || { cat "$D/check.err" >&2; fail "check-config refused the gate's config"; }

# Everything under the prefix, for the whole run.
mosquitto_sub "${SUB[@]}" -v -t "$P/#" >"$D/topics.log" 2>/dev/null &
pids+=($!)
"$BIN" run --config "$D/config.json" 2>"$D/service.err" &
SVC=$!
STATUS=("$BIN" status --state-file "$D/run/state.json" --json)

retained() { # topic -> the retained payload, or nothing within 2 s
    mosquitto_sub "${SUB[@]}" -C 1 -W 2 -t "$1" 2>/dev/null || true
}
wait_for 20 "availability did not say online" sh -c "[ \"\$(mosquitto_sub -h 127.0.0.1 -p $PORT -C 1 -W 2 -t $P/availability)\" = online ]"
echo "$GATE: availability online after $((SECONDS - t0)) s"

# Discovery: every retained config under the node.
collect_discovery() {
    mosquitto_sub "${SUB[@]}" -v -W 2 -t "$DP/+/$NODE/+/config" >"$D/discovery.log" 2>/dev/null || true
}
collect_discovery
python3 .ci/mqtt_check.py "$D/discovery.log" "$DP" "$NODE" "$P" C || fail "discovery"

# A temperature change reaches <prefix>/state.
wait_for 10 "no state with 23.13 °C" grep -q "^$P/state .*\"temperature\":23.13" "$D/topics.log"
w1 90 01 25000
wait_for 10 "no state update after the temperature changed to 25.0 °C" \
    grep -q "^$P/state .*\"temperature\":25.0" "$D/topics.log"
echo "$GATE: state followed the temperature to 25.0 °C"

# A mode change the way HA sends it: the bare mode on mode_command_topic.
mosquitto_pub "${SUB[@]}" -t "$P/set/mode" -m cool
wait_for 10 "set/mode cool not applied (kasa-thermostat status)" sh -c "$(printf '%q ' "${STATUS[@]}") | grep -q '\"mode\": \"cool\"'"
wait_for 10 "no state with mode cool" grep -q "^$P/state .*\"mode\":\"cool\"" "$D/topics.log"
grep -q "mqtt: mode cool\|mqtt: .*cool" "$D/log/kasa-thermostat.log" || fail "the change is not logged with source mqtt"
mosquitto_pub "${SUB[@]}" -t "$P/set/target" -m 21.5
wait_for 10 "set/target 21.5 not applied" sh -c "$(printf '%q ' "${STATUS[@]}") | grep -q '\"low_limit\": 20.5'"
echo "$GATE: mode and target from MQTT applied"

# Invalid values: refused, logged, the state republished.
before=$(grep -c "^$P/state " "$D/topics.log")
mosquitto_pub "${SUB[@]}" -t "$P/set/low" -m warm
mosquitto_pub "${SUB[@]}" -t "$P/set/high" -m 900
wait_for 10 "set/low warm not refused in the log" grep -q "mqtt: refused: $P/set/low: \"warm\" is not a temperature" "$D/log/kasa-thermostat.log"
wait_for 10 "set/high 900 not refused in the log" grep -q "mqtt: refused: .*900" "$D/log/kasa-thermostat.log"
wait_for 5 "the state was not republished after a refusal" sh -c "[ \$(grep -c '^$P/state ' $D/topics.log) -ge $((before + 2)) ]"
"${STATUS[@]}" | grep -q '"mode": "cool"' || fail "a refused command changed the mode"

# Home Assistant restarting: discovery again.
mosquitto_pub "${SUB[@]}" -r -n -t "$DP/climate/$NODE/thermostat/config"
[ -z "$(retained "$DP/climate/$NODE/thermostat/config")" ] || fail "could not clear the retained climate config"
mosquitto_pub "${SUB[@]}" -t "$DP/status" -m online
wait_for 10 "discovery not republished after $DP/status online" sh -c "[ -n \"\$(mosquitto_sub -h 127.0.0.1 -p $PORT -C 1 -W 1 -t $DP/climate/$NODE/thermostat/config)\" ]"
echo "$GATE: discovery republished when HA said online"

# The broker stops: cycles go on; it comes back: discovery again.
kill "$BROKER"; wait "$BROKER" 2>/dev/null || true; BROKER=""
lines0=$(wc -l <"$D/log/readings.jsonl")
sleep 4
lines1=$(wc -l <"$D/log/readings.jsonl")
[ $((lines1 - lines0)) -ge 3 ] || fail "only $((lines1 - lines0)) control cycles in 4 s while the broker was stopped"
kill -0 "$SVC" 2>/dev/null || fail "the service ended when the broker stopped"
w1 40 01 20000
wait_for 5 "the state file did not follow the temperature while the broker was stopped" \
    sh -c "$(printf '%q ' "${STATUS[@]}") | grep -q '\"temperature\": 20.0'"
echo "$GATE: $((lines1 - lines0)) cycles in 4 s with the broker stopped"
start_broker
mosquitto_sub "${SUB[@]}" -v -t "$P/#" >>"$D/topics.log" 2>/dev/null &
pids+=($!)
wait_for 20 "discovery not republished after the broker restarted" sh -c "[ -n \"\$(mosquitto_sub -h 127.0.0.1 -p $PORT -C 1 -W 1 -t $DP/climate/$NODE/thermostat/config)\" ]"
[ "$(retained "$P/availability")" = online ] || fail "availability not online after the broker restarted"
collect_discovery
python3 .ci/mqtt_check.py "$D/discovery.log" "$DP" "$NODE" "$P" C >/dev/null || fail "discovery after the restart"
wait_for 10 "no state with 20.0 °C after the restart" grep -q "^$P/state .*\"temperature\":20.0" "$D/topics.log"
[ "$(grep -c 'mqtt: lost the broker' "$D/log/kasa-thermostat.log")" = 1 ] || fail "the loss of the broker is not logged exactly once"
[ "$(grep -c 'mqtt: the broker .* is back' "$D/log/kasa-thermostat.log")" = 1 ] || fail "the broker's return is not logged exactly once"
echo "$GATE: broker restart survived, discovery and state republished"

# SIGKILL: the broker publishes the last will.
kill -9 "$SVC"; wait "$SVC" 2>/dev/null || true; SVC=""
wait_for 10 "no last will (offline) after SIGKILL" sh -c "[ \"\$(mosquitto_sub -h 127.0.0.1 -p $PORT -C 1 -W 1 -t $P/availability)\" = offline ]"
echo "$GATE: last will offline after SIGKILL"
echo "$GATE: passed in $((SECONDS - t0)) s (after $build_s s of install and build)"
