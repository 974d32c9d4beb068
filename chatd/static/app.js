// The page: the login form, the composer and its commands, the sidebar's rooms and the
// drawer; wires a Session (the protocol) to a ChatView (the DOM).

import { COMMANDS } from "/commands.js";
import { moderationLine } from "/moderate.js";
import { Session, rememberNick, rememberedNick } from "/session.js";
import { ChatView, autosize } from "/view.js";
import { explainTooLong } from "/words.js";

const $ = (id) => document.getElementById(id);
const ROOMS_EVERY_MS = 20000; // other rooms' counts change without notices to us

const HISTORY_MAX = 100; // lines a /history may ask for (PROTOCOL.txt 3.8)

const view = new ChatView();
const wsUrl = new URL("/ws", window.location.href);
wsUrl.protocol = wsUrl.protocol === "https:" ? "wss:" : "ws:";
const session = new Session(wsUrl.href, view);

/** Opens the private conversation with `name` ("" goes back to the room). */
function setPrivate(name) {
  if (name) view.openDirect(name);
  else view.closeDirect();
  $("input").focus();
}

/** Shows a conversation of the sidebar: a room of ours (the server's current room follows). */
function showConv(conv) {
  if (conv.kind === "direct") view.show(conv);
  else session.goTo(conv.name);
  $("input").focus();
}

view.onPickUser = setPrivate;
view.onPickRoom = (room) => {
  if (!session.goTo(room) && !session.join(room)) view.system("Not connected; try again.");
  else $("input").focus();
};
view.onPart = (room) => session.part(room) || view.system("Not connected; try again.");
view.onEarlier = (room) => session.earlier(room);
view.onSeen = (room, id) => session.sawUpTo(room, id);

$("login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  $("login-error").textContent = "";
  view.screen("joining");
  rememberNick($("nick").value.trim());
  // The account's password goes once, in the connect; the page keeps only the token the
  // welcome gives (PROTOCOL.txt 18.3).
  const login = $("login-password").value;
  $("login-password").value = "";
  session.start($("nick").value, $("start-room").value, $("password").value, login);
});

$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = $("input");
  const text = input.value;
  if (!text.trim()) return;
  // A line the server would refuse stays where it can be shortened, as in chatc.
  const refused = submit(text);
  view.composerError(refused);
  if (refused) return;
  input.value = "";
  autosize();
});

$("input").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    $("composer").requestSubmit();
  }
});

// Alt+Up and Alt+Down go to the conversation above or below in the sidebar.
document.addEventListener("keydown", (event) => {
  if (!event.altKey || event.ctrlKey || event.metaKey || view.app.dataset.screen !== "chat"
      || (event.key !== "ArrowUp" && event.key !== "ArrowDown")) return;
  const order = view.order();
  if (!order.length) return;
  const at = order.indexOf(view.shown);
  const step = event.key === "ArrowUp" ? -1 : 1;
  showConv(order[(at + step + order.length) % order.length]);
  event.preventDefault();
});

// Escape steps back: the drawer first, then the private conversation.
document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape" || event.defaultPrevented || view.app.dataset.screen !== "chat") return;
  if (view.drawerOpen()) {
    view.closeDrawer(true);
  } else if (view.partner()) {
    setPrivate("");
  } else {
    return;
  }
  event.preventDefault();
});
$("input").addEventListener("input", () => {
  autosize();
  if (!$("composer-error").hidden) view.composerError("");
});

/**
 * Says a chat line, privately (`to`) or in the room shown; returns why it cannot be sent
 * ("" when sent; a refused line is kept in the composer).
 */
function say(text, to) {
  const room = view.shownRoom() || session.room;
  const over = session.oversize(text, to, room);
  if (over !== null) return explainTooLong(over.size, over.limit);
  session.say(text, to, room);
  return "";
}

function helpLines(oper) {
  const listed = COMMANDS.filter((c) => !c.oper || oper);
  return listed.map((c) => `${c.usage} — ${c.help}`);
}

/**
 * A composer line: a command, or a chat line (to the private partner if one is picked).
 * Returns "" when done, or why the line was not sent.
 */
function submit(text) {
  if (!text.startsWith("/") || text.startsWith("//")) {
    return say(text.startsWith("//") ? text.slice(1) : text, view.partner() || undefined);
  }
  const [command, ...rest] = text.slice(1).split(" ");
  const arg = rest.join(" ").trim();
  switch (command.toLowerCase()) {
    case "join":
      if (!arg || !session.join(arg)) view.system("Usage: /join ROOM (when connected)");
      break;
    case "part": {
      const room = arg || view.shownRoom();
      if (!room || !session.part(room)) view.system("Usage: /part [ROOM] (when connected)");
      break;
    }
    case "switch":
      if (!arg) view.system("Usage: /switch ROOM");
      else if (!session.rooms.has(arg.toLowerCase())) {
        view.system(`You are not in #${arg}; /join ${arg} joins it.`);
      } else {
        session.goTo(arg);
      }
      break;
    case "msg": {
      const [to, ...words] = arg.split(" ");
      const message = words.join(" ");
      if (to && message.trim()) {
        const refused = say(message, to);
        if (refused) return refused;
        view.openDirect(to);
      } else {
        view.system("Usage: /msg NAME TEXT");
      }
      break;
    }
    case "nick":
      if (!arg || !session.nick(arg)) view.system("Usage: /nick NAME (when connected)");
      break;
    case "who":
      if (!session.who(arg === "all", arg === "all" ? "" : arg)) {
        view.system("Not connected; try again.");
      }
      break;
    case "rooms":
      if (!session.listRooms()) view.system("Not connected; try again.");
      break;
    case "history": {
      const limit = arg ? Number(arg) : undefined;
      if (arg && !(Number.isInteger(limit) && limit >= 1 && limit <= HISTORY_MAX)) {
        view.system(`Usage: /history [N], N from 1 to ${HISTORY_MAX}`);
      } else if (!session.recent(limit)) {
        view.system("Not connected; try again.");
      }
      break;
    }
    case "quit":
      session.leave();
      break;
    case "logout":
      if (!session.logout()) view.system("Not connected; try again.");
      break;
    case "register":
    case "unregister":
      // The rest of the line is the password (18.2): it may hold spaces.
      if (!arg) view.system(`Usage: /${command.toLowerCase()} PASSWORD`);
      else if (!session.live() || !session.send({ type: command.toLowerCase(), password: arg })) {
        view.system("Not connected; try again.");
      }
      break;
    case "password": {
      const [current, ...fresh] = arg.split(" ");
      const line = { type: "password", password: current, new: fresh.join(" ").trim() };
      if (!current || !line.new) view.system("Usage: /password CURRENT NEW");
      else if (!session.live() || !session.send(line)) view.system("Not connected; try again.");
      break;
    }
    case "help":
      for (const line of helpLines(session.isOper())) view.system(line);
      break;
    default: {
      const line = moderationLine(command.toLowerCase(), arg);
      if (line === null) {
        view.system(`There is no /${command} command; /help lists the commands.`, "error");
      } else if (line.usage) {
        view.system(`Usage: ${line.usage}`);
      } else if (!session.live() || !session.send(line)) {
        view.system("Not connected; try again.");
      }
    }
  }
  return "";
}

$("close-direct").addEventListener("click", () => setPrivate(""));

// Notifications of lines naming you, only once the user asked for them (never unprompted).
const notifyButton = $("notify");
notifyButton.hidden = !("Notification" in window) || Notification.permission !== "default";
notifyButton.addEventListener("click", async () => {
  const answer = await Notification.requestPermission();
  notifyButton.hidden = answer !== "default";
  view.system(answer === "granted"
    ? "You will be notified of lines naming you while this tab is hidden."
    : "Notifications are off (the browser's settings can allow them).");
});

$("join-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const room = $("join-room").value.trim();
  if (room && session.join(room)) {
    $("join-room").value = "";
    $("input").focus(); // the room comes on screen next (and a phone's drawer closes)
  }
});

$("menu").addEventListener("click", () => {
  if (view.toggleDrawer()) session.refreshRooms();
});
$("scrim").addEventListener("click", () => view.closeDrawer(true));
$("retry").addEventListener("click", () => session.retryNow());
$("rejoin").addEventListener("click", () => session.rejoin());
window.addEventListener("online", () => session.retryNow());
setInterval(() => session.refreshRooms(), ROOMS_EVERY_MS);
// A reload keeps the session (held by the server, resumed by the new page) and the name.
window.addEventListener("pagehide", () => session.hold());
$("nick").value = rememberedNick();
if (session.restore()) view.screen("joining");
