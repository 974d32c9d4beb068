// Name colours, the same as chatc's (chatd/palette.py, served as /palette.js): a name's
// own colour is PALETTE[crc32(utf-8 name) % PALETTE.length]; among the names present
// (`present`), each keeps its own unless a name present before it holds that one, then
// takes the nearest free one round the palette, and keeps it while it stays.
import { PALETTE } from "/palette.js";

const TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

const encoder = new TextEncoder();

/** zlib's CRC-32 of the UTF-8 bytes of `text`, as an unsigned number. */
export function crc32(text) {
  let crc = 0xffffffff;
  for (const byte of encoder.encode(text)) crc = TABLE[(crc ^ byte) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** `wanted` if free, else the free index nearest to it (the one after it on a tie);
 * `wanted` itself when all are taken. As chatd/palette.py's nearest_free. */
export function nearestFree(wanted, taken, size) {
  for (let step = 0; step <= Math.floor(size / 2); step++) {
    for (const index of [(wanted + step) % size, (((wanted - step) % size) + size) % size]) {
      if (!taken.has(index)) return index;
    }
  }
  return wanted;
}

const held = new Map(); // name -> palette index, in arrival order (chatd/palette.py)

/** The names present now (a room's members, in the order they came). */
export function present(names) {
  const now = [...new Set(names)];
  const wanted = new Set(now);
  for (const name of [...held.keys()]) if (!wanted.has(name)) held.delete(name);
  for (const name of now) {
    if (!held.has(name)) {
      const own = crc32(name) % PALETTE.length;
      held.set(name, nearestFree(own, new Set(held.values()), PALETTE.length));
    }
  }
}

export function nameColour(name) {
  const index = held.get(name);
  return PALETTE[index === undefined ? crc32(name) % PALETTE.length : index];
}

// The backgrounds a name is drawn on, per colour scheme (style.css): a name's colour is
// darkened (light scheme) or lightened (dark scheme) just enough to read at 4.5:1 on all.
const BACKGROUNDS = {
  light: ["#ffffff", "#f6f7f9", "#f0f2f5", "#f3ecfd"],
  dark: ["#15171b", "#1d2026", "#1a1d22", "#2a2238"],
};
const WANTED = 4.6; // a little over WCAG's 4.5, for rounding on the way to the screen

function rgbOf(hex) {
  return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
}

function luminance(rgb) {
  const [r, g, b] = rgb.map((c) => {
    const v = c / 255;
    return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

export function contrast(a, b) {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

function toHex(rgb) {
  return `#${rgb.map((c) => Math.round(c).toString(16).padStart(2, "0")).join("")}`;
}

/** `hex`, mixed toward black or white until it reads on every background of `scheme`. */
export function readable(hex, scheme) {
  const base = rgbOf(hex);
  const toward = scheme === "dark" ? 255 : 0;
  const grounds = BACKGROUNDS[scheme].map(rgbOf);
  for (let step = 0; step <= 20; step++) {
    const rgb = base.map((c) => c + (toward - c) * (step / 20));
    if (grounds.every((ground) => contrast(rgb, ground) >= WANTED)) return toHex(rgb);
  }
  return scheme === "dark" ? "#ffffff" : "#000000";
}

const styles = new Map();

/** Gives `node` the name's colour as chatc has it (--name), and as each scheme draws it. */
export function nameStyle(node, name) {
  const colour = nameColour(name);
  let style = styles.get(colour);
  if (style === undefined) {
    style = [colour, readable(colour, "light"), readable(colour, "dark")];
    styles.set(colour, style); // one per palette colour: bounded
  }
  node.style.setProperty("--name", style[0]);
  node.style.setProperty("--name-light", style[1]);
  node.style.setProperty("--name-dark", style[2]);
}
