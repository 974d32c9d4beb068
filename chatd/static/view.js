// The page's DOM. Every string from the network goes in through textContent or a text
// node, never as HTML, so a line like <img src=x onerror=alert(1)> shows as written.

import { nameColour } from "/colour.js";
import { explainError, explainNotice, explainTooLong } from "/words.js";

const $ = (id) => document.getElementById(id);

/** An element with a class and, optionally, text (always as text). */
function el(tag, className, content) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (content !== undefined) node.textContent = content;
  return node;
}

function str(value) {
  return typeof value === "string" ? value : "";
}

function pad(n) {
  return String(n).padStart(2, "0");
}

/** A <time> in local HH:MM for a protocol time stamp (UTC, RFC 3339), or now. */
function clock(stamp) {
  const parsed = stamp ? new Date(stamp) : new Date();
  const date = Number.isNaN(parsed.getTime()) ? new Date() : parsed;
  const node = el("time", "", `${pad(date.getHours())}:${pad(date.getMinutes())}`);
  node.dateTime = date.toISOString();
  node.title = date.toLocaleString();
  return node;
}

function nameTag(name, me) {
  const node = el("span", name === me ? "name own" : "name", name);
  node.style.color = nameColour(name);
  return node;
}

export class ChatView {
  constructor() {
    this.app = $("app");
    this.logs = $("logs");
    this.logByRoom = new Map();
    this.current = null; // the <ol> of the room being shown
    this.pendingLines = new Map(); // ref -> <li>
    this.me_ = "";
    this.room_ = "";
    this.historyDivider = new Map(); // room key -> whether this history batch has its divider
    this.reconnectNote = null;
    this.onPickUser = () => {};
    this.onPickRoom = () => {};
  }

  // ------------------------------------------------------------ frame

  status(state, delay) {
    const node = $("status");
    node.dataset.state = state;
    const labels = {
      connecting: "connecting…", reconnecting: "reconnecting…", online: "online",
      waiting: "offline", offline: "offline",
    };
    node.textContent = labels[state] ?? state;
    if (this.app.dataset.screen !== "chat") {
      if (state === "waiting") $("login-error").textContent = "Cannot reach the server; trying again…";
      return;
    }
    const banner = $("banner");
    if (state === "waiting") {
      const seconds = Math.max(1, Math.round(delay / 1000));
      $("banner-text").textContent = `Connection lost. Trying again in ${seconds} s…`;
      $("retry").hidden = false;
      banner.hidden = false;
    } else if (state === "reconnecting") {
      $("banner-text").textContent = "Reconnecting…";
      $("retry").hidden = true;
      banner.hidden = false;
    } else if (state === "online") {
      banner.hidden = true;
    } else if (state === "offline") {
      $("banner-text").textContent = "You left the chat.";
      $("retry").hidden = true;
      $("rejoin").hidden = false;
      banner.hidden = false;
    }
    // Nothing typed after leaving could be sent: say so by disabling the composer.
    const left = state === "offline";
    $("input").disabled = left;
    $("send").disabled = left;
    $("input").placeholder = left ? "You left the chat" : "Message (Enter sends, /help)";
    if (left) $("rejoin").focus();
    else $("rejoin").hidden = true;
  }

  me(name) {
    this.me_ = name;
    $("me").textContent = name;
    $("me").style.color = nameColour(name);
    this.app.dataset.screen = "chat";
  }

  room(room) {
    this.room_ = room;
    $("room-title").textContent = room;
    document.title = `#${room} · chatd`;
    const key = room.toLowerCase();
    let log = this.logByRoom.get(key);
    if (log === undefined) {
      log = el("ol", "log");
      log.dataset.room = room;
      this.logByRoom.set(key, log);
      this.logs.append(log);
    }
    for (const other of this.logByRoom.values()) other.hidden = other !== log;
    this.current = log;
    this.logs.scrollTop = this.logs.scrollHeight;
    this.closeDrawer();
  }

  users(list, me) {
    const ul = $("users");
    ul.replaceChildren(...list.map((name) => {
      const button = el("button", "user");
      button.type = "button";
      button.append(nameTag(name, me));
      if (name === me) button.append(el("span", "you", " (you)"));
      else button.addEventListener("click", () => this.onPickUser(name));
      const li = el("li");
      li.append(button);
      return li;
    }));
    $("user-count").textContent = String(list.length);
  }

  rooms(list, current) {
    const rooms = list.filter((r) => r && typeof r.room === "string");
    if (!rooms.some((r) => r.room.toLowerCase() === current.toLowerCase())) {
      rooms.push({ room: current, users: 1 });
    }
    $("rooms").replaceChildren(...rooms.map(({ room, users }) => {
      const button = el("button", "room");
      button.type = "button";
      button.append(el("span", "room-name", `#${room}`),
        el("span", "count", String(Number(users) || 0)));
      const here = room.toLowerCase() === current.toLowerCase();
      if (here) button.setAttribute("aria-current", "true");
      else button.addEventListener("click", () => this.onPickRoom(room));
      const li = el("li");
      li.append(button);
      return li;
    }));
  }

  toggleDrawer() {
    const open = this.app.dataset.drawer !== "open";
    this.app.dataset.drawer = open ? "open" : "closed";
    $("menu").setAttribute("aria-expanded", String(open));
    return open;
  }

  closeDrawer() {
    this.app.dataset.drawer = "closed";
    $("menu").setAttribute("aria-expanded", "false");
  }

  loginFailed(msg, wanted) {
    this.app.dataset.screen = "login";
    $("login-error").textContent = explainError(str(msg.code), str(msg.message),
      { name: wanted.name, room: wanted.room, password: wanted.password });
    $("nick").focus();
  }

  // ------------------------------------------------------------ lines

  /** Appends to the room's log (the shown one by default), keeping the view at the bottom. */
  append(node, room) {
    const key = room ? room.toLowerCase() : "";
    const log = (key && this.logByRoom.get(key)) || this.current;
    if (log === null) return;
    const box = this.logs;
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 48;
    log.append(node);
    if (atBottom || node.classList.contains("own")) box.scrollTop = box.scrollHeight;
  }

  chat(msg, { history, missed }) {
    const name = str(msg.name);
    const li = el("li", "line message");
    if (typeof msg.id === "string") li.dataset.id = msg.id;
    if (name === this.me_) li.classList.add("own");
    if (history) li.classList.add("history");
    if (missed) li.classList.add("missed");
    const room = msg.private === true ? "" : str(msg.room);
    if (history) this.historyStart(room);
    li.append(clock(msg.time));
    if (msg.private === true) {
      li.classList.add("private");
      li.append(this.privateHead(name, str(msg.to)));
    } else {
      li.append(nameTag(name, this.me_));
    }
    li.append(el("span", "text", str(msg.message)));
    this.append(li, room);
  }

  privateHead(from, to) {
    const head = el("span", "who");
    head.append(from === this.me_ ? el("span", "name own", "you") : nameTag(from, this.me_),
      el("span", "arrow", " → "),
      to === this.me_ ? el("span", "name own", "you") : nameTag(to, this.me_));
    return head;
  }

  historyStart(room) {
    const key = (room || this.room_).toLowerCase();
    if (this.historyDivider.get(key)) return;
    this.historyDivider.set(key, true);
    this.append(this.divider(`Earlier in #${room || this.room_}`, "history-divider"), room);
  }

  historyEnd(msg) {
    this.historyDivider.set(str(msg.room).toLowerCase(), false);
  }

  divider(label, className) {
    const li = el("li", `divider ${className}`);
    li.append(el("span", "", label));
    return li;
  }

  notice(msg, { missed }) {
    const name = str(msg.name);
    const message = str(msg.message);
    const li = el("li", `line notice ${msg.type}`);
    if (typeof msg.id === "string") li.dataset.id = msg.id;
    if (missed) li.classList.add("missed");
    li.append(clock(msg.time));
    const body = el("span", "text");
    // The notice's own text, with the name in its colour when the text starts with it.
    if (name && message.startsWith(name)) {
      body.append(nameTag(name, this.me_), document.createTextNode(message.slice(name.length)));
    } else {
      body.textContent = message;
    }
    if (typeof msg.reason === "string") body.append(el("span", "reason", ` (${msg.reason})`));
    li.append(body);
    this.append(li, str(msg.room));
  }

  pending(ref, text, to, me) {
    const li = el("li", "line message own pending");
    li.dataset.ref = ref;
    const time = el("time", "", "··:··");
    time.title = "sending…";
    li.append(time, to ? this.privateHead(me, to) : nameTag(me, me), el("span", "text", text));
    if (to) li.classList.add("private");
    this.pendingLines.set(ref, li);
    this.append(li);
  }

  acked(ref, msg) {
    const li = this.pendingLines.get(ref);
    if (li === undefined) return;
    this.pendingLines.delete(ref);
    li.classList.remove("pending");
    if (typeof msg.id === "string") li.dataset.id = msg.id;
    li.querySelector("time").replaceWith(clock(msg.time));
  }

  /** One of our lines the server will not take: marked where it stands, no new row. */
  failed(ref, msg, to) {
    const li = this.pendingLines.get(ref);
    if (li === undefined) return;
    this.pendingLines.delete(ref);
    li.classList.replace("pending", "failed");
    const code = str(msg.code);
    let why = typeof msg.size === "number" ? explainTooLong(msg.size, msg.limit)
      : explainError(code, str(msg.message), { to });
    if (!/not sent|dropped/i.test(why)) why = `Not sent: ${why}`;
    const time = li.querySelector("time");
    time.textContent = "✕";
    time.title = "not sent";
    const fail = el("span", "fail", why);
    fail.append(el("span", "code", ` ${code}`));
    li.append(fail);
  }

  system(text, kind = "info", code = "") {
    const li = el("li", `line system ${kind}`);
    const body = el("span", "text", text);
    if (code) body.append(el("span", "code", ` ${code}`));
    li.append(clock(""), body);
    this.append(li);
  }

  error(msg, asked) {
    const code = str(msg.code);
    const text = explainError(code, str(msg.message), asked);
    if (this.app.dataset.screen === "chat") this.system(text, "error", code);
    else $("login-error").textContent = text; // not joined yet: there is no log to show it in
  }

  welcomeNotice(notice, name) {
    this.system(explainNotice(notice, name), "warn");
  }

  whoAll(rooms) {
    for (const entry of rooms) {
      const users = Array.isArray(entry.users) ? entry.users.filter((u) => typeof u === "string") : [];
      this.system(`#${str(entry.room)}: ${users.join(", ")}`);
    }
  }

  reconnected(resumed, rejoined = false) {
    const label = rejoined ? "Joined again" : resumed ? "Reconnected" : "Reconnected (new session)";
    this.reconnectNote = this.divider(label, "reconnect-divider");
    this.append(this.reconnectNote);
  }

  caughtUp(count) {
    if (this.reconnectNote === null) return;
    const what = count === 0 ? "nothing missed"
      : count === 1 ? "1 missed line below" : `${count} missed lines below`;
    this.reconnectNote.firstChild.textContent += ` · ${what}`;
    this.reconnectNote = null;
  }
}
