// The customer page (H5 at /): the mini-program's screens, opened in its
// web-view or, in the demo, in any browser. It speaks only /api/v1, the same
// routes the mini-program calls. Screens are hash routes (#/item/3,
// #/order/7, #/orders, #/chat, #/me) so WeChat's back button works.
(function () {
  "use strict";
  const K = "customer"; // tg.session key
  const el = tg.el;
  const $ = (id) => document.getElementById(id);
  const TZ = "Asia/Shanghai";

  const state = {
    me: null,
    demo: null,          // {simulator: true, page} when the server runs against the simulator
    features: {},        // GET /features; absent means everything on
    categories: [],
    category: "",
    tag: "",
    items: [], next: "",
    orders: [], ordersNext: "",
    pickFrom: "", pickTo: "", qty: 1,
    payParams: {},       // order id → {payment, request_payment}
    presetText: "",
  };

  // ---- small helpers ---------------------------------------------------

  const dayFmt = new Intl.DateTimeFormat("en-CA", { timeZone: TZ, year: "numeric", month: "2-digit", day: "2-digit" });
  const timeFmt = new Intl.DateTimeFormat("zh-CN", { timeZone: TZ, month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false });
  // today is the shop's date (Asia/Shanghai) as YYYY-MM-DD.
  const today = () => dayFmt.format(new Date());
  function addDays(day, n) {
    const d = new Date(day + "T00:00:00Z");
    d.setUTCDate(d.getUTCDate() + n);
    return d.toISOString().slice(0, 10);
  }
  function daysBetween(a, b) { return Math.round((Date.parse(b + "T00:00:00Z") - Date.parse(a + "T00:00:00Z")) / 86400000); }
  const shortDay = (day) => { const [, m, d] = day.split("-"); return Number(m) + "月" + Number(d) + "日"; };
  const dow = (day) => "日一二三四五六"[new Date(day + "T00:00:00Z").getUTCDay()];
  const when = (t) => (t ? timeFmt.format(new Date(t)) : "");
  const api = (method, path, body) => tg.api(K, method, path, body);
  // toast shows one message at a time: a newer one replaces the last.
  const toast = (text) => { document.querySelectorAll(".toast").forEach((t) => t.remove()); tg.toast(text); };

  function fail(e) {
    if (e && e.status === 401 && !tg.session(K)) { showLogin(); return; }
    toast((e && e.message) || "出错了，请稍后再试");
  }
  // busy disables a button while fn runs.
  async function busy(btn, fn) {
    if (btn) btn.disabled = true;
    try { return await fn(); } catch (e) { fail(e); } finally { if (btn) btn.disabled = false; }
  }
  // optional calls a route another part of the product may not have yet:
  // a 404 is "not here", anything else is an error.
  async function optional(method, path) {
    try { return await api(method, path); } catch (e) { if (e.status === 404) return null; throw e; }
  }
  const inMiniProgram = () => window.__wxjs_environment === "miniprogram" || /miniProgram/i.test(navigator.userAgent);
  const wxBridge = () => (window.wx && window.wx.miniProgram) || null;

  function photoOf(item) {
    if (item.photos && item.photos.length) return el("img", { src: item.photos[0], alt: item.name, loading: "lazy" });
    return el("div", { class: "photo-ph", "aria-hidden": "true" }, "🎣");
  }

  // ---- views and navigation --------------------------------------------

  const titles = { home: "渔具租赁", item: "装备详情", orders: "我的订单", order: "订单详情", chat: "客服", me: "我的", login: "登录" };
  function show(view) {
    document.querySelectorAll("section.view").forEach((s) => s.classList.toggle("hidden", s.id !== "view-" + view));
    $("title").textContent = titles[view] || "渔具租赁";
    $("back").classList.toggle("hidden", view !== "item" && view !== "order");
    $("tabs").classList.toggle("hidden", view === "login");
    const tab = view === "item" ? "home" : view === "order" ? "orders" : view;
    document.querySelectorAll("#tabs button").forEach((b) => b.classList.toggle("on", b.dataset.tab === tab));
    window.scrollTo(0, 0);
  }

  function route() {
    if (!tg.session(K)) { showLogin(); return; }
    const h = location.hash.replace(/^#\/?/, "");
    const [name, id] = h.split("/");
    switch (name) {
      case "item": openItem(id); break;
      case "order": openOrder(id); break;
      case "orders": openOrders(); break;
      case "chat": openChat(); break;
      case "me": openMe(); break;
      default: openHome();
    }
  }
  const go = (hash) => { if (location.hash === hash) route(); else location.hash = hash; };

  // ---- login -----------------------------------------------------------

  function showLogin() {
    show("login");
    $("login-sim").classList.toggle("hidden", !state.demo);
    $("login-sms-hint").classList.toggle("hidden", !state.demo);
    if (state.demo) $("login-wechat-hint").textContent = "演示环境：点下面的按钮，由模拟器扮演微信完成 wx.login。";
  }

  async function loggedIn(out) {
    tg.saveSession(K, out.tokens);
    state.me = out.member || null;
    renderWho();
    await loadExtras();
    route();
  }

  async function loginWithCode(code) {
    const out = await api("POST", "/auth/wechat", { code });
    await loggedIn(out);
  }

  let smsTimer = 0;
  function smsCountdown(btn, s) {
    clearInterval(smsTimer);
    btn.disabled = true;
    btn.textContent = s + " 秒后重发";
    smsTimer = setInterval(() => {
      s--;
      if (s <= 0) { clearInterval(smsTimer); btn.disabled = false; btn.textContent = "获取验证码"; return; }
      btn.textContent = s + " 秒后重发";
    }, 1000);
  }

  function wireLogin() {
    $("login-sim").addEventListener("click", (ev) => busy(ev.currentTarget, async () => {
      const { code } = await api("POST", "/demo/wx-login", {});
      await loginWithCode(code);
    }));
    $("login-send").addEventListener("click", (ev) => busy(null, async () => {
      const phone = $("login-phone").value.trim();
      if (!phone) { toast("请输入手机号"); return; }
      await api("POST", "/auth/sms/send", { phone });
      smsCountdown(ev.target, 60);
      toast(state.demo ? "验证码已发送到模拟器的顾客手机" : "验证码已发送");
    }));
    $("login-sms").addEventListener("submit", (ev) => {
      ev.preventDefault();
      busy($("login-verify"), async () => {
        const out = await api("POST", "/auth/sms/verify", { phone: $("login-phone").value.trim(), code: $("login-code").value.trim() });
        await loggedIn(out);
      });
    });
  }

  function renderWho() {
    const m = state.me;
    $("who").textContent = m ? (m.name || "钓友") + (m.tier && m.tier !== "guest" ? " · " + tierLabel(m.tier) : "") : "";
  }
  const tierLabel = (t) => ({ gold: "金卡会员", silver: "银卡会员", regular: "普通会员", guest: "游客" }[t] || t);

  // ---- home: quick help, categories, items ------------------------------

  async function loadExtras() {
    try {
      const f = await optional("GET", "/features");
      state.features = (f && f.features) || {};
    } catch (e) { state.features = {}; }
    try {
      const q = await optional("GET", "/quickhelp");
      renderQuickHelp(q ? q.entries || [] : null);
    } catch (e) { renderQuickHelp(null); }
  }

  const featureOn = (name) => state.features[name] !== false;

  function renderQuickHelp(entries) {
    const box = $("quickhelp");
    const list = (entries || []).filter((e) => e.action !== "video" || featureOn("video_help"));
    box.classList.toggle("hidden", !list.length);
    box.replaceChildren(...list.map((e) => el("button", { type: "button", "data-entry": e.id, onclick: (ev) => quickHelp(e, ev.currentTarget) },
      el("span", { class: "icon" }, e.icon || defaultIcon(e.action)), el("span", {}, e.title))));
  }
  const defaultIcon = (a) => ({ video: "📹", voice: "📞", chat: "💬", article: "📖" }[a] || "❓");

  async function quickHelp(e, btn) {
    api("POST", "/quickhelp/" + encodeURIComponent(e.id) + "/use").catch(() => {}); // counting must not stop the help
    switch (e.action) {
      case "video":
      case "voice":
        await busy(btn, async () => {
          const call = await api("POST", "/calls", { kind: e.action, entry_id: e.id, purpose: e.purpose || "" });
          location.href = call.room_url;
        });
        break;
      case "chat":
        state.presetText = e.text || "";
        go("#/chat");
        break;
      default:
        sheet(el("div", {}, el("h3", {}, e.title), el("p", { class: "article" }, e.text || ""),
          el("button", { class: "wide", type: "button", onclick: closeSheet }, "知道了")));
    }
  }

  function sheet(content) {
    const s = $("sheet");
    s.querySelector(".sheet-body").replaceChildren(content);
    s.classList.remove("hidden");
  }
  function closeSheet() { $("sheet").classList.add("hidden"); }

  async function openHome() {
    show("home");
    if (!state.categories.length) {
      try { state.categories = (await api("GET", "/categories")).categories || []; } catch (e) { fail(e); }
    }
    renderCategories();
    if (!state.items.length) await loadItems(true);
  }

  function renderCategories() {
    const all = [{ id: "", label: "全部" }].concat(state.categories);
    $("categories").replaceChildren(...all.map((c) => el("button", {
      type: "button", role: "tab", class: c.id === state.category ? "on" : "", "data-category": c.id,
      onclick: () => { state.category = c.id; renderCategories(); loadItems(true); },
    }, c.label)));
    const tf = $("tag-filter");
    tf.classList.toggle("hidden", !state.tag);
    if (state.tag) tf.replaceChildren("只看「" + state.tag + "」", el("button", { type: "button", class: "plain", onclick: () => { state.tag = ""; renderCategories(); loadItems(true); } }, "清除"));
  }

  async function loadItems(reset) {
    const q = new URLSearchParams({ limit: "20" });
    if (state.category) q.set("category", state.category);
    if (state.tag) q.set("tag", state.tag);
    if (!reset && state.next) q.set("cursor", state.next);
    try {
      const out = await api("GET", "/items?" + q);
      state.items = reset ? out.items : state.items.concat(out.items);
      state.next = out.next_cursor || "";
    } catch (e) { fail(e); return; }
    renderItems();
  }

  function tagsOf(item) {
    return el("div", { class: "tags" }, (item.tags || []).slice(0, 4).map((t) => el("span", {
      class: "tag", onclick: (ev) => { ev.stopPropagation(); state.tag = t; state.category = ""; go("#/"); renderCategories(); loadItems(true); },
    }, t)));
  }

  function priceOf(item) {
    return el("div", {}, el("span", { class: "price" }, tg.yuan(item.price_per_day), el("small", {}, "/天")),
      el("div", { class: "muted" }, item.deposit > 0 ? "押金 " + tg.yuan(item.deposit) : "免押金"));
  }

  function renderItems() {
    const box = $("items");
    if (!state.items.length) box.replaceChildren(el("div", { class: "empty" }, "暂无装备"));
    else box.replaceChildren(...state.items.map((it) => el("div", { class: "item", "data-item": it.id, onclick: () => go("#/item/" + it.id) },
      photoOf(it), el("div", { class: "body" }, el("div", { class: "name" }, it.name), tagsOf(it), priceOf(it)))));
    $("items-more").classList.toggle("hidden", !state.next);
  }

  // ---- item detail: dates, availability, quote, order --------------------

  async function openItem(id) {
    show("item");
    const view = $("view-item");
    view.replaceChildren(el("div", { class: "empty" }, "加载中…"));
    let item;
    try { item = (await api("GET", "/items/" + encodeURIComponent(id))).item; } catch (e) { fail(e); view.replaceChildren(el("div", { class: "empty" }, "找不到这件装备")); return; }
    if (!state.pickFrom || state.pickFrom < today()) { state.pickFrom = addDays(today(), 1); state.pickTo = addDays(state.pickFrom, 1); }
    state.qty = 1;
    const gallery = el("div", { class: "gallery" }, (item.photos.length ? item.photos : [null]).map((p) =>
      p ? el("img", { src: p, alt: item.name }) : el("div", { class: "photo-ph" }, "🎣")));
    const info = el("div", { class: "card" },
      el("h2", {}, item.name), tagsOf(item),
      el("div", { class: "row", style: "margin-top:6px" }, el("div", { class: "grow" }, priceOf(item)),
        el("span", { class: "muted" }, item.category_label + (item.units !== undefined ? " · 店里共 " + item.units + " 件" : ""))),
      item.description ? el("p", { class: "desc" }, item.description) : null);

    const fromIn = el("input", { id: "pick-from", type: "date", min: today(), value: state.pickFrom });
    const toIn = el("input", { id: "pick-to", type: "date", min: addDays(today(), 1), value: state.pickTo });
    const cal = el("div", { class: "cal", id: "cal" });
    const avail = el("div", { class: "avail", id: "avail" });
    const qtyOut = el("output", { id: "qty" }, "1");
    const quoteBox = el("div", { id: "quote" });
    const orderBtn = el("button", { id: "place-order", class: "wide", type: "button", disabled: true }, "立即预订");
    const dates = el("div", { class: "card" },
      el("h3", {}, "选择租期"),
      el("p", { class: "muted" }, "取货日当天起租，归还日早上还回即可（按天计租）。点日历选取货日，再点归还日。"),
      el("div", { class: "dates" }, el("label", { class: "field" }, "取货日", fromIn), el("label", { class: "field" }, "归还日", toIn)),
      cal, avail,
      el("div", { class: "row" }, el("span", { class: "grow" }, "数量"),
        el("div", { class: "qty" }, el("button", { type: "button", class: "plain", "aria-label": "减少", onclick: () => setQty(-1) }, "−"), qtyOut,
          el("button", { type: "button", class: "plain", "aria-label": "增加", onclick: () => setQty(1) }, "+"))),
      quoteBox, orderBtn);
    view.replaceChildren(gallery, info, dates);

    let free = 0, calDays = [];
    function setQty(d) {
      state.qty = Math.max(1, Math.min(Math.max(free, 1), state.qty + d));
      qtyOut.textContent = String(state.qty);
      refreshQuote();
    }
    async function loadCalendar() {
      const start = today();
      try {
        const a = await api("GET", "/items/" + item.id + "/availability?from=" + start + "&to=" + addDays(start, 28));
        calDays = a.days || [];
      } catch (e) { calDays = []; }
      renderCalendar();
    }
    function renderCalendar() {
      const heads = "日一二三四五六".split("").map((d) => el("div", { class: "dow" }, d));
      const pad = calDays.length ? new Date(calDays[0].date + "T00:00:00Z").getUTCDay() : 0;
      const cells = [];
      for (let i = 0; i < pad; i++) cells.push(el("div"));
      for (const d of calDays) {
        const inRange = d.date >= state.pickFrom && d.date < state.pickTo;
        const cls = [d.free > 0 ? "" : "none", inRange ? "in" : "", d.date === state.pickFrom || d.date === state.pickTo ? "edge" : ""].join(" ").trim();
        cells.push(el("button", { type: "button", class: cls, "data-day": d.date, title: d.date + " 剩 " + d.free + " 件", onclick: () => pickDay(d.date) },
          String(Number(d.date.slice(8))), el("small", {}, d.free > 0 ? "余" + d.free : "满")));
      }
      cal.replaceChildren(...heads, ...cells);
    }
    let picking = "from";
    function pickDay(day) {
      if (picking === "from" || day <= state.pickFrom) { state.pickFrom = day; state.pickTo = addDays(day, 1); picking = "to"; }
      else { state.pickTo = day; picking = "from"; }
      fromIn.value = state.pickFrom; toIn.value = state.pickTo;
      periodChanged();
    }
    fromIn.addEventListener("change", () => {
      state.pickFrom = fromIn.value;
      if (!state.pickTo || state.pickTo <= state.pickFrom) state.pickTo = addDays(state.pickFrom, 1);
      toIn.value = state.pickTo;
      periodChanged();
    });
    toIn.addEventListener("change", () => { state.pickTo = toIn.value; periodChanged(); });

    let seq = 0;
    async function periodChanged() {
      renderCalendar();
      const my = ++seq;
      orderBtn.disabled = true;
      if (!state.pickFrom || !state.pickTo || state.pickTo <= state.pickFrom) {
        avail.className = "avail bad"; avail.textContent = "归还日要晚于取货日"; quoteBox.replaceChildren(); return;
      }
      try {
        const a = await api("GET", "/items/" + item.id + "/availability?from=" + state.pickFrom + "&to=" + state.pickTo);
        if (my !== seq) return;
        free = a.free;
        avail.className = "avail" + (free > 0 ? "" : " bad");
        avail.textContent = shortDay(state.pickFrom) + " 取，" + shortDay(state.pickTo) + " 还，共 " + a.period.days + " 天 · " +
          (free > 0 ? "可租 " + free + " 件" : "这段时间已租满，换个日期试试");
        if (state.qty > Math.max(free, 1)) { state.qty = Math.max(free, 1); qtyOut.textContent = String(state.qty); }
      } catch (e) { if (my === seq) { avail.className = "avail bad"; avail.textContent = e.message; } return; }
      refreshQuote();
    }

    async function refreshQuote() {
      const my = ++seq;
      const body = { lines: [{ item_id: item.id, qty: state.qty }], from: state.pickFrom, to: state.pickTo };
      try {
        const out = await api("POST", "/orders/quote", body);
        if (my !== seq) return;
        const q = out.quote;
        quoteBox.replaceChildren(el("dl", { class: "kv", id: "quote-kv" },
          el("dt", {}, "租金"), el("dd", {}, tg.yuan(q.rent) + "（" + tg.yuan(item.price_per_day) + " × " + q.period.days + " 天 × " + state.qty + "）"),
          el("dt", {}, "押金"), el("dd", {}, q.deposit_waived ? "会员免押" : tg.yuan(q.deposit) + "（归还后退回）"),
          el("dt", {}, "合计"), el("dd", { class: "total", id: "quote-total" }, tg.yuan(q.total))));
        orderBtn.disabled = !out.available;
      } catch (e) { if (my === seq) quoteBox.replaceChildren(el("p", { class: "avail bad" }, e.message)); }
    }

    orderBtn.addEventListener("click", () => busy(orderBtn, async () => {
      const out = await api("POST", "/orders", { lines: [{ item_id: item.id, qty: state.qty }], from: state.pickFrom, to: state.pickTo });
      state.orders = [];
      toast("已预订，请在 " + (out.order.expires_at ? when(out.order.expires_at) : "15 分钟内") + " 前支付");
      go("#/order/" + out.order.id);
    }));

    await loadCalendar();
    periodChanged();
  }

  // ---- orders ----------------------------------------------------------

  async function openOrders() {
    show("orders");
    await loadOrders(true);
  }

  async function loadOrders(reset) {
    const q = new URLSearchParams({ limit: "20" });
    if (!reset && state.ordersNext) q.set("cursor", state.ordersNext);
    try {
      const out = await api("GET", "/orders?" + q);
      state.orders = reset ? out.orders : state.orders.concat(out.orders);
      state.ordersNext = out.next_cursor || "";
    } catch (e) { fail(e); return; }
    const box = $("orders");
    if (!state.orders.length) box.replaceChildren(el("div", { class: "empty" }, "还没有订单，去首页挑选装备吧"));
    else box.replaceChildren(...state.orders.map((o) => el("div", { class: "card order-card", "data-order": o.id, onclick: () => go("#/order/" + o.id) },
      el("div", { class: "top" }, el("span", { class: "muted" }, "订单 " + o.no), el("span", { class: "state state-" + o.state }, o.state_label)),
      el("div", {}, (o.lines || []).map((l) => l.item_name).join("、")),
      el("div", { class: "row" }, el("span", { class: "grow muted" }, shortDay(o.period.from) + " – " + shortDay(o.period.to) + " · " + o.period.days + " 天"),
        el("span", { class: "price" }, tg.yuan(o.total))))));
    $("orders-more").classList.toggle("hidden", !state.ordersNext);
  }

  const refundStates = { pending: "退款处理中", succeeded: "已退回", failed: "退款失败，店家会重新发起" };
  const kindLabel = { pickup: "取货验货", return: "归还验货" };
  function actorLabel(a) {
    if (!a) return "";
    if (a.startsWith("member:") || a.startsWith("customer:")) return "我";
    if (a.startsWith("staff:")) return "店员";
    if (a.startsWith("owner:")) return "店主";
    if (a.startsWith("wechatpay") || a.includes("pay")) return "微信支付";
    return "系统";
  }

  let orderTimer = 0;
  async function openOrder(id) {
    show("order");
    clearInterval(orderTimer);
    const view = $("view-order");
    if (!view.dataset.order || view.dataset.order !== String(id)) view.replaceChildren(el("div", { class: "empty" }, "加载中…"));
    view.dataset.order = String(id);
    let o;
    try { o = (await api("GET", "/orders/" + encodeURIComponent(id))).order; } catch (e) { fail(e); view.replaceChildren(el("div", { class: "empty" }, e.message)); return; }
    renderOrder(o);
  }

  function renderOrder(o) {
    const view = $("view-order");
    if (view.dataset.order !== String(o.id)) return;
    const head = el("div", { class: "card" },
      el("div", { class: "top row" }, el("span", { class: "grow muted" }, "订单 " + o.no),
        o.state === "paid" ? el("span", { class: "paid-badge", id: "order-state" }, o.state_label) : el("span", { class: "state state-" + o.state, id: "order-state" }, o.state_label)),
      el("div", {}, shortDay(o.period.from) + "（周" + dow(o.period.from) + "）取货 → " + shortDay(o.period.to) + "（周" + dow(o.period.to) + "）归还 · " + o.period.days + " 天"),
      o.state === "awaiting_payment" && o.expires_at ? el("div", { class: "muted", id: "expires" }, "请在 " + when(o.expires_at) + " 前支付，超时自动取消") : null,
      el("dl", { class: "kv" },
        ...(o.lines || []).flatMap((l) => [el("dt", {}, l.item_name + (l.serial ? "（" + l.serial + "）" : "")), el("dd", {}, tg.yuan(l.rent) + (l.deposit ? " + 押金 " + tg.yuan(l.deposit) : ""))]),
        el("dt", {}, "租金"), el("dd", {}, tg.yuan(o.rent)),
        el("dt", {}, "押金"), el("dd", {}, o.deposit_waived ? "会员免押" : tg.yuan(o.deposit)),
        el("dt", {}, "合计"), el("dd", { class: "total" }, tg.yuan(o.total)),
        o.paid ? el("dt", {}, "已付") : null, o.paid ? el("dd", {}, tg.yuan(o.paid)) : null,
        o.refunded ? el("dt", {}, "已退") : null, o.refunded ? el("dd", {}, tg.yuan(o.refunded)) : null),
      o.late_fee_per_day && (o.state === "paid" || o.state === "picked_up") ?
        el("p", { class: "muted" }, "请在 " + when(o.due) + " 前归还；超过 " + Math.round(o.grace_minutes / 60) + " 小时宽限后每天收逾期费 " + tg.yuan(o.late_fee_per_day) + "，从押金扣除。") : null);

    const actions = el("div", { class: "actions" });
    if (o.state === "awaiting_payment") actions.append(el("button", { id: "pay", type: "button", onclick: (ev) => startPay(o, ev.currentTarget) }, "微信支付 " + tg.yuan(o.total)));
    if (o.state === "awaiting_payment" || o.state === "created" || o.state === "paid") {
      actions.append(el("button", { id: "cancel", type: "button", class: "plain", onclick: (ev) => cancelOrder(o, ev.currentTarget) }, o.state === "paid" ? "取消并退款" : "取消订单"));
    }
    if (actions.children.length) head.append(actions);

    const parts = [head];
    const pp = state.payParams[o.id];
    if (o.state === "awaiting_payment" && pp) parts.push(payPanel(o, pp));
    parts.push(...(o.inspections || []).map((i) => inspectionCard(o, i)));
    if (o.settlement) parts.push(settlementCard(o));
    if ((o.refunds || []).length) parts.push(el("div", { class: "card", id: "refunds" }, el("h3", {}, "退款"),
      ...o.refunds.map((r) => el("div", { class: "row" }, el("span", { class: "grow" }, r.reason || "退款"),
        el("span", { class: r.state === "succeeded" ? "tag" : r.state === "failed" ? "tag bad" : "tag warn" }, refundStates[r.state] || r.state),
        el("span", {}, tg.yuan(r.amount))))));
    if ((o.history || []).length) parts.push(el("div", { class: "card" }, el("h3", {}, "订单进度"),
      el("ol", { class: "timeline" }, ...o.history.map((h) => el("li", {}, el("b", {}, stateName(h.to)), " ",
        el("span", { class: "muted" }, when(h.at) + " · " + actorLabel(h.actor)), h.note ? el("div", { class: "muted" }, h.note) : null)))));
    view.replaceChildren(...parts);
    clearInterval(orderTimer);
    if (o.state === "awaiting_payment" && o.expires_at) {
      // A live countdown; at zero the server has (or soon will have)
      // expired the order and freed the gear: show what it says.
      const left = $("expires");
      const tick = () => {
        const ms = Date.parse(o.expires_at) - Date.now();
        if (ms <= 0) { clearInterval(orderTimer); left.textContent = "支付已超时"; setTimeout(() => openOrder(o.id), 3000); return; }
        const m = Math.floor(ms / 60000), sec = Math.floor(ms / 1000) % 60;
        left.textContent = "请在 " + m + " 分 " + String(sec).padStart(2, "0") + " 秒内支付（" + when(o.expires_at) + " 前），超时自动取消";
      };
      tick();
      orderTimer = setInterval(() => { if (!document.body.contains(left)) { clearInterval(orderTimer); return; } tick(); }, 1000);
    }
  }
  const stateName = (s) => ({ created: "已创建", awaiting_payment: "待支付", paid: "已支付", picked_up: "已取货", returned: "已归还", settled: "已结算", cancelled: "已取消", expired: "已过期" }[s] || s);

  function settlementCard(o) {
    const st = o.settlement;
    const refundState = st.refund === 0 ? "无需退款" : o.refunded >= st.refund ? "已退回" : "退款处理中";
    return el("div", { class: "card", id: "settlement" }, el("h3", {}, "押金结算"),
      el("dl", { class: "kv" },
        el("dt", {}, "押金"), el("dd", {}, tg.yuan(st.deposit)),
        st.days_late ? el("dt", {}, "逾期 " + st.days_late + " 天") : null, st.days_late ? el("dd", {}, "−" + tg.yuan(st.late_fee)) : null,
        st.damage_fee ? el("dt", {}, "损坏赔偿") : null, st.damage_fee ? el("dd", {}, "−" + tg.yuan(st.damage_fee)) : null,
        el("dt", {}, "退回"), el("dd", { class: "total" }, tg.yuan(st.refund) + " · " + refundState),
        st.shortfall ? el("dt", {}, "押金不足") : null, st.shortfall ? el("dd", {}, tg.yuan(st.shortfall) + "，请到店补交") : null));
  }

  function inspectionCard(o, ins) {
    const thumbs = (ids) => {
      const box = el("div", { class: "thumbs" });
      ids.forEach(async (eid) => {
        try {
          const blob = await api("GET", "/orders/" + o.id + "/evidence/" + eid);
          box.append(el("img", { src: URL.createObjectURL(blob), alt: "验货照片" }));
        } catch (e) { box.append(el("span", { class: "muted" }, "照片无法加载")); }
      });
      return box;
    };
    const card = el("div", { class: "card inspection", "data-kind": ins.kind },
      el("h3", {}, kindLabel[ins.kind] || ins.kind),
      el("div", { class: "muted" }, when(ins.at) + " · 店员记录"), ins.notes ? el("p", {}, ins.notes) : null,
      ...(ins.units || []).map((u) => el("div", {}, el("span", { class: "tag" + (u.condition === "damaged" ? " bad" : u.condition === "worn" ? " warn" : "") }, u.condition_label),
        u.notes ? " " + u.notes : "", u.photos.length ? thumbs(u.photos) : null)));
    if (ins.confirmed) card.append(el("div", { class: "muted" }, "✔ 我已确认（" + when(ins.confirmed_at) + "）"));
    else card.append(el("button", { class: "wide", type: "button", "data-confirm": ins.kind, onclick: (ev) => busy(ev.currentTarget, async () => {
      await api("POST", "/orders/" + o.id + "/inspections/" + ins.kind + "/confirm");
      toast("已确认" + (kindLabel[ins.kind] || ""));
      openOrder(o.id);
    }) }, "确认" + (kindLabel[ins.kind] || "验货") + "记录无误"));
    return card;
  }

  async function cancelOrder(o, btn) {
    if (!window.confirm(o.state === "paid" ? "取消后已付款项将原路全额退回，确定取消？" : "确定取消这个订单？")) return;
    await busy(btn, async () => {
      const out = await api("POST", "/orders/" + o.id + "/cancel", {});
      state.orders = [];
      toast("订单已取消");
      renderOrder(out.order);
    });
  }

  // startPay asks for the wx.requestPayment parameters. Inside the
  // mini-program they go to the shell, which calls wx.requestPayment; in
  // the demo the simulator's pay sheet is confirmed from here.
  async function startPay(o, btn) {
    await busy(btn, async () => {
      const out = await api("POST", "/orders/" + o.id + "/pay");
      if (out.paid || !out.request_payment) { renderOrder(out.order); return; }
      state.payParams[o.id] = { payment: out.payment, request_payment: out.request_payment };
      const bridge = wxBridge();
      if (bridge && inMiniProgram()) {
        const params = out.request_payment;
        bridge.postMessage({ data: { type: "requestPayment", order_id: o.id, params } });
        bridge.navigateTo({ url: "/pages/pay/pay?order_id=" + o.id + "&params=" + encodeURIComponent(JSON.stringify(params)) });
      }
      renderOrder(out.order);
    });
  }

  function payPanel(o, pp) {
    const params = pp.request_payment;
    const pre = el("pre", { class: "params", id: "pay-params" }, JSON.stringify(params, null, 2));
    if (state.demo) {
      return el("div", { class: "card sim", id: "pay-panel" },
        el("h3", {}, "微信支付收银台"),
        el("p", { class: "muted" }, "真实小程序会用下面的参数调用 wx.requestPayment，由微信弹出支付确认；演示环境由模拟器扮演这一步。订单是否已付，只认微信支付的通知或查询。"),
        pre,
        el("button", { id: "sim-pay", class: "wide", type: "button", onclick: (ev) => simPay(o, pp, ev.currentTarget) }, "在模拟器中确认支付 " + tg.yuan(pp.payment.amount)));
    }
    return el("div", { class: "card", id: "pay-panel" },
      el("h3", {}, "支付参数"),
      el("p", { class: "muted" }, inMiniProgram() ? "已交给小程序调起微信支付；支付完成后点“我已支付”。" : "请在微信小程序中打开本页完成支付。"),
      pre,
      el("button", { id: "pay-check", class: "wide plain", type: "button", onclick: (ev) => checkPaid(o, ev.currentTarget, 1) }, "我已支付"));
  }

  async function simPay(o, pp, btn) {
    await busy(btn, async () => {
      await api("POST", "/demo/orders/" + o.id + "/pay", Object.assign({ out_trade_no: pp.payment.out_trade_no }, pp.request_payment));
      toast("模拟器已付款，等待微信支付通知…");
      await checkPaid(o, null, 20);
    });
  }

  // checkPaid asks the server (which asks WeChat Pay) until the order is
  // paid, up to tries times a second apart.
  async function checkPaid(o, btn, tries) {
    await busy(btn, async () => {
      for (let i = 0; i < tries; i++) {
        const out = await api("POST", "/orders/" + o.id + "/pay/check");
        if (out.paid || out.order.state !== "awaiting_payment") {
          delete state.payParams[o.id];
          state.orders = [];
          renderOrder(out.order);
          if (out.order.state === "paid") toast("支付成功");
          return;
        }
        await new Promise((r) => setTimeout(r, 1000));
      }
      toast("还没有收到微信支付的结果，请稍后刷新");
    });
  }

  // ---- chat and me -----------------------------------------------------

  function openChat() {
    show("chat");
    const sec = $("view-chat");
    // The chat widget (chat.js, the message bridge's) is mounted each time
    // the tab opens, with the text a quick-help entry preset, if any.
    if (window.TGChat && typeof window.TGChat.mount === "function") {
      window.TGChat.mount(sec, { sessionKey: K, presetText: state.presetText });
      state.presetText = "";
      return;
    }
    sec.replaceChildren(el("div", { class: "soon" }, el("div", { style: "font-size:40px" }, "💬"), "客服功能即将上线", el("div", { class: "muted" }, "急事请到店或致电门店。")));
  }

  async function openMe() {
    show("me");
    const sec = $("view-me");
    try { state.me = (await api("GET", "/me")).member; renderWho(); } catch (e) { fail(e); return; }
    const m = state.me;
    const phoneIn = el("input", { id: "me-phone", type: "tel", inputmode: "numeric", placeholder: "手机号" });
    const codeIn = el("input", { id: "me-code", type: "text", inputmode: "numeric", maxlength: "6", placeholder: "6 位验证码" });
    const sendBtn = el("button", { id: "me-send", type: "button", class: "plain" }, "获取验证码");
    sendBtn.addEventListener("click", () => busy(null, async () => {
      await api("POST", "/auth/sms/send", { phone: phoneIn.value.trim() });
      smsCountdown(sendBtn, 60);
      toast(state.demo ? "验证码已发送到模拟器的顾客手机" : "验证码已发送");
    }));
    const verifyBtn = el("button", { id: "me-verify", type: "button", class: "wide" }, "验证并绑定会员");
    verifyBtn.addEventListener("click", () => busy(verifyBtn, async () => {
      const out = await api("POST", "/auth/sms/verify", { phone: phoneIn.value.trim(), code: codeIn.value.trim() });
      if (out.tokens) tg.saveSession(K, out.tokens); // a phone login, not a link
      toast(out.message || "手机号已验证");
      openMe();
    }));
    sec.replaceChildren(
      el("div", { class: "card" }, el("h2", {}, m.name || "钓友"),
        el("dl", { class: "kv" },
          el("dt", {}, "会员等级"), el("dd", {}, tierLabel(m.tier)),
          el("dt", {}, "积分"), el("dd", {}, String(m.points || 0)),
          m.member_no ? el("dt", {}, "会员号") : null, m.member_no ? el("dd", {}, m.member_no) : null,
          el("dt", {}, "手机号"), el("dd", {}, m.phone || "未绑定"))),
      m.phone ? null : el("div", { class: "card" }, el("h3", {}, "绑定手机号"),
        el("p", { class: "muted" }, "已是门店会员？验证会员手机号后即可享受会员价与免押权益。"),
        el("label", { class: "field" }, "手机号", phoneIn), el("div", { class: "row" }, el("label", { class: "field grow" }, "验证码", codeIn), sendBtn), verifyBtn),
      el("button", { class: "plain wide", type: "button", id: "logout", onclick: (ev) => busy(ev.currentTarget, async () => {
        try { await api("POST", "/auth/logout"); } catch (e) { /* the session ends here either way */ }
        tg.clearSession(K);
        state.me = null; state.orders = [];
        renderWho();
        location.hash = "";
        showLogin();
      }) }, "退出登录"));
  }

  // ---- start -----------------------------------------------------------

  async function start() {
    wireLogin();
    $("back").addEventListener("click", () => (history.length > 1 ? history.back() : go("#/")));
    document.querySelectorAll("#tabs button").forEach((b) => b.addEventListener("click", () => go(b.dataset.tab === "home" ? "#/" : "#/" + b.dataset.tab)));
    $("items-more").addEventListener("click", () => loadItems(false));
    $("orders-more").addEventListener("click", () => loadOrders(false));
    $("sheet").addEventListener("click", (ev) => { if (ev.target.id === "sheet") closeSheet(); });
    window.addEventListener("hashchange", route);
    // Back from the mini-program's pay page, the web-view shows again: ask
    // WeChat Pay about the order being paid instead of waiting for a tap.
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState !== "visible") return;
      const m = location.hash.match(/^#\/order\/(\d+)$/);
      if (m && state.payParams[m[1]] && tg.session(K)) checkPaid({ id: m[1] }, null, 1);
    });

    try {
      const d = await optional("GET", "/demo/simulator");
      state.demo = d && d.simulator ? d : null;
    } catch (e) { state.demo = null; }
    if (state.demo) {
      $("demo-banner").classList.remove("hidden");
      $("demo-sim-link").href = state.demo.page;
    }

    // The mini-program shell opens /?code=<wx.login code>: log in with it
    // and drop it from the address (a code is good once).
    const params = new URLSearchParams(location.search);
    const code = params.get("code");
    if (code) {
      params.delete("code");
      history.replaceState(null, "", location.pathname + (params.toString() ? "?" + params : "") + location.hash);
      try { await loginWithCode(code); return; } catch (e) { fail(e); }
    }
    if (tg.session(K)) {
      try {
        state.me = (await api("GET", "/me")).member;
        renderWho();
        await loadExtras();
      } catch (e) {
        if (e.status === 401 || e.status === 403) tg.clearSession(K);
        else fail(e);
      }
    }
    route();
  }

  window.TGCustomer = { state }; // for debugging in the web-view and for tests
  start();
})();
