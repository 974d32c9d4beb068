// The page: the login form, the composer and its commands, the drawer; wires a Session
// (the protocol) to a ChatView (the DOM).

import { Session } from "/session.js";
import { ChatView } from "/view.js";

const $ = (id) => document.getElementById(id);
const ROOMS_EVERY_MS = 20000; // other rooms' counts change without notices to us

const HELP = [
  "/join ROOM — move to another room (or pick one in the list)",
  "/msg NAME TEXT — a private line (or pick a name in the list)",
  "/nick NAME — change your name",
  "/who [all] — who is here (or everywhere)",
  "/quit — leave the chat",
  "//text — send a line starting with /",
];

const view = new ChatView();
const wsUrl = new URL("/ws", window.location.href);
wsUrl.protocol = wsUrl.protocol === "https:" ? "wss:" : "ws:";
const session = new Session(wsUrl.href, view);
let privateTo = "";

function setPrivate(name) {
  privateTo = name;
  $("private").hidden = !name;
  $("private-name").textContent = name;
  view.closeDrawer();
  $("input").focus();
}

view.onPickUser = setPrivate;
view.onPickRoom = (room) => session.join(room) || view.system("not connected; try again");

$("login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  $("login-error").textContent = "";
  view.app.dataset.screen = "joining";
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
  } else if (event.key === "Escape" && privateTo) {
    setPrivate("");
  }
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
    session.say(text.startsWith("//") ? text.slice(1) : text, privateTo || undefined);
    return;
  }
  const [command, ...rest] = text.slice(1).split(" ");
  const arg = rest.join(" ").trim();
  switch (command.toLowerCase()) {
    case "join":
      if (!arg || !session.join(arg)) view.system("usage: /join ROOM (when connected)");
      break;
    case "msg": {
      const [to, ...words] = arg.split(" ");
      const message = words.join(" ");
      if (to && message.trim()) session.say(message, to);
      else view.system("usage: /msg NAME TEXT");
      break;
    }
    case "nick":
      if (!arg || !session.nick(arg)) view.system("usage: /nick NAME (when connected)");
      break;
    case "who":
      session.who(arg === "all");
      break;
    case "quit":
      session.leave();
      break;
    case "help":
      for (const line of HELP) view.system(line);
      break;
    default:
      view.system(`There is no /${command} command; /help lists the commands.`, "error");
  }
}

$("private-cancel").addEventListener("click", () => setPrivate(""));

$("join-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const room = $("join-room").value.trim();
  if (room && session.join(room)) $("join-room").value = "";
});

$("menu").addEventListener("click", () => {
  if (view.toggleDrawer()) session.refreshRooms();
});
$("scrim").addEventListener("click", () => view.closeDrawer());
$("retry").addEventListener("click", () => session.retryNow());
$("rejoin").addEventListener("click", () => session.rejoin());
window.addEventListener("online", () => session.retryNow());
setInterval(() => session.refreshRooms(), ROOMS_EVERY_MS);
