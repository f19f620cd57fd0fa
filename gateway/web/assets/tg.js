// tg.js — what every tacklegate H5 page shares: calling /api/v1 with the
// session's access token (refreshed once on 401), showing errors in Chinese,
// and the /ws live channel. No framework, no build step.
(function () {
  "use strict";
  const store = window.sessionStorage;
  const tg = {};

  // session: {access_token, refresh_token, role} kept per page (key) in
  // sessionStorage, so a customer tab and a staff tab do not mix.
  tg.session = function (key) {
    try { return JSON.parse(store.getItem("tg." + key) || "null"); } catch (e) { return null; }
  };
  tg.saveSession = function (key, s) { store.setItem("tg." + key, JSON.stringify(s)); };
  tg.clearSession = function (key) { store.removeItem("tg." + key); };

  // APIError carries the server's {"error":{"code","message"}}.
  class APIError extends Error {
    constructor(status, code, message) { super(message); this.status = status; this.code = code; }
  }
  tg.APIError = APIError;

  // api(key, method, path, body) calls /api/v1 + path. body may be an object
  // (sent as JSON) or FormData. On 401 it refreshes once and retries.
  tg.api = async function (key, method, path, body, retried) {
    const s = tg.session(key);
    const headers = {};
    let payload;
    if (body instanceof FormData) payload = body;
    else if (body !== undefined) { headers["Content-Type"] = "application/json"; payload = JSON.stringify(body); }
    if (s && s.access_token) headers["Authorization"] = "Bearer " + s.access_token;
    const res = await fetch("/api/v1" + path, { method, headers, body: payload });
    if (res.status === 401 && s && s.refresh_token && !retried) {
      const r = await fetch("/api/v1/auth/refresh", { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refresh_token: s.refresh_token }) });
      if (r.ok) { const ns = await r.json(); tg.saveSession(key, Object.assign({}, s, ns.tokens || ns)); return tg.api(key, method, path, body, true); }
      tg.clearSession(key);
    }
    const type = res.headers.get("Content-Type") || "";
    if (!res.ok) {
      let code = "http_" + res.status, msg = "请求失败 (" + res.status + ")";
      if (type.includes("json")) { try { const e = (await res.json()).error || {}; code = e.code || code; msg = e.message || msg; } catch (e) {} }
      throw new APIError(res.status, code, msg);
    }
    if (res.status === 204) return null;
    return type.includes("json") ? res.json() : res.blob();
  };

  tg.toast = function (text, ms) {
    const el = document.createElement("div");
    el.className = "toast"; el.textContent = text; el.setAttribute("role", "status");
    document.body.appendChild(el);
    setTimeout(() => el.remove(), ms || 2600);
  };

  // fen → "¥12.50"
  tg.yuan = function (fen) { return "¥" + (Number(fen || 0) / 100).toFixed(2); };
  // el("div", {class: "card"}, child, "text") — small DOM builder; text is
  // always set as text, never as HTML.
  tg.el = function (tag, attrs) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (k === "class") e.className = v;
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (let i = 2; i < arguments.length; i++) {
      const c = arguments[i];
      if (c === null || c === undefined || c === false) continue;
      if (Array.isArray(c)) c.forEach((x) => x && e.appendChild(typeof x === "string" ? document.createTextNode(x) : x));
      else e.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
    }
    return e;
  };

  // wsURL(query) → ws(s)://host/ws?query
  tg.wsURL = function (query) {
    return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws?" + query;
  };

  window.tg = tg;
})();
