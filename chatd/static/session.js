// The protocol side of the page (PROTOCOL.txt): one WebSocket at a time, one JSON object
// per message; join, refs and acks, rooms, and catching up after a drop (section 10).
// No DOM here: what happens is told to `view` (view.js).

import { localTimes, untilWords } from "/words.js";

const BACKOFF_MS = [250, 1000, 2000, 4000, 8000, 15000];
const PAGE = 100; // history lines a request (the protocol's maximum)
const FATAL_BEFORE_JOIN = new Set(["bad_name", "bad_room", "bad_field", "auth_failed", "banned"]);
// An operator removed us (PROTOCOL.txt 15.2, 15.3): coming back on our own would undo it.
const REMOVED = new Set(["kicked", "banned"]);
const EARLIER_PAGE = 50; // lines a "load earlier lines" click brings
const RECENT_PAGE = 10; // lines /history brings without a number (as in nc)
const MAX_LINE_BYTES = 65536; // PROTOCOL.txt 1.4, unless the welcome says otherwise
const encoder = new TextEncoder();
// What survives a reload of the tab: the session to resume (this tab only) and the
// nickname (every tab, every visit).
const SAVED_SESSION = "chatd.session";
export const SAVED_NICK = "chatd.nick";
// A close code the server treats as a lost connection (PROTOCOL.txt 13.4), not a leave:
// the session is held, and the reloaded page resumes it unannounced.
const CLOSE_HOLD = 4000;

export class Session {
  constructor(url, view) {
    this.url = url;
    this.view = view;
    this.ws = null;
    this.wanted = { name: "", room: "", password: "" };
    this.name = "";
    this.room = "";
    this.users = [];
    this.opers = []; // operators in this room (PROTOCOL.txt 15.1)
    this.topic = ""; // of this room (15.5)
    this.token = "";
    this.askedResume = false; // the last connect carried a resume token (10.2)
    this.lastId = null; // the last update received, quoted back on resume
    this.seen = new Set(); // lines shown (seenKey): replays and pages never repeat one
    this.pending = new Map(); // ref -> {text, to}: own lines not acknowledged yet
    // Refs sent on this socket and not answered, oldest first: the server answers lines in
    // order, so an error without a ref (line_too_long cannot read one) is the oldest's.
    this.inflight = [];
    this.maxLineBytes = MAX_LINE_BYTES;
    this.asked = {}; // what the last join or nick asked for, to explain its error
    this.earlierRoom = null; // a history "before" request on its way (3.8)
    this.earlierBatch = [];
    this.recentRoom = null; // a typed /history on its way
    this.recentBatch = [];
    this.roomsAsked = false; // a typed /rooms: its answer is also said in the log
    this.removal = null; // {code, message} when an operator removed us
    this.restoring = false; // resuming a session saved before a reload
    this.refs = 0;
    this.joined = false; // a welcome came on the current socket
    this.everJoined = false;
    // Catching up after a reconnect: "replay" (resumed: wait for our ping's pong),
    // "skip" (a fresh session: keep its join history aside, wait for our own join notice),
    // "paging" (fetch history after lastId, page by page). null when live.
    this.sync = null;
    this.pageAfter = null;
    this.paged = 0;
    this.joinBatch = [];
    this.missed = 0;
    this.attempt = 0;
    this.timer = 0;
    this.stopped = false; // the user left, or the server refused us for good
    this.roomsTimer = 0;
  }

  start(name, room, password) {
    this.wanted = { name, room, password };
    this.stopped = false;
    this.open();
  }

  /** Resumes the session this tab had before a reload, if it saved one. */
  restore() {
    let saved;
    try {
      saved = JSON.parse(sessionStorage.getItem(SAVED_SESSION) ?? "null");
    } catch {
      saved = null;
    }
    if (!saved || typeof saved.token !== "string" || !saved.token) return false;
    this.wanted = { name: text(saved.name), room: text(saved.room), password: "" };
    this.token = saved.token;
    this.lastId = typeof saved.lastId === "string" ? saved.lastId : null;
    this.restoring = true;
    this.stopped = false;
    this.open();
    return true;
  }

  save() {
    try {
      if (this.token && !this.stopped) {
        sessionStorage.setItem(SAVED_SESSION, JSON.stringify(
          { token: this.token, name: this.name, room: this.room, lastId: this.lastId }));
      } else {
        sessionStorage.removeItem(SAVED_SESSION);
      }
    } catch {
      // Storage may be off (private mode): a reload is then a new session.
    }
  }

  /** The page is going away (reload, another page, tab closed): keep the session. */
  hold() {
    if (this.ws === null || !this.joined || this.stopped) return;
    this.save();
    this.ws.close(CLOSE_HOLD, "page hidden");
  }

  open() {
    clearTimeout(this.timer);
    this.timer = 0;
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch {
      this.dropped();
      return;
    }
    this.ws = ws;
    this.joined = false;
    this.inflight = [];
    this.earlierRoom = null;
    this.erred = false; // an error line came on this socket
    this.view.status(this.everJoined ? "reconnecting" : "connecting");
    ws.onopen = () => this.send(this.connectLine());
    ws.onmessage = (event) => {
      if (this.ws !== ws || typeof event.data !== "string") return;
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        return;
      }
      if (msg !== null && typeof msg === "object" && typeof msg.type === "string") {
        this.handle(msg);
      }
    };
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      // A clean close from the server that no error line explains: another connection
      // resumed this session (10.3), e.g. a duplicated tab. Taking it back at once would
      // start a tug of war between the two.
      if (event.code === 1000 && this.joined && !this.stopped && !this.erred) {
        this.stopped = true;
        this.elsewhere = true;
        this.view.elsewhere();
      }
      this.dropped();
    };
  }

  connectLine() {
    const line = { type: "connect" };
    const name = this.name || this.wanted.name.trim();
    const room = this.room || this.wanted.room.trim();
    if (name) line.name = name;
    if (room) line.room = room;
    if (this.wanted.password) line.password = this.wanted.password;
    this.askedResume = Boolean(this.token);
    if (this.token) {
      line.resume = this.token;
      if (this.lastId !== null) line.last_id = this.lastId;
    }
    return line;
  }

  dropped() {
    this.joined = false;
    this.sync = null;
    if (this.stopped) {
      this.view.status("offline");
      return;
    }
    const base = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    const delay = Math.round(base * (0.75 + Math.random() / 2)); // spread a crowd's retries
    this.attempt += 1;
    this.timer = setTimeout(() => this.open(), delay);
    this.view.status("waiting", delay);
  }

  /** Skips the wait before the next attempt (a button, the browser coming online). */
  retryNow() {
    if (this.timer) this.open();
  }

  send(line) {
    if (this.ws !== null && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(line));
      return true;
    }
    return false;
  }

  live() {
    return this.joined && this.sync === null;
  }

  // ------------------------------------------------------------ what the user does

  say(text, to) {
    this.refs += 1;
    const ref = `w${this.refs}`;
    const entry = to ? { text, to } : { text };
    this.pending.set(ref, entry);
    this.view.pending(ref, text, to, this.name);
    if (this.live()) this.transmit(ref, entry);
    else this.checkSize(ref, entry); // refuse it now rather than after the reconnect
    return ref;
  }

  /** Sends one of our lines, unless it is longer than the server takes (8.1). */
  transmit(ref, entry) {
    if (!this.checkSize(ref, entry)) return;
    if (this.send(messageLine(ref, entry))) this.inflight.push(ref);
  }

  /** {size, limit} when a line to say is longer than the server takes, else null. */
  oversize(text, to) {
    const size = encoder.encode(JSON.stringify(messageLine(`w${this.refs + 1}`,
      to ? { text, to } : { text }))).length;
    return size > this.maxLineBytes ? { size, limit: this.maxLineBytes } : null;
  }

  checkSize(ref, entry) {
    const size = encoder.encode(JSON.stringify(messageLine(ref, entry))).length;
    if (size <= this.maxLineBytes) return true;
    this.pending.delete(ref);
    this.view.failed(ref, { code: "line_too_long", size, limit: this.maxLineBytes });
    return false;
  }

  join(room) {
    this.asked = { room };
    return this.live() && this.send({ type: "join", room });
  }

  nick(name) {
    this.asked = { name };
    return this.live() && this.send({ type: "nick", name });
  }

  /** Asks for the page of lines before the oldest one shown in `room`. */
  earlier(room) {
    if (!this.live() || this.earlierRoom !== null || !sameRoom(room, this.room)) return false;
    const before = this.view.oldestId(room);
    if (before === null) return false;
    this.earlierRoom = room;
    this.earlierBatch = [];
    return this.send({ type: "history", before, limit: EARLIER_PAGE });
  }

  /**
   * After /quit or a kick: the same name and room again, as a fresh session; after the
   * session went to another tab: the session itself, taken back.
   */
  rejoin() {
    if (!this.stopped || this.ws !== null) return;
    this.stopped = false;
    if (this.elsewhere) {
      this.elsewhere = false;
    } else {
      this.token = "";
      this.rejoining = true;
    }
    this.open();
  }

  /** The last `limit` lines of the room, shown again (typed /history). */
  recent(limit = RECENT_PAGE) {
    if (!this.live() || this.recentRoom !== null) return false;
    this.recentRoom = this.room;
    this.recentBatch = [];
    return this.send({ type: "history", limit });
  }

  /** The rooms, said in the log too (typed /rooms). */
  listRooms() {
    this.roomsAsked = this.live() && this.send({ type: "rooms" });
    return this.roomsAsked;
  }

  who(all) {
    return this.live() && this.send(all ? { type: "who", all: true } : { type: "who" });
  }

  refreshRooms(soon = false) {
    if (soon) {
      clearTimeout(this.roomsTimer);
      this.roomsTimer = setTimeout(() => this.refreshRooms(), 400); // one ask for a burst
      return;
    }
    if (this.live()) this.send({ type: "rooms" });
  }

  leave() {
    this.stopped = true;
    this.save();
    clearTimeout(this.timer);
    if (!this.send({ type: "disconnect" })) this.view.status("offline");
  }

  // ------------------------------------------------------------ what the server says

  handle(msg) {
    switch (msg.type) {
      case "welcome": return this.welcome(msg);
      case "message": return this.chat(msg);
      case "connect":
      case "disconnect":
      case "nick": return this.notice(msg);
      case "ack": return this.ack(msg);
      case "who": return this.whoList(msg);
      case "rooms": return this.roomList(msg);
      case "history_end": return this.historyEnd(msg);
      case "error": return this.error(msg);
      case "ping": return this.send({ type: "pong" });
      case "pong": return this.sync === "replay" ? this.synced() : undefined;
      case "shutdown":
        return this.view.system(text(msg.message) || "server shutting down", "warn");
      case "topic": return this.topicLine(msg);
      case "oper": return this.operLine(msg);
      case "notice": return this.view.system(localTimes(text(msg.message)), "warn");
      case "bans": return this.banList(msg);
      case "whois":
        return this.view.system(`${text(msg.name)} is in #${text(msg.room)}` +
          (msg.oper === true ? " (operator)." : "."));
      default: return undefined; // PROTOCOL.txt 12: ignore what is not known
    }
  }

  welcome(msg) {
    const reconnect = this.everJoined;
    const wasOper = reconnect && this.opers.includes(this.name);
    const oldName = this.name;
    const restored = this.restoring && msg.resumed === true;
    this.restoring = false;
    this.joined = this.everJoined = true;
    this.attempt = 0;
    this.name = text(msg.name);
    if (msg.resume) this.token = text(msg.resume);
    const limit = msg.max_line_bytes;
    this.maxLineBytes = Number.isInteger(limit) && limit > 0 ? limit : MAX_LINE_BYTES;
    this.view.me(this.name);
    this.setRoom(text(msg.room));
    this.opers = names(msg.opers);
    this.setTopic(text(msg.topic));
    this.setUsers(msg.users);
    this.view.status("online");
    this.missed = 0;
    this.save();
    if (restored) {
      // A reload: the room's latest lines fill the empty page (a replay brings only what
      // came after the page went, and our own lines only as acks).
      this.sync = "restore";
      this.restoreBatch = [];
      this.send({ type: "history", limit: PAGE / 2 });
    } else if (!reconnect) {
      this.synced(false);
    } else if (msg.resumed === true) {
      // The replay (10.2) was queued before our ping is even read: its pong ends it.
      this.sync = "replay";
      this.view.reconnected(true);
      this.send({ type: "ping" });
    } else {
      // A fresh session (10.4): its join history may skip lines; ask for all after lastId.
      this.sync = "skip";
      this.view.reconnected(false, this.rejoining);
      this.rejoining = false;
      this.pageAfter = this.lastId;
      this.paged = 0;
      this.joinBatch = [];
      if (this.pageAfter !== null) this.send({ type: "history", after: this.pageAfter, limit: PAGE });
    }
    // A failed resume after a drop is said by the reconnect line itself (10.4); a notice
    // is news only when something else went unlike asked (the name, say).
    const said = reconnect && msg.resumed !== true && this.name === oldName;
    if (msg.notice && !said) {
      this.view.welcomeNotice(text(msg.notice), this.name,
        this.askedResume === true && msg.resumed !== true);
    }
    if (wasOper && !this.opers.includes(this.name)) this.view.operLost();
  }

  chat(msg) {
    const history = msg.history === true;
    if (history && this.recentRoom !== null && sameRoom(msg.room, this.recentRoom)) {
      this.recentBatch.push(msg); // a typed /history, shown at history_end
      return;
    }
    if (history && this.earlierRoom !== null && sameRoom(msg.room, this.earlierRoom)) {
      this.earlierBatch.push(msg); // what a "before" request brought, shown at history_end
      return;
    }
    if (this.isSeen(msg)) return;
    if (history && this.sync === "skip") {
      this.joinBatch.push(msg); // used only if the pages after lastId bring nothing
      return;
    }
    if (history && this.sync === "paging") {
      this.paged += 1;
      if (typeof msg.id === "string") this.pageAfter = msg.id;
    }
    this.show(msg, history);
  }

  show(msg, history) {
    if (this.sync === "restore" && !history) {
      this.restoreBatch.push(msg); // the replay: after the history page, if not in it
      return;
    }
    const catching = this.sync !== null && this.sync !== "restore";
    if (catching && msg.name === this.name && !msg.private && this.settle(msg)) return;
    this.markSeen(msg);
    if (!history && typeof msg.id === "string") this.lastId = msg.id;
    if (catching) this.missed += 1;
    this.view.chat(msg, { history: history && !catching, missed: catching });
  }

  /** A line of ours the server took but whose ack was lost with the connection. */
  settle(msg) {
    for (const [ref, entry] of this.pending) {
      if (!entry.to && entry.text === msg.message) {
        this.markSeen(msg);
        this.pending.delete(ref);
        this.view.acked(ref, msg);
        return true;
      }
    }
    return false;
  }

  notice(msg) {
    if (this.isSeen(msg)) return;
    this.markSeen(msg);
    if (typeof msg.id === "string") this.lastId = msg.id;
    const name = text(msg.name);
    if (msg.type === "connect" && name === this.name) {
      this.setRoom(text(msg.room));
      if (this.sync === "skip") {
        // Our own join after a server restart is no news; the missed lines come next.
        if (this.pageAfter !== null) this.sync = "paging";
        else this.caughtUp();
        return;
      }
    }
    if (msg.room === undefined || sameRoom(msg.room, this.room)) {
      if (msg.type === "disconnect") this.opers = this.opers.filter((u) => u !== name);
      if (msg.type === "nick" && this.opers.includes(msg.old)) {
        this.opers = [...this.opers.filter((u) => u !== msg.old), name];
      }
      if (msg.type === "connect") this.setUsers([...this.users.filter((u) => u !== name), name]);
      else if (msg.type === "disconnect") this.setUsers(this.users.filter((u) => u !== name));
      else this.setUsers(this.users.map((u) => (u === msg.old ? name : u)));
    }
    if (msg.type === "nick" && msg.old === this.name) {
      this.name = name;
      this.view.me(name);
      this.save();
      rememberNick(name);
    }
    this.view.notice(msg, { missed: this.sync !== null });
    this.refreshRooms(true);
  }

  ack(msg) {
    this.markSeen(msg); // the line itself may come back in history
    if (typeof msg.id === "string") this.lastId = msg.id;
    this.answered(msg.ref);
    if (this.pending.delete(msg.ref)) this.view.acked(msg.ref, msg);
  }

  answered(ref) {
    const at = this.inflight.indexOf(ref);
    if (at >= 0) this.inflight.splice(at, 1);
  }

  whoList(msg) {
    if (msg.all === true) {
      this.view.whoAll(Array.isArray(msg.rooms) ? msg.rooms : []);
      return;
    }
    if (!sameRoom(msg.room, this.room)) this.setTopic(""); // a move: its topic comes next
    this.setRoom(text(msg.room));
    this.opers = names(msg.opers);
    this.setUsers(msg.users);
  }

  // ------------------------------------------------------------ moderation (PROTOCOL.txt 15)

  topicLine(msg) {
    if (sameRoom(msg.room, this.room)) this.setTopic(text(msg.topic));
    if (!text(msg.name)) return; // the topic of a room moved into: the header shows it
    this.operLine(msg);
  }

  /** A room notice with an id (someone became an operator, a topic change). */
  operLine(msg) {
    if (this.isSeen(msg)) return;
    this.markSeen(msg);
    if (typeof msg.id === "string") this.lastId = msg.id;
    if (msg.type === "oper" && sameRoom(msg.room, this.room)) {
      this.opers = [...this.opers.filter((u) => u !== text(msg.name)), text(msg.name)];
      this.setUsers(this.users);
    }
    this.view.notice(msg, { missed: this.sync !== null });
  }

  roomList(msg) {
    const rooms = Array.isArray(msg.rooms) ? msg.rooms : [];
    this.view.rooms(rooms);
    if (this.roomsAsked) this.view.roomLines(rooms, msg.more);
    this.roomsAsked = false;
  }

  banList(msg) {
    const bans = Array.isArray(msg.bans) ? msg.bans.filter((b) => b && typeof b === "object") : [];
    if (!bans.length) this.view.system("No bans are in force.");
    for (const ban of bans) {
      const until = text(ban.until) ? untilWords(text(ban.until)) : "permanent";
      const why = text(ban.reason) ? ` (${text(ban.reason)})` : "";
      this.view.system(`${text(ban.kind)} ${text(ban.target)}: ${until}, by ${text(ban.by)}${why}`);
    }
  }

  setTopic(topic) {
    this.topic = topic;
    this.view.topic(topic);
  }

  historyEnd(msg) {
    if (this.recentRoom !== null && sameRoom(msg.room, this.recentRoom)) {
      this.view.recent(this.recentRoom, this.recentBatch);
      this.recentRoom = null;
      this.recentBatch = [];
      return;
    }
    if (this.earlierRoom !== null && sameRoom(msg.room, this.earlierRoom)) {
      const fresh = this.earlierBatch.filter((line) => !this.isSeen(line));
      for (const line of fresh) this.markSeen(line);
      this.view.prependEarlier(this.earlierRoom, fresh, msg.more === true);
      this.earlierRoom = null;
      this.earlierBatch = [];
      return;
    }
    if (this.sync === "skip") return;
    if (this.sync === "restore") {
      this.sync = null;
      this.view.historyEnd(msg);
      for (const line of this.restoreBatch) if (!this.isSeen(line)) this.show(line, false);
      this.restoreBatch = [];
      this.synced(false);
      return;
    }
    if (this.sync === "paging") {
      if (msg.more === true && msg.count > 0) {
        this.send({ type: "history", after: this.pageAfter, limit: PAGE });
      } else {
        this.caughtUp();
      }
      return;
    }
    this.view.historyEnd(msg);
  }

  error(msg) {
    this.erred = true;
    const code = text(msg.code);
    const ref = typeof msg.ref === "string" ? msg.ref
      : code === "line_too_long" ? this.inflight[0] : undefined;
    if (ref !== undefined) this.answered(ref);
    if (ref !== undefined && this.pending.has(ref)) {
      const entry = this.pending.get(ref);
      this.pending.delete(ref);
      this.view.failed(ref, msg, entry.to);
      return;
    }
    if (code === "auth_failed" || code === "auth_throttled"
      || (!this.joined && FATAL_BEFORE_JOIN.has(code))) {
      // Trying again would fail the same way: back to the login form.
      this.stopped = true;
      this.ws?.close();
      this.everJoined = false;
      this.token = "";
      this.view.loginFailed(msg, this.wanted);
      return;
    }
    if (this.joined && REMOVED.has(code)) {
      this.stopped = true; // the server closes the connection next; no reconnecting
      this.token = "";
      this.save();
      this.view.removed(code, text(msg.message), msg);
      return;
    }
    if (this.sync === "paging" && code === "bad_id") {
      this.caughtUp(); // a server that does not know our last id
      return;
    }
    this.view.error(msg, this.asked);
  }

  /** The end of a fresh session's catch-up (welcome with resumed false after a drop). */
  caughtUp() {
    if (this.paged === 0) {
      // Nothing after our last id. A server restarted without --history-db numbers its
      // lines afresh, so what it has for us is in the join history we kept aside.
      for (const msg of this.joinBatch) if (!this.isSeen(msg)) this.show(msg, true);
    }
    this.joinBatch = [];
    this.synced();
  }

  synced(reconnect = true) {
    this.sync = null;
    if (reconnect) this.view.caughtUp(this.missed);
    for (const [ref, entry] of this.pending) this.transmit(ref, entry);
    this.refreshRooms();
  }

  isSeen(msg) {
    const key = seenKey(msg);
    return key !== null && this.seen.has(key);
  }

  markSeen(msg) {
    const key = seenKey(msg);
    if (key !== null) this.seen.add(key);
  }

  setRoom(room) {
    if (room && room !== this.room) {
      this.room = room;
      this.view.room(room);
      this.save();
    }
  }

  setUsers(users) {
    this.users = Array.isArray(users) ? users.filter((u) => typeof u === "string") : [];
    this.view.users(this.users, this.name, this.opers);
  }
}

export function rememberNick(name) {
  try {
    localStorage.setItem(SAVED_NICK, name);
  } catch {
    // no storage: the form starts empty next time
  }
}

export function rememberedNick() {
  try {
    return localStorage.getItem(SAVED_NICK) ?? "";
  } catch {
    return "";
  }
}

function messageLine(ref, entry) {
  const line = { type: "message", message: entry.text, ref };
  if (entry.to) line.to = entry.to;
  return line;
}

/** A line's identity: its id, and its time in case a restarted server reuses the id. */
function seenKey(msg) {
  return typeof msg.id === "string" ? `${msg.id} ${text(msg.time)}` : null;
}

function names(value) {
  return Array.isArray(value) ? value.filter((u) => typeof u === "string") : [];
}

function text(value) {
  return typeof value === "string" ? value : "";
}

function sameRoom(a, b) {
  return typeof a === "string" && a.toLowerCase() === b.toLowerCase();
}
