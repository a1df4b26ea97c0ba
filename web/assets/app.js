// gatehouse pages: the grid (/), one stream (/watch/{path}) and shared helpers for /manage.
// No framework and no build step. Every string from the server or the URL goes into the page
// through textContent or setAttribute, never innerHTML.
"use strict";

const body = document.body;
const G = (window.gatehouse = window.gatehouse || { players: {}, streams: [], events: 0 });

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const k of kids) if (k) e.append(k);
  return e;
}
const SVG = "http://www.w3.org/2000/svg";
function icon(d) {
  const s = document.createElementNS(SVG, "svg");
  s.setAttribute("viewBox", "0 0 24 24");
  s.setAttribute("aria-hidden", "true");
  for (const part of d.split("|")) {
    const p = document.createElementNS(SVG, "path");
    p.setAttribute("d", part);
    s.append(p);
  }
  return s;
}
const ICONS = {
  sound: "M11 5 6 9H2v6h4l5 4V5z|M15.5 8.5a5 5 0 0 1 0 7|M19 5a10 10 0 0 1 0 14",
  muted: "M11 5 6 9H2v6h4l5 4V5z|M22 9l-6 6|M16 9l6 6",
  pip: "M3 5h18v14H3z|M12 12h7v5h-7z",
  full: "M8 3H3v5|M16 3h5v5|M8 21H3v-5|M16 21h5v-5",
  copy: "M9 9h11v11H9z|M5 15H4V4h11v1",
  check: "M5 12.5l4.5 4.5L19 7.5",
  cast: "M2 16a6 6 0 0 1 6 6|M2 12a10 10 0 0 1 10 10|M2 8V6a2 2 0 0 1 2-2h16a2 2 0 0 1 2 2v12a2 2 0 0 1-2 2h-6|M2 20h.01",
};

// Avatars: the first letter of a name on a colour derived from it.
function paintAvatar(a, name) {
  name = name || "?";
  let h = 0;
  for (const c of name) h = (h * 31 + c.codePointAt(0)) >>> 0;
  a.style.background = "hsl(" + (h % 360) + " 55% 42%)";
  a.textContent = [...name.trim()][0] || "?";
}
document.querySelectorAll(".avatar[data-name]").forEach(a => paintAvatar(a, a.dataset.name));

function sleep(ms) { return new Promise(r => setTimeout(r, ms)); }
function since(t) {
  const s = Math.max(0, Math.floor((Date.now() - new Date(t).getTime()) / 1000));
  if (s < 60) return "just started";
  const m = Math.floor(s / 60);
  if (m < 60) return "live for " + m + " min";
  return "live for " + Math.floor(m / 60) + " h " + (m % 60) + " min";
}

// Viewer tokens: from the URL fragment (#token=..., a page that already holds one, never sent to
// the server), else minted by gatehouse for the logged-in session, refreshed before expiry.
const Token = {
  fragment: null, cached: null, until: 0, expired: false,
  init() {
    const frag = new URLSearchParams(location.hash.slice(1));
    if (frag.get("token")) {
      this.fragment = frag.get("token");
      history.replaceState(null, "", location.pathname + location.search);
    }
  },
  async get(force) {
    if (this.fragment) return this.fragment;
    if (!body.dataset.user) return "";
    if (!force && this.cached !== null && Date.now() < this.until) return this.cached;
    let res;
    try {
      res = await fetch("/login/token", { method: "POST", headers: { "X-CSRF-Token": body.dataset.csrf }, credentials: "same-origin" });
    } catch (e) { return this.cached || ""; }
    if (res.status === 401) { this.expired = true; sessionExpired(); return ""; }
    if (!res.ok) return this.cached || "";
    const j = await res.json();
    this.cached = j.token || "";
    // Refresh at 60% of the remaining life.
    const left = j.expires ? new Date(j.expires).getTime() - Date.now() : 60000;
    this.until = Date.now() + Math.max(5000, left * 0.6);
    return this.cached;
  },
};
Token.init();

function sessionExpired() {
  if (document.querySelector(".banner")) return;
  const b = el("div", { class: "banner", role: "alert" }, "Your session expired — ",
    el("a", { href: "/login?next=" + encodeURIComponent(location.pathname), text: "log in again" }), ".");
  document.querySelector(".topbar").after(b);
  G.sessionExpired = true;
}

function gathered(pc, ms) {
  return new Promise(resolve => {
    if (pc.iceGatheringState === "complete") return resolve();
    const t = setTimeout(resolve, ms);
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") { clearTimeout(t); resolve(); }
    });
  });
}

const STATES = {
  idle: ["Waiting", ""],
  offline: ["Offline", "This stream is not live. It starts here by itself when it goes live."],
  connecting: ["Connecting…", ""],
  reconnecting: ["Reconnecting…", "The picture stopped; trying again."],
  playing: ["", ""],
  ended: ["The stream ended", "It starts here again by itself if it comes back."],
  denied: ["You may not watch this stream", ""],
  expired: ["Your session expired", "Log in again to keep watching."],
  remote: ["Live elsewhere", ""],
  error: ["Something went wrong", ""],
};

// Player: one WHEP viewer with honest state. It shows what happened within about a second when
// the server ends the session (DTLS close, connection state, no new frames, or the live event
// saying the stream went offline) and offers the next step.
class Player {
  constructor(path, opts) {
    this.path = path;
    this.opts = opts || {};
    this.state = { state: "idle", path, session: null, error: "", framesDecoded: 0 };
    G.players[path] = this.state;
    (G.instances = G.instances || []).push(this);
    this.pc = null; this.run = 0; this.live = false; this.frames = 0; this.stallTicks = 0;
    const saved = JSON.parse(localStorage.getItem("gatehouse:audio:" + path) || "null");
    this.video = el("video", { playsinline: true, autoplay: true });
    this.video.muted = saved ? saved.muted : true;
    this.video.volume = saved ? saved.volume : 1;
    if (!this.opts.muted && !saved) this.video.muted = false;
    this.title = el("div", { class: "state-title" });
    this.detail = el("div", { class: "state-detail" });
    this.action = el("div", { class: "state-action" });
    this.overlay = el("div", { class: "overlay" }, el("div", { class: "spinner", "aria-hidden": "true" }), this.title, this.detail, this.action);
    // Screen readers hear every state change (the overlay is hidden while playing).
    this.announce = el("span", { class: "sr-only", role: "status", "aria-live": "polite" });
    this.badge = el("span", { class: "badge" });
    this.viewers = el("span", { class: "viewers" });
    this.muteBtn = el("button", { class: "icon mute", type: "button", onclick: () => this.toggleMute() });
    this.vol = el("input", { class: "volume", type: "range", min: "0", max: "1", step: "0.05", "aria-label": "Volume", oninput: () => {
      this.video.volume = Number(this.vol.value); this.video.muted = this.video.volume === 0; this.saveAudio(); } });
    this.vol.value = String(this.video.volume);
    const pipBtn = el("button", { class: "icon", type: "button", "aria-label": "Picture in picture", title: "Picture in picture",
      onclick: () => (document.pictureInPictureElement ? document.exitPictureInPicture() : this.video.requestPictureInPicture()).catch(() => {}) }, icon(ICONS.pip));
    const fullBtn = el("button", { class: "icon", type: "button", "aria-label": "Full screen", title: "Full screen",
      onclick: () => (document.fullscreenElement ? document.exitFullscreen() : this.root.requestFullscreen()).catch(() => {}) }, icon(ICONS.full));
    // Simulcast quality: shown only when the stream has layers; "auto" lets the server choose.
    this.layer = el("select", { class: "layer", "aria-label": "Quality", title: "Quality", hidden: true, onchange: () => this.pinLayer() });
    this.controls = el("div", { class: "controls" }, this.muteBtn, this.vol, el("span", { class: "spacer" }), this.layer,
      document.pictureInPictureEnabled ? pipBtn : null, fullBtn);
    this.root = el("div", { class: "player", "data-state": "idle", role: "group", "aria-label": "Player: " + path },
      this.video, this.overlay, this.badge, this.viewers, this.controls, this.announce);
    this.video.addEventListener("playing", () => this.set("playing"));
    this.paintMute();
    this.timer = setInterval(() => this.tick(), 500);
  }
  saveAudio() {
    localStorage.setItem("gatehouse:audio:" + this.path, JSON.stringify({ muted: this.video.muted, volume: this.video.volume }));
    this.paintMute();
  }
  toggleMute() { this.video.muted = !this.video.muted; if (!this.video.muted && this.video.volume === 0) this.video.volume = 1; this.vol.value = String(this.video.muted ? 0 : this.video.volume); this.saveAudio(); }
  paintMute() {
    this.muteBtn.replaceChildren(icon(this.video.muted ? ICONS.muted : ICONS.sound));
    this.muteBtn.setAttribute("aria-label", this.video.muted ? "Unmute" : "Mute");
    this.muteBtn.title = this.muteBtn.getAttribute("aria-label");
  }
  set(s, detail, action) {
    this.state.state = s;
    this.root.dataset.state = s;
    if (this.opts.page) body.dataset.state = s;
    const [t, d] = STATES[s] || [s, ""];
    this.title.textContent = t;
    this.detail.textContent = detail || d;
    this.action.replaceChildren(action || "");
    this.announce.textContent = this.path + ": " + (s === "playing" ? "playing" : t);
    const live = s === "playing" || s === "connecting" || s === "reconnecting";
    this.badge.className = "badge" + (live ? " live" : "");
    this.badge.replaceChildren(live ? el("span", { class: "dot" }) : "", live ? "LIVE" : (s === "offline" || s === "ended" ? "OFFLINE" : ""));
    this.badge.hidden = !this.badge.textContent;
    this.viewers.hidden = !(live && this.viewerCount > 0);
    if (this.opts.onstate) this.opts.onstate(s);
  }
  setViewers(n) {
    this.viewerCount = n;
    this.viewers.textContent = n === 1 ? "1 watching" : n + " watching";
    this.viewers.hidden = !(n > 0 && ["playing", "connecting", "reconnecting"].includes(this.state.state));
  }
  setLive(live, why) {
    this.live = live;
    if (live && !["playing", "connecting", "reconnecting", "denied", "expired"].includes(this.state.state)) this.play();
    if (!live) { this.stop(); this.set(why === "ended" ? "ended" : "offline"); }
  }
  // Layer resource of the WHEP session (GET shows, POST pins {"rid": "h"} or "auto").
  async layers(body) {
    if (!this.state.session) return;
    const opts = { headers: Object.assign({ "Content-Type": "application/json" }, this.auth) };
    if (body) { opts.method = "POST"; opts.body = JSON.stringify(body); }
    try {
      const res = await fetch(this.state.session + "/layer", opts);
      if (!res.ok) return;
      const st = await res.json();
      this.state.layer = st.rid;
      this.layer.hidden = st.layers.length < 2;
      const want = st.mode === "pinned" ? st.target : "auto";
      const opt = (v, t) => el("option", { value: v, text: t, selected: v === want });
      if (document.activeElement !== this.layer)
        this.layer.replaceChildren(opt("auto", "Auto" + (st.rid ? " (" + st.rid + ")" : "")), ...st.layers.slice().reverse().map(l => opt(l.rid, l.rid + (l.rid === st.rid ? " ✓" : ""))));
    } catch (e) {}
  }
  pinLayer() { this.layers({ rid: this.layer.value }); }
  async tick() {
    if (!this.pc || this.state.state !== "playing") { this.stallTicks = 0; return; }
    if ((this.layerTicks = (this.layerTicks || 0) + 1) % 4 === 1) this.layers();
    try {
      const stats = await this.pc.getStats();
      let f = 0;
      stats.forEach(r => { if (r.type === "inbound-rtp" && r.kind === "video") f = r.framesDecoded || 0; });
      this.state.framesDecoded = f;
      // No new frame for 1.5 s while "playing": the server has gone or the stream froze.
      this.stallTicks = f > this.frames ? 0 : this.stallTicks + 1;
      this.frames = f;
      if (this.stallTicks >= 3) { this.stallTicks = 0; this.lost(); }
    } catch (e) {}
  }
  async lost() {
    if (!this.live) { this.stop(); this.set("ended"); return; }
    this.set("reconnecting");
    this.play(true);
  }
  stop() {
    this.run++;
    const pc = this.pc; this.pc = null;
    if (pc) pc.close();
    this.video.srcObject = null;
    if (this.state.session) {
      const url = this.state.session; this.state.session = null;
      fetch(url, { method: "DELETE", headers: this.auth, keepalive: true }).catch(() => {});
    }
  }
  async connect(my, token) {
    const pc = new RTCPeerConnection({ bundlePolicy: "max-bundle" });
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.addTransceiver("audio", { direction: "recvonly" });
    const stream = new MediaStream();
    pc.ontrack = ev => stream.addTrack(ev.track);
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc, 2000);
    const headers = { "Content-Type": "application/sdp" };
    if (token) headers.Authorization = "Bearer " + token;
    const endpoint = "/whep/" + this.path.split("/").map(encodeURIComponent).join("/");
    let res;
    try { res = await fetch(endpoint, { method: "POST", headers, body: pc.localDescription.sdp }); }
    catch (e) { pc.close(); return { status: 0 }; }
    if (my !== this.run) { pc.close(); return { status: -1 }; }
    if (res.status !== 201) {
      let detail = res.statusText;
      try { detail = (await res.json()).detail || detail; } catch (e) {}
      pc.close();
      return { status: res.status, detail, retryAfter: parseInt(res.headers.get("Retry-After") || "2", 10) || 2 };
    }
    const session = new URL(res.headers.get("Location"), location.href).toString();
    await pc.setRemoteDescription({ type: "answer", sdp: await res.text() });
    return { status: 201, pc, stream, session, auth: token ? { Authorization: "Bearer " + token } : {} };
  }
  watchEnd(pc) {
    const end = () => { if (pc === this.pc) this.lost(); };
    pc.addEventListener("connectionstatechange", () => { if (["failed", "closed", "disconnected"].includes(pc.connectionState)) end(); });
    // The server closing DTLS (kick, expiry, stream end) is seen at once on the transport.
    for (const r of pc.getReceivers()) {
      const t = r.transport;
      if (t) t.addEventListener("statechange", () => { if (t.state === "closed" || t.state === "failed") end(); });
    }
  }
  async play(reconnect) {
    const my = ++this.run;
    if (!reconnect) this.set("connecting");
    for (let attempt = 0; my === this.run; attempt++) {
      const token = await Token.get(attempt > 0);
      if (Token.expired && !Token.fragment) { this.stop(); this.set("expired", "", loginLink()); return; }
      const r = await this.connect(my, token);
      if (my !== this.run || r.status === -1) return;
      if (r.status === 201) {
        const old = this.pc, oldAuth = this.auth;
        this.pc = r.pc; this.auth = r.auth; this.frames = 0;
        const oldSession = this.state.session;
        this.state.session = r.session;
        this.video.srcObject = r.stream;
        this.video.play().catch(() => {});
        if (old) { old.close(); if (oldSession) fetch(oldSession, { method: "DELETE", headers: oldAuth, keepalive: true }).catch(() => {}); }
        this.watchEnd(r.pc);
        this.scheduleRenew(my);
        return;
      }
      if (r.status === 401 || r.status === 403) {
        this.state.error = r.status + " " + r.detail;
        this.stop();
        // A viewer token that is refused has expired (or the login ended); no token at all
        // means this visitor's roles give no stream of this kind.
        if (token && body.dataset.user && !Token.fragment && r.status === 401) { this.set("expired", "", loginLink()); return; }
        const anon = body.dataset.login && !body.dataset.user;
        this.set("denied", anon ? "It is for members: log in, if your account may watch it." : "Your account's roles do not include it. Pick another stream, or ask the operator for access.",
          anon ? loginLink("Log in") : el("a", { class: "button", href: "/", text: "All live streams" }));
        return;
      }
      if (r.status === 409 || r.status === 503 || r.status === 404) {
        if (r.status === 409 || r.status === 404) { this.live = false; this.set("offline"); if (!this.opts.page) return; }
        await sleep(Math.min(30, r.retryAfter) * 1000);
        continue;
      }
      if (r.status === 0) { this.set("reconnecting", "The server is unreachable; retrying."); await sleep(3000); continue; }
      this.state.error = r.status + " " + r.detail;
      this.set("error", r.detail);
      return;
    }
  }
  // The SFU ends a viewer's session when its token expires: with a session token, connect again
  // with a fresh one shortly before that (make before break).
  scheduleRenew(my) {
    if (Token.fragment || !body.dataset.user || !Token.cached) return;
    const wait = Math.max(5000, Token.until - Date.now());
    setTimeout(() => { if (my === this.run && this.state.state === "playing") this.play(true); }, wait);
  }
}

function loginLink(text) {
  return el("a", { class: "button primary", href: "/login?next=" + encodeURIComponent(location.pathname), text: text || "Log in again" });
}

// Live events: one EventSource per page, filtered by the server for this visitor (and, given a
// prefix such as room/a/, to the paths under it).
function events(handlers, prefix) {
  const es = new EventSource("/events" + (prefix ? "?prefix=" + encodeURIComponent(prefix) : ""));
  for (const [name, f] of Object.entries(handlers)) es.addEventListener(name, ev => { G.events++; f(JSON.parse(ev.data)); });
  return es;
}

// Play URLs: where the streams of sources gatehouse does not play itself are played
// (web.play_urls). The path goes in escaped like PlayURL.Expand in Go: each segment in the URL's
// path, the whole path in its query; only A-Z a-z 0-9 - . _ ~ stay as they are.
const PLAY_URLS = JSON.parse(body.dataset.playTemplates || "{}");
function playURL(st) {
  const t = PLAY_URLS[st.source];
  if (!t) return "";
  const i = t.indexOf("{path}");
  const esc = x => encodeURIComponent(x).replace(/[!'()*]/g, c => "%" + c.charCodeAt(0).toString(16).toUpperCase());
  const inQuery = t.slice(0, i).includes("?");
  return t.slice(0, i) + (inQuery ? esc(st.path) : st.path.split("/").map(esc).join("/")) + t.slice(i + "{path}".length);
}
const SOURCES = { "nginx-rtmp": "nginx-rtmp", mediamtx: "MediaMTX", ome: "OvenMediaEngine", srs: "SRS", sfu: "gatehouse" };
const PROTOCOLS = { rtmp: "RTMP", rtmps: "RTMPS", srt: "SRT", rtsp: "RTSP", webrtc: "WebRTC", hls: "HLS", llhls: "LL-HLS" };
function via(st) { return PROTOCOLS[st.protocol] || st.protocol || SOURCES[st.source] || st.source; }

async function copyText(btn, value, status) {
  let ok = true;
  try { await navigator.clipboard.writeText(value); } catch (e) { ok = false; }
  btn.replaceChildren(icon(ok ? ICONS.check : ICONS.copy));
  status.textContent = ok ? "Link copied." : "Copying is blocked here: select the link and copy it.";
  setTimeout(() => { btn.replaceChildren(icon(ICONS.copy)); status.textContent = ""; }, 2500);
}

// remoteView is the player area of a stream gatehouse lists but does not play (nginx-rtmp,
// MediaMTX, OME, SRS): where it comes from and, with a play URL, a link and a copy button.
function remoteView(st) {
  const url = playURL(st);
  const status = el("div", { class: "state-detail copied", role: "status", "aria-live": "polite" });
  const from = SOURCES[st.source] || st.source;
  const kids = [el("div", { class: "remote-icon", "aria-hidden": "true" }, icon(ICONS.cast)),
    el("div", { class: "state-title", text: "Live via " + via(st) }),
    el("div", { class: "state-detail source", text: "from " + from + (st.node ? " on node " + st.node : "") })];
  if (url) {
    const copy = el("button", { class: "icon copy", type: "button", "aria-label": "Copy stream link", title: "Copy stream link",
      onclick: () => copyText(copy, url, status) }, icon(ICONS.copy));
    kids.push(el("div", { class: "state-action" },
      el("a", { class: "button primary open-stream", href: url, target: "_blank", rel: "noopener noreferrer", text: "Open stream" }), copy),
      el("code", { class: "play-url", text: url }), status);
  } else {
    kids.push(el("div", { class: "state-detail no-url", text: "This stream plays in the server's own players, not in this browser. Ask the operator for the link." }));
  }
  return el("div", { class: "player remote", "data-state": "remote", "data-source": st.source },
    el("div", { class: "overlay" }, ...kids), el("span", { class: "badge live" }, el("span", { class: "dot" }), "LIVE"));
}

function card(st, player) {
  const name = st.identity || st.path.split("/").pop();
  const av = el("span", { class: "avatar", "aria-hidden": "true" });
  paintAvatar(av, name);
  const sub = el("div", { class: "card-sub" });
  const c = el("article", { class: "card", "data-path": st.path, "data-source": st.source },
    player ? player.root : remoteView(st),
    el("div", { class: "card-foot" }, av,
      el("div", { class: "meta" }, el("a", { class: "card-title", href: "/watch/" + st.path.split("/").map(encodeURIComponent).join("/"), text: st.path }), sub),
      roomLink(st.path)));
  c.update = s => {
    c.last = s;
    paintAvatar(av, s.identity || s.path.split("/").pop());
    sub.textContent = [s.identity, player ? "" : "via " + via(s), s.started ? since(s.started) : ""].filter(Boolean).join(" · ");
    if (player) player.setViewers(s.viewers);
  };
  c.update(st);
  return c;
}

// roomLink is a card's way into the room its stream belongs to (room/<name>/<participant>).
function roomLink(path) {
  const m = /^room\/([A-Za-z0-9][A-Za-z0-9_.-]{0,63})\/[^/]+$/.exec(path);
  return m ? el("a", { class: "button small room-link", href: "/room/" + m[1], text: "Open room" }) : null;
}

// Another node's SFU stream (st.node) plays here only when this node pulls it (data-edge).
function playable(st) { return st.source === "sfu" && (!st.node || body.dataset.edge === "1"); }

function grid() {
  const gridEl = document.getElementById("grid");
  const empty = document.getElementById("empty");
  const summary = document.getElementById("summary");
  const cards = new Map();
  const refresh = () => {
    G.streams = [...cards.keys()].sort();
    empty.hidden = cards.size > 0;
    summary.textContent = cards.size === 0 ? "Nothing live at the moment." : cards.size === 1 ? "1 stream live" : cards.size + " streams live";
  };
  const add = st => {
    let c = cards.get(st.path);
    if (c) { c.update(st); if (c.player && !c.player.live) c.player.setLive(true); return; }
    const p = playable(st) ? new Player(st.path, { muted: true }) : null;
    c = card(st, p);
    c.player = p;
    cards.set(st.path, c);
    const after = [...cards.keys()].sort().filter(k => k > st.path)[0];
    gridEl.insertBefore(c, after ? cards.get(after) : null);
    if (p) p.setLive(true);
    refresh();
  };
  const remove = st => {
    const c = cards.get(st.path);
    if (!c) return;
    if (c.player) { c.player.setLive(false, "ended"); delete G.players[st.path]; }
    cards.delete(st.path);
    c.remove();
    refresh();
  };
  events({
    streams: j => {
      const now = new Set(j.streams.map(s => s.path));
      for (const [path, c] of cards) if (!now.has(path)) remove({ path });
      j.streams.forEach(add);
      refresh();
    },
    live: j => add(j.stream),
    offline: j => remove(j.stream),
  });
  setInterval(() => cards.forEach(c => c.update(c.last)), 30000);
}

function watch() {
  const path = body.dataset.path;
  const stage = document.getElementById("stage");
  const player = new Player(path, { page: true, muted: false });
  window.gatehouse = Object.assign(player.state, { players: G.players });
  document.title = path + " · " + document.title.split(" · ").pop();
  const st = { path, source: "sfu", identity: "", started: "", viewers: 0 };
  const c = card(st, player);
  stage.append(c);
  player.set("offline");
  let seen = false;
  // A stream from a server gatehouse does not play (nginx-rtmp, ...) shows where it plays.
  let remote = null;
  const showRemote = st => {
    if (remote) remote.remove();
    player.stop(); player.live = false;
    remote = card(st, null);
    c.hidden = true;
    stage.append(remote);
    body.dataset.state = "remote";
    player.state.state = "remote";
  };
  const hideRemote = () => {
    if (!remote) return;
    remote.remove(); remote = null; c.hidden = false;
  };
  const up = st => {
    if (!playable(st)) { showRemote(st); return; }
    hideRemote(); c.update(st); player.setLive(true);
  };
  const down = st => {
    if (remote) { hideRemote(); c.update({ ...st, started: "" }); player.set("ended"); return; }
    c.update({ ...st, started: "" }); player.setLive(false, "ended");
  };
  events({
    streams: j => {
      const mine = j.streams.find(s => s.path === path);
      if (mine && (!seen || !player.live || !playable(mine))) up(mine);
      else if (mine) c.update(mine);
      else if (player.live || remote) down(c.last);
      seen = true;
    },
    live: j => { if (j.stream.path === path) up(j.stream); },
    offline: j => { if (j.stream.path === path) down(j.stream); },
  });
  // A path this visitor may not list (or one that is not live) still gets one honest try:
  // WHEP says 403, 401 or "not live".
  setTimeout(() => { if (!remote && (!seen || !player.live)) player.play(); }, 300);
}

if (body.dataset.page === "grid") grid();
if (body.dataset.page === "watch") watch();
addEventListener("pagehide", () => (G.instances || []).forEach(p => p.stop()));
