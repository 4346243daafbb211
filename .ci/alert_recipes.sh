#!/usr/bin/env bash
# Alert recipe gate (issue 12): every recipe in README.md is taken from
# the document as written, its real endpoints (ntfy.sh, api.pushover.net,
# homeassistant.local) and /etc/kasa-thermostat/ paths pointed at a local HTTP
# listener on 127.0.0.1 and a scratch directory, run once through
# examples/alert_send (what `kasa-thermostat alert-test` does), and the
# listener (or a fake `sendmail` on PATH) must have received the right thing.
# Loopback only: a recipe that still names any other URL fails the gate.
#
# Usage: .ci/alert_recipes.sh [DOC]   (default README.md)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

DOC=$(realpath "${1:-README.md}")
WORK=$(mktemp -d)
LISTENER_PID=""

fail() {
    echo "alert_recipes: FAIL: $*" >&2
    exit 1
}
cleanup() {
    if [ -n "$LISTENER_PID" ]; then
        kill "$LISTENER_PID" 2>/dev/null || true
        wait "$LISTENER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

for tool in curl python3; do
    command -v "$tool" >/dev/null || fail "needs $tool (apt-get install $tool)"
done

echo "== alert recipes: build examples/alert_send"
cargo build --quiet --example alert_send
SEND=$(realpath target/debug/examples/alert_send)

# --- the listener: records every request as one JSON line -------------------
cat >"$WORK/listener.py" <<'PY'
import base64, json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

port_file, log_file = sys.argv[1], sys.argv[2]

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length", "0")))

    def do_POST(self):
        body = self.body()
        with open(log_file, "a") as f:
            f.write(json.dumps({
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": base64.b64encode(body).decode(),
            }) + "\n")
        status = 500 if "/status/500" in self.path else 200
        reply = b'{"status":1}' if status == 200 else b'{"error":"injected"}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass

server = HTTPServer(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
import os
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
PY
: >"$WORK/requests.jsonl"
python3 "$WORK/listener.py" "$WORK/port" "$WORK/requests.jsonl" &
LISTENER_PID=$!
for _ in $(seq 1 200); do
    [ -s "$WORK/port" ] && break
    kill -0 "$LISTENER_PID" 2>/dev/null || fail "the listener died"
    sleep 0.05
done
[ -s "$WORK/port" ] || fail "the listener did not start within 10 s"
BASE="http://127.0.0.1:$(cat "$WORK/port")"
echo "== alert recipes: listener on $BASE"

# --- the recipes, extracted from the document --------------------------------
# <!-- recipe-file: PATH --> before a ```sh block: a hook script at PATH.
# <!-- recipe-config: NAME --> before a ```json block: an "alerts" section.
ROOT="$WORK/root"
cat >"$WORK/extract.py" <<'PY'
import json, os, re, sys

doc, root, base, out = sys.argv[1:5]
subst = [
    ("https://ntfy.sh/", base + "/ntfy/"),
    ("https://api.pushover.net/", base + "/pushover/"),
    ("http://homeassistant.local:8123/", base + "/ha/"),
    ("/etc/kasa-thermostat/", root + "/etc/kasa-thermostat/"),
]
text = open(doc).read()
pattern = re.compile(r"<!-- recipe-(file|config): (\S+) -->\n```\w*\n(.*?)```", re.S)
found = []
for kind, name, body in pattern.findall(text):
    for a, b in subst:
        body = body.replace(a, b)
    for url in re.findall(r"https?://[^\s\"']+", body):
        if not url.startswith(base + "/"):
            sys.exit(f"recipe {name} would reach {url}: add it to the substitutions")
    if kind == "file":
        path = root + name if name.startswith("/") else sys.exit(f"{name}: not absolute")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(body)
        os.chmod(path, 0o755)
        found.append(("file", path))
    else:
        section = json.loads("{" + body + "}")["alerts"]
        with open(os.path.join(out, name + ".json"), "w") as f:
            json.dump({"alerts": section}, f)
        found.append(("config", name))
for kind, name in found:
    print(kind, name)
PY
mkdir -p "$WORK/configs"
python3 "$WORK/extract.py" "$DOC" "$ROOT" "$BASE" "$WORK/configs" >"$WORK/recipes.txt"
configs=$(awk '$1 == "config" { print $2 }' "$WORK/recipes.txt")
scripts=$(awk '$1 == "file" { print $2 }' "$WORK/recipes.txt")
for want in ntfy ntfy-script pushover mail home-assistant; do
    grep -qx "config $want" "$WORK/recipes.txt" || fail "recipe $want is missing from $DOC"
done
echo "== alert recipes: found $(echo "$configs" | wc -w) configs and $(echo "$scripts" | wc -w) scripts"

if command -v shellcheck >/dev/null; then
    # SC1091: the sourced secrets file does not exist here.
    # shellcheck disable=SC2086
    shellcheck -s sh -e SC1091 $scripts || fail "shellcheck found problems in the recipe scripts"
    echo "== alert recipes: shellcheck clean"
fi

# What the recipes need around them: the Pushover secrets, a fake sendmail.
printf 'PUSHOVER_TOKEN=tok-123\nPUSHOVER_USER=usr-456\n' >"$ROOT/etc/kasa-thermostat/pushover.env"
mkdir -p "$WORK/bin"
cat >"$WORK/bin/sendmail" <<SH
#!/bin/sh
printf '%s\n' "\$*" > '$WORK/sendmail.args'
cat > '$WORK/sendmail.stdin'
SH
chmod 755 "$WORK/bin/sendmail"
export PATH="$WORK/bin:$PATH"

# --- the checks --------------------------------------------------------------
cat >"$WORK/check.py" <<'PY'
import base64, email, email.policy, json, socket, sys

name, work = sys.argv[1], sys.argv[2]
host = socket.gethostname()
line = f"[info] {host}: test alert from kasa-thermostat alert-test; the hook works\n"
reqs = [json.loads(l) for l in open(f"{work}/requests.jsonl")]

def fail(msg):
    sys.exit(f"{name}: {msg}\nrequests: {json.dumps(reqs, indent=1, default=repr)}")

def one(path):
    if len(reqs) != 1:
        fail(f"expected exactly one request, got {len(reqs)}")
    r = reqs[0]
    if r["method"] != "POST" or r["path"] != path:
        fail(f"expected POST {path}")
    r["raw"] = base64.b64decode(r["body"])
    return r

def expect(what, got, want):
    if got != want:
        fail(f"{what}: got {got!r}, want {want!r}")

if name == "ntfy":
    r = one("/ntfy/my-chamber-x7q2")
    expect("body", r["raw"].decode(), line)
elif name == "ntfy-script":
    r = one("/ntfy/my-chamber-x7q2")
    expect("body", r["raw"].decode(), line)
    expect("Title", r["headers"].get("title"), f"{host}: test")
    expect("Priority", r["headers"].get("priority"), "default")
    expect("Tags", r["headers"].get("tags"), "information_source")
elif name == "pushover":
    r = one("/pushover/1/messages.json")
    ctype = r["headers"].get("content-type", "")
    if not ctype.startswith("multipart/form-data"):
        fail(f"content-type {ctype}")
    msg = email.message_from_bytes(
        f"Content-Type: {ctype}\r\n\r\n".encode() + r["raw"], policy=email.policy.HTTP)
    fields = {p.get_param("name", header="content-disposition"): p.get_payload(decode=True).decode()
              for p in msg.iter_parts()}
    expect("fields", sorted(fields), ["message", "priority", "title", "token", "user"])
    expect("token", fields["token"], "tok-123")
    expect("user", fields["user"], "usr-456")
    expect("title", fields["title"], f"{host}: test")
    expect("priority", fields["priority"], "-1")
    expect("message", fields["message"], line)
elif name == "mail":
    if reqs:
        fail("mail must not make HTTP requests")
    expect("sendmail args", open(f"{work}/sendmail.args").read(), "-t\n")
    msg = email.message_from_bytes(open(f"{work}/sendmail.stdin", "rb").read(),
                                   policy=email.policy.default)
    expect("To", msg["To"], "you@example.com")
    expect("Subject", msg["Subject"], f"[info] {host}: test")
    expect("charset", msg.get_content_charset(), "utf-8")
    body = msg.get_content()
    if not body.startswith(line):
        fail(f"mail body starts {body[:120]!r}")
    events = json.loads(body[len(line):].strip())
    expect("events", [e["kind"] for e in events], ["test"])
elif name == "home-assistant":
    r = one("/ha/api/webhook/kasa-thermostat-x7q2")
    expect("content-type", r["headers"].get("content-type"), "application/json")
    event = json.loads(r["raw"])
    expect("kind", event["kind"], "test")
    expect("severity", event["severity"], "info")
    expect("host", event["host"], host)
    expect("message", event["message"], line.split(": ", 1)[1].strip())
else:
    fail("no check written for this recipe")
print(f"   {name}: ok")
PY

run() { # NAME CONFIG_FILE -> runs alert_send, output in $WORK/NAME.out
    : >"$WORK/requests.jsonl"
    rm -f "$WORK/sendmail.args" "$WORK/sendmail.stdin"
    "$SEND" "$2" >"$WORK/$1.out" 2>&1
}

echo "== alert recipes: run each through alert_send"
for name in $configs; do
    start=$(date +%s%N)
    run "$name" "$WORK/configs/$name.json" || {
        cat "$WORK/$name.out" >&2
        fail "recipe $name: the hook failed"
    }
    ms=$((($(date +%s%N) - start) / 1000000))
    echo "   $name: $(head -1 "$WORK/$name.out") (${ms} ms wall)"
    python3 "$WORK/check.py" "$name" "$WORK" || fail "recipe $name: wrong request"
done

# A service that answers 500 must make the hook fail, visibly: curl -f exits
# 22 and alert_send (like alert-test) exits 1 with curl's error in its output.
python3 - "$WORK/configs/ntfy.json" "$WORK/configs/ntfy-500.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["alerts"]["command"][-1] = c["alerts"]["command"][-1].replace("/ntfy/", "/ntfy/status/500/")
json.dump(c, open(sys.argv[2], "w"))
PY
if run ntfy-500 "$WORK/configs/ntfy-500.json"; then
    fail "a 500 from the service did not fail the hook"
fi
grep -q "exit status 22" "$WORK/ntfy-500.out" || fail "no exit status 22 in: $(cat "$WORK/ntfy-500.out")"
grep -q "500" "$WORK/ntfy-500.out" || fail "curl's error is not shown: $(cat "$WORK/ntfy-500.out")"
echo "   ntfy against a 500: fails with $(grep -o 'exit status 22' "$WORK/ntfy-500.out")"

echo "== alert recipes: all passed"
