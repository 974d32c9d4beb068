"""Numbers and defaults of the wire contract that both ends agree on (PROTOCOL.txt)."""

from __future__ import annotations

from typing import Final

VERSION: Final = 2  # welcome "version" (12.1): 2 since several rooms at once (17)
DEFAULT_NAME: Final = "익명"  # a blank name (5.1): "anonymous", as in the tutorial chatd rebuilds
DEFAULT_ROOM: Final = "lobby"
DEFAULT_MAX_ROOMS: Final = 20  # rooms one user may be in at once (17.11)
MAX_NAME_CHARS: Final = 32  # names and rooms, counted after NFC (5.1, 5.2)
MAX_REF_CHARS: Final = 64
DEFAULT_MAX_LINE_BYTES: Final = 64 * 1024  # 1.4, 8.1
HISTORY_PAGE_MAX: Final = 100
MAX_REASON_CHARS: Final = 200  # a kick, ban or mute reason (15.2)
MAX_TOPIC_CHARS: Final = 300  # a room topic (15.5)
MAX_BAN_SECONDS: Final = 10 * 365 * 24 * 3600  # longer is given as permanent (no duration)
