"""The bottom of the terminal: own lines awaiting their ack, a status bar, the input line.

One prompt_toolkit `Application` runs for the whole session (not one prompt per line):
between two prompts the terminal would be in cooked mode for a moment, and keys typed
then are echoed by the tty or, like Ctrl-D and Ctrl-C, eaten by it. Text for the
conversation is written above the application by erasing it, writing, and letting it
draw itself again; the input buffer is untouched, so half-typed text survives.
(`run_in_terminal`, which `patch_stdout` uses, also switches to cooked mode while it
writes; this does not.)

On a narrower width most terminals (tmux, VTE, kitty, iTerm2, ...) re-wrap the rows
already drawn, so the full-width status bar becomes two or three rows; prompt_toolkit's
erase before a redraw only climbs the rows it drew, and the rest stays behind as a stale
status bar in the conversation. `_App` counts the re-wrapped rows first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from prompt_toolkit.application import Application
from prompt_toolkit.application.current import get_app_or_none
from prompt_toolkit.buffer import Buffer
from prompt_toolkit.data_structures import Point
from prompt_toolkit.document import Document
from prompt_toolkit.filters import Condition, emacs_insert_mode, vi_insert_mode
from prompt_toolkit.formatted_text import AnyFormattedText
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.layout import (
    ConditionalContainer,
    Dimension,
    HSplit,
    Layout,
    VerticalAlign,
    Window,
)
from prompt_toolkit.layout.controls import BufferControl, FormattedTextControl
from prompt_toolkit.layout.processors import BeforeInput
from prompt_toolkit.layout.screen import Char
from prompt_toolkit.output import ColorDepth
from prompt_toolkit.renderer import Renderer

from chatc.input import BoundedUndoBuffer, InputHistory, NearCursor, coalesce_typing


class View(Protocol):
    """What the screen shows and whom it tells about an entered line."""

    def typed(self, text: str) -> bool:
        """An entered line; True keeps it in the input line (to be edited)."""
        ...

    def leave(self) -> None:
        """Ctrl-D on an empty line, or Ctrl-C."""
        ...

    def above_input(self) -> AnyFormattedText: ...

    def has_above_input(self) -> bool: ...

    def status(self) -> AnyFormattedText: ...

    def prompt(self) -> AnyFormattedText: ...

    def recent(self, width: int, count: int) -> str:
        """The last `count` lines of the conversation as ANSI text at `width` columns
        (to draw them again after a resize), each row ending in a newline."""
        ...

    def window_number(self, number: int) -> None:
        """Alt-1..9, Alt-0 (10): show that window."""
        ...

    def window_step(self, step: int) -> None:
        """Alt-Right (1), Alt-Left (-1): the next window, or the one before."""
        ...


class _InputBuffer(BoundedUndoBuffer):
    def reset(self, document: Document | None = None, append_to_history: bool = False) -> None:
        super().reset(document, append_to_history)
        # prompt_toolkit reloads the Up-arrow history at the next repaint, and a repaint
        # can wait while incoming text is written: reload now, so Up works at once.
        app = get_app_or_none()
        if app is not None and app.is_running:
            self.load_history_if_not_yet_loaded()


def used_columns(row: dict[int, Char], has_style: dict[str, bool] | None) -> int:
    """Columns of a drawn row the terminal holds: prompt_toolkit writes up to the last
    cell that is not a blank without style (renderer.get_max_column_index)."""
    ends = [x + max(1, char.width) for x, char in row.items()
            if char.char != " " or (has_style is not None and has_style[char.style])]
    return max(ends, default=0)


def rewrapped(renderer: Renderer, columns: int) -> Point | None:
    """Where the cursor is, relative to the top of what was drawn, once a re-wrapping
    terminal has narrowed every drawn row to `columns`; None if nothing was re-wrapped."""
    screen, size = renderer._last_screen, renderer._last_size
    pos = renderer._cursor_pos
    if screen is None or size is None or columns <= 0 or columns >= size.columns:
        return None
    has_style = renderer._style_string_has_style
    extra = sum(max(0, -(-used_columns(screen.data_buffer[y], has_style) // columns) - 1)
                for y in range(pos.y))
    extra += pos.x // columns  # the cursor's own row, when the input line was long
    return Point(x=pos.x % columns, y=pos.y + extra)


class _App(Application[None]):
    # Private hooks of prompt_toolkit (3.0): its erase climbs renderer._cursor_pos.y, so
    # before erasing what was drawn at a wider size the cursor position is corrected for
    # the terminal's re-wrap. Both at the resize signal and at any redraw: a redraw that
    # an update asked for can come first, at the new size, and erase too little.
    view: View | None = None
    _columns = 0

    def _on_resize(self) -> None:
        self._account_for_rewrap()
        size = self.output.get_size()
        if self.view is not None and size.columns != self._columns:
            self._columns = size.columns
            self._draw_conversation_again(self.view, size.columns, size.rows)
        super()._on_resize()

    def _draw_conversation_again(self, view: View, columns: int, rows: int) -> None:
        """The terminal re-wrapped the rows on the screen at the new width, without
        the hanging indent of a wrapped line: draw the last lines again over them, as
        new lines are drawn. (Rows already scrolled off stay as the terminal left them.)"""
        self.renderer.erase(leave_alternate_screen=False)
        own = self.layout.container.preferred_height(columns, rows).preferred
        room = max(0, rows - own)
        drawn = view.recent(columns, room).split("\n")[:-1][-room:] if room else []
        blank = [""] * (room - len(drawn))
        output = self.output
        output.cursor_goto(0, 0)
        output.write_raw("".join(f"{row}\x1b[K\r\n" for row in blank + drawn))
        output.erase_down()
        output.flush()

    def _redraw(self, render_as_done: bool = False) -> None:
        self._account_for_rewrap()
        super()._redraw(render_as_done)

    def _account_for_rewrap(self) -> None:
        moved = rewrapped(self.renderer, self.output.get_size().columns)
        if moved is not None:
            self.renderer._cursor_pos = moved


class Screen:
    def __init__(self, view: View, color: bool = True) -> None:
        self._view = view
        self._stopped = False
        self._late: list[str] = []  # written while the application was closing
        self.buffer = _InputBuffer(multiline=False, history=InputHistory(),
                             accept_handler=self._accept)
        keys = KeyBindings()
        empty = Condition(lambda: not self.buffer.text)
        coalesce_typing(keys, emacs_insert_mode | vi_insert_mode)

        @keys.add("c-d", filter=empty)
        @keys.add("c-c")
        def _leave(event: KeyPressEvent) -> None:
            self._view.leave()

        for digit in "1234567890":
            keys.add("escape", digit)(self._window_key(int(digit) or 10))
        keys.add("escape", "right")(self._step_key(1))
        keys.add("escape", "left")(self._step_key(-1))

        def third() -> Dimension:
            # A huge paste must not push the conversation off the screen.
            return Dimension(min=1, max=max(1, self.height // 3))

        layout = Layout(HSplit([
            ConditionalContainer(
                Window(FormattedTextControl(view.above_input), dont_extend_height=True,
                       height=third),
                filter=Condition(view.has_above_input)),
            Window(FormattedTextControl(view.status), height=1, style="reverse"),
            Window(BufferControl(self.buffer,
                                 input_processors=[NearCursor(), BeforeInput(view.prompt)]),
                   dont_extend_height=True, wrap_lines=True, height=third),
        # prompt_toolkit never draws fewer rows than last time (until the next erase):
        # rows the input line gave back stay empty above the status bar, not below it.
        ], align=VerticalAlign.BOTTOM))
        app = _App(layout=layout, key_bindings=keys, full_screen=False, erase_when_done=True,
                   color_depth=None if color else ColorDepth.MONOCHROME)
        app.view = view
        app._columns = app.output.get_size().columns
        self.app: Application[None] = app

    def _window_key(self, number: int) -> Callable[[KeyPressEvent], None]:
        def show(event: KeyPressEvent) -> None:
            self._view.window_number(number)
        return show

    def _step_key(self, step: int) -> Callable[[KeyPressEvent], None]:
        def show(event: KeyPressEvent) -> None:
            self._view.window_step(step)
        return show

    def bell(self) -> None:
        """Ring the terminal's bell: through the output, never in the conversation's text
        (which is network text and never carries control characters)."""
        self.app.output.bell()

    def show_again(self) -> None:
        """Draw the conversation again from the view's recent lines (another window is
        shown): the rows above the input area are replaced."""
        app = self.app
        if not app.is_running or app.is_done:
            return
        assert isinstance(app, _App)
        size = app.output.get_size()
        app._draw_conversation_again(self._view, size.columns, size.rows)
        app.invalidate()

    @property
    def width(self) -> int:
        return self.app.output.get_size().columns

    @property
    def height(self) -> int:
        return self.app.output.get_size().rows

    async def run(self) -> None:
        """Until the user leaves (Ctrl-D on an empty line, Ctrl-C) or `stop()`."""
        try:
            await self.app.run_async(pre_run=self._exit_if_stopped)
        finally:
            if self._late:
                self.app.output.write_raw("".join(self._late))
                self.app.output.flush()
                self._late.clear()

    def stop(self) -> None:
        self._stopped = True
        self._exit_if_stopped()

    def _exit_if_stopped(self) -> None:
        # stop() may come before the application has started; pre_run catches that.
        future = self.app.future
        if self._stopped and future is not None and not future.done():
            self.app.exit()

    def refresh(self) -> None:
        if self.app.is_running:
            self.app.invalidate()

    def write(self, text: str) -> None:
        """ANSI text above the input area (which is drawn again below it)."""
        app, output = self.app, self.app.output
        if app.is_running and app.is_done:
            # Closing: its last act erases the input area, which would take this along.
            self._late.append(text)
            return
        if app.is_running:
            renderer = app.renderer
            drawn = renderer._last_screen.height if renderer._last_screen else 0
            renderer.erase()
            # Rows of the input area that this text does not fill stay the input area's
            # (bottom-aligned), not blank rows under it: the erase forgot how many there
            # were (prompt_toolkit's private state; it only learns them by asking the
            # terminal, at start).
            renderer._min_available_height = max(0, drawn - text.count("\n"))
        output.write_raw(text)
        output.flush()
        if app.is_running:
            app.invalidate()

    def _accept(self, buffer: Buffer) -> bool:
        return self._view.typed(buffer.text)  # True: keep the text
