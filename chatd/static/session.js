// The protocol side of the page (PROTOCOL.txt): one WebSocket at a time, one JSON object
// per message; join, refs and acks, the rooms one is in (section 17: several at once, each
// line naming its room), and catching up after a drop (section 10).
// No DOM here: what happens is told to `view` (view.js).

import { localTimes, untilWords } from "/words.js";

const BACKOFF_MS = [250, 1000, 2000, 4000, 8000, 15000];
const PAGE = 100; // history lines a request (the protocol's maximum)
const FATAL_BEFORE_JOIN = new Set(["bad_name", "bad_room", "bad_field", "auth_failed", "banned",
  "login_failed", "login_throttled", "account_required", "too_many_devices", "accounts_busy"]);
const READ_EVERY_MS = 1000; // read markers sent at most this often per room (PROTOCOL.txt 18.5)
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
// An account's login token (PROTOCOL.txt 18.3), per server; never its password.
const SAVED_LOGIN = "chatd.login";
// A close code the server treats as a lost connection (PROTOCOL.txt 13.4), not a leave:
// the session is held, and the reloaded page resumes it unannounced.
const CLOSE_HOLD = 4000;

export class Session {
  constructor(url, view) {
    this.url = url;
    this.view = view;
    this.ws = null;
    this.wanted = { name: "", room: "", password: "", login: "" };
    this.name = "";
    this.host = new URL(url).host;
    this.account = ""; // the account we are logged in to (the welcome's), or ""
    this.usedToken = false; // the last connect carried a saved login token
    this.markers = new Map(); // room key -> the read marker's id we know of (18.5)
    this.readSent = new Map(); // room key -> when a read line last went
    this.readTimers = new Map(); // room key -> a read line waiting for its second
    this.version = 1; // the welcome's (PROTOCOL.txt 12): 2 knows several rooms at once
    // The rooms we are in, in joining order: key -> {name, users, opers, topic}; and what a
    // `who` told of a room being joined, until our own join notice makes it ours.
    this.rooms = new Map();
    this.joining = new Map(); // key -> {show, info}: joins sent and not answered yet
    this.room = ""; // the room the page talks in: the one shown, or the last one shown
    this.serverRoom = ""; // the server's current room (where a line without "room" goes)
    this.lostRooms = []; // rooms to join again after the server lost our session (10.4)
    this.whoAsked = new Set(); // rooms not ours whose members were asked for (typed /who)
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

  start(name, room, password, login = "") {
    this.wanted = { name, room, password, login };
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
    this.wanted = { name: text(saved.name), room: text(saved.room), password: "", login: "" };
    this.savedRooms = names(saved.rooms);
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
          { token: this.token, name: this.name, room: this.room, rooms: this.roomNames(),
            lastId: this.lastId }));
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
    // A password typed now, else the token a password login left (a reload, a restart
    // of the server, a later visit) when the name is that account's.
    const saved = loadLogin(this.host);
    this.usedToken = false;
    if (this.wanted.login) {
      line.login = this.wanted.login;
    } else if (saved !== null && name && name.toLowerCase() === saved.account.toLowerCase()) {
      line.login_token = saved.token;
      this.usedToken = true;
    }
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

  /** A chat line: private when `to` is given, else to `room` (the page's room by default). */
  say(text, to, room = this.room) {
    this.refs += 1;
    const ref = `w${this.refs}`;
    const entry = to ? { text, to } : { text, room };
    this.pending.set(ref, entry);
    this.view.pending(ref, text, to, this.name, entry.room);
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
  oversize(text, to, room = this.room) {
    const size = encoder.encode(JSON.stringify(messageLine(`w${this.refs + 1}`,
      to ? { text, to } : { text, room }))).length;
    return size > this.maxLineBytes ? { size, limit: this.maxLineBytes } : null;
  }

  checkSize(ref, entry) {
    const size = encoder.encode(JSON.stringify(messageLine(ref, entry))).length;
    if (size <= this.maxLineBytes) return true;
    this.pending.delete(ref);
    this.view.failed(ref, { code: "line_too_long", size, limit: this.maxLineBytes });
    return false;
  }

  /**
   * Goes to `room`: shown at once if it is one of ours (not the one shown: joining that
   * again is the server's already_in_room), else joined (it then comes on screen).
   */
  join(room) {
    if (this.goTo(room, false)) return true;
    this.asked = { room };
    if (!this.live() || !this.send({ type: "join", room })) return false;
    this.joining.set(key(room), { show: true, info: null });
    return true;
  }

  /** Shows one of our rooms, the server's current room following; false if not ours. */
  goTo(room, evenShown = true) {
    const mine = this.rooms.get(key(room));
    if (mine === undefined || (!evenShown && sameRoom(this.view.shownRoom(), mine.name))) {
      return false;
    }
    this.switchTo(mine.name);
    this.view.showRoom(mine.name);
    return true;
  }

  /** Leaves one room (PROTOCOL.txt 17); the others stay. */
  part(room = this.room) {
    this.asked = { room, part: true };
    return this.live() && this.send({ type: "part", room });
  }

  /** The page now talks in `room`: the server's current room follows (harmless if it is). */
  switchTo(room) {
    if (!room || !this.rooms.has(key(room))) return;
    this.room = this.rooms.get(key(room)).name;
    this.save();
    if (this.version >= 2 && this.live() && !sameRoom(this.serverRoom, this.room)
        && this.send({ type: "switch", room: this.room })) {
      this.serverRoom = this.room;
    }
  }

  roomNames() {
    return [...this.rooms.values()].map((r) => r.name);
  }

  /** Whether we are an operator (the status is the user's, shown in every room's list). */
  isOper() {
    return [...this.rooms.values()].some((r) => r.opers.includes(this.name));
  }

  nick(name) {
    this.asked = { name };
    return this.live() && this.send({ type: "nick", name });
  }

  /** Asks for the page of lines before the oldest one shown in `room`. */
  earlier(room) {
    if (!this.live() || this.earlierRoom !== null || !this.rooms.has(key(room))) return false;
    const before = this.view.oldestId(room);
    if (before === null) return false;
    this.earlierRoom = room;
    this.earlierBatch = [];
    return this.send(this.inRoom({ type: "history", before, limit: EARLIER_PAGE }, room));
  }

  /** A line about one room: it names the room when the server knows several (17). */
  inRoom(line, room) {
    if (this.version >= 2 && room) line.room = room;
    return line;
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
    if (!this.live() || this.recentRoom !== null || !this.room) return false;
    this.recentRoom = this.room;
    this.recentBatch = [];
    return this.send(this.inRoom({ type: "history", limit }, this.room));
  }

  /** The rooms, said in the log too (typed /rooms). */
  listRooms() {
    this.roomsAsked = this.live() && this.send({ type: "rooms" });
    return this.roomsAsked;
  }

  /** Who is in a room (ours by default; any room may be asked), or `all` of them. */
  who(all, room = "") {
    const line = all ? { type: "who", all: true } : this.inRoom({ type: "who" }, room || this.room);
    if (room && !this.rooms.has(key(room))) this.whoAsked.add(key(room));
    return this.live() && this.send(line);
  }

  refreshRooms(soon = false) {
    if (soon) {
      clearTimeout(this.roomsTimer);
      this.roomsTimer = setTimeout(() => this.refreshRooms(), 400); // one ask for a burst
      return;
    }
    if (this.live()) this.send({ type: "rooms" });
  }

  /** Leaves, and revokes this device's login token (18.3): the next visit asks again. */
  logout() {
    if (!this.joined) return false;
    saveLogin(this.host, null);
    this.stopped = true;
    this.save();
    clearTimeout(this.timer);
    return this.send({ type: "logout" });
  }

  /**
   * The user has seen `room` up to line `id` (on screen, the tab visible): the account's
   * read marker follows, at most once a second per room (18.5).
   */
  sawUpTo(room, id) {
    if (!this.account || !this.live() || !room || !id) return;
    const k = key(room);
    if (!this.rooms.has(k) || this.markers.get(k) === id || this.readTimers.has(k)) return;
    const wait = (this.readSent.get(k) ?? -Infinity) + READ_EVERY_MS - Date.now();
    if (wait > 0) {
      this.readTimers.set(k, setTimeout(() => {
        this.readTimers.delete(k);
        this.view.checkSeen();
      }, wait));
      return;
    }
    if (this.send({ type: "read", room: this.rooms.get(k).name, id })) {
      this.markers.set(k, id);
      this.readSent.set(k, Date.now());
    }
  }

  /** A read marker from the server (ours answered, or another device's): its counts. */
  readLine(marker) {
    if (!marker || typeof marker !== "object") return;
    const room = text(marker.room);
    if (!this.rooms.has(key(room))) return;
    if (typeof marker.id === "string") this.markers.set(key(room), marker.id);
    const count = (n) => (Number.isInteger(n) && n > 0 ? n : 0);
    this.view.counts(room, count(marker.unread), count(marker.mentions));
  }

  account_(msg) {
    const event = text(msg.event);
    if (event === "unregistered") {
      saveLogin(this.host, null);
      this.account = "";
    } else if (event === "registered" && !this.account) {
      this.account = text(msg.account);
      // Registered here: logged in, with a token to come back with (PROTOCOL.txt 18.2)
      if (typeof msg.login_token === "string" && msg.login_token) {
        saveLogin(this.host, { account: this.account, token: msg.login_token });
      }
    }
    this.view.system(text(msg.message) || `account: ${event}`);
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
      case "whois": return this.whois(msg);
      case "switch":
        this.serverRoom = text(msg.room);
        return undefined;
      case "read": return this.readLine(msg);
      case "account": return this.account_(msg);
      default: return undefined; // PROTOCOL.txt 12: ignore what is not known
    }
  }

  welcome(msg) {
    const reconnect = this.everJoined;
    const wasOper = reconnect && this.isOper();
    const oldName = this.name;
    const before = reconnect ? this.roomNames() : this.savedRooms ?? [];
    this.savedRooms = [];
    const restored = this.restoring && msg.resumed === true;
    this.restoring = false;
    this.joined = this.everJoined = true;
    this.attempt = 0;
    this.name = text(msg.name);
    this.version = Number.isInteger(msg.version) ? msg.version : 1;
    if (msg.resume) this.token = text(msg.resume);
    this.account = text(msg.account);
    if (this.account && typeof msg.login_token === "string" && msg.login_token) {
      saveLogin(this.host, { account: this.account, token: msg.login_token });
    }
    this.wanted.login = ""; // used: later connects bring the token or resume, never it
    this.markers.clear();
    const limit = msg.max_line_bytes;
    this.maxLineBytes = Number.isInteger(limit) && limit > 0 ? limit : MAX_LINE_BYTES;
    this.view.me(this.name);
    // The rooms we are in now: all of them after a resume (17), one after a fresh connect.
    const current = text(msg.room);
    const listed = names(msg.rooms);
    const rooms = listed.length ? listed : current ? [current] : [];
    this.joining.clear();
    for (const gone of this.roomNames()) {
      if (!rooms.some((r) => sameRoom(r, gone))) this.forget(gone);
    }
    for (const room of rooms) this.entry(room);
    this.view.myRooms(this.roomNames());
    this.serverRoom = current;
    const info = this.entry(current);
    if (info !== null) {
      info.opers = names(msg.opers);
      info.users = names(msg.users);
      info.more = unlisted(msg.more);
      info.topic = text(msg.topic);
      this.told(info);
    }
    // The page stays on the room it showed if we are still in it; the server follows.
    const stay = this.room && this.rooms.has(key(this.room)) ? this.room : current;
    this.room = "";
    if (stay) {
      this.room = this.rooms.get(key(stay)).name;
      // A private conversation on screen stays there through a reconnect.
      if (reconnect && this.view.partner()) this.view.keepRoom(this.room);
      else this.view.showRoom(this.room);
    }
    this.view.status("online");
    this.missed = 0;
    if (msg.resumed !== true) {
      this.lostRooms = before.filter((r) => !this.rooms.has(key(r)));
    }
    this.save();
    // The account's unread counts (18.5); said again when the catch-up below ends.
    this.readList = Array.isArray(msg.read) ? msg.read : [];
    for (const marker of this.readList) this.readLine(marker);
    if (restored) {
      // A reload: each room's latest lines fill the empty page (a replay brings only what
      // came after the page went, and our own lines only as acks).
      this.sync = "restore";
      this.restoreBatch = [];
      this.restoreLeft = this.rooms.size;
      for (const room of this.roomNames()) {
        this.send(this.inRoom({ type: "history", limit: PAGE / 2 }, room));
      }
      if (this.restoreLeft === 0) this.endRestore();
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
    if (this.switchBack()) this.serverRoom = this.room;
    // A failed resume after a drop is said by the reconnect line itself (10.4); a notice
    // is news only when something else went unlike asked (the name, say).
    const said = reconnect && msg.resumed !== true && this.name === oldName;
    if (msg.notice && !said) {
      this.view.welcomeNotice(text(msg.notice), this.name,
        this.askedResume === true && msg.resumed !== true);
    }
    if (wasOper && !this.isOper()) this.view.operLost();
  }

  /** After a welcome: the server's current room is the page's again (a switch if not). */
  switchBack() {
    return this.version >= 2 && this.room && !sameRoom(this.room, this.serverRoom)
      && this.send({ type: "switch", room: this.room });
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
      this.restoreBatch.push(msg); // the replay: after the history pages, if not in them
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
      if (!entry.to && entry.text === msg.message
          && (!entry.room || !msg.room || sameRoom(entry.room, msg.room))) {
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
    const room = text(msg.room);
    const missed = this.sync !== null;
    if (msg.type === "connect" && name === this.name && room) {
      this.joinedRoom(room);
      if (this.sync === "skip") {
        // Our own join after a server restart is no news; the missed lines come next.
        if (this.pageAfter !== null) this.sync = "paging";
        else this.caughtUp();
        return;
      }
    }
    if (msg.type === "disconnect" && name === this.name && room) {
      // We left that room (a part, or an operator's room kick); the others stay.
      this.leftRoom(room, msg);
      this.refreshRooms(true);
      return;
    }
    if (msg.type === "nick") {
      // Shown once, in every room of ours where the renamed person is (17).
      const where = [...this.rooms.values()].filter((r) => r.users.includes(text(msg.old)));
      const named = this.rooms.get(key(room));
      if (named !== undefined && !where.includes(named)) where.unshift(named);
      for (const info of where) {
        info.users = info.users.map((u) => (u === msg.old ? name : u));
        info.opers = info.opers.map((u) => (u === msg.old ? name : u));
        this.told(info);
        this.view.notice(msg, { missed, room: info.name });
      }
      if (!where.length) this.view.notice(msg, { missed });
      if (msg.old === this.name) {
        this.name = name;
        this.view.me(name);
        this.save();
        rememberNick(name);
      }
      this.refreshRooms(true);
      return;
    }
    const info = this.rooms.get(key(room));
    if (info !== undefined) {
      if (msg.type === "disconnect") {
        info.opers = info.opers.filter((u) => u !== name);
        const kept = info.users.filter((u) => u !== name);
        if (kept.length === info.users.length && info.more > 0) info.more -= 1; // unlisted
        info.users = kept;
      } else {
        info.users = [...info.users.filter((u) => u !== name), name];
      }
      this.told(info);
    }
    this.view.notice(msg, { missed });
    this.refreshRooms(true);
  }

  /** Our own join notice: the room is ours now (a join's answer came before it). */
  joinedRoom(room) {
    const k = key(room);
    if (this.version < 2) {
      // Version 1 (PROTOCOL.txt 12): a join moves, so the room we were in is left.
      for (const old of this.roomNames()) if (!sameRoom(old, room)) this.forget(old);
    }
    if (this.rooms.has(k)) return;
    const asked = this.joining.get(k);
    this.joining.delete(k);
    const info = this.entry(room);
    if (asked?.info) Object.assign(info, asked.info, { name: info.name });
    this.view.myRooms(this.roomNames());
    this.told(info);
    if (asked?.elsewhere) {
      // Another device of the account joined it (18.4): our current room stays.
      this.save();
      return;
    }
    this.serverRoom = info.name; // a join makes the room current (17)
    if (asked === undefined || asked.show) {
      this.room = info.name;
      this.view.showRoom(info.name);
    } else if (this.switchBack()) {
      this.serverRoom = this.room;
    }
    this.save();
  }

  /** A room we are no longer in; the server's current room becomes the latest joined. */
  leftRoom(room, msg) {
    const wasServers = sameRoom(room, this.serverRoom);
    const wasShown = sameRoom(room, this.room);
    this.forget(room);
    const names = this.roomNames();
    const latest = names.length ? names[names.length - 1] : "";
    if (wasServers) this.serverRoom = latest;
    this.view.myRooms(names);
    if (wasShown) {
      this.room = latest;
      if (latest) this.switchTo(latest);
      this.view.showRoom(latest);
    }
    this.view.leftRoom(msg);
    this.save();
  }

  /** The room's entry (created if it is new to us), or null for no room. */
  entry(room) {
    if (!room) return null;
    let info = this.rooms.get(key(room));
    if (info === undefined) {
      info = { name: room, users: [], more: 0, opers: [], topic: "" };
      this.rooms.set(key(room), info);
    }
    return info;
  }

  forget(room) {
    this.rooms.delete(key(room));
    this.view.dropRoom(room);
  }

  /** Passes a room's members (those listed, and the count of the others), operators
   * and topic on to the view. */
  told(info) {
    if (info.more > 0 && !info.users.includes(this.name)) {
      // Listed in joining order (8.13), a newcomer to a crowd is among those counted.
      info.users = [this.name, ...info.users];
      info.more -= 1;
    }
    this.view.roomInfo(info.name, info.users, this.name, info.opers, info.topic, info.more);
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
      this.view.whoAll(Array.isArray(msg.rooms) ? msg.rooms : [], unlisted(msg.more));
      return;
    }
    const room = text(msg.room);
    const users = names(msg.users);
    const opers = names(msg.opers);
    const more = unlisted(msg.more); // a crowd: the names past 32 KiB are counted (8.13)
    const info = this.rooms.get(key(room));
    if (info !== undefined) {
      info.users = users;
      info.opers = opers;
      info.more = more;
      this.told(info);
      return;
    }
    if (room && this.whoAsked.delete(key(room))) {
      this.view.whoRoom(room, users, opers, more); // a typed /who ROOM of a room not ours
      return;
    }
    // The first line of a join's answer (its topic may come next, 17): ours once our own
    // join notice comes. Unasked, it is a room an operator's room kick put us in (we are
    // in no other), or one another device of the account joined (18.4: not shown).
    if (room && !this.joining.has(key(room))) {
      const elsewhere = Boolean(this.room) && this.rooms.has(key(this.room));
      this.joining.set(key(room), { show: !elsewhere, elsewhere });
    }
    if (room) this.joining.get(key(room)).info = { users, opers, more, topic: "" };
  }

  whois(msg) {
    const rooms = names(msg.rooms);
    const where = rooms.length ? rooms : text(msg.room) ? [text(msg.room)] : [];
    const list = where.map((r) => `#${r}`).join(", ");
    this.view.system(`${text(msg.name)} is ${list ? `in ${list}` : "in no room"}` +
      (msg.oper === true ? " (operator)." : "."));
  }

  // ------------------------------------------------------------ moderation (PROTOCOL.txt 15)

  topicLine(msg) {
    const room = text(msg.room);
    const info = this.rooms.get(key(room)) ?? this.joining.get(key(room))?.info;
    if (info) {
      info.topic = text(msg.topic);
      if (this.rooms.has(key(room))) this.told(this.rooms.get(key(room)));
    }
    if (!text(msg.name)) return; // the topic of a room joined: the header shows it
    this.operLine(msg);
  }

  /** A room notice with an id (someone became an operator, a topic change). */
  operLine(msg) {
    if (this.isSeen(msg)) return;
    this.markSeen(msg);
    if (typeof msg.id === "string") this.lastId = msg.id;
    const missed = this.sync !== null;
    if (msg.type === "oper") {
      // Operators are server-wide: told once (17), marked and said in every room of ours
      // where that person is, as a rename is.
      const name = text(msg.name);
      const where = [...this.rooms.values()].filter(
        (info) => info.users.includes(name) || sameRoom(info.name, text(msg.room)));
      for (const info of where) {
        info.opers = [...info.opers.filter((u) => u !== name), name];
        this.told(info);
        this.view.notice(msg, { missed, room: info.name });
      }
      if (where.length) return;
    }
    this.view.notice(msg, { missed });
  }

  roomList(msg) {
    const rooms = Array.isArray(msg.rooms) ? msg.rooms : [];
    this.view.rooms(rooms, msg.more);
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
      this.view.historyEnd(msg);
      this.restoreLeft -= 1;
      if (this.restoreLeft <= 0) this.endRestore();
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

  /** Every room's history page came after a reload: then what was replayed meanwhile. */
  endRestore() {
    this.sync = null;
    for (const line of this.restoreBatch) if (!this.isSeen(line)) this.show(line, false);
    this.restoreBatch = [];
    this.synced(false);
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
      this.view.failed(ref, msg, entry.to, entry.room);
      return;
    }
    if (code === "auth_failed" || code === "auth_throttled"
      || (!this.joined && FATAL_BEFORE_JOIN.has(code))) {
      // Trying again would fail the same way: back to the login form.
      // A token revoked or pushed out (18.3): forgotten; the form asks for the password.
      if (code === "login_failed" && this.usedToken) saveLogin(this.host, null);
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
    // A join that failed (a bad name, too many rooms...) is no longer on its way.
    if (this.asked.room && !this.asked.part) this.joining.delete(key(this.asked.room));
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
    // Lines replayed or paged in were counted as they came; the welcome's counts had them.
    for (const marker of this.readList ?? []) this.readLine(marker);
    this.readList = [];
    this.view.checkSeen();
    if (reconnect) this.view.caughtUp(this.missed);
    for (const [ref, entry] of this.pending) this.transmit(ref, entry);
    this.rejoinLost();
    this.refreshRooms();
  }

  /**
   * The server lost our session (a restart): the rooms we were in besides the one we
   * came back to are joined again, quietly (the page stays where it is).
   */
  rejoinLost() {
    const lost = this.lostRooms;
    this.lostRooms = [];
    if (this.version < 2) return;
    for (const room of lost) {
      if (this.rooms.has(key(room)) || !this.send({ type: "join", room })) continue;
      this.joining.set(key(room), { show: false, info: null });
    }
  }

  isSeen(msg) {
    const key = seenKey(msg);
    return key !== null && this.seen.has(key);
  }

  markSeen(msg) {
    const key = seenKey(msg);
    if (key !== null) this.seen.add(key);
  }
}

function loadLogin(host) {
  try {
    const saved = JSON.parse(localStorage.getItem(`${SAVED_LOGIN} ${host}`) ?? "null");
    return saved && typeof saved.account === "string" && typeof saved.token === "string"
      ? saved : null;
  } catch {
    return null;
  }
}

function saveLogin(host, login) {
  try {
    if (login === null) localStorage.removeItem(`${SAVED_LOGIN} ${host}`);
    else localStorage.setItem(`${SAVED_LOGIN} ${host}`, JSON.stringify(login));
  } catch {
    // no storage: the password is asked for at each visit
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
  else if (entry.room) line.room = entry.room; // a server of version 1 ignores it
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

/** A welcome's or who's "more": the members counted but not listed (4.1, 4.7). */
function unlisted(value) {
  return Number.isInteger(value) && value > 0 ? value : 0;
}

function sameRoom(a, b) {
  return typeof a === "string" && typeof b === "string" && a.toLowerCase() === b.toLowerCase();
}

/** Rooms are told apart without regard to case, as the server does (5.2). */
function key(room) {
  return room.toLowerCase();
}
