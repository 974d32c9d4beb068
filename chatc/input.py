"""What keeps the input line cheap with a huge paste, and secrets out of its history.

A paste the terminal types out (no bracketed paste) arrives as one key press per
character. prompt_toolkit inserts each on its own, copying the whole text every time,
and keeps every intermediate text for undo: 70,000 characters cost gigabytes and
seconds of CPU. `coalesce_typing` inserts a run of typed characters at once,
`BoundedUndoBuffer` keeps undo within a byte budget, and `NearCursor` draws only the
part of a long line around the cursor (prompt_toolkit lays out every character of a
line on each redraw, whatever is on the screen).
"""

from __future__ import annotations

from collections.abc import Iterable

from prompt_toolkit.application.current import get_app
from prompt_toolkit.buffer import Buffer
from prompt_toolkit.filters import Filter
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.history import History
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.keys import Keys
from prompt_toolkit.layout.processors import Processor, Transformation, TransformationInput

from chatd import protocol as p

UNDO_CHARS = 1_000_000  # of text the undo states of the input line keep, together
HISTORY_CHARS = 1_000_000  # of lines the Up-arrow history keeps, together
HIDDEN = "…"  # stands for the part of a long line that is not drawn


def coalesce_typing(keys: KeyBindings, insert_mode: Filter) -> None:
    """Typed characters waiting behind this one are inserted with it, in one edit."""

    @keys.add(Keys.Any, filter=insert_mode, save_before=lambda event: not event.is_repeat)
    def _insert(event: KeyPressEvent) -> None:
        typed = [event.data * event.arg]
        queue = event.key_processor.input_queue
        while queue and _printable(queue[0].key, queue[0].data):
            typed.append(queue.popleft().data)
        event.current_buffer.insert_text("".join(typed))


def _printable(key: object, data: str) -> bool:
    # A plain character is its own key; named keys (Enter, arrows, Ctrl-...) are Keys.
    return not isinstance(key, Keys) and key == data and data.isprintable()


class BoundedUndoBuffer(Buffer):
    def save_to_undo_stack(self, clear_redo_stack: bool = True) -> None:
        super().save_to_undo_stack(clear_redo_stack)
        stack = self._undo_stack
        kept = sum(len(text) for text, _ in stack)
        while len(stack) > 1 and kept > UNDO_CHARS:
            kept -= len(stack.pop(0)[0])


class NearCursor(Processor):
    """Draws of a long line only about two screens' worth around the cursor; the rest
    shows as `HIDDEN`. Put first, so that it sees the buffer's own positions."""

    def apply_transformation(self, ti: TransformationInput) -> Transformation:
        text_length = sum(len(part[1]) for part in ti.fragments)
        # Not ti.height: prompt_toolkit measures the preferred height with a height of 1.
        rows = get_app().output.get_size().rows
        reach = max(1, ti.width) * max(1, rows)  # characters a screen can show
        if text_length <= 4 * reach:
            return Transformation(ti.fragments)
        document = ti.document
        cursor = (document.cursor_position_col if document.cursor_position_row == ti.lineno
                  else 0)
        start = max(0, cursor - 2 * reach)
        end = min(text_length, start + 4 * reach)
        start = max(0, end - 4 * reach)
        head = HIDDEN if start else ""
        tail = HIDDEN if end < text_length else ""
        fragments: StyleAndTextTuples = [("", head)] if head else []
        fragments += _cut(ti.fragments, start, end)
        if tail:
            fragments.append(("", tail))

        def source_to_display(i: int) -> int:
            return len(head) + min(max(i, start), end) - start

        def display_to_source(i: int) -> int:
            return min(max(i - len(head), 0), end - start) + start

        return Transformation(fragments, source_to_display, display_to_source)


def _cut(fragments: StyleAndTextTuples, start: int, end: int) -> StyleAndTextTuples:
    """The characters start..end of a fragment list, styles kept."""
    out: StyleAndTextTuples = []
    at = 0
    for fragment in fragments:
        style, text = fragment[0], fragment[1]
        if at + len(text) > start and at < end:
            out.append((style, text[max(0, start - at):end - at]))
        at += len(text)
    return out


def secret(line: str) -> bool:
    """A command with a password in it (/oper NAME PASSWORD, ...): never kept."""
    try:
        event = p.parse_text_line(line.encode("utf-8", "surrogateescape"))
    except p.ProtocolError:
        # Mistyped (a usage error), but the password may be in it all the same.
        return line.split(maxsplit=1)[:1] == ["/oper"]
    return bool(getattr(event, "password", None))


class InputHistory(History):
    """Lines for the Up arrow: without secrets, and at most HISTORY_CHARS of them
    (the oldest go first; a line longer than that is not kept)."""

    def __init__(self) -> None:
        super().__init__()
        self._loaded = True  # nothing to load: it lives in memory only

    def load_history_strings(self) -> Iterable[str]:
        return []

    def store_string(self, string: str) -> None:
        pass

    def append_string(self, string: str) -> None:
        if secret(string) or len(string) > HISTORY_CHARS:
            return
        newest_first = self._loaded_strings
        newest_first.insert(0, string)
        kept = sum(map(len, newest_first))
        while kept > HISTORY_CHARS:
            kept -= len(newest_first.pop())
