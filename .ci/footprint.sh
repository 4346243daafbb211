#!/usr/bin/env bash
# Measures the service's footprint (docs/design.md §13.1): the real service
# (`run --config`) on a kernel-w1-style sensor file and one simulated legacy
# plug in another process, for SECONDS (default 300). The temperature moves
# across the limits every 20 s, so the heater switches (with its dead-man)
# both ways. Prints the resident memory, the CPU the service process used,
# the control cycles and plug commands it logged, and CPU per cycle.
# Not part of .ci/run (it takes minutes); run by hand after a change that
# could cost memory or CPU:
#   cargo build --release && bash .ci/footprint.sh target/release/kasa-thermostat 300
set -euo pipefail
bin=$(realpath "${1:-target/release/kasa-thermostat}")
secs=${2:-300}
d=$(mktemp -d)
trap 'kill "${svc:-}" "${plug:-}" 2>/dev/null || true; rm -rf "$d"' EXIT
id=28-000000000001
mkdir -p "$d/w1/$id" "$d/log" "$d/run"
w1() { # hex-lsb hex-msb millidegrees: one w1_slave file, replaced atomically
    printf '%s %s 4b 46 7f ff 0e 10 57 : crc=57 YES\n%s %s 4b 46 7f ff 0e 10 57 t=%s\n' \
        "$1" "$2" "$1" "$2" "$3" >"$d/w1/$id/w1_slave.tmp"
    mv "$d/w1/$id/w1_slave.tmp" "$d/w1/$id/w1_slave"
}
w1 72 01 23125

"$bin" simulate-plug --model hs100 --bind 127.0.0.1:0 >"$d/plug.out" 2>&1 &
plug=$!
for _ in $(seq 100); do
    grep -q '127.0.0.1:[0-9]' "$d/plug.out" && break
    sleep 0.1
done
port=$(grep -o '127.0.0.1:[0-9]*' "$d/plug.out" | head -1 | cut -d: -f2)
[ -n "$port" ] || { echo "footprint.sh: the simulated plug did not start" >&2; exit 1; }
cat >"$d/config.json" <<JSON
{
  "mode": "heat", "low_limit": 22.0, "high_limit": 24.0,
  "cycle_s": 2, "rate_limit_s": 2, "reconcile_s": 60,
  "sensor": { "backend": "w1", "id": "$id", "w1_root": "$d/w1",
              "interval_s": 1, "stale_after_s": 10, "max_step": 10 },
  "heater": { "host": "127.0.0.1", "port": $port, "protocol": "legacy" },
  "log_dir": "$d/log",
  "state_file": "$d/run/state.json",
  "profile_state_file": "$d/run/profile.json"
}
JSON
"$bin" run --config "$d/config.json" 2>"$d/service.err" &
svc=$!
t0=$SECONDS
i=0
while [ $((SECONDS - t0)) -lt "$secs" ]; do
    # 21.000 and 25.000 °C in turn (0x0150 and 0x0190 sixteenths).
    if [ $((i % 2)) = 0 ]; then w1 50 01 21000; else w1 90 01 25000; fi
    i=$((i + 1))
    sleep 20
done
kill -0 "$svc" || { cat "$d/service.err" >&2; echo "footprint.sh: the service died" >&2; exit 1; }
rss=$(awk '/^VmRSS/ {print $2}' "/proc/$svc/status")
hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$svc/status")
read -r -a st <"/proc/$svc/stat"
ticks=$((st[13] + st[14]))
hz=$(getconf CLK_TCK)
kill -TERM "$svc"
wait "$svc" || { echo "footprint.sh: the service did not stop cleanly" >&2; exit 1; }
svc=
cycles=$(wc -l <"$d/log/readings.jsonl")
commands=$(wc -l <"$d/log/plug-events.jsonl")
[ "$cycles" -gt 0 ] || { echo "footprint.sh: no control cycle was logged" >&2; exit 1; }
awk -v s="$secs" -v rss="$rss" -v hwm="$hwm" -v t="$ticks" -v hz="$hz" -v c="$cycles" -v n="$commands" 'BEGIN {
    cpu = t / hz
    printf "seconds=%d rss_kib=%d peak_rss_kib=%d cpu_s=%.2f cycles=%d plug_commands=%d\n", s, rss, hwm, cpu, c, n
    printf "cpu_ms_per_cycle=%.2f cpu_share_of_one_core=%.3f%%\n", 1000 * cpu / c, 100 * cpu / s
}'
