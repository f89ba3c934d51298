/* omniconsole web chat widget: <script src="https://your.host/hooks/webchat/widget.js" async></script>
   Plain JavaScript, no dependencies. Text from anyone is inserted with textContent only.
   Its language: data-lang on the script tag, else the browser's (navigator.languages), else
   English; its words are WORDS below (the visitor's catalog, not the operator's), each
   overridable by data-<word> on the script tag (data-title, data-button, data-send...). */
(function () {
  "use strict";
  var me = document.currentScript;
  if (!me || window.omniconsoleChat) return;
  window.omniconsoleChat = true;
  var base = me.src.replace(/\/widget\.js([?#].*)?$/, "");
  var WORDS = {
    en: {
      button: "Chat", title: "Chat with us", placeholder: "Type a message…", send: "Send",
      contact: "your e-mail (or phone)", ok: "OK", online: "We're online", offline: "We're offline",
      typing: "Operator is typing…", unreachable: "Cannot reach the chat; trying again…",
      thanks: "Thank you, we'll answer at {address}.", "not-sent": "Not sent: {reason}", error: "error {status}"
    },
    ru: {
      button: "Чат", title: "Напишите нам", placeholder: "Напишите сообщение…", send: "Отправить",
      contact: "ваш e-mail (или телефон)", ok: "ОК", online: "Мы на связи", offline: "Сейчас мы не в сети",
      typing: "Оператор печатает…", unreachable: "Нет связи с чатом, пробуем снова…",
      thanks: "Спасибо! Мы ответим на {address}.", "not-sent": "Не отправлено: {reason}", error: "ошибка {status}"
    }
  };
  // The first of our languages among a list of tags ("ru-RU" is ru), or null.
  function pickLanguage(tags) {
    for (var i = 0; i < tags.length; i++) {
      var primary = String(tags[i] || "").toLowerCase().split(/[-_]/)[0];
      if (WORDS.hasOwnProperty(primary)) return primary;
    }
    return null;
  }
  var lang = pickLanguage([me.getAttribute("data-lang")]) ||
    pickLanguage(navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language]) || "en";
  function word(key, values) {
    var text = me.getAttribute("data-" + key) || WORDS[lang][key];
    Object.keys(values || {}).forEach(function (name) { text = text.split("{" + name + "}").join(values[name]); });
    return text;
  }
  var KEY = "omniconsole.webchat:" + base;
  var saved = {};
  try { saved = JSON.parse(localStorage.getItem(KEY) || "{}") || {}; } catch (e) { saved = {}; }
  saved.outbox = saved.outbox || [];
  function save() { try { localStorage.setItem(KEY, JSON.stringify(saved)); } catch (e) { /* private mode */ } }

  var CSS = ":host{all:initial}*{box-sizing:border-box;font:14px/1.4 system-ui,sans-serif}" +
    ".btn,.box{position:fixed;right:20px;z-index:2147483000}.btn{bottom:20px;border:0;border-radius:24px;padding:12px 18px}" +
    ".btn,.head,button.send{background:#6b4fbb;color:#fff;cursor:pointer}" +
    ".box{bottom:72px;width:340px;max-width:calc(100vw - 40px);height:460px;max-height:calc(100vh - 100px);display:none;flex-direction:column;background:#fff;border:1px solid #ccc;border-radius:10px;overflow:hidden}" +
    ".open .box{display:flex}.head{padding:10px 12px}.head b{display:block}.state,.note,.typing{font-size:12px}" +
    ".list{flex:1;overflow-y:auto;padding:10px;background:#f6f6f8}.msg{margin:6px 0;padding:7px 10px;border-radius:10px;max-width:85%;white-space:pre-wrap;word-wrap:break-word}" +
    ".visitor{margin-left:auto;background:#e3dcf7}.operator{background:#fff;border:1px solid #ddd}.pending{opacity:.6}.failed{border:1px solid #c00}" +
    ".typing{padding:0 10px;min-height:18px}.offline{padding:8px 10px;background:#fff6d5;display:none}.off .offline{display:block}" +
    "form{display:flex;gap:6px;margin-top:6px}.row{margin:0;padding:8px;border-top:1px solid #ddd}" +
    "input,textarea{flex:1;border:1px solid #bbb;border-radius:6px;padding:6px}textarea{resize:none;height:38px}button.send{border:0;border-radius:6px}" +
    ".choice{margin:0 4px 4px 0;border:1px solid #6b4fbb;border-radius:14px;padding:4px 10px;background:#fff;color:#6b4fbb}.choice:disabled{opacity:.5}";

  function el(tag, cls, text, parent) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }
  var host = el("div");
  host.id = "omniconsole-chat";
  var root = host.attachShadow({ mode: "open" });
  el("style", "", CSS, root);
  var wrap = el("div", "wrap", "", root);
  var box = el("div", "box", "", wrap);
  var button = el("button", "btn", word("button"), wrap);
  var head = el("div", "head", "", box);
  var title = el("b", "title", word("title"), head);
  var state = el("span", "state", "", head);
  var offline = el("div", "offline", "", box);
  var offlineText = el("div", "offline-text", "", offline);
  var contact = el("form", "contact", "", offline);
  var contactInput = el("input", "contact-input", "", contact);
  contactInput.placeholder = word("contact");
  contactInput.required = true;
  el("button", "send", word("ok"), contact);
  var list = el("div", "list", "", box);
  var typing = el("div", "typing", "", box);
  var row = el("form", "row", "", box);
  var input = el("textarea", "input", "", row);
  input.placeholder = word("placeholder");
  input.maxLength = 4000;
  el("button", "send", word("send"), row);
  host.lang = lang;
  (document.body || document.documentElement).appendChild(host);

  var shown = {};      // seq -> true, entries on screen
  var pending = {};    // client id -> bubble waiting for the server
  var last = 0, online = null, isTyping = null, polling = false, flushing = false, greeted = false;

  function newId() {
    return Array.from(crypto.getRandomValues(new Uint8Array(12)), function (b) { return (b + 256).toString(16).slice(1); }).join("");
  }
  function scroll() { list.scrollTop = list.scrollHeight; }
  function bubble(who, text, cls) {
    var node = el("div", "msg " + who + (cls ? " " + cls : ""), text);
    // What the server has goes above what is still on its way.
    list.insertBefore(node, cls ? null : list.querySelector(".pending"));
    scroll();
    return node;
  }
  function renderOutbox() {
    pending = {};
    saved.outbox.forEach(function (item) { if (!item.contact) pending[item.id] = bubble("visitor", item.text, "pending"); });
  }
  function note(text) { el("div", "note", text, list); scroll(); }
  function sleep(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }

  function call(method, path, body) {
    var headers = { "Content-Type": "application/json" };
    if (saved.token) headers.Authorization = "Bearer " + saved.token;
    // Every call says the visitor's language: the server answers its texts in it.
    var url = base + path + (path.indexOf("?") < 0 ? "?" : "&") + "lang=" + lang;
    return fetch(url, { method: method, headers: headers, body: body ? JSON.stringify(body) : undefined, cache: "no-store" })
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (data) { data.status = r.status; return data; });
      });
  }
  function session() {
    if (saved.token) return Promise.resolve();
    return call("POST", "/session").then(function (data) {
      if (data.status !== 200) throw new Error(data.error || "no session");
      saved.token = data.token;
      save();
      showState(data);
    });
  }
  function lostSession() {
    // The token was refused (the secret changed): start over as a new visitor.
    delete saved.token;
    save();
    list.textContent = "";
    shown = {}; last = 0; greeted = false;
    renderOutbox();
  }
  function showState(data) {
    if (data.title && !me.getAttribute("data-title")) title.textContent = data.title;
    if (data.offline_text) offlineText.textContent = data.offline_text;
    if (data.greeting && !greeted) { greeted = true; list.insertBefore(el("div", "msg operator greeting", data.greeting), list.firstChild); }
    if (typeof data.online === "boolean") {
      online = data.online;
      state.textContent = word(online ? "online" : "offline");
      wrap.classList.toggle("off", !online);
    }
    if (typeof data.typing === "boolean") {
      isTyping = data.typing;
      typing.textContent = isTyping ? word("typing") : "";
    }
  }
  function show(entry) {
    if (shown[entry.seq]) return;
    shown[entry.seq] = true;
    var mine = entry.id && pending[entry.id];
    if (mine) {
      mine.classList.remove("pending");
      delete pending[entry.id];
    } else {
      bubble(entry.from === "visitor" ? "visitor" : "operator", entry.text);
    }
    if (entry.buttons && entry.buttons.length) choices(entry.buttons);
  }
  function choices(buttons) {  // a press sends the title as words and the id; spent once pressed
    var box = el("div");
    list.insertBefore(box, list.querySelector(".pending"));
    buttons.forEach(function (b) {
      var n = el("button", "choice", String(b.title), box);
      n.setAttribute("data-button", b.id);
      n.onclick = function () { box.querySelectorAll("button").forEach(function (x) { x.disabled = true; }); send(String(b.title), String(b.id)); };
    });
  }

  function poll() {
    if (polling || !saved.token) return;
    polling = true;
    var delay = 0;
    var query = "/poll?after=" + last + (online === null ? "" : "&online=" + (online ? 1 : 0)) +
      (isTyping === null ? "" : "&typing=" + (isTyping ? 1 : 0));
    call("GET", query).then(function (data) {
      if (data.status === 401) { lostSession(); return; }
      if (data.status !== 200) { delay = 3000; return; }
      if (data.reset) { list.textContent = ""; shown = {}; greeted = false; renderOutbox(); }
      (data.messages || []).forEach(show);
      last = data.last;
      showState(data);
      if (!(data.messages || []).length) delay = 300;  // nothing new: do not spin
    }, function () { delay = 3000; }).then(function () {
      polling = false;
      if (saved.token) sleep(delay).then(poll);
    });
  }

  function flush() {
    if (flushing || !saved.outbox.length) return;
    flushing = true;
    var item = saved.outbox[0];
    var retry = 0;
    session().then(function () {
      return call("POST", item.contact ? "/contact" : "/messages", item);
    }).then(function (data) {
      var node = pending[item.id];
      if (data.status === 200) {
        if (item.contact) note(word("thanks", { address: item.email || item.phone }));
        if (node) { node.classList.remove("pending"); delete pending[item.id]; shown[data.seq] = true; }
      } else if (data.status === 401) {
        lostSession();
        retry = 100;
        return;
      } else if (data.status === 429 || data.status >= 500) {
        retry = 3000;
        return;
      } else {
        // Refused for good (too long, malformed): say why, and do not send it again.
        if (node) node.classList.add("failed");
        note(word("not-sent", { reason: data.error || word("error", { status: data.status }) }));
      }
      saved.outbox.shift();
      save();
    }, function () { retry = 3000; }).then(function () {
      flushing = false;
      poll();
      if (saved.outbox.length) sleep(retry).then(flush);
    });
  }

  function send(text, button) {
    var item = { id: newId(), text: text, page: location.href };
    if (button) item.button = button;
    saved.outbox.push(item);
    save();
    pending[item.id] = bubble("visitor", text, "pending");
    flush();
  }

  function setOpen(open) {
    wrap.classList.toggle("open", open);
    saved.open = open;
    save();
    if (open) {
      session().then(function () { return call("GET", "/status"); }).then(function (data) {
        if (data.status === 401) lostSession(); else showState(data);
        poll();
      }, function () { state.textContent = word("unreachable"); });
      input.focus();
    }
  }

  button.addEventListener("click", function () { setOpen(!wrap.classList.contains("open")); });
  row.addEventListener("submit", function (e) {
    e.preventDefault();
    var text = input.value.trim();
    if (!text) return;
    input.value = "";
    send(text);
  });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); row.requestSubmit(); }
  });
  contact.addEventListener("submit", function (e) {
    e.preventDefault();
    var value = contactInput.value.trim();
    if (!value) return;
    contactInput.value = "";
    var item = { id: newId(), contact: true };
    if (value.indexOf("@") > 0) item.email = value; else item.phone = value;
    saved.outbox.push(item);
    save();
    flush();
  });

  // Messages typed before a reload (or while offline) are still on their way.
  renderOutbox();
  if (saved.open || me.getAttribute("data-open") === "true") setOpen(true);
  else if (saved.token) poll();
  flush();
})();
