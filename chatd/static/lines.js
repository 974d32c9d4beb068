// Building the rows of a conversation. Every string from the network goes in through
// textContent or a text node, never as HTML, so a line like <img src=x onerror=alert(1)>
// shows as written.

import { nameStyle } from "/colour.js";

const GROUP_MS = 5 * 60 * 1000; // a person's lines this close together read as one block
const RUN_COLLAPSES_AT = 3; // joins and leaves in a row, from this many on, become one row
const RUN_NAMES = 2; // names spelt out in a collapsed run's summary
let runs = 0;

export const $ = (id) => document.getElementById(id);

/** An element with a class and, optionally, text (always as text). */
export function el(tag, className, content) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (content !== undefined) node.textContent = content;
  return node;
}

export function str(value) {
  return typeof value === "string" ? value : "";
}

function pad(n) {
  return String(n).padStart(2, "0");
}

/** A <time> in local HH:MM for a protocol time stamp (UTC, RFC 3339), or now. */
export function clock(stamp) {
  const parsed = stamp ? new Date(stamp) : new Date();
  const date = Number.isNaN(parsed.getTime()) ? new Date() : parsed;
  const node = el("time", "", `${pad(date.getHours())}:${pad(date.getMinutes())}`);
  node.dateTime = date.toISOString();
  node.title = date.toLocaleString();
  return node;
}

export function nameTag(name, me) {
  const node = el("span", name === me ? "name own" : "name", name);
  nameStyle(node, name);
  return node;
}

/** A chat line's row; `ts` (ms) and `name` are kept on it for grouping. */
export function messageRow(name, text, me, stamp) {
  const li = el("li", "line message");
  li.dataset.name = name;
  li.dataset.ts = String(stamp ? Date.parse(stamp) || Date.now() : Date.now());
  if (name === me) li.classList.add("own");
  const body = el("span", "text");
  body.append(...linked(text));
  li.append(stamp === null ? pendingClock() : clock(stamp), nameTag(name, me), body);
  return li;
}

// A URL as people paste them; what ends a sentence after it is not part of it.
const URL_IN_TEXT = /\bhttps?:\/\/[^\s<>"]+/gi;
const TRAILING = ".,;:!?'\")]}";

/** A URL without the punctuation after it; a ")" stays when it closes a "(" of the URL. */
function trimmed(url) {
  let end = url.length;
  while (end > 0 && TRAILING.includes(url[end - 1])) {
    const part = url.slice(0, end);
    if (url[end - 1] === ")" && part.split("(").length >= part.split(")").length) break;
    end -= 1;
  }
  return url.slice(0, end);
}

/**
 * Text as nodes, with http and https URLs as links (new tab, no referrer, no opener,
 * no endorsement). Only a URL the URL parser reads as http(s) becomes a link, and only
 * through its href: the text itself always stays text.
 */
export function linked(text) {
  const nodes = [];
  let from = 0;
  for (const match of text.matchAll(URL_IN_TEXT)) {
    const url = trimmed(match[0]);
    let href;
    try {
      href = new URL(url);
    } catch {
      continue;
    }
    if (href.protocol !== "http:" && href.protocol !== "https:") continue;
    if (match.index > from) nodes.push(document.createTextNode(text.slice(from, match.index)));
    const link = el("a", "link", url);
    link.href = href.href;
    link.target = "_blank";
    link.rel = "noopener noreferrer nofollow";
    nodes.push(link);
    from = match.index + url.length;
  }
  if (from < text.length) nodes.push(document.createTextNode(text.slice(from)));
  return nodes;
}

function pendingClock() {
  const time = el("time", "", "··:··");
  time.title = "sending…";
  return time;
}

/**
 * Marks `li` as the continuation of the row before it when both are one person's chat
 * lines a few minutes apart: the name is then only for screen readers, the time on hover.
 */
export function group(li) {
  if (li === null || !li.classList.contains("message")) return;
  const prev = li.previousElementSibling;
  const same = prev !== null && prev.classList.contains("message")
    && !prev.classList.contains("failed") && prev.dataset.name === li.dataset.name
    && Math.abs(Number(li.dataset.ts) - Number(prev.dataset.ts)) <= GROUP_MS;
  li.classList.toggle("cont", same);
}

export function divider(label, className) {
  const li = el("li", `divider ${className}`);
  li.append(el("span", "", label));
  return li;
}

/** A notice's row: its own text, with the name in its colour when the text starts with it. */
export function noticeRow(msg, me) {
  const name = str(msg.name);
  const message = str(msg.message);
  const li = el("li", `line notice ${msg.type}`);
  li.dataset.name = name;
  const body = el("span", "text");
  if (name && message.startsWith(name)) {
    body.append(nameTag(name, me), document.createTextNode(message.slice(name.length)));
  } else {
    body.textContent = message;
  }
  if (typeof msg.reason === "string") body.append(el("span", "reason", ` (${msg.reason})`));
  li.append(clock(msg.time), body);
  return li;
}

// ---------------------------------------------------------------- runs of joins and leaves

/** An empty run: a summary button (shown once the run collapses) and the notices. */
export function newRun() {
  runs += 1;
  const li = el("li", "run");
  const toggle = el("button", "line run-toggle");
  toggle.type = "button";
  toggle.hidden = true;
  toggle.setAttribute("aria-expanded", "false");
  const items = el("ol", "run-items");
  items.id = `run-${runs}`;
  toggle.setAttribute("aria-controls", items.id);
  toggle.append(el("time"), el("span", "text"));
  toggle.addEventListener("click", () => {
    const open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", String(open));
    items.hidden = !open;
  });
  li.append(toggle, items);
  return li;
}

export function isRun(node) {
  return node !== null && node.classList.contains("run");
}

export function addToRun(run, row) {
  const [toggle, items] = run.children;
  items.append(row);
  const rows = [...items.children];
  if (rows.length < RUN_COLLAPSES_AT) return;
  const first = rows[0].querySelector("time");
  toggle.firstChild.replaceWith(first.cloneNode(true));
  toggle.lastChild.textContent = summary(rows);
  if (toggle.hidden) {
    toggle.hidden = false;
    items.hidden = toggle.getAttribute("aria-expanded") !== "true";
  }
}

function summary(rows) {
  const joined = new Set();
  const left = new Set();
  for (const row of rows) (row.classList.contains("connect") ? joined : left).add(row.dataset.name);
  const parts = [];
  if (joined.size) parts.push(`${names([...joined])} joined`);
  if (left.size) parts.push(`${names([...left])} left`);
  return parts.join("; ");
}

/** "a", "a and b", "a, b and c", "a, b and 28 others" */
function names(list) {
  if (list.length <= RUN_NAMES + 1) {
    return list.length === 1 ? list[0] : `${list.slice(0, -1).join(", ")} and ${list.at(-1)}`;
  }
  return `${list.slice(0, RUN_NAMES).join(", ")} and ${list.length - RUN_NAMES} others`;
}
