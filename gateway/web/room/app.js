// app.js — the video room page (/room/:id). Customers open it inside the
// mini-program's web-view, staff from the WeCom card in WeCom's browser.
// Signaling is media's JSON protocol over /ws (media/doc.go): the page makes
// the first offer after "joined", is the polite peer (rolls back its own
// offer when the server's crosses it), trickles candidates both ways and
// restarts ICE when the network changes. Everything about the call is in
// window.__tgRoom, for the browser tests and for debugging.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const roomID = decodeURIComponent(location.pathname.split("/").filter(Boolean)[1] || "");
  const params = new URLSearchParams(location.search);

  const R = {
    room: roomID, token: "", audioOnly: false, self: null, role: "",
    pc: null, ws: null, local: null, facing: "user",
    participants: {}, // id → {state, tile, stream}
    joined: false, ended: false, everMet: false, leaving: false,
    makingOffer: false, restartTimer: null, reconnectTries: 0, statsTimer: null, lastStats: null,
    quality: "", stats: {}, chain: Promise.resolve(),
  };
  window.__tgRoom = R;

  function setStatus(t) { $("status").textContent = t; }

  // ---- who am I: a token in ?t=, a WeCom OAuth ?code=, or a session ----
  function claimsOf(token) {
    try {
      const p = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(decodeURIComponent(escape(atob(p + "===".slice((p.length + 3) % 4)))));
    } catch (e) { return {}; }
  }

  async function resolveToken() {
    const t = params.get("t");
    if (t) {
      const c = claimsOf(t);
      return { token: t, audioOnly: !!c.audio, name: c.name || "", role: c.role || "" };
    }
    const code = params.get("code");
    if (code) {
      // WeCom's OAuth redirect: the code becomes a staff session.
      const res = await tg.api("room", "POST", "/auth/wecom", { code });
      tg.saveSession("room", res.tokens || res);
      history.replaceState(null, "", location.pathname);
    }
    for (const key of ["room", "staff", "owner", "customer"]) {
      const s = tg.session(key);
      if (!s || !s.access_token) continue;
      R.sessionKey = key;
      try {
        // A call's room: a token with my name in it.
        const j = await tg.api(key, "POST", "/calls/" + encodeURIComponent(roomID) + "/join");
        if (Array.isArray(j.ice_servers)) R.iceServers = j.ice_servers;
        return { token: j.token, audioOnly: j.kind === "voice", name: "", role: s.role || "" };
      } catch (e) {
        if (e.status !== 404) throw e;
      }
      const j = await tg.api(key, "POST", "/rooms/" + encodeURIComponent(roomID) + "/join");
      if (Array.isArray(j.ice_servers)) R.iceServers = j.ice_servers;
      return { token: j.token, audioOnly: !!j.audio_only, name: "", role: s.role || "" };
    }
    return null;
  }

  // ---- media ----
  async function getMedia() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      throw new Error("此页面需要通过 HTTPS 打开才能使用摄像头和麦克风");
    }
    const video = R.audioOnly ? false : { facingMode: R.facing, width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 24 } };
    try {
      return await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true }, video });
    } catch (e) {
      if (video) {
        // No camera (or refused): go on with the voice only.
        tg.toast("无法打开摄像头，将以语音加入");
        return navigator.mediaDevices.getUserMedia({ audio: true, video: false });
      }
      throw e;
    }
  }

  function showLocal() {
    const v = $("local-video");
    v.srcObject = R.local;
    const hasVideo = R.local && R.local.getVideoTracks().length > 0;
    $("local-voice").classList.toggle("hidden", hasVideo);
    v.classList.toggle("hidden", !hasVideo);
    $("local").classList.toggle("back", R.facing === "environment");
    $("flip").classList.toggle("hidden", !hasVideo);
    $("cam").classList.toggle("hidden", !hasVideo);
  }

  // ---- signaling ----
  function send(msg) {
    if (R.ws && R.ws.readyState === WebSocket.OPEN) R.ws.send(JSON.stringify(msg));
  }

  function connect() {
    setStatus(R.joined ? "正在重新连接…" : "正在连接…");
    const ws = new WebSocket(tg.wsURL("token=" + encodeURIComponent(R.token)));
    R.ws = ws;
    ws.onmessage = (ev) => {
      let m;
      try { m = JSON.parse(ev.data); } catch (e) { return; }
      // One signal at a time, in order: an offer must not overtake the
      // answer before it while that answer is being applied.
      R.chain = R.chain.then(() => onSignal(m)).catch((e) => console.warn("signal", m.type, e));
    };
    ws.onclose = () => {
      if (R.ws !== ws || R.ended || R.leaving) return;
      // The socket dropped (network change): the server keeps us for its
      // reconnect grace, media keeps flowing; come back on a new socket.
      R.reconnectTries++;
      if (R.reconnectTries > 8) { finish("连接已断开，请检查网络后重新加入", true); return; }
      setStatus("网络不稳定，正在重连…");
      setTimeout(() => { if (!R.ended && navigator.onLine !== false) connect(); }, Math.min(500 * 2 ** R.reconnectTries, 4000));
    };
  }

  async function onSignal(m) {
    switch (m.type) {
      case "joined": return onJoined(m);
      case "offer": return onOffer(m.sdp);
      case "answer":
        if (R.pc && R.pc.signalingState === "have-local-offer") await R.pc.setRemoteDescription(m.sdp);
        return;
      case "candidate":
        if (R.pc && m.candidate) { try { await R.pc.addIceCandidate(m.candidate); } catch (e) { /* a stale ufrag after a restart */ } }
        return;
      case "participant-joined": upsert(m.participant); updateWaiting(); return;
      case "participant-left":
        if (m.participant && R.self && m.participant.id === R.self.id) { rejoinFresh(); return; }
        if (m.participant) removeParticipant(m.participant.id);
        updateWaiting();
        return;
      case "mute": if (m.participant) upsert(m.participant); return;
      case "room-closed": finish(R.everMet ? "通话已结束" : "通话已结束，对方未接听"); return;
      case "error": {
        const e = m.error || {};
        if (e.code === "join_failed") { finish(e.message || "无法加入通话", false); return; }
        if (e.code !== "session_closed") tg.toast(e.message || "出错了");
        return;
      }
    }
  }

  async function onJoined(m) {
    R.reconnectTries = 0;
    R.self = m.self;
    if (Array.isArray(m.iceServers)) R.iceServers = m.iceServers;
    R.audioOnly = !!m.audioOnly || R.audioOnly;
    for (const p of m.participants || []) upsert(p);
    // Participants that left while we were away.
    const ids = new Set((m.participants || []).map((p) => p.id));
    for (const id of Object.keys(R.participants)) if (!ids.has(id)) removeParticipant(id);
    if (m.resumed && R.pc) {
      if (R.pc.iceConnectionState !== "connected" && R.pc.iceConnectionState !== "completed") restartICE();
    } else {
      await newPeerConnection();
      await makeOffer(false);
    }
    R.joined = true;
    updateWaiting();
    startStats();
  }

  async function newPeerConnection() {
    if (R.pc) { try { R.pc.close(); } catch (e) {} }
    // ICE servers (STUN/TURN with short-lived credentials) when the server
    // hands them out, in "joined" or with the room token; none: host and
    // server-reflexive candidates only.
    const pc = new RTCPeerConnection({ iceServers: R.iceServers || [], bundlePolicy: "max-bundle", rtcpMuxPolicy: "require" });
    R.pc = pc;
    for (const t of R.local.getTracks()) pc.addTrack(t, R.local);
    if (R.audioOnly) {
      for (const tr of pc.getTransceivers()) if (tr.sender.track && tr.sender.track.kind === "video") tr.direction = "inactive";
    }
    pc.onicecandidate = (e) => { if (e.candidate) send({ type: "candidate", candidate: e.candidate.toJSON() }); };
    pc.ontrack = (e) => {
      const pid = e.streams && e.streams[0] ? e.streams[0].id : "";
      const p = R.participants[pid] || upsert({ id: pid, connected: true });
      if (!p.stream) p.stream = new MediaStream();
      p.stream.addTrack(e.track);
      e.track.onended = () => p.stream && p.stream.removeTrack(e.track);
      attach(p);
    };
    pc.oniceconnectionstatechange = () => {
      const s = pc.iceConnectionState;
      if (s === "connected" || s === "completed") {
        clearTimeout(R.restartTimer); R.restartTimer = null;
        setStatus(R.audioOnly ? "语音通话中" : "视频通话中");
        if (!others().length) updateWaiting();
      } else if (s === "disconnected") {
        // Wi-Fi → 4G: give the path a moment, then restart ICE.
        setStatus("网络切换中…");
        clearTimeout(R.restartTimer);
        R.restartTimer = setTimeout(() => { if (pc.iceConnectionState === "disconnected") restartICE(); }, 1000);
      } else if (s === "failed") {
        restartICE();
      }
    };
  }

  async function makeOffer(iceRestart) {
    const pc = R.pc;
    if (!pc) return;
    try {
      R.makingOffer = true;
      const offer = await pc.createOffer(iceRestart ? { iceRestart: true } : undefined);
      if (pc.signalingState !== "stable") return;
      await pc.setLocalDescription(offer);
      send({ type: "offer", sdp: pc.localDescription.toJSON() });
    } finally {
      R.makingOffer = false;
    }
  }

  // The polite peer of perfect negotiation: our own offer gives way.
  async function onOffer(sdp) {
    const pc = R.pc;
    if (!pc) return;
    if (R.makingOffer || pc.signalingState !== "stable") {
      await pc.setLocalDescription({ type: "rollback" });
    }
    await pc.setRemoteDescription(sdp);
    await pc.setLocalDescription(await pc.createAnswer());
    send({ type: "answer", sdp: pc.localDescription.toJSON() });
  }

  function restartICE() {
    if (!R.pc || R.ended) return;
    if (!R.ws || R.ws.readyState !== WebSocket.OPEN) return; // the new socket's "joined" restarts
    setStatus("正在恢复连接…");
    if (R.pc.signalingState === "stable") makeOffer(true).catch(() => send({ type: "restart-ice" }));
    else send({ type: "restart-ice" });
  }

  function rejoinFresh() {
    // The server removed us (grace ran out): join again as a new participant.
    for (const id of Object.keys(R.participants)) removeParticipant(id);
    if (R.pc) { R.pc.close(); R.pc = null; }
    if (R.ws) { const ws = R.ws; R.ws = null; ws.close(); }
    connect();
  }

  // ---- participants ----
  function others() { return Object.values(R.participants); }

  function upsert(st) {
    if (!st || !st.id || (R.self && st.id === R.self.id)) return null;
    let p = R.participants[st.id];
    if (!p) {
      p = R.participants[st.id] = { state: st, tile: null, stream: null };
      R.everMet = true;
    }
    p.state = Object.assign({}, p.state, st);
    render(p);
    return p;
  }

  function label(st) {
    if (st.name) return st.name;
    return st.role === "customer" ? "顾客" : st.role === "owner" ? "店主" : "店员";
  }

  function render(p) {
    const st = p.state;
    if (!p.tile) {
      const video = tg.el("video", { autoplay: true, playsinline: true });
      const name = tg.el("div", { class: "name" });
      const avatar = tg.el("div", { class: "avatar hidden" });
      const away = tg.el("div", { class: "away hidden" }, "对方网络不稳定，正在重连…");
      p.tile = tg.el("div", { class: "tile", "data-participant": st.id }, video, avatar, name, away);
      p.video = video; p.nameEl = name; p.avatar = avatar; p.away = away;
      $("tiles").appendChild(p.tile);
      layout();
    }
    const voice = R.audioOnly || st.audioOnly;
    p.nameEl.textContent = "";
    p.nameEl.appendChild(document.createTextNode(label(st)));
    if (st.audioMuted) p.nameEl.appendChild(tg.el("span", { class: "m" }, "已静音"));
    if (st.videoMuted && !voice) p.nameEl.appendChild(tg.el("span", { class: "m" }, "摄像头已关"));
    p.avatar.textContent = label(st).slice(0, 1);
    p.avatar.classList.toggle("hidden", !(voice || st.videoMuted));
    p.tile.classList.toggle("off", !!(voice || st.videoMuted));
    p.away.classList.toggle("hidden", st.connected !== false);
    attach(p);
  }

  function attach(p) {
    if (p.video && p.stream && p.video.srcObject !== p.stream) {
      p.video.srcObject = p.stream;
      p.video.play().catch(() => {});
    }
  }

  function removeParticipant(id) {
    const p = R.participants[id];
    if (!p) return;
    if (p.tile) p.tile.remove();
    delete R.participants[id];
    layout();
  }

  function layout() {
    const n = others().length;
    $("tiles").className = "tiles n" + Math.max(1, Math.min(n, 4));
    $("local").classList.toggle("big", n === 0 && !R.ended);
  }

  function updateWaiting() {
    const alone = R.joined && !R.ended && others().length === 0;
    $("waiting").classList.toggle("hidden", !alone);
    $("waiting-text").textContent = R.everMet ? "对方已离开，等待重新加入…" : "正在呼叫，等待对方加入…";
    if (alone) setStatus("等待对方加入…");
    else if (R.joined && !R.ended && R.pc) {
      const ice = R.pc.iceConnectionState;
      setStatus(ice === "connected" || ice === "completed" ? (R.audioOnly ? "语音通话中" : "视频通话中") : "正在连接…");
    }
    layout();
  }

  // ---- network quality from getStats ----
  function startStats() {
    if (R.statsTimer) return;
    $("net").classList.remove("hidden");
    R.statsTimer = setInterval(sampleStats, 2000);
  }

  async function sampleStats() {
    if (!R.pc) return;
    let rtt = null, lost = 0, recv = 0, bytesIn = 0, bytesOut = 0, framesDecoded = 0;
    const report = await R.pc.getStats();
    report.forEach((s) => {
      if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded" && s.currentRoundTripTime !== undefined) rtt = s.currentRoundTripTime;
      if (s.type === "inbound-rtp") {
        lost += s.packetsLost || 0; recv += s.packetsReceived || 0; bytesIn += s.bytesReceived || 0;
        if (s.kind === "video") framesDecoded += s.framesDecoded || 0;
      }
      if (s.type === "outbound-rtp") bytesOut += s.bytesSent || 0;
    });
    const now = performance.now(), prev = R.lastStats;
    R.lastStats = { at: now, lost, recv, bytesIn, bytesOut };
    if (!prev) return;
    const dt = (now - prev.at) / 1000;
    const dLost = Math.max(0, lost - prev.lost), dRecv = Math.max(0, recv - prev.recv);
    const loss = dLost + dRecv > 0 ? dLost / (dLost + dRecv) : 0;
    const kbpsIn = ((bytesIn - prev.bytesIn) * 8) / 1000 / dt, kbpsOut = ((bytesOut - prev.bytesOut) * 8) / 1000 / dt;
    R.stats = { rtt, loss, kbpsIn, kbpsOut, framesDecoded };
    let q = "good";
    if ((rtt !== null && rtt > 0.6) || loss > 0.08) q = "poor";
    else if ((rtt !== null && rtt > 0.3) || loss > 0.02) q = "fair";
    R.quality = q;
    const net = $("net");
    net.className = "net " + q;
    $("net-label").textContent = { good: "良好", fair: "一般", poor: "较差" }[q];
    $("net-detail").textContent = (rtt !== null ? Math.round(rtt * 1000) + "ms · " : "") + "丢包" + (loss * 100).toFixed(1) + "% · " +
      Math.round(kbpsIn) + "kbps";
  }

  // ---- controls ----
  function toggle(kind) {
    const tracks = kind === "audio" ? R.local.getAudioTracks() : R.local.getVideoTracks();
    if (!tracks.length) return;
    const muted = tracks[0].enabled;
    tracks.forEach((t) => (t.enabled = !muted));
    send({ type: "mute", kind, muted });
    const btn = kind === "audio" ? $("mic") : $("cam");
    btn.setAttribute("aria-pressed", String(muted));
    btn.querySelector(".lb").textContent = kind === "audio" ? (muted ? "取消静音" : "静音") : (muted ? "开摄像头" : "关摄像头");
  }

  async function flip() {
    const old = R.local.getVideoTracks()[0];
    if (!old) return;
    const facing = R.facing === "user" ? "environment" : "user";
    let s;
    try {
      s = await navigator.mediaDevices.getUserMedia({ video: { facingMode: { exact: facing }, width: { ideal: 640 }, height: { ideal: 360 } } });
    } catch (e) {
      tg.toast("没有可切换的摄像头");
      return;
    }
    const track = s.getVideoTracks()[0];
    track.enabled = old.enabled;
    if (R.pc) {
      const sender = R.pc.getSenders().find((x) => x.track === old);
      if (sender) await sender.replaceTrack(track);
    }
    R.local.removeTrack(old); old.stop();
    R.local.addTrack(track);
    R.facing = facing;
    showLocal();
  }

  function hangup() {
    R.leaving = true;
    send({ type: "leave" });
    finish(R.everMet ? "通话已结束" : "已取消呼叫");
  }

  function finish(text, canRejoin) {
    if (R.ended) return;
    R.ended = true;
    clearInterval(R.statsTimer); R.statsTimer = null;
    clearTimeout(R.restartTimer);
    if (R.pc) { try { R.pc.close(); } catch (e) {} }
    if (R.ws) { const ws = R.ws; R.ws = null; try { ws.close(); } catch (e) {} }
    if (R.local) R.local.getTracks().forEach((t) => t.stop());
    for (const id of Object.keys(R.participants)) removeParticipant(id);
    $("controls").classList.add("hidden");
    $("waiting").classList.add("hidden");
    $("local").classList.add("hidden");
    $("ended").classList.remove("hidden");
    $("ended-text").textContent = text;
    $("rejoin").classList.toggle("hidden", !canRejoin);
    setStatus(text);
    offerRating();
  }

  // The customer rates the call: with their session when the customer
  // page opened the room in this tab, else with their room token (they
  // came by the invitation link).
  function offerRating() {
    const s = tg.session("customer");
    const bySession = s && s.role === "customer";
    if (!R.everMet || !(bySession || R.role === "customer")) return;
    const stars = $("stars");
    stars.textContent = "";
    for (let i = 1; i <= 5; i++) {
      stars.appendChild(tg.el("button", { "data-score": i, onclick: async () => {
        try {
          const path = "/calls/" + encodeURIComponent(roomID);
          if (bySession) await tg.api("customer", "POST", path + "/rate", { score: i });
          else await tg.api("rating", "POST", path + "/rate-with-token", { token: R.token, score: i });
          stars.querySelectorAll("button").forEach((b) => { b.classList.toggle("on", Number(b.dataset.score) <= i); b.disabled = true; });
          tg.toast("谢谢您的评价");
        } catch (e) { tg.toast(e.message); }
      } }, "★"));
    }
    $("rate").classList.remove("hidden");
  }

  async function join() {
    $("prejoin").classList.add("hidden");
    $("controls").classList.remove("hidden");
    connect();
  }

  window.addEventListener("offline", () => { if (!R.ended && R.joined) setStatus("网络已断开，等待恢复…"); });
  window.addEventListener("online", () => {
    if (R.ended || !R.joined) return;
    if (!R.ws || R.ws.readyState > WebSocket.OPEN) connect(); // "joined" (resumed) restarts ICE
    else restartICE();
  });
  window.addEventListener("pagehide", () => { if (!R.ended) send({ type: "leave" }); });

  async function main() {
    $("join").addEventListener("click", join);
    $("mic").addEventListener("click", () => toggle("audio"));
    $("cam").addEventListener("click", () => toggle("video"));
    $("flip").addEventListener("click", flip);
    $("hangup").addEventListener("click", hangup);
    $("rejoin").addEventListener("click", () => location.reload());
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(roomID)) { finish("通话链接无效"); return; }
    let who;
    try {
      who = await resolveToken();
    } catch (e) {
      finish(e.message || "无法加入通话");
      return;
    }
    if (!who) { finish("请从小程序或企业微信中的通话链接进入"); return; }
    R.token = who.token; R.audioOnly = who.audioOnly; R.role = who.role;
    $("prejoin-title").textContent = R.audioOnly ? "语音通话" : "视频通话";
    document.title = (R.audioOnly ? "语音通话" : "视频通话") + " · 渔具租赁";
    setStatus("请允许使用" + (R.audioOnly ? "麦克风" : "摄像头和麦克风"));
    try {
      R.local = await getMedia();
    } catch (e) {
      finish("无法使用麦克风：" + (e.message || e.name) + "。请允许使用后重试", true);
      return;
    }
    showLocal();
    layout();
    setStatus(R.audioOnly ? "语音通话" : "预览");
    $("prejoin").classList.remove("hidden");
    if (params.get("autojoin") === "1") join();
  }
  main();
})();
