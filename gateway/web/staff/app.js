// Staff console: conversations with unread counts and live updates over
// /ws, the transcript with photos and voice notes, replies (text, photo),
// take / close / transfer, tags, internal notes and the duty switch. It
// opens inside WeCom with ?code= (WeCom OAuth), which logs the staff
// member in; a heartbeat every 20 s keeps them "online" for customers.
(function () {
  "use strict";
  const K = "staff";
  const $ = (s) => document.querySelector(s);
  const el = tg.el;
  const api = (method, path, body) => tg.api(K, method, path, body);
  const st = {
    me: "", name: "", convs: new Map(), open: null, openConv: null, msgs: [], staff: [],
    filter: "mine", ws: null, wsUp: false, heartbeat: null, reloadTimer: null,
  };

  const time = (iso) => new Date(iso).toLocaleString("zh-CN", { timeZone: "Asia/Shanghai", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" });
  const staffName = (id) => { const s = st.staff.find((x) => x.userid === id); return s ? s.name || id : id; };
  const who = (m) => {
    if (m.direction === "note") return "备注 · " + staffName((m.author || "").replace(/^staff:/, ""));
    if (m.direction === "in") return "顾客";
    if (m.author === "system") return "自动回复";
    if (m.author === "assistant") return "智能客服";
    return staffName((m.author || "").replace(/^staff:/, ""));
  };
  const preview = (m) => {
    if (!m) return "";
    if (m.kind === "image") return "[图片]";
    if (m.kind === "voice") return "[语音" + (m.duration_ms ? " " + Math.round(m.duration_ms / 1000) + "秒" : "") + "]";
    return m.text || "";
  };
  const statusText = { stored: "待发送", sent: "已送达", held: "等待顾客再发消息", notified: "已发订阅提醒", failed: "发送失败" };

  async function login() {
    const q = new URLSearchParams(location.search);
    const code = q.get("code");
    if (code) {
      try {
        const r = await tg.api(K, "POST", "/auth/wecom", { code });
        tg.saveSession(K, r.tokens);
      } catch (e) {
        $("#login-why").textContent = e.message;
        $("#login").classList.remove("hidden");
        return false;
      } finally {
        history.replaceState(null, "", location.pathname);
      }
    }
    if (!tg.session(K)) {
      // Inside WeCom without a session: go through WeCom's OAuth, which
      // comes back here with ?code=.
      // Elsewhere (a desktop browser; the demo's simulator) the button
      // takes the same way.
      const oauth = async () => {
        try { const r = await tg.api(K, "GET", "/staff/login?redirect=" + encodeURIComponent(location.pathname)); location.replace(r.url); return true; } catch (e) { $("#login-why").textContent = e.message; return false; }
      };
      if (/wxwork/i.test(navigator.userAgent) && !code && await oauth()) return false;
      $("#login-oauth").onclick = oauth;
      $("#login").classList.remove("hidden");
      return false;
    }
    try {
      const me = await api("GET", "/staff/me");
      if (me.staff) { st.me = me.staff.wecom_userid; st.name = me.staff.name || st.me; } else { st.me = me.owner; st.name = "店主 " + me.owner; }
    } catch (e) {
      $("#login-why").textContent = e.message;
      $("#login").classList.remove("hidden");
      return false;
    }
    return true;
  }

  async function loadPresence() {
    try {
      const p = await api("GET", "/staff/presence");
      applyPresence(p.presence, p.staff);
    } catch (e) { /* the list still works */ }
  }

  function applyPresence(p, staff) {
    if (staff) {
      st.staff = staff;
      const mine = staff.find((s) => s.userid === st.me);
      if (mine) { $("#duty").checked = mine.on_duty; $("#duty-label").textContent = mine.on_duty ? "在班" : "已下班"; }
      const sel = $("#transfer-to");
      sel.replaceChildren(el("option", { value: "" }, "转给…"));
      staff.filter((s) => s.userid !== st.me).forEach((s) => sel.appendChild(el("option", { value: s.userid }, (s.name || s.userid) + "（" + ({ online: "在线", away: "离开", offline: "离线" }[s.status] || s.status) + "）")));
    }
    if (p) $("#presence").textContent = "顾客看到：" + p.text + (p.staff_online ? "（" + p.staff_online + " 人在线）" : "");
  }

  async function loadList() {
    const r = await api("GET", "/staff/conversations?live=1&limit=100");
    st.convs.clear();
    r.conversations.forEach((c) => st.convs.set(c.id, c));
    // The open conversation is being read, whatever the list was told
    // before the last read was recorded.
    if (st.open && st.convs.has(st.open)) st.convs.get(st.open).unread = 0;
    renderList();
  }

  function visible(c) {
    if (c.state === "resolved") return c.id === st.open;
    if (st.filter === "mine") return c.assignee === st.me;
    if (st.filter === "queue") return !c.assignee;
    return true;
  }

  function renderList() {
    const ul = $("#convs");
    const list = [...st.convs.values()].filter(visible).sort((a, b) => b.id - a.id);
    ul.replaceChildren(...list.map((c) => el("li", { class: c.id === st.open ? "open" : "", "data-id": c.id, onclick: () => openConv(c.id) },
      el("div", { class: "grow" },
        el("div", {}, el("span", { class: "who" }, c.customer_label || "顾客"), " ", el("span", { class: "muted" }, "#" + c.code + (c.assignee && c.assignee !== st.me ? " · " + staffName(c.assignee) : ""))),
        el("div", { class: "last" }, preview(c.last)),
        c.tags && c.tags.length ? el("div", {}, c.tags.map((t) => el("span", { class: "tag" }, t))) : null),
      c.unread > 0 ? el("span", { class: "badge" }, String(c.unread)) : null)));
    $("#convs-empty").classList.toggle("hidden", list.length > 0);
  }

  async function openConv(id) {
    st.open = id;
    $("#conv-pane").classList.remove("hidden");
    if (window.innerWidth < 820) $("#list-pane").classList.add("hidden");
    await loadTranscript();
    renderList();
  }

  async function loadTranscript() {
    if (!st.open) return;
    const r = await api("GET", "/staff/conversations/" + st.open);
    st.openConv = r.conversation;
    st.msgs = r.messages;
    renderConv();
    markRead();
  }

  async function markRead() {
    const c = st.convs.get(st.open);
    const last = st.msgs.length ? st.msgs[st.msgs.length - 1].seq : 0;
    if (c) c.unread = 0;
    renderList();
    try { await api("POST", "/staff/conversations/" + st.open + "/read", { seq: last }); } catch (e) { /* next time */ }
  }

  function renderConv() {
    const c = st.openConv;
    $("#conv-title").textContent = (c.customer_label || "顾客") + " · #" + c.code;
    const state = { open: "排队中", assigned: "接待人：" + staffName(c.assignee), resolved: "已结束" + (c.rating ? " · 评分 " + c.rating : "") }[c.state];
    $("#conv-meta").textContent = state + (c.window_open ? "" : " · 已超过微信48小时回复期");
    $("#conv-tags").replaceChildren(...(c.tags || []).map((t) => el("span", { class: "tag" }, t)));
    $("#act-take").classList.toggle("hidden", c.state === "resolved" || c.assignee === st.me);
    $("#act-close").classList.toggle("hidden", c.state === "resolved");
    $("#transfer-to").classList.toggle("hidden", c.state === "resolved");
    const ol = $("#msgs");
    ol.replaceChildren(...st.msgs.map(renderMsg));
    ol.scrollTop = ol.scrollHeight;
  }

  function renderMsg(m) {
    const cls = m.direction === "in" ? "in" : m.direction === "note" ? "note" : "out";
    const bubble = el("div", { class: "bubble" });
    if (m.kind === "image" && m.media_url) {
      const img = el("img", { alt: "图片" });
      loadMedia(m.media_url).then((u) => { img.src = u; });
      bubble.appendChild(img);
    } else if (m.kind === "voice" && m.media_url) {
      const audio = el("audio", { controls: true, preload: "none" });
      loadMedia(m.media_url).then((u) => { audio.src = u; });
      bubble.append("语音 " + Math.round((m.duration_ms || 0) / 1000) + " 秒", el("br"), audio);
      if ((m.media_type || "").includes("amr")) bubble.append(el("div", { class: "muted" }, "AMR 语音：浏览器可能无法播放，可在企业微信中收听"));
    } else {
      bubble.textContent = m.kind === "page" ? "[小程序卡片] " + m.text : m.text;
    }
    const d = m.direction === "in" ? m.to_staff : m.to_customer;
    const status = d ? el("span", { class: d.status === "failed" ? "failed" : "" }, " · " + (statusText[d.status] || d.status) + (d.status === "failed" && d.reason ? "：" + d.reason : "")) : null;
    return el("li", { class: cls, "data-seq": m.seq }, bubble, el("div", { class: "meta" }, who(m) + " · " + time(m.created_at), status));
  }

  const mediaCache = new Map();
  async function loadMedia(url) {
    if (!mediaCache.has(url)) mediaCache.set(url, tg.api(K, "GET", url.replace(/^\/api\/v1/, "")).then((b) => URL.createObjectURL(b)));
    return mediaCache.get(url);
  }

  // The live channel.
  async function connect() {
    const s = tg.session(K);
    if (!s) return;
    const ws = new WebSocket(tg.wsURL("access=" + encodeURIComponent(s.access_token)));
    st.ws = ws;
    ws.onopen = () => { st.wsUp = true; $("#conn").classList.add("on"); ws.send(JSON.stringify({ type: "heartbeat" })); };
    ws.onmessage = (e) => { try { onEvent(JSON.parse(e.data)); } catch (err) { /* ignore a bad frame */ } };
    ws.onclose = async () => {
      st.wsUp = false;
      $("#conn").classList.remove("on");
      if (st.ws !== ws) return;
      setTimeout(async () => {
        try { await api("GET", "/staff/me"); await loadList(); if (st.open) await loadTranscript(); } catch (e) { /* offline: retry */ }
        connect();
      }, 2000);
    };
  }

  function onEvent(ev) {
    switch (ev.type) {
      case "conversation": {
        const c = ev.conversation;
        const known = st.convs.get(c.id);
        if (!known) { loadList(); return; }
        Object.assign(known, { state: c.state, assignee: c.assignee || "", tags: c.tags || [], customer_label: c.customer_label });
        if (st.openConv && st.openConv.id === c.id) Object.assign(st.openConv, { state: c.state, assignee: c.assignee || "", tags: c.tags || [] }) && renderConv();
        renderList();
        break;
      }
      case "message": {
        const id = ev.conversation_id;
        const c = st.convs.get(id);
        if (!c) { loadList(); return; }
        const fresh = ev.messages.filter((m) => m.direction !== "note");
        if (fresh.length) c.last = fresh[fresh.length - 1];
        if (id === st.open) {
          const have = st.msgs.length ? st.msgs[st.msgs.length - 1].seq : 0;
          const add = ev.messages.filter((m) => m.seq > have);
          if (add.length && add[0].seq !== have + 1) { loadTranscript(); return; }
          st.msgs.push(...add);
          renderConv();
          markRead();
        } else {
          c.unread = (c.unread || 0) + ev.messages.filter((m) => m.direction === "in").length;
          renderList();
        }
        break;
      }
      case "delivery":
        if (ev.conversation_id === st.open) { clearTimeout(st.reloadTimer); st.reloadTimer = setTimeout(loadTranscript, 300); }
        break;
      case "presence":
        applyPresence(ev.presence, ev.staff);
        break;
    }
  }

  // Actions.
  async function act(path, body, done) {
    try {
      const r = await api("POST", "/staff/conversations/" + st.open + path, body);
      if (r && r.conversation) { st.openConv = Object.assign(st.openConv || {}, r.conversation); const c = st.convs.get(r.conversation.id); if (c) Object.assign(c, r.conversation); }
      if (done) tg.toast(done);
      await loadTranscript();
      renderList();
    } catch (e) { tg.toast(e.message); }
  }

  let sending = false;
  async function send(ev) {
    ev.preventDefault();
    const text = $("#text").value.trim();
    if (!text || !st.open || sending) return;
    sending = true;
    $("#send").disabled = true;
    const clientID = "s" + Date.now().toString(36) + Math.random().toString(36).slice(2, 8);
    try {
      const r = await api("POST", "/staff/conversations/" + st.open + "/messages", { text, client_id: clientID });
      $("#text").value = "";
      if (r.conversation && r.conversation.id !== st.open) { await loadList(); await openConv(r.conversation.id); } else await loadTranscript();
    } catch (e) { tg.toast(e.message); } finally { sending = false; $("#send").disabled = false; }
  }

  async function sendPhoto() {
    const f = $("#photo").files[0];
    $("#photo").value = "";
    if (!f || !st.open) return;
    const fd = new FormData();
    fd.append("file", f);
    fd.append("client_id", "p" + Date.now().toString(36));
    try { await api("POST", "/staff/conversations/" + st.open + "/messages", fd); await loadTranscript(); } catch (e) { tg.toast(e.message); }
  }

  function bind() {
    document.querySelectorAll(".filters button").forEach((b) => b.addEventListener("click", () => {
      st.filter = b.dataset.filter;
      document.querySelectorAll(".filters button").forEach((x) => x.classList.toggle("on", x === b));
      renderList();
    }));
    $("#back").addEventListener("click", () => { $("#list-pane").classList.remove("hidden"); $("#conv-pane").classList.add("hidden"); st.open = null; renderList(); });
    $("#reply").addEventListener("submit", send);
    $("#text").addEventListener("keydown", (e) => { if (e.key === "Enter" && !e.shiftKey && !e.isComposing) send(e); });
    $("#photo").addEventListener("change", sendPhoto);
    $("#act-take").addEventListener("click", () => act("/take", undefined, "已接待"));
    $("#act-close").addEventListener("click", () => { if (confirm("结束会话并请顾客评分？")) act("/close", undefined, "已结束"); });
    $("#transfer-to").addEventListener("change", (e) => { const to = e.target.value; e.target.value = ""; if (to) act("/transfer", { to }, "已转给" + staffName(to)); });
    $("#act-tags").addEventListener("click", () => {
      const cur = (st.openConv && st.openConv.tags) || [];
      const v = prompt("标签（空格分隔）", cur.join(" "));
      if (v !== null) act("/tags", { tags: v.split(/[\s,，、]+/).filter(Boolean) }, "标签已保存");
    });
    $("#act-note").addEventListener("click", () => { const v = prompt("内部备注（顾客看不到）"); if (v && v.trim()) act("/notes", { text: v.trim() }, "备注已记下"); });
    $("#duty").addEventListener("change", async (e) => {
      try {
        const r = await api("POST", "/staff/duty", { on: e.target.checked });
        $("#duty-label").textContent = r.on_duty ? "在班" : "已下班";
        tg.toast(r.on_duty ? "已上班" + (r.given.length ? "，分配了 " + r.given.map((c) => "#" + c).join("、") : "") : "已下班");
        await loadList();
      } catch (err) { e.target.checked = !e.target.checked; tg.toast(err.message); }
    });
  }

  async function boot() {
    if (!(await login())) return;
    $("#me").textContent = st.name;
    $("#app").classList.remove("hidden");
    bind();
    await loadPresence();
    await loadList();
    connect();
    st.heartbeat = setInterval(() => { if (st.ws && st.wsUp) st.ws.send(JSON.stringify({ type: "heartbeat" })); }, 20000);
  }

  boot();
})();
