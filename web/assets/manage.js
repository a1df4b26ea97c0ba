// /manage: live streams and stream keys, through /manage/api (gatehouse calls its own API for
// the logged-in operator). Changes carry the session's CSRF token; strings go in as text only.
"use strict";
(() => {
  const csrf = document.body.dataset.csrf;
  const notice = document.getElementById("notice");
  const $ = id => document.getElementById(id);
  function h(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, String(v));
    }
    for (const k of kids) if (k !== null && k !== undefined) e.append(k);
    return e;
  }
  function say(text, bad) {
    notice.textContent = text;
    notice.className = "notice" + (bad ? " error" : "");
    notice.hidden = false;
  }
  async function api(method, path, body) {
    const opts = { method, headers: { "X-CSRF-Token": csrf }, credentials: "same-origin" };
    if (body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
    const res = await fetch("/manage/api/" + path, opts);
    let j = {};
    try { j = await res.json(); } catch (e) {}
    if (res.status === 401) { say("Your session expired — log in again.", true); throw new Error("expired"); }
    if (!res.ok) throw new Error(j.detail || j.error || res.statusText);
    return j;
  }
  const when = t => t ? new Date(t).toLocaleString() : "—";
  function duration(t) {
    const m = Math.max(0, Math.floor((Date.now() - new Date(t).getTime()) / 60000));
    return m < 1 ? "under a minute" : m < 60 ? m + " min" : Math.floor(m / 60) + " h " + (m % 60) + " min";
  }
  function table(head, rows, empty) {
    if (!rows.length) return h("p", { class: "muted", text: empty });
    return h("div", { class: "table-wrap" }, h("table", {}, h("thead", {}, h("tr", {}, ...head.map(x => h("th", { scope: "col", text: x })))),
      h("tbody", {}, ...rows)));
  }

  async function loadLive() {
    try {
      const j = await api("GET", "streams");
      const rows = j.streams.map(s => h("tr", {},
        h("td", {}, h("a", { href: "/watch/" + s.path.split("/").map(encodeURIComponent).join("/"), text: s.path })),
        h("td", { text: s.source + (s.node ? " · node " + s.node : "") }), h("td", { text: s.identity || "—" }), h("td", { text: s.key_label || "—" }),
        h("td", { text: duration(s.started) }), h("td", { text: String(s.viewers) }),
        h("td", {}, s.session ? h("button", { class: "button small danger", type: "button", text: "Kick",
          "data-action": "kick", "aria-label": "Kick " + s.path, onclick: () => kick(s) }) : h("span", { class: "muted", text: "—" }))));
      $("live-table").replaceChildren(table(["Path", "Source", "Identity", "Key", "Live for", "Viewers", ""], rows, "No one is live right now."));
    } catch (e) { if (e.message !== "expired") $("live-table").replaceChildren(h("p", { class: "muted", text: "Could not load the live streams: " + e.message })); }
  }
  async function kick(s) {
    if (!confirm("End " + s.path + " now?")) return;
    try { await api("DELETE", "sessions/" + encodeURIComponent(s.session) + "?source=" + encodeURIComponent(s.source)); say("Ended " + s.path + "."); loadLive(); }
    catch (e) { say("Could not end " + s.path + ": " + e.message, true); }
  }

  async function loadKeys() {
    try {
      const j = await api("GET", "keys");
      const rows = j.keys.map(k => h("tr", { "data-key": k.id },
        h("td", { text: k.label || "(no label)" }), h("td", {}, h("code", { text: k.path })), h("td", { text: (k.actions || []).join(", ") }),
        h("td", {}, h("span", { class: "status " + k.status, text: k.status })), h("td", { text: when(k.last_used) }), h("td", { text: when(k.expires) }),
        h("td", {}, k.read_only || k.status !== "active" ? h("span", { class: "muted", text: k.read_only ? "config file" : "" }) : h("span", {},
          h("button", { class: "button small", type: "button", text: "Rotate", "data-action": "rotate", "aria-label": "Rotate key " + (k.label || k.path), onclick: () => rotate(k) }),
          h("button", { class: "button small danger", type: "button", text: "Revoke", "data-action": "revoke", "aria-label": "Revoke key " + (k.label || k.path), onclick: () => revoke(k) })))));
      $("keys-table").replaceChildren(table(["Label", "Path", "May", "Status", "Last used", "Expires", ""], rows, "No stream keys yet. Create one above to publish from OBS."));
    } catch (e) { if (e.message !== "expired") $("keys-table").replaceChildren(h("p", { class: "muted", text: "Could not load the keys: " + e.message })); }
  }
  function copyRow(label, value) {
    const out = h("output", { text: value });
    const btn = h("button", { class: "button small", type: "button", text: "Copy", "aria-label": "Copy " + label, onclick: async () => {
      try { await navigator.clipboard.writeText(value); btn.textContent = "Copied"; } catch (e) { btn.textContent = "Select and copy"; }
      setTimeout(() => (btn.textContent = "Copy"), 2000);
    } });
    return h("div", { class: "copy-row" }, h("span", { text: label }), out, btn);
  }
  function showSecret(k, secret, title) {
    // WHIP: the public path in the URL and the key as the Bearer Token (URLs end up in logs).
    // RTMP: the key stands in for the last segment; gatehouse publishes under k.path.
    const parent = k.path.split("/").slice(0, -1).map(encodeURIComponent).join("/");
    const whip = location.origin + "/whip/" + k.path.split("/").map(encodeURIComponent).join("/");
    const rtmpServer = (document.body.dataset.rtmpServer || "rtmp://" + location.hostname).replace(/\/+$/, "");
    const box = $("secret");
    box.replaceChildren(h("h3", { text: title + " for " + k.path }),
      h("p", { text: "Copy it now: gatehouse shows the secret only this once. In OBS choose Service WHIP, or Custom for RTMP." }),
      copyRow("OBS WHIP server", whip), copyRow("OBS Bearer Token", secret),
      copyRow("RTMP server", rtmpServer + "/" + parent), copyRow("RTMP stream key", secret));
    box.dataset.secret = secret;
    box.hidden = false;
  }
  async function rotate(k) {
    try { const n = await api("POST", "keys/" + encodeURIComponent(k.id) + "/rotate", {}); showSecret(n, n.secret, "New key"); say("Rotated " + (k.label || k.path) + ": the old key no longer works, and streams still using it are ended."); loadKeys(); }
    catch (e) { say("Could not rotate: " + e.message, true); }
  }
  async function revoke(k) {
    if (!confirm("Revoke " + (k.label || k.path) + "? Publishers using it are refused from now on.")) return;
    try { await api("DELETE", "keys/" + encodeURIComponent(k.id)); say("Revoked " + (k.label || k.path) + "."); loadKeys(); }
    catch (e) { say("Could not revoke: " + e.message, true); }
  }
  $("create-key").addEventListener("submit", async ev => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    const body = { path: f.get("path").trim(), label: f.get("label").trim(), actions: ["publish"] };
    if (f.get("ttl")) body.ttl = f.get("ttl");
    try { const k = await api("POST", "keys", body); showSecret(k, k.secret, "New key"); say("Created a key for " + k.path + "."); ev.target.reset(); loadKeys(); }
    catch (e) { say("Could not create the key: " + e.message, true); }
  });
  // Recent decisions: the denials first (newest first), then the allows; the chart is an SVG
  // that gatehouse draws (an image: no script, no style of its own to allow).
  const reasons = {
    no_credentials: "no credentials", bad_credentials: "wrong user or password", not_permitted: "not permitted",
    no_method: "no method handles this", backend_error: "a method could not decide", upstream_unavailable: "auth service unreachable",
    invalid_path: "invalid stream path", query_token_not_allowed: "token in the URL refused", grant_expired: "grant already expired",
    rename_unsupported: "key needs a rename this server cannot do", path_is_key: "stream key used as the path", decision_timeout: "timed out",
    banned: "banned", identity_required: "needs a named user", unknown_key: "unknown stream key", key_revoked: "stream key revoked",
    key_expired: "stream key expired", key_wrong_path: "key is for another path", key_wrong_protocol: "key is for another protocol",
    token_expired: "token expired", bad_signature: "bad token signature", malformed_token: "malformed token", bad_audience: "token for another audience",
    bad_issuer: "token from another issuer", jwks_unavailable: "identity provider keys unavailable",
  };
  const clock = t => new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  const maxRows = { denied: 15, allow: 8 };
  async function loadDecisions() {
    try {
      const j = await api("GET", "decisions");
      const all = j.decisions || [];
      const denied = all.filter(d => d.result !== "allow"), allowed = all.filter(d => d.result === "allow");
      const rows = denied.slice(0, maxRows.denied).concat(allowed.slice(0, maxRows.allow)).map(d => {
        const ok = d.result === "allow";
        return h("tr", { "data-result": ok ? "allow" : "denied" },
          h("td", { class: "nowrap", text: clock(d.time) }),
          h("td", {}, h("span", { class: "status " + (ok ? "active" : "revoked"), text: ok ? "allowed" : "denied" })),
          h("td", {}, ok ? h("span", { class: "muted", text: "—" }) : h("span", { title: d.reason, text: reasons[d.reason] || d.reason || d.result })),
          h("td", { text: d.action }), h("td", {}, d.path ? h("code", { text: d.path }) : h("span", { class: "muted", text: "—" })),
          h("td", { text: d.identity || (ok ? "anonymous" : "—") }),
          h("td", { text: [d.source, d.protocol].filter(Boolean).join(" · ") || "—" }),
          h("td", { class: "nowrap", text: d.ip || "—" }), h("td", { text: d.method || "—" }));
      });
      $("decisions-table").replaceChildren(
        h("p", { class: "muted small", text: denied.length + " recent denials and " + allowed.length + " recent allows kept; showing the denials first." }),
        table(["Time", "Result", "Why", "Action", "Path", "Who", "From", "Address", "Method"], rows, "No decisions yet."));
      const m = j.minutes || [];
      const sum = k => m.reduce((a, x) => a + x[k], 0);
      const img = $("chart");
      img.alt = "Decisions per minute over the last hour: " + sum("allowed") + " allowed, " + sum("denied") + " denied";
      img.src = "/manage/api/decisions/chart.svg?at=" + Date.now();
    } catch (e) { if (e.message !== "expired") $("decisions-table").replaceChildren(h("p", { class: "muted", text: "Could not load the decisions: " + e.message })); }
  }

  loadLive(); loadKeys(); loadDecisions();
  setInterval(loadLive, 10000);
  setInterval(loadDecisions, 15000);
})();
