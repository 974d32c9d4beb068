// Name colours, the same as chatc's: PALETTE[crc32(utf-8 name) % PALETTE.length].
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

export function nameColour(name) {
  return PALETTE[crc32(name) % PALETTE.length];
}
