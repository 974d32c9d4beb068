// Operator commands typed in the composer (PROTOCOL.txt 15), as the same JSON lines chatc
// and nc send. Pure: a typed command in, the line to send (or a usage to show) out.

const UNIT = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

function nameAndReason(arg) {
  const [name, ...rest] = arg.split(" ");
  const reason = rest.join(" ").trim();
  return reason ? { name, reason } : { name };
}

function ban(key, arg) {
  const [target, first = "", ...rest] = arg.split(" ");
  const line = { type: "ban", [key]: target };
  const time = /^(\d{1,9})([smhdw])$/i.exec(first);
  const words = time ? rest : [first, ...rest];
  if (time) line.seconds = Number(time[1]) * UNIT[time[2].toLowerCase()];
  const reason = words.join(" ").trim();
  if (reason) line.reason = reason;
  return line;
}

/**
 * The JSON line for a moderation command, `{usage}` when it is mistyped, or null when
 * `command` is not one.
 */
export function moderationLine(command, arg) {
  const one = arg && !arg.includes(" ");
  switch (command) {
    case "oper": {
      const [name, password, ...more] = arg.split(" ");
      return name && password && !more.length ? { type: "oper", name, password }
        : { usage: "/oper NAME PASSWORD" };
    }
    case "topic":
      if (!arg) return { type: "topic" };
      return { type: "topic", topic: arg === "-" ? "" : arg };
    case "kick":
    case "roomkick":
      if (!arg) return { usage: `/${command} NAME [REASON]` };
      return { type: "kick", from: command === "kick" ? "server" : "room", ...nameAndReason(arg) };
    case "ban":
      return arg ? ban("name", arg) : { usage: "/ban NAME [TIME] [REASON]" };
    case "banip":
      return arg ? ban("address", arg) : { usage: "/banip ADDRESS [TIME] [REASON]" };
    case "unban":
      return one ? { type: "unban", name: arg } : { usage: "/unban NAME" };
    case "unbanip":
      return one ? { type: "unban", address: arg } : { usage: "/unbanip ADDRESS" };
    case "bans":
      return { type: "bans" };
    case "mute":
      return arg ? { type: "mute", ...nameAndReason(arg) } : { usage: "/mute NAME [REASON]" };
    case "unmute":
      return one ? { type: "unmute", name: arg } : { usage: "/unmute NAME" };
    case "whois": // not moderation, but a line typed as NAME alone, like the ones above
      return one ? { type: "whois", name: arg } : { usage: "/whois NAME" };
    default:
      return null;
  }
}
