// chat.js — the customer's chat with the shop (the 客服 tab): text, photos,
// voice notes (MediaRecorder), the staff presence line, live updates over
// /ws and the rating after a conversation is closed. The customer page
// calls TGChat.mount(el, {sessionKey, presetText}) when the tab opens; the
// messages are the same conversation as the customer's WeChat messages.
(function () {
  "use strict";
  const el = tg.el;
  const MAX_VOICE_MS = 60000;

  function ensureCSS() {
    if (document.querySelector('link[data-tgchat]')) return;
    const l = document.createElement("link");
    l.rel = "stylesheet"; l.href = "/customer/chat.css"; l.setAttribute("data-tgchat", "");
    document.head.appendChild(l);
  }

  const time = (iso) => new Date(iso).toLocaleString("zh-CN", { timeZone: "Asia/Shanghai", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" });
  const statusText = { stored: "已发送", sent: "已送达客服", failed: "发送失败" };
  const clientID = () => "c" + Date.now().toString(36) + Math.random().toString(36).slice(2, 8);

  function mount(root, opts) {
    opts = opts || {};
    const key = opts.sessionKey || "customer";
    ensureCSS();
    if (root._tgchat) root._tgchat.destroy();
    const st = { conv: null, msgs: [], nextBefore: 0, ws: null, closed: false, retry: null, rec: null, media: new Map() };
    const api = (m, p, b) => tg.api(key, m, p, b);

    const presence = el("div", { class: "tgchat-presence", role: "status" }, el("span", { class: "dot" }), el("span", { class: "text" }, "正在连接客服…"));
    const list = el("ol", { class: "tgchat-list", "aria-label": "聊天记录" });
    const rateBox = el("div", { class: "tgchat-rate hidden" });
    const recBar = el("div", { class: "tgchat-recording hidden" });
    const text = el("textarea", { rows: "1", placeholder: "想问什么？直接说", "aria-label": "消息内容" });
    const photo = el("input", { type: "file", accept: "image/*", class: "hidden" });
    const photoBtn = el("button", { type: "button", class: "icon", title: "发送图片", "aria-label": "发送图片", onclick: () => photo.click() }, "📷");
    const voiceBtn = el("button", { type: "button", class: "icon", title: "语音", "aria-label": "录语音" }, "🎤");
    const sendBtn = el("button", { type: "submit" }, "发送");
    const form = el("form", { class: "tgchat-input" }, photoBtn, voiceBtn, text, sendBtn, photo);
    const box = el("div", { class: "tgchat" }, presence, list, rateBox, recBar, form);
    root.replaceChildren(box);
    if (opts.presetText) text.value = opts.presetText;
    if (typeof MediaRecorder === "undefined" || !navigator.mediaDevices) voiceBtn.classList.add("hidden");

    function showPresence(p) {
      if (!p) return;
      presence.className = "tgchat-presence " + p.status;
      presence.querySelector(".text").textContent = (p.status === "online" ? "客服在线 · " : p.status === "away" ? "客服暂离 · " : "客服离线 · ") + p.text;
    }

    function mediaURL(url) {
      if (!st.media.has(url)) st.media.set(url, tg.api(key, "GET", url.replace(/^\/api\/v1/, "")).then((b) => URL.createObjectURL(b)));
      return st.media.get(url);
    }

    function renderMsg(m) {
      const cls = m.from === "me" ? "me" : m.from === "system" ? "sys" : "them";
      const b = el("div", { class: "tgchat-bubble" });
      if (m.kind === "image" && (m.media_url || m.local)) {
        const img = el("img", { alt: "图片" });
        if (m.local) img.src = m.local; else mediaURL(m.media_url).then((u) => { img.src = u; });
        b.appendChild(img);
      } else if (m.kind === "voice" && (m.media_url || m.local)) {
        const a = el("audio", { controls: true, preload: "none" });
        if (m.local) a.src = m.local; else mediaURL(m.media_url).then((u) => { a.src = u; });
        b.append("语音 " + Math.max(1, Math.round((m.duration_ms || 0) / 1000)) + "″", el("br"), a);
      } else {
        b.textContent = m.text || "";
      }
      let meta = "";
      if (m.from === "staff") meta = (m.staff_name ? "店员" + m.staff_name : "店员") + " · ";
      else if (m.from === "assistant") meta = "智能客服 · ";
      meta += m.created_at ? time(m.created_at) : "";
      if (m.from === "me") meta += " · " + (m.pending ? "发送中…" : m.error ? "发送失败：" + m.error : statusText[m.status] || "已发送");
      return el("li", { class: cls, "data-seq": m.seq || "" }, b, el("div", { class: "tgchat-meta" + (m.error || m.status === "failed" ? " failed" : "") }, meta));
    }

    function render(keepScroll) {
      const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
      const items = st.msgs.map(renderMsg);
      if (st.nextBefore) items.unshift(el("li", { class: "sys" }, el("button", { class: "plain tgchat-older", type: "button", onclick: older }, "查看更早的消息")));
      if (!st.msgs.length) items.push(el("li", { class: "sys" }, el("div", { class: "tgchat-bubble" }, "有问题随时问我们：装线、选竿、租还、押金都可以。")));
      list.replaceChildren(...items);
      if (!keepScroll || atBottom) list.scrollTop = list.scrollHeight;
      renderRating();
    }

    function renderRating() {
      const c = st.conv;
      if (!c || c.state !== "resolved") { rateBox.classList.add("hidden"); return; }
      rateBox.classList.remove("hidden");
      if (c.rating) { rateBox.replaceChildren("感谢评价：" + "★".repeat(c.rating) + "☆".repeat(5 - c.rating)); return; }
      const stars = [1, 2, 3, 4, 5].map((n) => el("button", { type: "button", "aria-label": n + " 星", "data-score": n, onclick: () => rate(n) }, "☆"));
      rateBox.replaceChildren(el("div", {}, "本次服务满意吗？"), el("div", { class: "tgchat-stars" }, stars));
    }

    async function rate(n) {
      try {
        const r = await api("POST", "/chat/rating", { score: n, conversation: st.conv.id });
        st.conv = r.conversation;
        renderRating();
      } catch (e) { tg.toast(e.message); }
    }

    async function load() {
      const r = await api("GET", "/chat");
      showPresence(r.presence);
      st.conv = r.conversation;
      st.msgs = r.messages || [];
      st.nextBefore = r.next_before || 0;
      render();
    }

    async function older() {
      if (!st.nextBefore || !st.conv) return;
      const r = await api("GET", "/chat?conversation=" + st.conv.id + "&before=" + st.nextBefore);
      st.msgs = (r.messages || []).concat(st.msgs);
      st.nextBefore = r.next_before || 0;
      render(true);
    }

    function merge(msgs) {
      for (const m of msgs) {
        if (st.conv && m.conversation_id !== st.conv.id) { load(); return; }
        const i = st.msgs.findIndex((x) => x.seq === m.seq && !x.pending);
        if (i >= 0) st.msgs[i] = m; else if (!st.msgs.some((x) => x.clientID && x.seq === m.seq)) st.msgs.push(m);
      }
      st.msgs.sort((a, b) => (a.seq || 1e9) - (b.seq || 1e9));
      render(true);
    }

    async function post(body, local) {
      const pending = Object.assign({ from: "me", pending: true, created_at: new Date().toISOString(), clientID: body.client_id || clientID() }, local);
      st.msgs.push(pending);
      render();
      try {
        const r = await api("POST", "/chat/messages", body);
        const m = r.message;
        Object.assign(pending, m, { pending: false });
        st.msgs = st.msgs.filter((x) => x === pending || x.seq !== m.seq);
        if (!st.conv || st.conv.id !== m.conversation_id) await load(); else render();
      } catch (e) {
        pending.pending = false; pending.error = e.message;
        render();
        tg.toast(e.message);
      }
    }

    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const t = text.value.trim();
      if (!t) return;
      text.value = "";
      const id = clientID();
      post({ text: t, client_id: id }, { kind: "text", text: t, clientID: id });
    });
    text.addEventListener("keydown", (e) => { if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); form.requestSubmit(); } });
    photo.addEventListener("change", () => {
      const f = photo.files[0];
      photo.value = "";
      if (!f) return;
      if (f.size > 10 * 1024 * 1024) { tg.toast("图片太大，最大 10 MB"); return; }
      const fd = new FormData();
      const id = clientID();
      fd.append("file", f); fd.append("client_id", id);
      post(fd, { kind: "image", local: URL.createObjectURL(f), clientID: id });
    });

    // Voice notes: tap to start, tap again to send (at most 60 s).
    voiceBtn.addEventListener("click", async () => {
      if (st.rec) { st.rec.stop(); return; }
      let stream;
      try { stream = await navigator.mediaDevices.getUserMedia({ audio: true }); } catch (e) { tg.toast("无法使用麦克风：" + (e.message || e.name)); return; }
      const type = ["audio/webm;codecs=opus", "audio/webm", "audio/mp4", "audio/ogg"].find((t) => MediaRecorder.isTypeSupported && MediaRecorder.isTypeSupported(t)) || "";
      const rec = new MediaRecorder(stream, type ? { mimeType: type } : undefined);
      const chunks = [];
      const started = Date.now();
      st.rec = rec;
      voiceBtn.classList.add("rec"); voiceBtn.textContent = "■";
      recBar.classList.remove("hidden");
      const tick = setInterval(() => { recBar.textContent = "正在录音 " + Math.round((Date.now() - started) / 1000) + "″ · 再点 ■ 发送"; }, 250);
      const limit = setTimeout(() => rec.state !== "inactive" && rec.stop(), MAX_VOICE_MS);
      rec.ondataavailable = (e) => { if (e.data && e.data.size) chunks.push(e.data); };
      rec.onstop = () => {
        clearInterval(tick); clearTimeout(limit);
        stream.getTracks().forEach((t) => t.stop());
        st.rec = null;
        voiceBtn.classList.remove("rec"); voiceBtn.textContent = "🎤";
        recBar.classList.add("hidden");
        const ms = Math.min(Date.now() - started, MAX_VOICE_MS);
        const blob = new Blob(chunks, { type: rec.mimeType || type || "audio/webm" });
        if (ms < 800 || !blob.size) { tg.toast("说话时间太短"); return; }
        const ext = (blob.type.includes("mp4") ? "m4a" : blob.type.includes("ogg") ? "ogg" : "webm");
        const fd = new FormData();
        const id = clientID();
        fd.append("file", new File([blob], "voice." + ext, { type: blob.type.split(";")[0] }));
        fd.append("duration_ms", String(ms)); fd.append("client_id", id);
        post(fd, { kind: "voice", local: URL.createObjectURL(blob), duration_ms: ms, clientID: id });
      };
      rec.start(250);
    });

    // Live updates.
    function connect() {
      if (st.closed) return;
      const s = tg.session(key);
      if (!s || !s.access_token) return;
      const ws = new WebSocket(tg.wsURL("access=" + encodeURIComponent(s.access_token)));
      st.ws = ws;
      ws.onmessage = (e) => {
        let ev;
        try { ev = JSON.parse(e.data); } catch (err) { return; }
        if (ev.type === "presence") showPresence(ev.presence);
        else if (ev.type === "message") merge(ev.messages || []);
        else if (ev.type === "conversation") { if (st.conv && ev.conversation.id === st.conv.id) { st.conv = ev.conversation; renderRating(); } else load(); }
        else if (ev.type === "delivery") { clearTimeout(st.reload); st.reload = setTimeout(() => load().catch(() => {}), 400); }
      };
      ws.onclose = () => {
        if (st.closed || st.ws !== ws) return;
        st.retry = setTimeout(async () => {
          try { await load(); } catch (e) { /* offline: try again */ }
          connect();
        }, 2000);
      };
    }

    const handle = {
      destroy() {
        st.closed = true;
        clearTimeout(st.retry);
        if (st.rec && st.rec.state !== "inactive") st.rec.stop();
        if (st.ws) st.ws.close();
        root._tgchat = null;
      },
      send(t) { text.value = t; form.requestSubmit(); },
    };
    root._tgchat = handle;
    load().then(connect, (e) => { presence.querySelector(".text").textContent = e.message; connect(); });
    return handle;
  }

  window.TGChat = { mount };
})();
