// The page's DOM: conversations (one per room one is in, and one per private partner, the
// "Direct" list), each its own log, scroll position, draft, and (a room) members and topic,
// one shown at a time; the sidebar (one's rooms with unread counts, other rooms to join)
// and the banner. Rows are built in lines.js, always from text, never from HTML.

import { nameStyle, present } from "/colour.js";
import {
  $, addToRun, clock, divider, el, group, isRun, messageRow, nameTag, newRun, noticeRow, str,
} from "/lines.js";
import {
  explainError, explainNotice, explainRemoval, explainTooLong,
} from "/words.js";

const FILTER_FROM = 21; // people in a room before the member list gets a filter box
const ANNOUNCED = 5; // lines kept in the screen readers' live region
const collator = new Intl.Collator(undefined, { sensitivity: "base", numeric: true });

/**
 * Replaces a list's items, and keeps the keyboard focus on the same entry (data-key) if it
 * was in the list: a refresh from the server must not throw focus back to the page.
 */
function refill(list, items) {
  const focused = list.contains(document.activeElement) ? document.activeElement.dataset.key : null;
  list.replaceChildren(...items);
  if (focused != null) list.querySelector(`[data-key="${CSS.escape(focused)}"]`)?.focus();
}

function item(button, key) {
  button.type = "button";
  button.dataset.key = key;
  const li = el("li");
  li.append(button);
  return li;
}

function keyOf(kind, name) {
  return `${kind === "room" ? "#" : "@"}${name.toLowerCase()}`;
}

const WORD_CHAR = "[\\p{L}\\p{N}\\p{M}_]";

/** Whether `text` names `me` as a word of its own, in any case (a mention). */
export function mentions(text, me) {
  if (!me) return false;
  const name = me.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`(?<!${WORD_CHAR})${name}(?!${WORD_CHAR})`, "iu").test(text);
}

/** Grows the composer with its text, up to a few lines. */
export function autosize() {
  const input = $("input");
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight, 160)}px`;
}

export class ChatView {
  constructor() {
    this.app = $("app");
    this.logs = $("logs");
    // key -> {kind, name, log, unread, mentions, top, bottom, draft} and, for a room,
    // {users, opers, topic}
    this.convs = new Map();
    this.mine = []; // the rooms one is in, in joining order (the sidebar's order)
    this.shown = null;
    this.roomConv = null;
    this.pendingLines = new Map(); // ref -> <li>
    this.me_ = "";
    this.roomList = [];
    this.members = [];
    this.historyDivider = new Map(); // room key -> whether this history batch has its divider
    this.reconnectNote = null;
    this.removal = null; // the banner's words after an operator removed us
    // Whether the newest line is in view: it stays in view whatever changes size (a
    // banner above the log, a row growing an error, the composer, the window).
    // Only a scroll up lets go: a scroll event may come after the box shrank (a banner
    // appearing in the same frame), when the newest line is out of view but still wanted.
    this.stuck = true;
    this.lastTop = 0;
    this.logs.addEventListener("scroll", () => {
      const top = this.logs.scrollTop;
      if (this.atBottom()) {
        this.stuck = true;
        this.checkSeen();
      } else if (top < this.lastTop) this.stuck = false;
      this.lastTop = top;
    }, { passive: true });
    document.addEventListener("visibilitychange", () => this.checkSeen());
    this.onSeen = () => {};
    this.resizes = new ResizeObserver(() => {
      if (this.stuck) this.logs.scrollTop = this.logs.scrollHeight;
    });
    this.resizes.observe(this.logs);
    this.onPickUser = () => {};
    this.onPickRoom = () => {};
    this.onPart = () => {};
    this.onEarlier = () => {};
    $("user-filter").addEventListener("input", () => this.renderUsers());
    this.screen("login");
  }

  /** login, joining or chat; what is not on screen is inert (no Tab, no screen reader). */
  screen(name) {
    this.app.dataset.screen = name;
    const chat = name === "chat";
    for (const id of ["bar", "side", "main"]) $(id).inert = !chat;
    $("login").inert = chat;
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
      $("banner-text").textContent = this.removal?.text ?? "You left the chat.";
      $("retry").hidden = true;
      $("rejoin").hidden = this.removal !== null && !this.removal.rejoin;
      $("rejoin").textContent = this.removal?.action ?? "Join again";
      banner.hidden = false;
      banner.dataset.kind = this.removal?.kind ?? "left";
    }
    // Nothing typed after leaving could be sent: say so by disabling the composer.
    this.left = state === "offline";
    $("input").disabled = this.left;
    $("send").disabled = this.left;
    this.placeholder();
    if (this.left && !$("rejoin").hidden) $("rejoin").focus();
    else if (!this.left) {
      $("rejoin").hidden = true;
      this.removal = null;
    }
  }

  me(name) {
    this.me_ = name;
    $("me").textContent = name;
    nameStyle($("me"), name);
    if (this.app.dataset.screen !== "chat") {
      this.screen("chat");
      $("input").focus();
    }
  }

  // ------------------------------------------------------------ conversations

  conv(kind, name) {
    const key = keyOf(kind, name);
    let conv = this.convs.get(key);
    if (conv === undefined) {
      const log = el("ol", "log");
      log.hidden = true;
      if (kind === "room") {
        log.dataset.room = name;
        const earlier = el("li", "earlier");
        earlier.hidden = true;
        const button = el("button", "", "Load earlier lines");
        button.type = "button";
        button.addEventListener("click", () => this.onEarlier(conv.name));
        earlier.append(button);
        log.append(earlier);
      } else {
        log.dataset.direct = name;
      }
      conv = { kind, name, log, unread: 0, mentions: 0, top: 0, bottom: true, draft: "",
        users: [], more: 0, arrived: [], opers: new Set(), topic: "" };
      this.resizes.observe(log);
      this.convs.set(key, conv);
      this.logs.append(log);
      if (kind === "direct") this.renderDirects();
    }
    return conv;
  }

  show(conv) {
    const box = this.logs;
    const input = $("input");
    if (this.shown !== null && this.shown !== conv) {
      this.shown.top = box.scrollTop;
      this.shown.bottom = this.atBottom();
      this.shown.draft = input.value;
    }
    for (const other of this.convs.values()) other.log.hidden = other !== conv;
    const switched = this.shown !== conv;
    this.shown = conv;
    if (conv === null) {
      this.app.dataset.view = "none";
      $("title-prefix").textContent = "";
      $("room-title").textContent = "no room";
      $("close-direct").hidden = true;
      this.placeholder();
      this.renderTopic();
      this.renderUsers();
      this.renderRooms();
      this.renderDirects();
      return;
    }
    if (switched) {
      input.value = conv.draft;
      autosize();
      this.composerError("");
    }
    conv.unread = 0;
    conv.mentions = 0;
    box.scrollTop = conv.bottom ? box.scrollHeight : conv.top;
    this.stuck = conv.bottom;
    this.lastTop = box.scrollTop;
    const direct = conv.kind === "direct";
    if (!direct) this.roomConv = conv;
    this.app.dataset.view = conv.kind;
    $("title-prefix").textContent = direct ? "@" : "#";
    $("room-title").textContent = conv.name;
    $("close-direct").hidden = !direct;
    $("logs").setAttribute("aria-label",
      direct ? `Private conversation with ${conv.name}` : `Conversation in #${conv.name}`);
    this.placeholder();
    this.renderTopic();
    this.renderUsers();
    this.renderDirects();
    this.renderRooms();
    this.closeDrawer();
    this.checkSeen();
  }

  /**
   * Tells onSeen the newest line of the room on screen when the user can see it: the tab
   * visible and the log at its bottom (a read marker follows, PROTOCOL.txt 18.5).
   */
  checkSeen() {
    const conv = this.shown;
    if (conv === null || conv.kind !== "room" || document.visibilityState !== "visible"
        || this.app.dataset.screen !== "chat" || !this.atBottom()) return;
    const rows = conv.log.querySelectorAll("li[data-id]");
    if (rows.length) this.onSeen(conv.name, rows[rows.length - 1].dataset.id);
  }

  /** A room's unread and mention counts as the server keeps them (its read marker). */
  counts(room, unread, mentions) {
    const conv = this.conv("room", room);
    const seeing = conv === this.shown && document.visibilityState === "visible"
      && this.atBottom();
    conv.unread = seeing ? 0 : unread;
    conv.mentions = seeing ? 0 : mentions;
    this.renderRooms();
  }

  placeholder() {
    const conv = this.shown;
    $("input").placeholder = this.left ? this.removal?.placeholder ?? "You left the chat"
      : conv?.kind === "direct" ? `Private line to ${conv.name}`
        : conv ? "Message (Enter sends, /help)" : "Join a room to talk (/join ROOM)";
  }

  /** The private partner on screen, or "". */
  partner() {
    return this.shown?.kind === "direct" ? this.shown.name : "";
  }

  openDirect(name) {
    this.show(this.conv("direct", name));
  }

  closeDirect() {
    if (this.roomConv !== null && this.shown !== this.roomConv) this.show(this.roomConv);
  }

  /** The room shown now, or "" (a private conversation, or no room at all). */
  shownRoom() {
    return this.shown?.kind === "room" ? this.shown.name : "";
  }

  /** Shows a room of ours ("" when there is none left). */
  showRoom(room) {
    if (!room) {
      this.roomConv = null;
      if (this.shown?.kind !== "direct") this.show(null);
      return;
    }
    this.show(this.conv("room", room));
  }

  /** The room the Escape key and the member list go back to, behind a private view. */
  keepRoom(room) {
    this.roomConv = this.conv("room", room);
    this.renderUsers();
    this.renderRooms();
  }

  /** The rooms one is in, in joining order. */
  myRooms(list) {
    this.mine = [...list];
    this.renderRooms();
  }

  /** A room one left: its conversation goes. */
  dropRoom(room) {
    const key = keyOf("room", room);
    const conv = this.convs.get(key);
    if (conv === undefined) return;
    this.convs.delete(key);
    this.historyDivider.delete(room.toLowerCase());
    this.resizes.unobserve(conv.log);
    conv.log.remove();
    if (this.roomConv === conv) this.roomConv = null;
    if (this.shown === conv) this.shown = null;
    this.renderRooms();
  }

  /** Says where one is now after leaving a room (the notice names the room left). */
  leftRoom(msg) {
    // The leave button that had the focus is gone with its room: the composer takes it.
    if (document.activeElement === document.body || document.activeElement === null) {
      $("input").focus();
    }
    const li = noticeRow(msg, this.me_);
    li.classList.add("parted");
    this.append(this.shown ?? this.roomConv, li);
    this.announce(null, "", li.querySelector(".text").textContent);
  }

  /**
   * A room's members, operators and topic (PROTOCOL.txt 4.7, 15.1, 15.5); `more`
   * members of a crowd are counted but not listed (8.13).
   */
  roomInfo(room, users, me, opers, topic, more = 0) {
    const conv = this.conv("room", room);
    conv.more = more;
    conv.arrived = users;
    // Names present, in any of one's rooms, never share a colour while there are enough.
    present(this.mine.flatMap((r) => this.convs.get(keyOf("room", r))?.arrived ?? []));
    const mine = users.filter((name) => name === me);
    const others = users.filter((name) => name !== me).sort(collator.compare);
    conv.users = [...mine, ...others];
    conv.opers = new Set(opers);
    conv.topic = topic;
    if (conv === this.roomConv) {
      this.renderUsers();
      this.renderTopic();
    }
    this.renderRooms();
  }

  /** Counts a line nobody has seen yet, unless its conversation is on screen. */
  unseen(conv, mention = false) {
    if (conv === this.shown) return;
    conv.unread += 1;
    if (mention) conv.mentions += 1;
    if (conv.kind === "direct") this.renderDirects();
    else this.renderRooms();
  }

  totalUnread() {
    let total = 0;
    for (const conv of this.convs.values()) total += conv.unread;
    return total;
  }

  /** An unread count; stronger (marked "@") when some of those lines name you. */
  badge(count, mentions = 0) {
    const badge = el("span", mentions ? "unread mention" : "unread",
      mentions ? `@${count}` : String(count));
    const said = mentions ? `, ${mentions} mentioning you` : "";
    badge.setAttribute("aria-label", `${count} unread${said}`);
    badge.title = `${count} unread${said}`;
    return badge;
  }

  renderDirects() {
    const directs = [...this.convs.values()].filter((c) => c.kind === "direct");
    $("direct-section").hidden = directs.length === 0;
    refill($("directs"), directs.map((conv) => {
      const button = el("button", "direct");
      button.append(nameTag(conv.name, this.me_));
      if (conv.unread) button.append(this.badge(conv.unread));
      if (conv === this.shown) button.setAttribute("aria-current", "true");
      button.addEventListener("click", () => this.show(conv));
      return item(button, conv.name);
    }));
    this.renderTotal();
  }

  renderTotal() {
    const total = this.totalUnread();
    $("menu").dataset.unread = total ? "yes" : "";
    $("menu").setAttribute("aria-label", total ? `Rooms and people, ${total} unread` : "Rooms and people");
    const where = this.shown?.kind === "direct" ? `@${this.shown.name}`
      : this.shown ? `#${this.shown.name}` : "no room";
    document.title = `${total ? `(${total}) ` : ""}${where} · chatd`;
  }

  /** The shown room's topic in the header (PROTOCOL.txt 15.5); none hides it. */
  renderTopic() {
    const text = this.shown?.kind === "room" ? this.shown.topic : "";
    const topic = $("topic");
    topic.textContent = text;
    topic.title = text ? `Topic: ${text}` : "";
    topic.hidden = !text;
  }

  /** The members of the room shown (or, in a private view, of the last room shown). */
  renderUsers() {
    const conv = this.roomConv;
    this.members = conv?.users ?? [];
    const unlisted = conv?.more ?? 0;
    const total = this.members.length + unlisted;
    this.opers = conv?.opers ?? new Set();
    $("members-title").textContent = conv ? `In #${conv.name}` : "In no room";
    const filter = $("user-filter");
    const filtering = this.members.length >= FILTER_FROM;
    filter.hidden = !filtering;
    const wanted = filtering ? filter.value.trim().toLowerCase() : "";
    const shown = wanted ? this.members.filter((n) => n.toLowerCase().includes(wanted))
      : this.members;
    const rows = shown.map((name) => {
      const button = el("button", "user");
      if (this.opers?.has(name)) {
        const mark = el("span", "oper-mark", "@");
        mark.title = "operator";
        mark.setAttribute("aria-label", "operator");
        button.append(mark);
      }
      button.append(nameTag(name, this.me_));
      if (name === this.me_) button.append(el("span", "you", " (you)"));
      else button.addEventListener("click", () => this.onPickUser(name));
      return item(button, name);
    });
    if (unlisted) rows.push(el("li", "unlisted", `and ${unlisted} more`));
    refill($("users"), rows);
    $("user-count").textContent = wanted ? `${shown.length} of ${total}` : String(total);
  }

  /** The server's room list (4.8): the sidebar offers the ones we are not in. */
  rooms(list, more) {
    this.roomList = list.filter((r) => r && typeof r.room === "string");
    const unlisted = Number.isInteger(more) && more > 0 ? more : 0;
    $("browse-hint").textContent = unlisted
      ? `Pick one to join it; you stay in yours. ${unlisted} smaller rooms are not listed: ` +
        "type a name above."
      : "Pick one to join it; you stay in yours.";
    this.renderRooms();
  }

  renderRooms() {
    const leave = this.mine.length > 1; // leaving the only room would leave nothing to show
    refill($("rooms"), this.mine.map((room) => {
      const conv = this.conv("room", room);
      const button = el("button", "room");
      button.append(el("span", "room-name", `#${room}`));
      if (conv.unread) button.append(this.badge(conv.unread, conv.mentions));
      const people = conv.users.length + conv.more;
      const count = el("span", "count", String(people));
      count.setAttribute("aria-label", `${people} people`);
      button.append(count);
      if (conv === this.shown) button.setAttribute("aria-current", "true");
      button.addEventListener("click", () => this.onPickRoom(room));
      const li = item(button, room.toLowerCase());
      if (leave) {
        const part = el("button", "icon part", "×");
        part.type = "button";
        part.dataset.key = `part ${room.toLowerCase()}`;
        part.setAttribute("aria-label", `Leave #${room}`);
        part.title = `Leave #${room}`;
        part.addEventListener("click", () => this.onPart(room));
        li.append(part);
      }
      return li;
    }));
    const mine = new Set(this.mine.map((r) => r.toLowerCase()));
    const others = this.roomList.filter(({ room }) => !mine.has(room.toLowerCase()));
    $("browse-section").hidden = others.length === 0;
    refill($("browse"), others.map(({ room, users }) => {
      const button = el("button", "room");
      button.append(el("span", "room-name", `#${room}`));
      const people = Number(users) || 0;
      const count = el("span", "count", String(people));
      count.setAttribute("aria-label", `${people} people`);
      button.append(count);
      button.title = `Join #${room}`;
      button.addEventListener("click", () => this.onPickRoom(room));
      return item(button, room.toLowerCase());
    }));
    this.renderTotal();
  }

  /** Conversations in the sidebar's order (rooms, then private ones), for Alt+Up/Down. */
  order() {
    const rooms = this.mine.map((room) => this.convs.get(keyOf("room", room)));
    const directs = [...this.convs.values()].filter((c) => c.kind === "direct");
    return [...rooms, ...directs].filter((c) => c !== undefined);
  }

  drawerOpen() {
    return this.app.dataset.drawer === "open";
  }

  toggleDrawer() {
    const open = !this.drawerOpen();
    this.app.dataset.drawer = open ? "open" : "closed";
    $("menu").setAttribute("aria-expanded", String(open));
    // Once the drawer is drawn: a hidden element takes no focus.
    if (open) requestAnimationFrame(() => $("side").querySelector("button, input")?.focus());
    return open;
  }

  closeDrawer(refocus = false) {
    const was = this.drawerOpen();
    this.app.dataset.drawer = "closed";
    $("menu").setAttribute("aria-expanded", "false");
    if (was && refocus) $("menu").focus();
  }

  loginFailed(msg, wanted) {
    this.screen("login");
    $("login-error").textContent = explainError(str(msg.code), str(msg.message),
      { name: wanted.name, room: wanted.room, password: wanted.password }, msg);
    $(str(msg.code) === "login_failed" ? "login-password" : "nick").focus();
  }

  // ------------------------------------------------------------ lines

  atBottom() {
    const box = this.logs;
    return box.scrollHeight - box.scrollTop - box.clientHeight < 48;
  }

  /** Appends to a conversation's log, keeping the view at the bottom if it was. */
  append(conv, node) {
    if (conv === null) return;
    const shown = conv === this.shown;
    const bottom = shown && this.atBottom();
    conv.log.append(node);
    group(node);
    if (shown && (bottom || node.classList.contains("own"))) {
      this.logs.scrollTop = this.logs.scrollHeight;
      this.stuck = true;
    }
  }

  roomOf(room) {
    return room ? this.conv("room", room) : this.roomConv;
  }

  chat(msg, { history, missed }) {
    const name = str(msg.name);
    // Ours: sent from here, or from another device of the account ("own", 18.4).
    const own = msg.own === true || name === this.me_;
    const li = messageRow(name, str(msg.message), this.me_, str(msg.time) || undefined);
    if (own) li.classList.add("own");
    if (typeof msg.id === "string") li.dataset.id = msg.id;
    if (history) li.classList.add("history");
    if (missed) li.classList.add("missed");
    let conv;
    if (msg.private === true) {
      li.classList.add("private");
      conv = this.conv("direct", own ? str(msg.to) || name : name);
    } else {
      conv = this.roomOf(str(msg.room));
      if (history) this.historyStart(conv);
    }
    // The server's word (18.6, --mentions) covers look-alike letters; the page's own test
    // covers a server that does not say.
    const named = !own && msg.private !== true
      && (msg.mention === true || mentions(str(msg.message), this.me_));
    if (named) li.classList.add("mention");
    this.append(conv, li);
    if (!history && !own) {
      this.unseen(conv, msg.private === true || named);
      if (!missed) this.announce(conv, msg.private === true ? `${name}, privately: ` : `${name}: `,
        str(msg.message));
      if (named || msg.private === true) this.notify(conv, name, str(msg.message));
    }
    if (conv === this.shown) this.checkSeen();
  }

  /** A browser notification of a line for us, if allowed and the tab is not looked at. */
  notify(conv, name, message) {
    if (document.visibilityState !== "hidden" || !("Notification" in window)
        || Notification.permission !== "granted") return;
    const where = conv.kind === "room" ? `${name} in #${conv.name}` : `${name}, privately`;
    try {
      const note = new Notification(where, { body: message, tag: `${conv.kind} ${conv.name}` });
      note.onclick = () => {
        window.focus();
        this.show(conv);
      };
    } catch {
      // some browsers allow notifications only from a service worker: none then
    }
  }

  historyStart(conv) {
    const key = conv.name.toLowerCase();
    if (this.historyDivider.get(key)) return;
    this.historyDivider.set(key, true);
    this.append(conv, divider(`Earlier in #${conv.name}`, "history-divider"));
  }

  /** The end of a join's history: older lines can be fetched if the server has more. */
  historyEnd(msg) {
    const room = str(msg.room);
    this.historyDivider.set(room.toLowerCase(), false);
    const conv = this.roomOf(room);
    if (conv !== null) this.earlierControl(conv, msg.more === true);
  }

  earlierControl(conv, more) {
    const earlier = conv.log.firstElementChild;
    earlier.hidden = !more;
    earlier.firstElementChild.textContent = "Load earlier lines";
    earlier.removeAttribute("aria-busy");
  }

  /** The id of the oldest chat line shown in a room, for history "before" (3.8). */
  oldestId(room) {
    const conv = this.roomOf(room);
    const first = conv?.log.querySelector(":scope > li.message[data-id]");
    if (first) {
      const earlier = conv.log.firstElementChild;
      earlier.firstElementChild.textContent = "Loading…";
      earlier.setAttribute("aria-busy", "true");
    }
    return first ? first.dataset.id : null;
  }

  /** Older lines, oldest first, put above what is shown without moving what is on screen. */
  prependEarlier(room, msgs, more) {
    const conv = this.roomOf(room);
    if (conv === null) return;
    const box = this.logs;
    const anchor = conv.log.querySelector(":scope > li.message, :scope > li.notice, :scope > li.run");
    // What was on screen stays where it was: the first old row keeps its place.
    const top = anchor?.getBoundingClientRect().top ?? 0;
    const rows = msgs.map((msg) => {
      const li = messageRow(str(msg.name), str(msg.message), this.me_, str(msg.time) || undefined);
      if (typeof msg.id === "string") li.dataset.id = msg.id;
      li.classList.add("history");
      conv.log.insertBefore(li, anchor);
      return li;
    });
    for (const li of rows) group(li);
    group(anchor);
    if (conv === this.shown && anchor !== null) {
      box.scrollTop += anchor.getBoundingClientRect().top - top;
    }
    this.earlierControl(conv, more && msgs.length > 0);
  }

  /** A room notice, in `room` (a rename is told in each room where that person is). */
  notice(msg, { missed, room = str(msg.room) }) {
    const li = noticeRow(msg, this.me_);
    if (typeof msg.id === "string") li.dataset.id = msg.id;
    if (missed) li.classList.add("missed");
    const conv = this.roomOf(room);
    if (conv === null) return;
    // Only plain comings and goings fold into a run; a kick or a ban (4.4: any other
    // message) is news of its own.
    const name = str(msg.name);
    const plain = msg.type === "connect" || (msg.type === "disconnect"
      && (str(msg.message) === `${name} left` || str(msg.message).startsWith(`${name} left for `)
        || (msg.part === true && str(msg.message).startsWith(`${name} left `))));
    if (!plain) {
      if (msg.type === "disconnect") li.classList.add("removed");
      this.append(conv, li);
      if (msg.type === "disconnect" && !missed) this.announce(conv, "", li.textContent);
      return;
    }
    let run = conv.log.lastElementChild;
    if (!isRun(run)) {
      run = newRun();
      this.append(conv, run);
    }
    const bottom = conv === this.shown && this.atBottom();
    addToRun(run, li);
    if (bottom) this.logs.scrollTop = this.logs.scrollHeight;
    // A join storm is said once it collapses, not name by name.
    const size = run.lastElementChild.childElementCount;
    if (!missed && size < 3) this.announce(conv, "", li.querySelector(".text").textContent);
    else if (!missed && size === 3) this.announce(conv, "", "Several people are joining or leaving.");
  }

  pending(ref, text, to, me, room) {
    const li = messageRow(me, text, me, null);
    li.classList.add("pending");
    li.dataset.ref = ref;
    if (to) li.classList.add("private");
    this.pendingLines.set(ref, li);
    this.append(to ? this.conv("direct", to) : room ? this.conv("room", room) : this.roomConv, li);
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
      : explainError(code, str(msg.message), { to }, msg);
    if (!/not sent|dropped/i.test(why)) why = `Not sent: ${why}`;
    const time = li.querySelector("time");
    time.textContent = "✕";
    time.title = "not sent";
    const fail = el("span", "fail", why);
    fail.append(el("span", "code", ` ${code}`));
    li.append(fail);
    const next = li.nextElementSibling;
    if (next !== null) group(next);
  }

  /** An operator removed us: said in the log, and by the banner once the socket closes. */
  removed(code, message, msg = {}) {
    this.removal = { ...explainRemoval(code, message, msg), kind: "removed",
      placeholder: "Removed by an operator" };
    this.system(explainError(code, message, {}, msg), "error", code);
  }

  /** Another tab or window took this session over (a duplicated tab resumes it). */
  elsewhere() {
    this.removal = { text: "This chat is open in another tab or window now.", rejoin: true,
      action: "Continue here", kind: "elsewhere", placeholder: "Open in another tab" };
  }

  /** A restart took our operator status (it lasts as long as the session, 15.1). */
  operLost() {
    this.system("You are no longer an operator: the server restarted. /oper NAME PASSWORD " +
      "makes you one again.", "warn");
  }

  /** The answer to a typed /rooms. */
  roomLines(rooms, more) {
    const listed = rooms.filter((r) => r && typeof r.room === "string");
    const counts = listed.map((r) => `#${r.room} (${Number(r.users) || 0})`);
    const rest = Number(more) > 0 ? `, and ${Number(more)} more` : "";
    this.system(`Rooms: ${counts.join(", ") || "none"}${rest}`);
  }

  /** The answer to a typed /history: the room's last lines again, under a divider. */
  recent(room, msgs) {
    const conv = this.roomOf(room);
    if (conv === null) return;
    const label = msgs.length ? `The last ${msgs.length === 1 ? "line" : `${msgs.length} lines`} of #${conv.name}`
      : `#${conv.name} has no lines yet`;
    this.append(conv, divider(label, "recent-divider"));
    for (const msg of msgs) {
      const li = messageRow(str(msg.name), str(msg.message), this.me_, str(msg.time) || undefined);
      li.classList.add("history", "recent");
      this.append(conv, li);
    }
  }

  /** A line the composer keeps, with why it was not sent ("" clears it). */
  composerError(text) {
    const node = $("composer-error");
    node.textContent = text;
    node.hidden = !text;
    $("input").setAttribute("aria-invalid", String(Boolean(text)));
  }

  system(text, kind = "info", code = "") {
    const li = el("li", `line system ${kind}`);
    const body = el("span", "text", text);
    if (code) body.append(el("span", "code", ` ${code}`));
    li.append(clock(""), body);
    this.append(this.shown ?? this.roomConv, li);
  }

  error(msg, asked) {
    const code = str(msg.code);
    const text = explainError(code, str(msg.message), asked, msg);
    if (this.app.dataset.screen === "chat") this.system(text, "error", code);
    else $("login-error").textContent = text; // not joined yet: there is no log to show it in
  }

  welcomeNotice(notice, name, resumeFailed) {
    this.system(explainNotice(notice, name, resumeFailed), "warn");
  }

  /** A typed /who of a room one is not in. */
  whoRoom(room, users, opers, more = 0) {
    const marked = users.map((u) => (opers.includes(u) ? `@${u}` : u));
    const rest = more ? ` and ${more} more` : "";
    this.system(`#${room}: ${marked.join(", ") || "nobody"}${rest}`);
  }

  whoAll(rooms, more = 0) {
    for (const entry of rooms) {
      const users = Array.isArray(entry.users) ? entry.users.filter((u) => typeof u === "string") : [];
      this.system(`#${str(entry.room)}: ${users.join(", ")}`);
    }
    if (more) this.system(`... and ${more} more users`);
  }

  /**
   * The one line that says a reconnect happened, completed by caughtUp. `fresh`: the
   * server no longer had our session (10.4), so private lines meanwhile are lost.
   */
  reconnected(resumed, rejoined = false) {
    const label = rejoined ? "Joined again" : resumed ? "Reconnected"
      : "Reconnected as a new session";
    this.reconnectNote = divider(label, "reconnect-divider");
    this.reconnectNote.dataset.fresh = String(!resumed && !rejoined);
    this.append(this.roomConv, this.reconnectNote);
  }

  caughtUp(count) {
    const note = this.reconnectNote;
    if (note === null) return;
    const lines = count === 1 ? "1 missed line below" : `${count} missed lines below`;
    let what = count ? lines : "nothing missed";
    if (note.dataset.fresh === "true") {
      what = `${count ? lines : "no room lines missed"}; private lines sent to you meanwhile ` +
        "were not kept";
    }
    note.firstChild.textContent += ` · ${what}`;
    this.reconnectNote = null;
    this.announce(null, "", `Back online: ${what}.`);
  }

  /**
   * Tells screen readers about one new line, politely: the log itself is not a live
   * region, so a join's history or a room switch is not read out, only what arrives.
   */
  announce(conv, lead, text) {
    const where = conv !== null && conv !== this.shown
      ? conv.kind === "direct" ? "" : `In #${conv.name}, ` : "";
    const region = $("announce");
    region.append(el("p", "", `${where}${lead}${text}`));
    while (region.childElementCount > ANNOUNCED) region.firstElementChild.remove();
  }
}
