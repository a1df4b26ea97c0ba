// gatehouse rooms (/room/{name}): everyone publishes their own camera over WHIP on
// room/<name>/<participant> and watches the others over WHEP; who is there comes from the live
// events, narrowed to the room's prefix. Plain WHIP and WHEP: any client can take part.
// Uses app.js's helpers (el, icon, Player, Token, gathered, events). Strings from the server go
// into the page through textContent and setAttribute only.
"use strict";

(function room() {
  const root = document.getElementById("room");
  if (!root) return;
  const name = root.dataset.room;
  const prefix = root.dataset.prefix;
  const tilesEl = document.getElementById("tiles");
  const empty = document.getElementById("room-empty");
  const summary = document.getElementById("room-summary");
  const notice = document.getElementById("room-notice");
  const joinBar = document.getElementById("join-bar");
  const joinBtn = document.getElementById("join");
  const controls = document.getElementById("room-controls");
  const micBtn = document.getElementById("mic");
  const camBtn = document.getElementById("cam");
  const camSel = document.getElementById("camera-select");
  const micSel = document.getElementById("mic-select");
  const leaveBtn = document.getElementById("leave");
  const R = (G.room = { mode: "idle", participant: "", path: "", tiles: [], whip: 0, error: "", publishing: false });
  const tiles = new Map(); // path -> {el, player}
  let me = null; // {path, token, expires, pc, location, stream, tile}
  let joinInfo = null;
  let es = null;

  const mode = m => { R.mode = m; root.dataset.mode = m; };
  const say = (text, kids) => {
    notice.hidden = !text;
    notice.replaceChildren(text || "", ...(kids || []));
  };
  const who = path => path.slice(prefix.length);
  const encPath = p => p.split("/").map(encodeURIComponent).join("/");

  function refresh() {
    R.tiles = [...tiles.keys()].sort();
    tilesEl.dataset.count = String(tiles.size + (me ? 1 : 0));
    empty.hidden = tiles.size > 0 || R.mode === "left";
    const others = tiles.size;
    const parts = [];
    if (R.publishing) parts.push("You are in the room");
    if (R.publishing || me) parts.push(others === 0 ? "no one else is here" : others === 1 ? "1 other person" : others + " other people");
    else parts.push(others === 0 ? "no one is here" : others === 1 ? "1 person here" : others + " people here");
    summary.textContent = parts.join(" · ");
  }

  function nameTag(label, extra) {
    const av = el("span", { class: "avatar small", "aria-hidden": "true" });
    paintAvatar(av, label);
    return el("div", { class: "tile-name" }, av, el("span", { class: "tile-label", text: label }), extra || "");
  }

  // A remote participant: a WHEP player in a tile, created when the stream goes live and
  // removed when it goes offline.
  function addTile(st) {
    if (!st.path.startsWith(prefix) || (me && st.path === me.path)) return;
    if (tiles.has(st.path)) return;
    const p = new Player(st.path, { muted: false });
    const t = el("article", { class: "tile", "data-path": st.path, "aria-label": who(st.path) }, p.root, nameTag(who(st.path)));
    tiles.set(st.path, { el: t, player: p });
    const after = [...tiles.keys()].sort().filter(k => k > st.path)[0];
    tilesEl.insertBefore(t, after ? tiles.get(after).el : null);
    p.setLive(true);
    refresh();
  }
  function removeTile(path) {
    const t = tiles.get(path);
    if (!t) return;
    t.player.stop();
    clearInterval(t.player.timer);
    delete G.players[path];
    G.instances = (G.instances || []).filter(x => x !== t.player);
    tiles.delete(path);
    t.el.remove();
    refresh();
  }

  function follow() {
    if (es) return;
    es = events({
      streams: j => {
        const now = new Set(j.streams.map(s => s.path));
        for (const path of [...tiles.keys()]) if (!now.has(path)) removeTile(path);
        j.streams.forEach(addTile);
        refresh();
      },
      live: j => addTile(j.stream),
      offline: j => removeTile(j.stream.path),
    }, prefix);
  }

  async function join() {
    let res;
    try {
      res = await fetch("/room/" + encodeURIComponent(name) + "/join", { method: "POST", headers: { "X-CSRF-Token": body.dataset.csrf }, credentials: "same-origin" });
    } catch (e) { return null; }
    if (res.status === 401) { sessionExpired(); return null; }
    if (!res.ok) return null;
    return res.json();
  }

  // publish sends the local tracks to room/<name>/<participant> over WHIP.
  async function publish() {
    const pc = new RTCPeerConnection({ bundlePolicy: "max-bundle" });
    for (const tr of me.stream.getTracks()) pc.addTransceiver(tr, { direction: "sendonly", streams: [me.stream] });
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc, 2000);
    let res;
    try {
      res = await fetch("/whip/" + encPath(me.path), { method: "POST", headers: { "Content-Type": "application/sdp", Authorization: "Bearer " + me.token }, body: pc.localDescription.sdp });
    } catch (e) { pc.close(); return { status: 0 }; }
    R.whip = res.status;
    if (res.status !== 201) {
      let detail = res.statusText;
      try { detail = (await res.json()).detail || detail; } catch (e) {}
      pc.close();
      return { status: res.status, detail };
    }
    const location = new URL(res.headers.get("Location"), window.location.href).toString();
    await pc.setRemoteDescription({ type: "answer", sdp: await res.text() });
    return { status: 201, pc, location };
  }

  async function startPublishing() {
    for (let attempt = 0; R.mode === "speaking"; attempt++) {
      const r = await publish();
      if (R.mode !== "speaking") { if (r.pc) { r.pc.close(); fetch(r.location, { method: "DELETE", headers: { Authorization: "Bearer " + me.token }, keepalive: true }).catch(() => {}); } return; }
      if (r.status === 201) {
        me.pc = r.pc; me.location = r.location;
        R.publishing = true; R.error = "";
        me.tile.dataset.state = "publishing";
        say("");
        r.pc.addEventListener("connectionstatechange", () => {
          if (r.pc === me.pc && ["failed", "closed"].includes(r.pc.connectionState)) republish();
        });
        // The server ending the session closes DTLS, seen at once on the transport (Chromium
        // keeps connectionState "connected" until ICE times out, about 6 s).
        const dtls = r.pc.getSenders().map(s => s.transport).find(Boolean);
        if (dtls) dtls.addEventListener("statechange", () => {
          if (r.pc === me.pc && ["closed", "failed"].includes(dtls.state)) republish();
        });
        scheduleRenew();
        refresh();
        return;
      }
      R.error = r.status + " " + (r.detail || "");
      if (r.status === 409 && attempt < 10) { say("Your previous connection is still ending; joining in a moment…"); await sleep(3000); continue; }
      if (r.status === 0 && attempt < 10) { say("The server is unreachable; retrying."); await sleep(3000); continue; }
      say(r.status === 403 || r.status === 401 ? "The server refused your camera: " + (r.detail || "not permitted") : "Could not join: " + (r.detail || r.status));
      return;
    }
  }

  // The SFU ends a session when its token expires: shortly before, get a fresh token and
  // publish again (the others' players wait for the reconnect).
  function scheduleRenew() {
    clearTimeout(me.renew);
    const wait = Math.max(10000, (new Date(me.expires).getTime() - Date.now()) * 0.8);
    me.renew = setTimeout(republish, wait);
  }
  async function republish() {
    if (R.mode !== "speaking") return;
    const j = await join();
    if (!j || !j.publish) { say("You can no longer speak in this room."); return; }
    me.token = j.token; me.expires = j.expires;
    stopPublishing();
    await startPublishing();
  }
  function stopPublishing() {
    R.publishing = false;
    const pc = me && me.pc;
    if (!pc) return;
    me.pc = null;
    pc.close();
    if (me.location) fetch(me.location, { method: "DELETE", headers: { Authorization: "Bearer " + me.token }, keepalive: true }).catch(() => {});
    me.location = "";
  }

  function ownTile() {
    const video = el("video", { playsinline: true, autoplay: true });
    video.muted = true; // never hear yourself
    video.srcObject = me.stream;
    const micState = el("span", { class: "tile-muted", title: "Your microphone is muted", hidden: true }, icon(ICONS.muted));
    const off = el("div", { class: "tile-off", hidden: true }, el("span", { text: "Camera off" }));
    const t = el("article", { class: "tile own", "data-path": me.path, "aria-label": "You (" + who(me.path) + ")" },
      el("div", { class: "player own-view" }, video, off), nameTag("You · " + who(me.path), micState));
    t.micState = micState; t.off = off;
    tilesEl.prepend(t);
    return t;
  }

  function paintToggles() {
    const a = me.stream.getAudioTracks()[0], v = me.stream.getVideoTracks()[0];
    const micOff = !a || !a.enabled, camOff = !v || !v.enabled;
    micBtn.setAttribute("aria-pressed", String(micOff));
    micBtn.textContent = micOff ? "Unmute" : "Mute";
    camBtn.setAttribute("aria-pressed", String(camOff));
    camBtn.textContent = camOff ? "Camera on" : "Camera off";
    me.tile.micState.hidden = !micOff;
    me.tile.off.hidden = !camOff;
    R.micMuted = micOff; R.cameraOff = camOff;
  }

  async function fillDevices() {
    let list = [];
    try { list = await navigator.mediaDevices.enumerateDevices(); } catch (e) {}
    const cur = { videoinput: (me.stream.getVideoTracks()[0] || {}).getSettings?.().deviceId, audioinput: (me.stream.getAudioTracks()[0] || {}).getSettings?.().deviceId };
    for (const [sel, kind, label] of [[camSel, "videoinput", "Camera"], [micSel, "audioinput", "Microphone"]]) {
      const devs = list.filter(d => d.kind === kind);
      sel.replaceChildren(...devs.map((d, i) => el("option", { value: d.deviceId, text: d.label || label + " " + (i + 1), selected: d.deviceId === cur[kind] })));
      sel.disabled = devs.length < 2;
    }
  }

  // switchDevice replaces one track in place: the WHIP session keeps running.
  async function switchDevice(kind, deviceId) {
    let s;
    try {
      s = await navigator.mediaDevices.getUserMedia(kind === "video" ? { video: { deviceId: { exact: deviceId } } } : { audio: { deviceId: { exact: deviceId } } });
    } catch (e) { say("That device could not be opened."); return; }
    const fresh = s.getTracks()[0];
    const old = kind === "video" ? me.stream.getVideoTracks()[0] : me.stream.getAudioTracks()[0];
    if (old) { fresh.enabled = old.enabled; me.stream.removeTrack(old); old.stop(); }
    me.stream.addTrack(fresh);
    if (me.pc) for (const tx of me.pc.getTransceivers()) if (tx.sender.track && tx.sender.track.kind === kind) await tx.sender.replaceTrack(fresh);
    paintToggles();
  }

  async function speak() {
    joinBar.hidden = true;
    mode("speaking");
    say("Starting your camera…");
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 1280 }, height: { ideal: 720 } }, audio: true });
    } catch (e) {
      mode("watching");
      say("Your camera or microphone could not be opened (" + e.name + "). You're watching; ", [el("button", { class: "button small", type: "button", text: "Try again", onclick: speak })]);
      refresh();
      return;
    }
    me = { path: joinInfo.path, token: joinInfo.token, expires: joinInfo.expires, stream, pc: null, location: "" };
    R.participant = joinInfo.participant; R.path = joinInfo.path;
    me.tile = ownTile();
    refresh();
    removeTile(me.path); // your own stream is not watched over WHEP
    controls.hidden = false;
    paintToggles();
    fillDevices();
    await startPublishing();
  }

  function leave() {
    mode("left");
    if (me) {
      clearTimeout(me.renew);
      stopPublishing();
      me.stream.getTracks().forEach(t => t.stop());
      me.tile.remove();
      me = null;
    }
    if (es) { es.close(); es = null; }
    for (const path of [...tiles.keys()]) removeTile(path);
    controls.hidden = true;
    say("You left the room. ", [el("button", { class: "button small primary", type: "button", text: "Join again", onclick: () => location.reload() }), " ",
      el("a", { class: "button small", href: "/", text: "All live streams" })]);
    refresh();
  }

  micBtn.addEventListener("click", () => { const a = me && me.stream.getAudioTracks()[0]; if (a) { a.enabled = !a.enabled; paintToggles(); } });
  camBtn.addEventListener("click", () => { const v = me && me.stream.getVideoTracks()[0]; if (v) { v.enabled = !v.enabled; paintToggles(); } });
  camSel.addEventListener("change", () => switchDevice("video", camSel.value));
  micSel.addEventListener("change", () => switchDevice("audio", micSel.value));
  leaveBtn.addEventListener("click", leave);
  joinBtn.addEventListener("click", speak);
  addEventListener("pagehide", () => { if (me) stopPublishing(); });

  (async () => {
    follow();
    refresh();
    if (!body.dataset.user) {
      mode("watching");
      say(body.dataset.login ? "You're watching. " : "You're watching.", body.dataset.login ? [loginLink("Log in to speak")] : []);
      refresh();
      return;
    }
    joinInfo = await join();
    if (!joinInfo || !joinInfo.publish) {
      mode("watching");
      say(joinInfo ? "You're watching: your account may not speak in this room, only watch it." : "You're watching: joining failed, reload to try again.");
      refresh();
      return;
    }
    R.participant = joinInfo.participant; R.path = joinInfo.path;
    mode("ready");
    joinBar.hidden = false;
    joinBtn.focus();
  })();
})();
