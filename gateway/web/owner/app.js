// Owner console: KPIs with SVG charts, feature flags, quick help and the
// knowledge base. Plain JS on tg.js; every text from the server is set as
// text, never as HTML.
(function () {
  "use strict";
  const KEY = "owner";
  const $ = (id) => document.getElementById(id);
  const el = (...a) => tg.el(...a);
  const api = (method, path, body) => tg.api(KEY, method, path, body);
  const fail = (e) => tg.toast((e && e.message) || "出错了");

  // ---- SVG ----
  const NS = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, ...kids) {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) e.setAttribute(k, String(v));
    for (const c of kids) if (c) e.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    return e;
  }
  const COLORS = { customer: "#4e8cff", staff: "#07c160", assistant: "#a66cff", system: "#c0c0c0" };
  const STARS = ["#fa5151", "#ff9a3c", "#ffd43b", "#94d82d", "#07c160"];

  // bars draws vertical bars; series is [{key, color, values}] stacked.
  function bars(labels, series, opts) {
    opts = opts || {};
    const W = 360, H = 150, top = 14, bottom = 22, left = 26;
    const n = labels.length, bw = (W - left) / Math.max(n, 1);
    const totals = labels.map((_, i) => series.reduce((s, se) => s + (se.values[i] || 0), 0));
    const maxV = Math.max(1, ...totals);
    const g = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": opts.title || "" });
    g.appendChild(svg("line", { x1: left, y1: H - bottom, x2: W, y2: H - bottom, stroke: "#ddd" }));
    g.appendChild(svg("text", { x: 0, y: top + 4 }, String(maxV)));
    g.appendChild(svg("text", { x: 0, y: H - bottom }, "0"));
    labels.forEach((lab, i) => {
      let y = H - bottom;
      const x = left + i * bw + bw * 0.15, w = bw * 0.7;
      series.forEach((se) => {
        const v = se.values[i] || 0;
        if (!v) return;
        const h = (v / maxV) * (H - top - bottom);
        y -= h;
        const r = svg("rect", { x: x.toFixed(1), y: y.toFixed(1), width: w.toFixed(1), height: h.toFixed(1), fill: se.color, rx: 1.5, class: "bar" });
        r.appendChild(svg("title", {}, `${lab} ${se.name || ""} ${v}`));
        g.appendChild(r);
      });
      if (totals[i] && n <= 31) g.appendChild(svg("text", { x: (x + w / 2).toFixed(1), y: (y - 2).toFixed(1), "text-anchor": "middle" }, String(totals[i])));
      const every = Math.ceil(n / 12);
      if (i % every === 0) g.appendChild(svg("text", { x: (x + w / 2).toFixed(1), y: H - 8, "text-anchor": "middle" }, lab));
    });
    return g;
  }

  // donut draws a share (0–1) as a ring.
  function donut(share, label) {
    const r = 42, c = 2 * Math.PI * r, on = Math.max(0, Math.min(1, share || 0)) * c;
    return svg("svg", { viewBox: "0 0 120 120", class: "chart donut", role: "img", "aria-label": label },
      svg("circle", { cx: 60, cy: 60, r, fill: "none", stroke: "#eee", "stroke-width": 14 }),
      svg("circle", { cx: 60, cy: 60, r, fill: "none", stroke: "#07c160", "stroke-width": 14, "stroke-dasharray": `${on.toFixed(2)} ${c.toFixed(2)}`,
        transform: "rotate(-90 60 60)", class: "arc" }),
      svg("text", { x: 60, y: 58, "text-anchor": "middle", style: "font-size:18px;fill:#191919;font-weight:600" }, pct(share)),
      svg("text", { x: 60, y: 76, "text-anchor": "middle" }, label));
  }

  // dist draws a 1–5 star distribution as one stacked bar with a legend.
  function dist(counts) {
    const total = counts.reduce((a, b) => a + b, 0);
    const g = svg("svg", { viewBox: "0 0 360 26", class: "chart dist", role: "img", "aria-label": "评分分布" });
    g.appendChild(svg("rect", { x: 0, y: 3, width: 360, height: 20, fill: "#f0f0f0", rx: 4 }));
    let x = 0;
    counts.forEach((n, i) => {
      if (!n) return;
      const w = (n / total) * 360;
      const r = svg("rect", { x: x.toFixed(1), y: 3, width: w.toFixed(1), height: 20, fill: STARS[i], class: "bar" });
      r.appendChild(svg("title", {}, `${i + 1} 星：${n}`));
      g.appendChild(r);
      if (w > 18) g.appendChild(svg("text", { x: (x + w / 2).toFixed(1), y: 17, "text-anchor": "middle", style: "fill:#fff" }, String(n)));
      x += w;
    });
    return g;
  }

  function legend(items) {
    return el("div", { class: "legend" }, items.map(([name, color]) => el("span", {}, el("i", { style: "background:" + color }), name)));
  }

  // ---- formatting ----
  function pct(v) { return ((v || 0) * 100).toFixed(1) + "%"; }
  function dur(s) {
    s = Math.round(s || 0);
    if (s < 60) return s + " 秒";
    if (s < 3600) return Math.floor(s / 60) + " 分 " + (s % 60) + " 秒";
    return Math.floor(s / 3600) + " 小时 " + Math.round((s % 3600) / 60) + " 分";
  }
  function day(d) { return d.toISOString().slice(0, 10); }
  function shanghaiToday() {
    // YYYY-MM-DD in Asia/Shanghai, whatever the phone's zone.
    return new Date(Date.now() + 8 * 3600e3).toISOString().slice(0, 10);
  }
  function addDays(s, n) { const d = new Date(s + "T00:00:00Z"); d.setUTCDate(d.getUTCDate() + n); return day(d); }
  function when(t) { return t ? new Date(t).toLocaleString("zh-CN", { timeZone: "Asia/Shanghai", hour12: false }) : ""; }
  function figure(id, value, label) { return el("div", { class: "figure" }, el("b", { id }, String(value)), el("span", {}, label)); }

  // ---- login ----
  function showLogin() {
    $("login-view").classList.remove("hidden");
    ["app-view", "tabs", "logout", "pw-open"].forEach((id) => $(id).classList.add("hidden"));
  }
  function showApp() {
    $("login-view").classList.add("hidden");
    ["app-view", "tabs", "logout", "pw-open"].forEach((id) => $(id).classList.remove("hidden"));
    $("who").textContent = "店主";
    openTab("kpi");
  }
  $("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("login-error").textContent = "";
    try {
      const out = await api("POST", "/auth/owner", { username: $("username").value.trim(), password: $("password").value });
      tg.saveSession(KEY, out.tokens);
      $("password").value = "";
      showApp();
    } catch (e) { $("login-error").textContent = e.message; }
  });
  $("logout").addEventListener("click", async () => {
    try { await api("POST", "/auth/logout"); } catch (e) { /* the session ends here anyway */ }
    tg.clearSession(KEY);
    showLogin();
  });

  // Password: a wrong current password is the form's error, not a logout.
  $("pw-open").addEventListener("click", () => { $("pw-form").classList.toggle("hidden"); $("pw-error").textContent = ""; });
  $("pw-cancel").addEventListener("click", () => $("pw-form").classList.add("hidden"));
  $("pw-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("pw-error").textContent = "";
    if ($("pw-new").value !== $("pw-again").value) { $("pw-error").textContent = "两次输入的新密码不一样"; return; }
    try {
      await api("POST", "/owner/password", { current: $("pw-current").value, new: $("pw-new").value });
      ["pw-current", "pw-new", "pw-again"].forEach((id) => { $(id).value = ""; });
      $("pw-form").classList.add("hidden");
      tg.toast("密码已修改");
    } catch (e) {
      if (!tg.session(KEY)) { showLogin(); return; } // the session itself ended
      $("pw-error").textContent = e.message;
    }
  });

  // guarded runs a loader and sends the owner back to login when the
  // session is gone.
  async function guarded(fn) {
    try { await fn(); } catch (e) {
      if (e.status === 401) { tg.clearSession(KEY); showLogin(); return; }
      fail(e);
    }
  }

  // ---- tabs ----
  const loaders = { kpi: loadKPIs, flags: loadFlags, quick: loadQuick, kb: loadKB };
  function openTab(name) {
    document.querySelectorAll("section.tab").forEach((s) => s.classList.toggle("hidden", s.id !== "tab-" + name));
    document.querySelectorAll("#tabs button").forEach((b) => b.classList.toggle("on", b.dataset.tab === name));
    guarded(loaders[name]);
  }
  document.querySelectorAll("#tabs button").forEach((b) => b.addEventListener("click", () => openTab(b.dataset.tab)));

  // ---- KPIs ----
  function setPreset(days) {
    const today = shanghaiToday();
    $("kpi-to").value = today;
    $("kpi-from").value = addDays(today, 1 - days);
    document.querySelectorAll(".preset").forEach((b) => b.classList.toggle("on", Number(b.dataset.days) === days));
  }
  document.querySelectorAll(".preset").forEach((b) => b.addEventListener("click", () => { setPreset(Number(b.dataset.days)); guarded(loadKPIs); }));
  $("kpi-load").addEventListener("click", () => { document.querySelectorAll(".preset").forEach((b) => b.classList.remove("on")); guarded(loadKPIs); });
  function periodQuery() {
    if (!$("kpi-from").value) setPreset(7);
    // The picker's "to" is the last day shown; the API's is the day after.
    return "from=" + $("kpi-from").value + "&to=" + addDays($("kpi-to").value, 1);
  }
  $("kpi-csv").addEventListener("click", () => guarded(async () => {
    const blob = await api("GET", "/owner/kpis.csv?" + periodQuery());
    const a = el("a", { href: URL.createObjectURL(blob), download: `tacklegate-kpi-${$("kpi-from").value}-${$("kpi-to").value}.csv` });
    document.body.appendChild(a); a.click(); a.remove();
  }));

  let lastKPIs = null;
  async function loadKPIs() {
    const k = await api("GET", "/owner/kpis?" + periodQuery());
    lastKPIs = k;
    renderKPIs(k);
  }

  function renderKPIs(k) {
    const body = $("kpi-body");
    body.textContent = "";
    const c = k.calls, ch = k.conversations, a = k.assistant, s = k.satisfaction;

    const hours = Array.from({ length: 24 }, (_, i) => String(i));
    body.appendChild(el("div", { class: "card", id: "card-calls" },
      el("h3", {}, "视频 / 语音求助"),
      el("div", { class: "donut-row" }, donut(c.connect_rate, "接通率"),
        el("div", { class: "figures grow" },
          figure("kpi-started", c.started, "发起"), figure("kpi-answered", c.answered, "接通"), figure("kpi-missed", c.missed, "未接"),
          figure("kpi-connect", pct(c.connect_rate), "接通率"), figure("kpi-avg-dur", dur(c.avg_duration_seconds), "平均时长"),
          figure("kpi-p90-dur", dur(c.p90_duration_seconds), "P90 时长"))),
      el("p", { class: "muted" }, "未接来电（按开始时间，北京时间）"),
      bars(hours, [{ name: "未接", color: "#fa5151", values: c.missed_by_hour }], { title: "未接来电按小时" })));

    const ratingCard = el("div", { class: "card", id: "card-ratings" }, el("h3", {}, "满意度"));
    [["全部", s.all, "kpi-rating-all"], ["会话", s.conversations, "kpi-rating-conv"], ["通话", s.calls, "kpi-rating-call"]].forEach(([name, r, id]) => {
      ratingCard.appendChild(el("div", { class: "row" }, el("span", { class: "grow" }, name + "：平均 ", el("b", { id }, r.count ? r.average.toFixed(2) : "—"), ` 星（${r.count} 个评分）`)));
      if (r.count) ratingCard.appendChild(dist(r.distribution));
    });
    ratingCard.appendChild(legend(STARS.map((col, i) => [i + 1 + " 星", col])));
    body.appendChild(ratingCard);

    const perDay = ch.messages_per_day || [];
    body.appendChild(el("div", { class: "card", id: "card-chat" },
      el("h3", {}, "会话"),
      el("div", { class: "figures" },
        figure("kpi-opened", ch.opened, "新会话"), figure("kpi-open", ch.by_state.open || 0, "排队中"),
        figure("kpi-assigned", ch.by_state.assigned || 0, "处理中"), figure("kpi-resolved", ch.by_state.resolved || 0, "已解决"),
        figure("kpi-frt", dur(ch.avg_first_response_seconds), "平均首次响应"), figure("kpi-frt90", dur(ch.p90_first_response_seconds), "P90 首次响应"),
        figure("kpi-messages", ch.messages, "消息")),
      el("p", { class: "muted" }, "每日消息"),
      bars(perDay.map((d) => d.day.slice(5)), ["customer", "staff", "assistant", "system"].map((key) => ({
        name: { customer: "顾客", staff: "店员", assistant: "AI", system: "系统" }[key], color: COLORS[key], values: perDay.map((d) => d[key]) })), { title: "每日消息" }),
      legend([["顾客", COLORS.customer], ["店员", COLORS.staff], ["AI 客服", COLORS.assistant], ["系统", COLORS.system]])));

    const top = el("ol", { class: "top", id: "kpi-top-unresolved" });
    (a.top_unresolved || []).forEach((q) => top.appendChild(el("li", {},
      el("span", {}, q.question), el("span", { class: "muted" }, ` ×${q.count}` + (q.variants && q.variants.length ? "（也问：" + q.variants.join("；") + "）" : "")), " ",
      el("button", { type: "button", class: "plain small", onclick: () => { openTab("kb"); newKB(q.question); } }, "加入知识库"))));
    body.appendChild(el("div", { class: "card", id: "card-assistant" },
      el("h3", {}, "AI 客服"),
      el("div", { class: "figures" },
        figure("kpi-turns", a.turns, "回合"), figure("kpi-handoff", a.handed_off, "转人工"),
        figure("kpi-unresolved", pct(a.unresolved_share), "未解决占比"), figure("kpi-pending", a.pending, "无反馈")),
      el("p", { class: "muted" }, "没解决的问题（相似问法合并），补进知识库："),
      (a.top_unresolved || []).length ? top : el("p", { class: "muted" }, "暂无")));

    const r = k.rental;
    const yuan = tg.yuan;
    const rows = [["订单", "orders", String], ["收入", "revenue", yuan], ["押金", "deposits", yuan], ["已退押金", "deposits_refunded", yuan],
      ["有损坏", "damaged", String], ["损坏费", "damage_fees", yuan], ["有争议", "disputed", String]];
    body.appendChild(el("div", { class: "card", id: "card-rental" },
      el("h3", {}, "租赁结果（按付款时间）"),
      el("table", { class: "grid" },
        el("tr", {}, el("th", {}, ""), el("th", {}, "有视频验货"), el("th", {}, "无视频验货"), el("th", {}, "合计")),
        rows.map(([name, key, f]) => el("tr", {}, el("td", {}, name),
          el("td", { id: "kpi-" + key + "-with" }, f(r.with_video[key])), el("td", { id: "kpi-" + key + "-without" }, f(r.without_video[key])),
          el("td", { id: "kpi-" + key + "-all" }, f(r.all[key])))))));

    const qh = el("table", { class: "grid", id: "kpi-quickhelp" }, el("tr", {}, el("th", {}, "快捷求助"), el("th", {}, "本期使用"), el("th", {}, "累计")));
    (k.quick_help || []).forEach((q) => qh.appendChild(el("tr", {}, el("td", {}, (iconOf(q.icon) + " " + q.title).trim()), el("td", {}, String(q.uses)), el("td", {}, String(q.total)))));
    body.appendChild(el("div", { class: "card" }, el("h3", {}, "快捷求助使用"), qh));
  }

  // ---- feature flags ----
  const FLAG_NAMES = { video_help: "视频求助", assistant: "AI 客服", quick_help: "快捷求助", in_app_chat: "小程序内聊天" };
  const KPI_NAMES = { call_connect_rate: "未接通率（通话）", assistant_unresolved: "AI 未解决率", low_rating: "差评率（1–2 星）", "": "不设护栏" };
  let flagKPIs = [], memberTiers = [];
  async function loadFlags() {
    const out = await api("GET", "/owner/features");
    flagKPIs = out.kpis || [];
    memberTiers = out.tiers || [];
    const box = $("flags");
    box.textContent = "";
    out.flags.forEach((f) => box.appendChild(flagCard(f)));
    auditBefore = 0;
    $("audit").textContent = "";
    await loadAudit();
  }

  function listText(list) { return (list || []).map((e) => e.entry).join("\n"); }
  function lines(s) { return s.split(/[\n,，]/).map((x) => x.trim()).filter(Boolean); }

  function flagCard(f) {
    const k = f.key;
    const enabled = el("input", { type: "checkbox", id: "en-" + k, checked: f.enabled });
    const out = el("output", { id: "pctv-" + k }, f.percent + "%");
    const slider = el("input", { type: "range", min: 0, max: 100, step: 1, value: f.percent, id: "pct-" + k, "aria-label": "灰度比例",
      oninput: (e) => { out.textContent = e.target.value + "%"; } });
    const tiers = el("input", { id: "tiers-" + k, value: (f.tiers || []).join(", "), placeholder: "留空 = 所有等级；如 gold, silver" });
    const allow = el("textarea", { id: "allow-" + k, rows: 2, placeholder: "会员号 / 会员编号 / staff:企业微信账号，每行一个" });
    allow.value = listText(f.allow);
    const deny = el("textarea", { id: "deny-" + k, rows: 2 });
    deny.value = listText(f.deny);
    const kpi = el("select", { id: "gkpi-" + k }, ["", ...flagKPIs].map((x) => el("option", { value: x, selected: x === f.kpi }, KPI_NAMES[x] || x)));
    const minS = el("input", { type: "number", min: 1, id: "min-" + k, value: f.min_sample });
    const thr = el("input", { type: "number", min: 1, max: 99, id: "thr-" + k, value: Math.round(f.threshold * 100) });
    const win = el("input", { type: "number", min: 1, id: "win-" + k, value: f.window_hours });
    const reason = el("input", { id: "reason-" + k, placeholder: "变更原因（记入审计，可不填）" });
    async function save(extra) {
      const body = Object.assign({
        version: f.version, enabled: enabled.checked, percent: Number(slider.value), tiers: lines(tiers.value),
        allow: lines(allow.value), deny: lines(deny.value), kpi: kpi.value, min_sample: Number(minS.value),
        threshold: Number(thr.value) / 100, window_hours: Number(win.value), reason: reason.value.trim(),
      }, extra || {});
      await guarded(async () => {
        const res = await api("PUT", "/owner/features/" + encodeURIComponent(k), body);
        tg.toast("已保存：" + (FLAG_NAMES[k] || k) + " " + res.flag.percent + "%");
        await loadFlags();
      });
    }
    const card = el("div", { class: "card flag", id: "flag-" + k },
      el("h3", {}, el("span", { class: "grow" }, FLAG_NAMES[k] || k, " ", el("span", { class: "muted" }, k)),
        f.paused_at ? el("span", { class: "tag bad" }, "已暂停") : f.enabled ? el("span", { class: "tag" }, "启用") : el("span", { class: "tag warn" }, "关闭")),
      f.description ? el("p", { class: "muted" }, f.description) : null,
      el("p", { class: "muted", id: "reach-" + k }, `现在对 ${f.reach} / ${f.members} 位会员开启`),
      f.paused_at ? el("div", { class: "paused", id: "paused-" + k }, "暂停于 " + when(f.paused_at) + "：" + (f.paused_reason || ""),
        el("div", {}, el("button", { type: "button", class: "small", id: "resume-" + k, onclick: () => save({ paused: false }) }, "恢复灰度"))) : null,
      el("label", { class: "check" }, enabled, "启用"),
      el("div", { class: "pct" }, el("span", {}, "灰度比例"), slider, out),
      el("label", {}, "会员等级", tiers),
      memberTiers.length ? el("p", { class: "muted" }, "会员里现有的等级：" + memberTiers.join("、")) : null,
      el("details", {}, el("summary", {}, `名单（允许 ${(f.allow || []).length} / 排除 ${(f.deny || []).length}）`),
        el("label", {}, "允许名单（始终开启，含暂停时）", allow), el("label", {}, "排除名单（始终关闭）", deny)),
      el("details", {}, el("summary", {}, "护栏：" + (KPI_NAMES[f.kpi] || f.kpi)),
        el("label", {}, "指标", kpi),
        el("div", { class: "grid2" }, el("label", {}, "最小样本", minS), el("label", {}, "阈值（百分点）", thr)),
        el("label", {}, "观察窗口（小时）", win)),
      reason,
      el("div", { class: "row" }, el("button", { type: "button", class: "grow", id: "save-" + k, onclick: () => save() }, "保存"),
        f.paused_at ? null : el("button", { type: "button", class: "plain", onclick: () => save({ paused: true }) }, "暂停")),
      el("p", { class: "muted" }, `版本 ${f.version} · ${when(f.updated_at)} · ${f.updated_by || ""}`));
    return card;
  }

  let auditBefore = 0;
  async function loadAudit() {
    const out = await api("GET", "/owner/features/audit?limit=20" + (auditBefore ? "&before=" + auditBefore : ""));
    const box = $("audit");
    (out.entries || []).forEach((a) => {
      const b = a.before || {}, n = a.after || {};
      const changes = [];
      if (b.enabled !== n.enabled) changes.push(n.enabled ? "启用" : "关闭");
      if (b.percent !== n.percent) changes.push(`比例 ${b.percent}% → ${n.percent}%`);
      if ((b.tiers || []).join() !== (n.tiers || []).join()) changes.push(`等级 [${(b.tiers || []).join(",")}] → [${(n.tiers || []).join(",")}]`);
      if (listText(b.allow) !== listText(n.allow)) changes.push("允许名单");
      if (listText(b.deny) !== listText(n.deny)) changes.push("排除名单");
      if (!!b.paused_at !== !!n.paused_at) changes.push(n.paused_at ? "暂停" : "恢复");
      if (b.kpi !== n.kpi || b.min_sample !== n.min_sample || b.threshold !== n.threshold || b.window_hours !== n.window_hours) changes.push("护栏设置");
      box.appendChild(el("div", { class: "audit-line" },
        el("div", {}, el("b", {}, FLAG_NAMES[a.flag] || a.flag), " · ", a.actor === "guard" ? el("span", { class: "tag bad" }, "护栏") : a.actor, " · ", el("span", { class: "muted" }, when(a.at))),
        el("div", {}, changes.join("；") || "无变化"),
        a.reason ? el("div", { class: "muted" }, a.reason) : null));
    });
    const more = $("audit-more");
    more.classList.toggle("hidden", !out.next_before);
    auditBefore = Number(out.next_before || 0);
  }
  $("audit-more").addEventListener("click", () => guarded(loadAudit));
  $("guard-run").addEventListener("click", () => guarded(async () => {
    const out = await api("POST", "/owner/features/guard");
    const figs = out.figures || [];
    const paused = figs.filter((g) => g.verdict === "paused");
    tg.toast(paused.length ? "已暂停：" + paused.map((g) => g.flag).join("、") : "护栏检查完成，没有需要暂停的功能");
    await loadFlags();
    // What the guard saw, per flag: the cohort's and the rest's bad share.
    const VERDICTS = { paused: "已暂停", ok: "正常", small_sample: "样本不足", not_judged: "不判断（全量、关闭、暂停或未设指标）" };
    const table = el("table", { class: "grid", id: "guard-table" },
      el("tr", {}, el("th", {}, "功能"), el("th", {}, "灰度组"), el("th", {}, "其他人"), el("th", {}, "z"), el("th", {}, "结论")));
    figs.forEach((g) => table.appendChild(el("tr", {},
      el("td", {}, FLAG_NAMES[g.flag] || g.flag),
      el("td", {}, g.cohort_total ? `${pct(g.cohort_bad / g.cohort_total)}（${g.cohort_total}）` : "—"),
      el("td", {}, g.rest_total ? `${pct(g.rest_bad / g.rest_total)}（${g.rest_total}）` : "—"),
      el("td", {}, g.verdict === "ok" || g.verdict === "paused" ? String(g.z) : "—"),
      el("td", {}, VERDICTS[g.verdict] || g.verdict))));
    const box = $("guard-out");
    box.textContent = "";
    box.appendChild(el("p", { class: "muted" }, "护栏：灰度组的“坏结果”占比比其他人高出阈值以上、两边样本都够且 z ≥ " + (out.guard_z || 2.33) + " 时自动暂停。"));
    box.appendChild(table);
  }));

  // ---- quick help ----
  const ICONS = { video: "📹", voice: "📞", chat: "💬", article: "📖", rod: "🎣", reel: "🎡", line: "🧵", hook: "🪝", fish: "🐟", box: "📦", help: "🙋", tool: "🔧" };
  function iconOf(i) { return ICONS[i] || i || ""; }
  const ACTIONS = { video: "视频", voice: "语音", chat: "聊天", article: "文章" };
  let quick = [];
  async function loadQuick() {
    const out = await api("GET", "/owner/quickhelp");
    quick = out.entries || [];
    const box = $("quick-list");
    box.textContent = "";
    quick.forEach((q, i) => box.appendChild(el("div", { class: "card qh" + (q.enabled ? "" : " off"), id: "qh-" + q.id },
      el("div", { class: "updown" },
        el("button", { type: "button", class: "plain small", disabled: i === 0, "aria-label": "上移", onclick: () => move(i, -1) }, "↑"),
        el("button", { type: "button", class: "plain small", disabled: i === quick.length - 1, "aria-label": "下移", onclick: () => move(i, 1) }, "↓")),
      el("span", { class: "icon" }, iconOf(q.icon)),
      el("div", { class: "grow" }, el("b", {}, q.title), el("div", { class: "muted" },
        ACTIONS[q.action] + (q.text ? "：" + q.text : "") + (q.article_slug ? "：" + q.article_slug : "") + ` · 使用 ${q.recent_uses} / ${q.uses}`)),
      el("label", { class: "check" }, el("input", { type: "checkbox", checked: q.enabled, onchange: (e) => saveQuick(Object.assign({}, q, { enabled: e.target.checked }), q.id) }), "启用"),
      el("button", { type: "button", class: "plain small", onclick: () => editQuick(q) }, "编辑"),
      el("button", { type: "button", class: "danger small", onclick: () => removeQuick(q) }, "删除"))));
  }
  async function move(i, d) {
    const ids = quick.map((q) => q.id);
    [ids[i], ids[i + d]] = [ids[i + d], ids[i]];
    await guarded(async () => { await api("POST", "/owner/quickhelp/order", { ids }); await loadQuick(); });
  }
  async function saveQuick(q, id) {
    const body = { title: q.title, icon: q.icon, action: q.action, text: q.text, article_slug: q.article_slug, purpose: q.purpose, enabled: q.enabled };
    await guarded(async () => {
      if (id) await api("PUT", "/owner/quickhelp/" + id, body); else await api("POST", "/owner/quickhelp", body);
      tg.toast("已保存");
      await loadQuick();
    });
  }
  async function removeQuick(q) {
    if (!confirm(`删除「${q.title}」？使用记录也会删除。可以先停用。`)) return;
    await guarded(async () => { await api("DELETE", "/owner/quickhelp/" + q.id); await loadQuick(); });
  }
  function syncQuickForm() {
    const a = $("qh-action").value;
    document.querySelectorAll(".qh-call").forEach((e) => e.classList.toggle("hidden", a !== "video" && a !== "voice"));
    document.querySelectorAll(".qh-chat").forEach((e) => e.classList.toggle("hidden", a !== "chat"));
    document.querySelectorAll(".qh-article").forEach((e) => e.classList.toggle("hidden", a !== "article"));
  }
  $("qh-action").addEventListener("change", syncQuickForm);
  function editQuick(q) {
    $("qh-id").value = q ? q.id : "";
    $("qh-title").value = q ? q.title : "";
    $("qh-icon").value = q ? q.icon : "";
    $("qh-action").value = q ? q.action : "video";
    $("qh-purpose").value = (q && q.purpose) || "guidance";
    $("qh-text").value = q ? q.text : "";
    $("qh-slug").value = q ? q.article_slug : "";
    $("qh-enabled").checked = q ? q.enabled : true;
    $("quick-form-title").textContent = q ? "编辑：" + q.title : "新增快捷求助";
    $("qh-cancel").classList.toggle("hidden", !q);
    syncQuickForm();
    if (q) $("quick-form").scrollIntoView({ behavior: "smooth" });
  }
  $("qh-cancel").addEventListener("click", () => editQuick(null));
  $("quick-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const a = $("qh-action").value;
    const q = { title: $("qh-title").value.trim(), icon: $("qh-icon").value.trim(), action: a, enabled: $("qh-enabled").checked,
      purpose: a === "video" || a === "voice" ? $("qh-purpose").value : "", text: a === "chat" ? $("qh-text").value.trim() : "",
      article_slug: a === "article" ? $("qh-slug").value.trim() : "" };
    await saveQuick(q, $("qh-id").value);
    editQuick(null);
  });
  syncQuickForm();

  // ---- knowledge base ----
  let kb = [];
  async function loadKB() {
    const all = [];
    let after = "";
    for (let i = 0; i < 50; i++) { // 200 a page; the import limit keeps a KB well under 10 000
      const out = await api("GET", "/owner/kb?limit=200" + (after ? "&after=" + encodeURIComponent(after) : ""));
      all.push(...out.entries);
      if (!out.next_cursor) break;
      after = out.next_cursor;
    }
    kb = all;
    renderKB();
  }
  function renderKB() {
    const q = $("kb-search").value.trim().toLowerCase();
    const hit = (e) => !q || [e.id, e.title, e.answer, ...(e.questions || []), ...(e.tags || [])].some((s) => (s || "").toLowerCase().includes(q));
    const shown = kb.filter(hit);
    $("kb-count").textContent = `共 ${kb.length} 条` + (q ? `，匹配 ${shown.length} 条` : "");
    const box = $("kb-list");
    box.textContent = "";
    shown.slice(0, 200).forEach((e) => box.appendChild(el("div", { class: "card kb-entry", id: "kb-" + e.id },
      el("div", { class: "row" }, el("b", { class: "grow" }, e.title), e.kind === "article" ? el("span", { class: "tag" }, "文章") : null,
        e.enabled ? null : el("span", { class: "tag warn" }, "停用")),
      el("div", { class: "muted" }, e.id + ((e.tags || []).length ? " · " + e.tags.join("、") : "")),
      (e.questions || []).length ? el("div", { class: "muted" }, "问法：" + e.questions.join("；")) : null,
      el("div", { class: "answer" }, e.answer),
      el("div", { class: "row" },
        el("button", { type: "button", class: "plain small", onclick: () => editKB(e) }, "编辑"),
        el("button", { type: "button", class: "danger small", onclick: () => removeKB(e) }, "删除")))));
  }
  $("kb-search").addEventListener("input", renderKB);
  let kbEditing = "";
  function editKB(e) {
    kbEditing = e ? e.id : "";
    $("kb-form").classList.remove("hidden");
    $("kb-form-title").textContent = e ? "编辑：" + e.title : "新增条目";
    $("kb-id").value = e ? e.id : "";
    $("kb-id").disabled = !!e;
    $("kb-kind").value = e ? e.kind || "qa" : "qa";
    $("kb-title").value = e ? e.title : "";
    $("kb-questions").value = e ? (e.questions || []).join("\n") : "";
    $("kb-answer").value = e ? e.answer : "";
    $("kb-tags").value = e ? (e.tags || []).join(", ") : "";
    $("kb-enabled").checked = e ? e.enabled : true;
    $("kb-form").scrollIntoView({ behavior: "smooth" });
  }
  function newKB(question) {
    editKB(null);
    $("kb-title").value = question || "";
  }
  $("kb-new").addEventListener("click", () => newKB(""));
  $("kb-cancel").addEventListener("click", () => $("kb-form").classList.add("hidden"));
  $("kb-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = { id: $("kb-id").value.trim(), kind: $("kb-kind").value, title: $("kb-title").value.trim(),
      questions: $("kb-questions").value.split("\n").map((s) => s.trim()).filter(Boolean), answer: $("kb-answer").value.trim(),
      tags: lines($("kb-tags").value), enabled: $("kb-enabled").checked };
    await guarded(async () => {
      if (kbEditing) await api("PUT", "/owner/kb/" + encodeURIComponent(kbEditing), body);
      else await api("POST", "/owner/kb", body);
      tg.toast("已保存，AI 客服已更新");
      $("kb-form").classList.add("hidden");
      await loadKB();
    });
  });
  async function removeKB(e) {
    if (!confirm(`删除「${e.title}」？`)) return;
    await guarded(async () => { await api("DELETE", "/owner/kb/" + encodeURIComponent(e.id)); await loadKB(); });
  }
  function download(name, blob) {
    const a = el("a", { href: URL.createObjectURL(blob), download: name });
    document.body.appendChild(a); a.click(); a.remove();
  }
  $("kb-export-yaml").addEventListener("click", () => guarded(async () => {
    download("knowledge-" + shanghaiToday() + ".yaml", await api("GET", "/owner/kb/export"));
  }));
  // Markdown: one "## title" section per entry; the lines under it name the
  // id, kind, tags and state, "### 问法" lists the other wordings and
  // "### 回答" holds the answer.
  function toMarkdown(entries) {
    const out = ["# 知识库", ""];
    entries.forEach((e) => {
      out.push("## " + e.title, "", "- 编号: " + e.id, "- 类型: " + (e.kind || "qa"));
      if ((e.tags || []).length) out.push("- 标签: " + e.tags.join(", "));
      if (!e.enabled) out.push("- 停用");
      if ((e.questions || []).length) out.push("", "### 问法", "", ...e.questions.map((q) => "- " + q));
      out.push("", "### 回答", "", e.answer, "");
    });
    return out.join("\n");
  }
  function fromMarkdown(text) {
    const entries = [];
    let e = null, part = "";
    const answer = [];
    const flush = () => { if (e) { e.answer = answer.join("\n").trim(); entries.push(e); } answer.length = 0; };
    text.replace(/\r\n/g, "\n").split("\n").forEach((line) => {
      if (/^## /.test(line)) { flush(); e = { id: "", kind: "qa", title: line.slice(3).trim(), questions: [], tags: [], enabled: true }; part = "meta"; return; }
      if (!e) return;
      if (/^### *问法/.test(line)) { part = "q"; return; }
      if (/^### *回答/.test(line)) { part = "a"; return; }
      if (part === "a") { answer.push(line); return; }
      const m = line.match(/^- *(.*)$/);
      if (!m) return;
      if (part === "q") { if (m[1].trim()) e.questions.push(m[1].trim()); return; }
      const kv = m[1].match(/^(编号|id|类型|kind|标签|tags)\s*[:：]\s*(.*)$/i);
      if (kv) {
        const k = kv[1].toLowerCase(), v = kv[2].trim();
        if (k === "编号" || k === "id") e.id = v;
        else if (k === "类型" || k === "kind") e.kind = v;
        else e.tags = lines(v);
      } else if (/^(停用|disabled)$/.test(m[1].trim())) e.enabled = false;
    });
    flush();
    return entries;
  }
  $("kb-export-md").addEventListener("click", () => guarded(async () => {
    if (!kb.length) await loadKB();
    download("knowledge-" + shanghaiToday() + ".md", new Blob([toMarkdown(kb)], { type: "text/markdown;charset=utf-8" }));
  }));
  $("kb-import").addEventListener("change", (ev) => guarded(async () => {
    const file = ev.target.files[0];
    ev.target.value = "";
    if (!file) return;
    const replace = $("kb-replace").checked ? "?replace=true" : "";
    let rep;
    if (/\.(md|markdown)$/i.test(file.name)) {
      const entries = fromMarkdown(await file.text());
      if (!entries.length) throw new Error("文件里没有找到“## 标题”开头的条目");
      // JSON is YAML: the import reads it as a knowledge-base file.
      rep = await api("POST", "/owner/kb/import" + replace, { version: 1, entries });
    } else {
      const fd = new FormData();
      fd.append("file", file);
      rep = await api("POST", "/owner/kb/import" + replace, fd);
    }
    tg.toast(`导入完成：新增 ${rep.created}，更新 ${rep.updated}，未变 ${rep.unchanged}` + (rep.deleted ? `，删除 ${rep.deleted}` : ""));
    await loadKB();
  }));
  async function ask() {
    const q = $("ask-q").value.trim();
    if (!q) return;
    await guarded(async () => {
      const a = await api("POST", "/owner/kb/ask", { question: q });
      const box = $("ask-out");
      box.textContent = "";
      box.appendChild(el("div", { class: "ask-answer", id: "ask-answer" }, a.text || (a.handoff ? "（会转人工：" + a.handoff + "）" : "（没有找到答案）")));
      box.appendChild(el("p", { class: "muted" }, `置信度 ${Number(a.confidence || 0).toFixed(2)}（阈值 ${Number(a.threshold || 0).toFixed(2)}）· 来源：` +
        ((a.sources || []).map((s) => s.id + (s.title ? " " + s.title : "")).join("；") || "无")));
    });
  }
  $("ask-btn").addEventListener("click", ask);
  $("ask-q").addEventListener("keydown", (e) => { if (e.key === "Enter") ask(); });

  // ---- start ----
  setPreset(7);
  if (tg.session(KEY)) showApp(); else showLogin();
  // For the browser test and the curious: the page's own state and the
  // Markdown conversion of the knowledge base.
  window.ownerConsole = { reloadKPIs: () => loadKPIs(), lastKPIs: () => lastKPIs, kb: () => kb, toMarkdown, fromMarkdown };
})();
