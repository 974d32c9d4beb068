// What the server's errors and notices mean, in words for people (PROTOCOL.txt 7). The
// server's messages are written for developers and may change; the codes are stable and
// each has one meaning, so every decision here hangs on a code or a structured field of
// the error line ("until", "retry_after"), never on the message; the message is only
// shown (its time stamps in local time). The code stays at the end (dim) for bug reports.

const bytes = new Intl.NumberFormat("en");
// A time stamp of the server's (PROTOCOL.txt 9.2) inside a sentence, e.g. a ban's end.
const STAMP = /\buntil (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z)/g;

function plural(n, unit) {
  return `${n} ${unit}${n === 1 ? "" : "s"}`;
}

function pad(n) {
  return String(n).padStart(2, "0");
}

/** How long, in the unit a person would use: "5 minutes", "2 hours", "3 days". */
function span(ms) {
  const minutes = Math.max(1, Math.round(ms / 60000));
  if (minutes < 60) return plural(minutes, "minute");
  const hours = Math.round(minutes / 60);
  if (hours < 48) return plural(hours, "hour");
  return plural(Math.round(hours / 24), "day");
}

/** "for 2 hours, until 09:28" in local time (with the date when not today). */
export function untilWords(stamp, now = new Date()) {
  const at = new Date(stamp);
  if (Number.isNaN(at.getTime())) return `until ${stamp}`;
  let when = `${pad(at.getHours())}:${pad(at.getMinutes())}`;
  if (at.toDateString() !== now.toDateString()) {
    const day = at.toLocaleDateString(undefined, { weekday: "short", day: "numeric", month: "short" });
    when = `${day}, ${when}`;
  }
  const left = at.getTime() - now.getTime();
  return left > 0 ? `for ${span(left)}, until ${when}` : `until ${when}`;
}

/** A server sentence with its time stamps in local, relative words. */
export function localTimes(text) {
  return text.replace(STAMP, (_, stamp) => untilWords(stamp));
}

function sentence(text) {
  const trimmed = text.trim().replace(/[.;:]+$/, "");
  return trimmed ? `${trimmed[0].toUpperCase()}${trimmed.slice(1)}.` : "";
}

/** "wait 5 minutes": a throttle's "retry_after" (seconds) in words. */
function waitWords(seconds) {
  if (!Number.isInteger(seconds) || seconds <= 0) return "wait a moment";
  return seconds < 90 ? `wait ${plural(seconds, "second")}` : `wait ${span(seconds * 1000)}`;
}

/**
 * A sentence for an error line. `asked` is what the user tried, when the page knows it:
 * {room} for a join, {name} for a nick, {to} for a private line. `fields`: the error
 * line itself, for its structured fields (PROTOCOL.txt 7).
 */
export function explainError(code, message, asked = {}, fields = {}) {
  const said = typeof message === "string" ? message : "";
  switch (code) {
    case "already_in_room":
      return asked.room ? `You are in #${asked.room} already.` : sentence(said);
    case "not_in_room":
      return asked.room ? `You are not in #${asked.room}; /join ${asked.room} joins it.`
        : "You are not in that room (any more); join it first.";
    case "too_many_rooms": {
      const room = asked.room ? ` #${asked.room}` : " another";
      return `You are in as many rooms as this server allows; leave one before joining${room}.`;
    }
    case "bad_room": {
      const room = asked.room ? `“${asked.room}”` : "that room";
      return `Cannot go to ${room}: ${said || "not a room name"}. A room name is 1 to 32 ` +
        "characters, without spaces.";
    }
    case "same_name":
      return asked.name ? `You are ${asked.name} already.` : "That is your name already.";
    case "bad_name":
      return `That name cannot be used: ${said || "not a name"}. A name is 1 to 32 ` +
        "characters, without spaces.";
    case "name_taken": {
      if (!asked.name) return "That name is taken by someone else; try another.";
      return `${asked.name} is taken by someone else; try another, e.g. /nick ${asked.name}_`;
    }
    case "name_banned": {
      const until = typeof fields.until === "string" ? untilWords(fields.until) : "for good";
      return `That name is banned ${until}; choose another.`;
    }
    case "not_muted":
      return `Nobody called ${asked.name || "that"} is muted.`;
    case "auth_throttled":
      return `Too many wrong passwords from your address; ${waitWords(fields.retry_after)}, ` +
        "then try again.";
    case "oper_throttled":
      return `Too many wrong operator passwords from your address; ` +
        `${waitWords(fields.retry_after)}, then try again.`;
    case "no_such_user":
      return `Nobody called ${asked.to || "that"} is here now, so the line was not sent.`;
    case "rate_limited":
      return "That was too fast, so the line was not sent; wait a moment and send it again.";
    case "line_too_long":
      return "Not sent: the line is longer than the server takes; shorten it or split it.";
    case "unavailable":
      return "The server cannot reach its other nodes right now, so the line was not sent; " +
        "try again in a moment.";
    case "internal_error":
      return "The server failed on that line (a bug, and it is logged), so it was dropped.";
    case "excess_flood":
      return "You were disconnected for sending too much too fast.";
    case "auth_failed":
      return asked.password ? "Wrong password." : "This server needs a password.";
    case "server_full":
      return "The server is full; try again later.";
    case "too_many_connections":
      return "Too many connections from your address; close another tab and try again.";
    case "registration_timeout":
    case "ping_timeout":
      return "The connection went quiet for too long; joining again.";
    case "not_operator":
      return "Only operators can do that; an operator logs in with /oper NAME PASSWORD.";
    case "oper_failed":
    case "kicked":
    case "banned":
    case "muted":
      return sentence(localTimes(said));
    case "bad_field":
      return `The server did not accept that: ${said || "a field was wrong"}.`;
    default:
      return sentence(said) || "Something went wrong.";
  }
}

/**
 * What the banner says after an operator removed us (PROTOCOL.txt 15.2, 15.3): the
 * server's sentence (who and why) and what one can do now. {text, rejoin}
 */
export function explainRemoval(code, message, fields = {}) {
  const said = sentence(localTimes(message));
  if (code === "kicked") {
    return { text: `${said || "An operator removed you from the server."} You can join again.`,
      rejoin: true };
  }
  const ends = typeof fields.until === "string"; // "until" null: permanent (15.3)
  const next = ends ? "You can come back when it ends." : "Only an operator can lift it.";
  return { text: `${said || "You are banned from this server."} ${next}`, rejoin: false };
}

/** A line that went past the server's limit, before it was sent. */
export function explainTooLong(size, limit) {
  return `Not sent: this line is ${bytes.format(size)} bytes and the server takes at most ` +
    `${bytes.format(limit)}; shorten it or split it.`;
}

/**
 * The welcome's "notice" (4.1): only a failed resume needs saying differently; the page
 * knows one failed when it sent a resume token and the welcome says "resumed" false.
 */
export function explainNotice(notice, name, resumeFailed = false) {
  if (resumeFailed) {
    return `The server no longer had your session (it restarted, or you were away too ` +
      `long), so you joined again as ${name}. Room lines you missed follow; private lines ` +
      "sent to you meanwhile could not be kept.";
  }
  return sentence(notice);
}
