// The page: the login form, the composer and its commands, the drawer; wires a Session
// (the protocol) to a ChatView (the DOM).

import { OPER_HELP, moderationLine } from "/moderate.js";
import { Session } from "/session.js";
import { ChatView } from "/view.js";

const $ = (id) => document.getElementById(id);
const ROOMS_EVERY_MS = 20000; // other rooms' counts change without notices to us

const HELP = [
  "/join ROOM — move to another room (or pick one in the list)",
  "/msg NAME TEXT — a private line (or pick a name in the list)",
  "/nick NAME — change your name",
  "/who [all] — who is here (or everywhere)",
  "/topic — this room's topic",
  "/oper NAME PASSWORD — become an operator",
  "/quit — leave the chat",
  "//text — send a line starting with /",
];

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

view.onPickUser = setPrivate;
view.onPickRoom = (room) => session.join(room) || view.system("Not connected; try again.");
view.onEarlier = (room) => session.earlier(room);

$("login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  $("login-error").textContent = "";
  view.screen("joining");
  session.start($("nick").value, $("start-room").value, $("password").value);
});

$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = $("input");
  const text = input.value;
  if (!text.trim()) return;
  input.value = "";
  autosize();
  submit(text);
});

$("input").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    $("composer").requestSubmit();
  }
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
$("input").addEventListener("input", autosize);

function autosize() {
  const input = $("input");
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight, 160)}px`;
}

/** A composer line: a command, or a chat line (to the private partner if one is picked). */
function submit(text) {
  if (!text.startsWith("/") || text.startsWith("//")) {
    session.say(text.startsWith("//") ? text.slice(1) : text, view.partner() || undefined);
    return;
  }
  const [command, ...rest] = text.slice(1).split(" ");
  const arg = rest.join(" ").trim();
  switch (command.toLowerCase()) {
    case "join":
      if (!arg || !session.join(arg)) view.system("Usage: /join ROOM (when connected)");
      break;
    case "msg": {
      const [to, ...words] = arg.split(" ");
      const message = words.join(" ");
      if (to && message.trim()) {
        view.openDirect(to);
        session.say(message, to);
      } else {
        view.system("Usage: /msg NAME TEXT");
      }
      break;
    }
    case "nick":
      if (!arg || !session.nick(arg)) view.system("Usage: /nick NAME (when connected)");
      break;
    case "who":
      session.who(arg === "all");
      break;
    case "quit":
      session.leave();
      break;
    case "help":
      for (const line of HELP) view.system(line);
      if (session.opers.includes(session.name)) for (const line of OPER_HELP) view.system(line);
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
}

$("close-direct").addEventListener("click", () => setPrivate(""));

$("join-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const room = $("join-room").value.trim();
  if (room && session.join(room)) $("join-room").value = "";
});

$("menu").addEventListener("click", () => {
  if (view.toggleDrawer()) session.refreshRooms();
});
$("scrim").addEventListener("click", () => view.closeDrawer(true));
$("retry").addEventListener("click", () => session.retryNow());
$("rejoin").addEventListener("click", () => session.rejoin());
window.addEventListener("online", () => session.retryNow());
setInterval(() => session.refreshRooms(), ROOMS_EVERY_MS);
