// kasa-thermostat's dashboard: polls /api/status, redraws the chart, sends
// commands with the session's CSRF token. No library, no build step.
"use strict";
(function () {
  var csrf = "";
  var since = "6h";
  var units = "C";
  var $ = function (id) { return document.getElementById(id); };

  function text(id, v) { $(id).textContent = v; }
  function fmt(v) { return v === null || v === undefined ? "--" : Number(v).toFixed(2); }
  function human(s) {
    if (s === null || s === undefined) return "";
    s = Math.max(0, Math.round(s));
    if (s < 90) return s + " s";
    if (s < 5400) return Math.round(s / 60) + " min";
    if (s < 172800) return Math.floor(s / 3600) + " h " + Math.round((s % 3600) / 60) + " min";
    return Math.round(s / 86400) + " d";
  }
  function el(tag, cls, txt) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (txt !== undefined) e.textContent = txt;
    return e;
  }
  function badge(word) { return el("span", "badge " + word, word); }

  function api(method, path, body) {
    var opts = { method: method, credentials: "same-origin", headers: {} };
    if (method === "POST") {
      opts.headers["X-CSRF-Token"] = csrf;
      if (body !== undefined) {
        opts.headers["Content-Type"] = "application/json";
        opts.body = JSON.stringify(body);
      }
    }
    return fetch(path, opts).then(function (r) {
      if (r.status === 401) { location.reload(); throw new Error("logged out"); }
      return r.json().then(function (j) { j._status = r.status; return j; });
    });
  }

  function show(s) {
    csrf = s.csrf_token;
    units = s.units;
    var sym = " °" + s.units;
    text("temperature", s.temperature === null ? "no reading" : fmt(s.temperature) + sym);
    text("mode", s.mode);
    text("low", fmt(s.low_limit));
    text("high", fmt(s.high_limit) + sym);
    text("reason", s.reason);
    var alarms = $("alarms");
    alarms.replaceChildren();
    if (s.alarm) alarms.appendChild(el("span", "badge bad", "alarm " + s.alarm));
    if (s.sensor_stale) alarms.appendChild(el("span", "badge bad", "sensor stale"));
    if (s.sensor_fault) alarms.appendChild(el("span", "badge bad", "sensor: " + s.sensor_fault));
    if (s.shutting_down) alarms.appendChild(el("span", "badge bad", "shutting down"));
    var age = Date.now() / 1000 - s.updated_unix;
    text("updated", "updated " + human(age) + " ago" + (age > 120 ? ": NOT UPDATING, is the service running?" : ""));
    var plugs = $("plugs");
    plugs.replaceChildren();
    Object.keys(s.plugs).forEach(function (role) {
      var p = s.plugs[role];
      var d = el("div", "plug");
      var head = el("div");
      head.appendChild(el("b", "", role + " "));
      head.appendChild(badge(p.state));
      if (p.switching !== null) head.appendChild(el("span", "muted", " switching " + (p.switching ? "on" : "off")));
      d.appendChild(head);
      var dm = "dead-man " + p.deadman + (p.deadman_remaining_s !== null ? " (off within " + human(p.deadman_remaining_s) + ")" : "");
      d.appendChild(el("div", "muted", p.host + " · " + (p.state_for_s !== null ? "for " + human(p.state_for_s) + " · " : "") + dm));
      if (p.last_error) d.appendChild(el("div", "err", "last error: " + p.last_error));
      plugs.appendChild(d);
    });
    var pc = $("profile-card");
    if (s.profile) {
      pc.hidden = false;
      var pr = s.profile;
      var line = pr.phase + (pr.step !== null ? ", step " + (pr.step + 1) + " of " + pr.steps : "");
      if (pr.next_change) {
        line += " · next step in " + human((Date.parse(pr.next_change) - Date.now()) / 1000);
      }
      text("profile", line);
    } else {
      pc.hidden = true;
    }
    $("profile-restart").disabled = !s.profile || s.read_only;
    $("profile-skip").disabled = !s.profile || s.read_only;
    $("alert-test").disabled = !s.alerts || s.read_only;
    ["mode-select", "low-input", "high-input", "apply-mode", "apply-limits", "clear"].forEach(function (id) {
      $(id).disabled = s.read_only;
    });
    var ov = $("overrides");
    ov.replaceChildren();
    (s.overrides || []).forEach(function (o) { ov.appendChild(el("div", "", "override: " + o)); });
    if (s.read_only) ov.appendChild(el("div", "", "read only: changes are refused"));
    var focused = document.activeElement;
    if (focused !== $("mode-select")) $("mode-select").value = s.mode;
    if (focused !== $("low-input")) $("low-input").value = s.low_limit;
    if (focused !== $("high-input")) $("high-input").value = s.high_limit;
  }

  function refresh() {
    return api("GET", "/api/status").then(function (s) {
      if (s._status === 200) { show(s); return; }
      if (s.csrf_token) csrf = s.csrf_token;
      text("reason", s.error || "no state yet");
    }).catch(function () {});
  }

  var chartRetry = null;
  function chart() {
    var img = $("chart");
    // A service that has just started has no readings yet: try again in a
    // few seconds rather than at the next 30 s refresh.
    img.onerror = function () {
      text("chart-note", "no readings in the last " + since + " yet");
      if (!chartRetry) chartRetry = setTimeout(function () { chartRetry = null; chart(); }, 3000);
    };
    img.onload = function () { text("chart-note", ""); };
    var w = Math.round(img.parentNode.clientWidth || 900);
    img.src = "/chart.svg?since=" + since + "&w=" + w + "&t=" + Date.now();
  }

  function health() {
    api("GET", "/api/report?since=7d").then(function (r) {
      var h = $("health");
      h.replaceChildren();
      if (r._status !== 200) { h.textContent = r.error || "no report"; return; }
      if (!r.plugs || !r.plugs.length) { h.textContent = "no plug commands yet"; return; }
      var t = el("table");
      var hr = el("tr");
      ["plug", "commands", "ok", "1st try", "failed", "per day"].forEach(function (c) { hr.appendChild(el("th", "", c)); });
      t.appendChild(hr);
      r.plugs.forEach(function (p) {
        var tr = el("tr");
        [p.role, p.commands, p.ok, p.ok_attempt_1, p.failed,
          p.failures_per_day === null ? "-" : p.failures_per_day.toFixed(1)].forEach(function (c) {
          tr.appendChild(el("td", "", String(c)));
        });
        t.appendChild(tr);
      });
      h.appendChild(t);
    }).catch(function () {});
  }

  function send(path, body) {
    var res = $("result");
    res.className = "";
    res.textContent = "…";
    return api("POST", path, body).then(function (r) {
      res.className = r.ok ? "ok" : "bad";
      res.textContent = r.message || r.error || "done";
      refresh();
    }).catch(function (e) { res.className = "bad"; res.textContent = String(e); });
  }

  function num(id) {
    var v = $(id).value;
    return v === "" ? undefined : Number(v);
  }

  document.addEventListener("DOMContentLoaded", function () {
    $("apply-mode").onclick = function () { send("/api/control", { mode: $("mode-select").value }); };
    $("apply-limits").onclick = function () { send("/api/control", { low: num("low-input"), high: num("high-input") }); };
    $("profile-restart").onclick = function () { send("/api/control", { profile: "restart" }); };
    $("profile-skip").onclick = function () { send("/api/control", { profile: "skip" }); };
    $("clear").onclick = function () { send("/api/control", { clear: true }); };
    $("alert-test").onclick = function () { send("/api/alert-test"); };
    $("logout").onclick = function () { api("POST", "/logout").then(function () { location.href = "/"; }); };
    Array.prototype.forEach.call(document.querySelectorAll(".tabs button"), function (b) {
      b.onclick = function () {
        since = b.getAttribute("data-since");
        Array.prototype.forEach.call(document.querySelectorAll(".tabs button"), function (o) { o.className = o === b ? "on" : ""; });
        chart();
      };
    });
    refresh().then(chart);
    health();
    setInterval(refresh, 5000);
    setInterval(chart, 30000);
    setInterval(health, 300000);
  });
})();
