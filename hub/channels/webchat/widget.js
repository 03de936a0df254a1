/* hub web chat widget. Plain JavaScript, no dependencies, no build step.
 *
 *   <script src="https://hub.example/widget.js" data-account="ACCOUNT" async></script>
 *
 * Optional attributes: data-lang="en|vi" (default: the account's setting, else
 * the page's <html lang>, else the browser's language). window.HubChat.open() /
 * .close() open and close it.
 *
 * It lives in a shadow root, styled by a constructed stylesheet (no <style>
 * element, no style attribute, no innerHTML), so a site's own CSS does not
 * reach it and a strict Content-Security-Policy (style-src without
 * 'unsafe-inline', Trusted Types) does not break it. The site's policy must
 * allow this script (script-src) and its socket (connect-src wss://hub...).
 *
 * Everything a visitor or an agent wrote is put on screen with textContent,
 * never as HTML. The visitor token lives in localStorage, so a returning
 * visitor continues the same conversation; messages not yet acknowledged by
 * the hub are kept there too and sent again after a reconnect (the hub stores
 * each client id once). The socket reconnects with backoff and resumes from the
 * last message shown; repeats are dropped by message id. A socket that went
 * silent without closing is found by a ping and replaced. Wire protocol:
 * hub/channels/webchat/protocol.py.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.HubChat) return;
  var account = script.getAttribute("data-account");
  if (!account) { console.warn("hub chat: add data-account to the script tag"); return; }
  var base = new URL(script.src, location.href);
  var socketUrl = (base.protocol === "https:" ? "wss://" : "ws://") + base.host +
    "/webchat/" + encodeURIComponent(account) + "/socket";

  var STRINGS = {
    en: {
      open: "Open chat", close: "Close chat", placeholder: "Type your message…", send: "Send",
      online: "We're online", offline: "No one is online right now",
      offlineAsk: "Leave your email and we'll reply there.", emailPlaceholder: "you@example.com",
      emailSave: "Send", thanks: "Thanks! We'll reply to you by email.",
      prechatIntro: "Before we start, please tell us who you are.", name: "Name",
      email: "Email", phone: "Phone", start: "Start chat", skip: "Skip",
      typing: "{name} is typing…", someone: "Someone", seen: "Seen", sending: "Sending…",
      failed: "Not sent", reconnecting: "Reconnecting…", you: "You",
      tooLong: "Too long to send: {n} of at most {max} characters"
    },
    vi: {
      open: "Mở khung chat", close: "Đóng khung chat", placeholder: "Nhập tin nhắn…", send: "Gửi",
      online: "Chúng tôi đang trực tuyến", offline: "Hiện không có nhân viên trực tuyến",
      offlineAsk: "Để lại email, chúng tôi sẽ trả lời bạn qua email.",
      emailPlaceholder: "ban@example.com", emailSave: "Gửi",
      thanks: "Cảm ơn bạn! Chúng tôi sẽ trả lời qua email.",
      prechatIntro: "Trước khi bắt đầu, vui lòng cho chúng tôi biết bạn là ai.",
      name: "Họ và tên", email: "Email", phone: "Số điện thoại", start: "Bắt đầu chat",
      skip: "Bỏ qua", typing: "{name} đang soạn tin…", someone: "Nhân viên", seen: "Đã xem",
      sending: "Đang gửi…", failed: "Chưa gửi được", reconnecting: "Đang kết nối lại…",
      you: "Bạn", tooLong: "Tin nhắn quá dài: {n} ký tự, tối đa {max}"
    }
  };

  // -- storage (a page that blocks localStorage still chats, for this page view) --
  var memory = {};
  var prefix = "hubchat:" + account + ":";
  function load(key, fallback) {
    var raw;
    try { raw = localStorage.getItem(prefix + key); } catch (e) { raw = memory[key]; }
    if (raw == null) return fallback;
    try { return JSON.parse(raw); } catch (e) { return fallback; }
  }
  function save(key, value) {
    var raw = JSON.stringify(value);
    try { localStorage.setItem(prefix + key, raw); } catch (e) { memory[key] = raw; }
  }

  // -- state ------------------------------------------------------------------
  var ws = null, connected = false, everConnected = false, attempt = 0, retryTimer = null;
  var config = null, lang = "en", t = STRINGS.en;
  var agentsOnline = true, known = {}, isOpen = false, unread = 0;
  var messages = {};           // id -> view
  // [{client_id, text, kind, fields}] not yet stored. Shared by the site's
  // tabs: every change re-reads it first, so one tab never writes away another
  // tab's unsent message (closed offline, it is sent by the tab still open).
  var outbox = load("outbox", []);
  var failed = {};             // client_id -> reason (shown, not resent)
  var seenUpTo = null, seenAll = false, typingName = null, typingTimer = null;
  var sentAck = {};            // "received"/"seen" -> last up_to sent
  var typingSent = 0, errorText = "";
  // A socket can die without closing (a phone asleep, Wi-Fi to 4G): neither end
  // is told for minutes. The widget asks ("ping") when the browser is back
  // online or in view, and every PING_EVERY while in view; no frame within
  // PING_WAIT and the socket is dropped for a new one. A connection attempt
  // not welcomed within CONNECT_WAIT is dropped the same way.
  var PING_EVERY = 30000, PING_WAIT = 5000, CONNECT_WAIT = 10000;
  var lastHeard = 0, probe = null;

  function clientId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "c" + Date.now().toString(36) + Math.random().toString(36).slice(2, 12);
  }
  function ordered() {
    return Object.keys(messages).map(function (id) { return messages[id]; }).sort(function (a, b) {
      return a.at - b.at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
    });
  }
  function lastId() { var all = ordered(); return all.length ? all[all.length - 1].id : null; }
  function lastAgentId() {
    var all = ordered();
    for (var i = all.length - 1; i >= 0; i--) if (all[i].from === "agent") return all[i].id;
    return null;
  }
  function merge(view) {
    if (!view || !view.id) return false;
    var isNew = !messages[view.id];
    messages[view.id] = view;
    if (view.client_id) dropPending(view.client_id);
    return isNew;
  }
  function dropPending(id) {
    outbox = load("outbox", []);
    var kept = outbox.filter(function (p) { return p.client_id !== id; });
    if (kept.length !== outbox.length) { outbox = kept; save("outbox", outbox); }
  }

  // -- the socket ---------------------------------------------------------------
  function connect() {
    clearTimeout(retryTimer);
    retryTimer = null;
    try { ws = new WebSocket(socketUrl); } catch (e) { return scheduleReconnect(); }
    var socket = ws;
    setTimeout(function () { if (socket === ws && !connected) drop(socket, false); }, CONNECT_WAIT);
    socket.onopen = function () {
      socket.send(JSON.stringify({
        type: "hello", token: load("token", null), after: lastId(),
        page: String(location.href).slice(0, 2000)
      }));
    };
    socket.onmessage = function (event) {
      var frame;
      lastHeard = Date.now();
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      if (socket === ws) receive(frame);
    };
    socket.onclose = function () {
      if (socket !== ws) return;
      ws = null;
      connected = false;
      render();
      scheduleReconnect();
    };
  }
  function drop(socket, now) {
    // Closing a dead socket waits for a closing handshake that never comes:
    // forget it at once (its late events are ignored) and open another.
    socket.onclose = socket.onmessage = socket.onopen = null;
    try { socket.close(); } catch (e) { /* already closed */ }
    ws = null;
    connected = false;
    render();
    if (now) connect(); else scheduleReconnect();
  }
  function checkAlive() {
    if (!ws) { connect(); return; }
    if (!connected || probe) return;  // connecting: CONNECT_WAIT watches it
    var socket = ws, asked = Date.now();
    probe = setTimeout(function () {
      probe = null;
      if (socket === ws && lastHeard < asked) drop(socket, true);
    }, PING_WAIT);
    send({ type: "ping" });
  }
  function scheduleReconnect() {
    if (retryTimer) return;
    // 0.5 s, 1 s, 2 s ... up to 30 s, with jitter so a restarted hub is not
    // hit by every widget at the same instant.
    var delay = Math.min(30000, 500 * Math.pow(2, attempt)) * (0.8 + Math.random() * 0.4);
    attempt += 1;
    retryTimer = setTimeout(connect, delay);
  }
  function send(frame) {
    if (ws && connected && ws.readyState === 1) { ws.send(JSON.stringify(frame)); return true; }
    return false;
  }
  function flushOutbox() {
    outbox = load("outbox", []);
    outbox.forEach(function (p) {
      if (p.kind === "identify") send(Object.assign({ type: "identify", client_id: p.client_id }, p.fields));
      else send({ type: "message", client_id: p.client_id, text: p.text });
    });
  }
  function receive(frame) {
    switch (frame.type) {
      case "welcome":
        connected = true; everConnected = true; attempt = 0;
        save("token", frame.token);
        config = frame.config; agentsOnline = frame.agents_online; known = frame.known || {};
        chooseLanguage();
        (frame.messages || []).forEach(merge);
        build();
        flushOutbox();
        acknowledge();
        break;
      case "message":
        if (merge(frame.message) && frame.message.from === "agent") {
          if (!isOpen) unread += 1;
          typingName = null;
        }
        acknowledge();
        break;
      case "ack":
        dropPending(frame.client_id);
        merge(frame.message);
        break;
      case "identified":
        dropPending(frame.client_id);
        known = frame.known || known;
        save("identified", true);
        break;
      case "typing":
        typingName = frame.typing ? (frame.author || t.someone) : null;
        clearTimeout(typingTimer);
        if (typingName) typingTimer = setTimeout(function () { typingName = null; render(); }, 6000);
        break;
      case "seen":
        if (frame.up_to) seenUpTo = frame.up_to; else seenAll = true;
        break;
      case "availability":
        agentsOnline = frame.agents_online;
        break;
      case "error":
        onError(frame);
        break;
    }
    render();
  }
  function onError(frame) {
    var pending = frame.client_id && outbox.filter(function (p) { return p.client_id === frame.client_id; })[0];
    if (pending && (frame.code === "rate_limited" || frame.code === "unavailable")) {
      // Kept: sent again after the wait (the hub stores a client id once).
      errorText = frame.message;
      setTimeout(function () { if (send(pending.kind === "identify"
        ? Object.assign({ type: "identify", client_id: pending.client_id }, pending.fields)
        : { type: "message", client_id: pending.client_id, text: pending.text })) { errorText = ""; render(); } },
        Math.max(1, frame.retry_after || 3) * 1000);
      return;
    }
    if (pending) {
      failed[frame.client_id] = { text: pending.text || "", reason: frame.message };
      dropPending(frame.client_id);
      if (pending.kind === "identify") errorText = frame.message;
      return;
    }
    errorText = frame.message;
  }
  function acknowledge() {
    var id = lastAgentId();
    if (!id) return;
    var visible = isOpen && document.visibilityState === "visible";
    var kind = visible ? "seen" : "received";
    if (sentAck[kind] === id || (kind === "received" && sentAck.seen === id)) return;
    if (send({ type: kind, up_to: id })) sentAck[kind] = id;
  }

  // -- actions ------------------------------------------------------------------
  function queue(pending) {
    outbox = load("outbox", []);
    outbox.push(pending);
    save("outbox", outbox);
  }
  // Characters as the hub counts them (code points: an emoji is one).
  function chars(text) { return Array.from(text).length; }
  function sendText(text) {
    if (!text.trim()) return;
    if (config && chars(text) > config.max_chars) return;
    var pending = { client_id: clientId(), text: text, kind: "message", at: Date.now() };
    queue(pending);
    send({ type: "message", client_id: pending.client_id, text: text });
    render(true);
  }
  function identify(fields) {
    var pending = { client_id: clientId(), kind: "identify", fields: fields };
    queue(pending);
    send(Object.assign({ type: "identify", client_id: pending.client_id }, fields));
    render();
  }
  function setOpen(open) {
    var wasOpen = isOpen;
    isOpen = open;
    if (open) unread = 0;
    render(true);
    if (open) {
      acknowledge();
      // The first field to fill: the pre-chat form's, else the message box.
      var field = ui.slot.querySelector("input") || (!ui.compose.hidden && ui.compose.querySelector("textarea"));
      if (field) field.focus();
    } else if (wasOpen && root.activeElement) {
      // Focus was inside the closed panel: back to the launcher, not lost.
      ui.bubble.focus();
    }
  }

  // -- the view ---------------------------------------------------------------
  var host, root, ui = {};
  function chooseLanguage() {
    // The page's own language before the browser's: a Vietnamese shop's
    // visitor on an English-language phone still reads the site in Vietnamese.
    var wanted = script.getAttribute("data-lang") ||
      (config.language !== "auto" ? config.language
        : document.documentElement.lang || navigator.language || "en");
    lang = String(wanted).toLowerCase().indexOf("vi") === 0 ? "vi" : "en";
    t = STRINGS[lang];
  }
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    for (var key in attrs || {}) node.setAttribute(key, attrs[key]);
    if (text != null) node.textContent = text;
    return node;
  }
  // Fields are 16px: iOS zooms into a smaller field on focus and stays zoomed.
  var CSS =
    ":host{all:initial}[hidden]{display:none!important}*{box-sizing:border-box;font:14px/1.4 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}" +
    ".bubble{position:fixed;right:20px;bottom:calc(var(--lb,20px) + env(safe-area-inset-bottom,0px));width:56px;height:56px;border-radius:50%;border:0;cursor:pointer;" +
    "background:var(--c);color:#fff;box-shadow:0 4px 14px rgba(0,0,0,.25);z-index:2147483647;display:flex;align-items:center;justify-content:center}" +
    ".bubble svg{width:28px;height:28px;fill:#fff}.badge{position:absolute;top:-4px;right:-4px;min-width:20px;height:20px;border-radius:10px;" +
    "background:#d93025;color:#fff;font-size:12px;line-height:20px;text-align:center;padding:0 5px}" +
    ".panel{position:fixed;right:20px;bottom:calc(var(--lb,20px) + 68px);width:370px;height:min(580px,calc(100vh - var(--lb,20px) - 100px));background:#fff;border-radius:14px;" +
    "box-shadow:0 8px 30px rgba(0,0,0,.25);z-index:2147483647;display:flex;flex-direction:column;overflow:hidden;color:#1f1f1f}" +
    ":host([data-side=left]) .bubble,:host([data-side=left]) .panel{right:auto;left:20px}" +
    ".head{background:var(--c);color:#fff;padding:14px 16px;display:flex;align-items:flex-start;gap:8px}" +
    ".head div{flex:1}.title{font-weight:600;font-size:16px}.status{font-size:12px;opacity:.9;margin-top:2px}" +
    ".dot{display:inline-block;width:8px;height:8px;border-radius:50%;margin-right:6px;background:#9aa0a6}.on .dot{background:#34d399}" +
    ".x{background:none;border:0;color:#fff;font-size:22px;line-height:1;cursor:pointer;padding:0 4px}" +
    ".list{flex:1;overflow-y:auto;padding:12px;background:#f6f7f9;display:flex;flex-direction:column;gap:6px}" +
    ".row{display:flex;flex-direction:column;max-width:82%}.row.visitor{align-self:flex-end;align-items:flex-end}" +
    ".b{padding:8px 12px;border-radius:14px;white-space:pre-wrap;overflow-wrap:anywhere;background:#fff;border:1px solid #e3e5e8}" +
    ".visitor .b{background:var(--c);color:#fff;border-color:transparent}.meta{font-size:11px;color:#6b7280;margin:2px 6px}" +
    ".pending .b{opacity:.6}.failed .b{background:#fde8e8;color:#9b1c1c}.b a{color:inherit;text-decoration:underline}" +
    ".note{font-size:12px;color:#6b7280;text-align:center;padding:4px 12px}.err{color:#b42318;font-size:12px;padding:4px 12px}" +
    ".form{padding:12px;border-top:1px solid #e3e5e8;display:flex;flex-direction:column;gap:8px;background:#fff}" +
    ".form p{margin:0;color:#374151}.form input{width:100%;padding:8px 10px;border:1px solid #cfd3d8;border-radius:8px;font-size:16px}" +
    ".btns{display:flex;gap:8px}.btn{background:var(--c);color:#fff;border:0;border-radius:8px;padding:8px 14px;cursor:pointer;font-weight:600}" +
    ".btn.ghost{background:none;color:#374151}.compose{display:flex;gap:8px;padding:10px;border-top:1px solid #e3e5e8;align-items:flex-end}" +
    ".compose{flex-wrap:wrap}.compose .err{flex-basis:100%;padding:0 2px}.compose textarea{flex:1;resize:none;border:1px solid #cfd3d8;border-radius:10px;padding:8px 10px;max-height:96px;min-height:38px;font-size:16px}" +
    "@media (max-width:480px){.panel,:host([data-side=left]) .panel{left:0;right:0;bottom:0;width:100vw;height:100%;border-radius:0}" +
    // The full-screen panel has its own close button; the launcher under it
    // would only be a stray, focusable control.
    ":host([data-open]) .bubble{display:none}}";
  function icon() {
    // Built node by node: innerHTML is refused on pages with Trusted Types.
    var ns = "http://www.w3.org/2000/svg", svg = document.createElementNS(ns, "svg");
    var path = document.createElementNS(ns, "path");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    path.setAttribute("d", "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z");
    svg.appendChild(path);
    return svg;
  }
  function styleRoot() {
    // A constructed stylesheet is not an inline style to a Content-Security-
    // Policy; a <style> element is the fallback for browsers without one.
    try {
      var sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      root.adoptedStyleSheets = [sheet];
    } catch (e) {
      root.appendChild(el("style", {}, CSS));
    }
    // Page rules on the host element (div{position:relative;z-index:1},
    // transforms) would trap the fixed panel under the site's own layers.
    host.style.setProperty("all", "initial", "important");
  }
  // http(s) links in message text, up to the end of the URL: trailing
  // punctuation of the sentence (.,;:!?) and an unmatched ")" are not part of it.
  var LINK = /https?:\/\/[^\s<>"']+/gi;
  function linked(node, text) {
    var at = 0, match;
    LINK.lastIndex = 0;
    while ((match = LINK.exec(text))) {
      var url = match[0].replace(/[.,;:!?]+$/, "");
      if (/\)$/.test(url) && url.split("(").length < url.split(")").length) url = url.slice(0, -1);
      LINK.lastIndex = match.index + url.length;
      node.appendChild(document.createTextNode(text.slice(at, match.index)));
      node.appendChild(el("a", { href: url, target: "_blank", rel: "noopener noreferrer nofollow" }, url));
      at = match.index + url.length;
    }
    node.appendChild(document.createTextNode(text.slice(at)));
    return node;
  }

  function build() {
    if (host) return;
    host = el("div", { id: "hub-chat" });
    root = host.attachShadow({ mode: "open" });
    styleRoot();
    ui.bubble = el("button", { "class": "bubble", "data-part": "bubble", type: "button", "aria-expanded": "false" });
    ui.bubble.appendChild(icon());
    ui.badge = el("span", { "class": "badge", "data-part": "unread", hidden: "" });
    ui.bubble.appendChild(ui.badge);
    ui.bubble.onclick = function () { setOpen(!isOpen); };
    root.appendChild(ui.bubble);

    ui.panel = el("div", { "class": "panel", "data-part": "panel", role: "dialog", hidden: "" });
    ui.head = el("div", { "class": "head" });
    var titles = el("div");
    ui.title = titles.appendChild(el("div", { "class": "title" }));
    ui.status = titles.appendChild(el("div", { "class": "status", "data-part": "status" }));
    ui.head.appendChild(titles);
    ui.close = el("button", { "class": "x", "data-part": "close", type: "button" }, "×");
    ui.close.onclick = function () { setOpen(false); };
    ui.head.appendChild(ui.close);
    ui.panel.appendChild(ui.head);
    ui.list = ui.panel.appendChild(el("div", { "class": "list", "data-part": "list", "aria-live": "polite" }));
    ui.typing = el("div", { "class": "note", "data-part": "typing" });
    ui.notes = ui.panel.appendChild(el("div"));
    ui.slot = ui.panel.appendChild(el("div"));
    ui.compose = ui.panel.appendChild(composer());
    root.addEventListener("keydown", function (event) {
      if (isOpen && event.key === "Escape" && !event.isComposing) { event.preventDefault(); setOpen(false); }
    });
    root.appendChild(ui.panel);
    document.body.appendChild(host);
    window.addEventListener("online", checkAlive);
    window.addEventListener("storage", function (event) {
      // Another tab queued or sent something: show it (it is this visitor's).
      if (event.key === prefix + "outbox") { outbox = load("outbox", []); render(); }
    });
    document.addEventListener("visibilitychange", function () {
      acknowledge();
      if (document.visibilityState === "visible") checkAlive();
    });
    setInterval(function () { if (document.visibilityState === "visible") checkAlive(); }, PING_EVERY);
  }
  function messageRow(view, state) {
    var row = el("div", { "data-part": "message", "data-from": view.from, "data-id": view.id || "",
      "class": "row " + view.from + (state ? " " + state : "") });
    if (view.from === "agent" && view.author) row.appendChild(el("div", { "class": "meta" }, view.author));
    var bubble = linked(el("div", { "class": "b", title: view.at ? new Date(view.at).toLocaleString() : "" }), view.text || "");
    (view.attachments || []).forEach(function (file) {
      if (!/^https?:\/\//i.test(file.url)) return;
      bubble.appendChild(document.createTextNode(bubble.childNodes.length ? "\n" : ""));
      bubble.appendChild(el("a", { href: file.url, target: "_blank", rel: "noopener noreferrer nofollow" }, file.name));
    });
    row.appendChild(bubble);
    return row;
  }
  var rows = {};  // key (client id, else message id) -> { content, node, note, noteNode }
  function rowFor(key, view, state, note) {
    // A row is made again only when what it says changes; a message going from
    // "sending" to stored, or being seen, keeps its node and changes in place.
    var content = JSON.stringify([view.from, view.author || "", view.text, view.attachments || []]);
    var row = rows[key];
    if (!row || row.content !== content) {
      row = rows[key] = { content: content, node: messageRow(view, state), note: "", noteNode: null };
    }
    var node = row.node, name = "row " + view.from + (state ? " " + state : "");
    if (node.className !== name) node.className = name;
    if (node.getAttribute("data-id") !== (view.id || "")) node.setAttribute("data-id", view.id || "");
    var title = view.at ? new Date(view.at).toLocaleString() : "";
    var bubble = node.querySelector(".b");
    if (bubble.title !== title) bubble.title = title;
    var noteText = note ? note.part + ":" + note.text : "";
    if (row.note !== noteText) {
      if (row.noteNode) node.removeChild(row.noteNode);
      row.noteNode = note ? node.appendChild(el("div", { "class": "meta", "data-part": note.part }, note.text)) : null;
      row.note = noteText;
    }
    return node;
  }
  var slotKind = null;
  function render(scroll) {
    if (!host || !config) return;
    host.style.setProperty("--c", config.color);
    var launcher = config.launcher || { side: "right", bottom: 20 };
    host.style.setProperty("--lb", launcher.bottom + "px");
    host.setAttribute("data-side", launcher.side);
    host.setAttribute("data-state", connected ? "online" : everConnected ? "reconnecting" : "connecting");
    host.setAttribute("lang", lang);
    ui.bubble.setAttribute("aria-label", isOpen ? t.close : t.open);
    ui.bubble.setAttribute("aria-expanded", String(isOpen));
    host.toggleAttribute("data-open", isOpen);
    ui.badge.textContent = String(unread);
    ui.badge.hidden = !unread;
    ui.panel.hidden = !isOpen;
    if (!isOpen) return;
    ui.panel.setAttribute("aria-label", config.title[lang]);
    ui.close.setAttribute("aria-label", t.close);
    ui.title.textContent = config.title[lang];
    ui.head.className = "head" + (agentsOnline ? " on" : "");
    ui.status.textContent = "";
    ui.status.setAttribute("data-online", String(agentsOnline));
    ui.status.appendChild(el("span", { "class": "dot" }));
    ui.status.appendChild(document.createTextNode(agentsOnline ? t.online : t.offline));

    var list = ui.list, stick = scroll || list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    var wanted = [], shown = {};
    function show(key, view, state, note) { shown[key] = true; wanted.push(rowFor(key, view, state, note)); }
    if (config.greeting[lang]) show("greeting", { from: "agent", text: config.greeting[lang] }, "greeting", null);
    var all = ordered(), seenIndex = -1, lastSeenVisitor = -1;
    all.forEach(function (view, i) { if (seenAll || view.id === seenUpTo) seenIndex = i; });
    all.forEach(function (view, i) { if (view.from === "visitor" && i <= seenIndex) lastSeenVisitor = i; });
    all.forEach(function (view, i) {
      show("m:" + (view.client_id || view.id), view, "", i === lastSeenVisitor ? { part: "seen", text: t.seen } : null);
    });
    outbox.forEach(function (p) {
      if (p.kind !== "identify") show("m:" + p.client_id, { from: "visitor", text: p.text }, "pending", { part: "sending", text: t.sending });
    });
    Object.keys(failed).forEach(function (id) {
      if (failed[id].text) show("m:" + id, { from: "visitor", text: failed[id].text }, "failed",
        { part: "failed", text: t.failed + ": " + failed[id].reason });
    });
    if (typingName) {
      var typing = t.typing.replace("{name}", typingName);
      if (ui.typing.textContent !== typing) ui.typing.textContent = typing;
      wanted.push(ui.typing);
    }
    // Reconciled, not rebuilt: the list is an aria-live region, and a screen
    // reader reads out every node put into it; rebuilding it on each frame (a
    // typing notice, a receipt) would read the whole chat out again.
    wanted.forEach(function (node, i) {
      if (list.childNodes[i] !== node) list.insertBefore(node, list.childNodes[i] || null);
    });
    while (list.childNodes.length > wanted.length) list.removeChild(list.lastChild);
    Object.keys(rows).forEach(function (key) { if (!shown[key]) delete rows[key]; });
    if (stick) list.scrollTop = list.scrollHeight;

    ui.notes.textContent = "";
    if (!connected && everConnected) ui.notes.appendChild(el("div", { "class": "note", "data-part": "connection" }, t.reconnecting));
    if (errorText) ui.notes.appendChild(el("div", { "class": "err", "data-part": "error" }, errorText));

    // The form in the slot is rebuilt only when which form changes, so what
    // the visitor is typing into it survives incoming messages.
    var identified = load("identified", false) || known.email || known.phone;
    var pendingIdentify = outbox.some(function (p) { return p.kind === "identify"; });
    var mode = config.prechat.mode, kind = "";
    if (mode !== "off" && !identified && !pendingIdentify && !load("prechat-skipped", false)) kind = "prechat";
    else if (!agentsOnline && !known.email && !pendingIdentify) kind = "offline";
    else if (!agentsOnline && (known.email || pendingIdentify)) kind = "thanks";
    if (kind !== slotKind) {
      slotKind = kind;
      ui.slot.textContent = "";
      if (kind === "prechat") ui.slot.appendChild(prechatForm(mode));
      if (kind === "offline") ui.slot.appendChild(offlineForm());
      if (kind === "thanks") ui.slot.appendChild(el("div", { "class": "note", "data-part": "offline-thanks" }, t.thanks));
    }
    ui.compose.hidden = kind === "prechat" && mode === "required";
  }
  function prechatForm(mode) {
    var form = el("form", { "class": "form", "data-part": "prechat" });
    form.appendChild(el("p", {}, t.prechatIntro));
    var inputs = {};
    config.prechat.fields.forEach(function (field) {
      inputs[field] = el("input", { name: field, "aria-label": t[field], placeholder: t[field],
        type: field === "email" ? "email" : field === "phone" ? "tel" : "text", maxlength: "200" });
      form.appendChild(inputs[field]);
    });
    var buttons = el("div", { "class": "btns" });
    buttons.appendChild(el("button", { "class": "btn", type: "submit", "data-part": "prechat-submit" }, t.start));
    if (mode === "optional") {
      var skip = el("button", { "class": "btn ghost", type: "button", "data-part": "prechat-skip" }, t.skip);
      skip.onclick = function () { save("prechat-skipped", true); render(); };
      buttons.appendChild(skip);
    }
    form.appendChild(buttons);
    form.onsubmit = function (event) {
      event.preventDefault();
      var fields = {};
      Object.keys(inputs).forEach(function (k) { if (inputs[k].value.trim()) fields[k] = inputs[k].value.trim(); });
      if (!Object.keys(fields).length) return;
      errorText = "";
      identify(fields);
    };
    return form;
  }
  function offlineForm() {
    var form = el("form", { "class": "form", "data-part": "offline-form" });
    form.appendChild(el("p", {}, t.offline + ". " + t.offlineAsk));
    var email = el("input", { type: "email", name: "email", "aria-label": t.email, placeholder: t.emailPlaceholder, maxlength: "320" });
    form.appendChild(email);
    form.appendChild(el("button", { "class": "btn", type: "submit", "data-part": "offline-submit" }, t.emailSave));
    form.onsubmit = function (event) {
      event.preventDefault();
      if (email.value.trim()) { errorText = ""; identify({ email: email.value.trim() }); }
    };
    return form;
  }
  function composer() {
    var box = el("form", { "class": "compose" });
    // No maxlength: it cuts a pasted text short without a word. Too long, the
    // text stays in the box and says by how much, for the visitor to shorten.
    var input = el("textarea", { rows: "1", "data-part": "input", "aria-label": t.placeholder,
      placeholder: t.placeholder, "aria-describedby": "hub-too-long" });
    var tooLong = el("div", { "class": "err", id: "hub-too-long", "data-part": "too-long", role: "alert", hidden: "" });
    var idle = null;
    function fits() {
      var count = chars(input.value), ok = count <= config.max_chars;
      tooLong.hidden = ok;
      tooLong.textContent = ok ? "" : t.tooLong.replace("{n}", count).replace("{max}", config.max_chars);
      input.setAttribute("aria-invalid", String(!ok));
      return ok;
    }
    function grow() {
      // As tall as its text, up to the CSS max-height (then it scrolls).
      input.style.height = "auto";
      input.style.height = input.scrollHeight + 2 + "px";
    }
    input.oninput = function () {
      fits();
      grow();
      var now = Date.now();
      if (now - typingSent > 2000) { typingSent = now; send({ type: "typing", typing: true }); }
      // Stopped typing without sending: say so, rather than "typing…" for ever.
      clearTimeout(idle);
      idle = setTimeout(function () { typingSent = 0; send({ type: "typing", typing: false }); }, 5000);
    };
    input.onkeydown = function (event) {
      // The Enter that commits an IME word (Telex, VNI) is not a send: Chromium
      // says isComposing, Safari only keyCode 229.
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
        event.preventDefault(); submit();
      }
    };
    function submit() {
      var text = input.value;
      if (!text.trim() || !fits()) return;
      input.value = "";
      grow();
      typingSent = 0;
      clearTimeout(idle);
      send({ type: "typing", typing: false });
      sendText(text);
      input.focus();
    }
    box.onsubmit = function (event) { event.preventDefault(); submit(); };
    box.appendChild(tooLong);
    box.appendChild(input);
    box.appendChild(el("button", { "class": "btn", type: "submit", "data-part": "send" }, t.send));
    return box;
  }

  window.HubChat = { open: function () { setOpen(true); }, close: function () { setOpen(false); } };
  connect();
})();
