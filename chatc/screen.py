"""The bottom of the terminal: own lines awaiting their ack, a status bar, the input line.

One prompt_toolkit `Application` runs for the whole session (not one prompt per line):
between two prompts the terminal would be in cooked mode for a moment, and keys typed
then are echoed by the tty or, like Ctrl-D and Ctrl-C, eaten by it. Text for the
conversation is written above the application by erasing it, writing, and letting it
draw itself again; the input buffer is untouched, so half-typed text survives.
(`run_in_terminal`, which `patch_stdout` uses, also switches to cooked mode while it
writes; this does not.)
"""

from __future__ import annotations

from typing import Protocol

from prompt_toolkit.application import Application
from prompt_toolkit.application.current import get_app_or_none
from prompt_toolkit.buffer import Buffer
from prompt_toolkit.document import Document
from prompt_toolkit.filters import Condition
from prompt_toolkit.formatted_text import AnyFormattedText
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.layout import ConditionalContainer, HSplit, Layout, Window
from prompt_toolkit.layout.controls import BufferControl, FormattedTextControl
from prompt_toolkit.layout.processors import BeforeInput
from prompt_toolkit.output import ColorDepth


class View(Protocol):
    """What the screen shows and whom it tells about an entered line."""

    def typed(self, text: str) -> None: ...

    def above_input(self) -> AnyFormattedText: ...

    def has_above_input(self) -> bool: ...

    def status(self) -> AnyFormattedText: ...

    def prompt(self) -> AnyFormattedText: ...


class _InputBuffer(Buffer):
    def reset(self, document: Document | None = None, append_to_history: bool = False) -> None:
        super().reset(document, append_to_history)
        # prompt_toolkit reloads the Up-arrow history at the next repaint, and a repaint
        # can wait while incoming text is written: reload now, so Up works at once.
        app = get_app_or_none()
        if app is not None and app.is_running:
            self.load_history_if_not_yet_loaded()


class Screen:
    def __init__(self, view: View, color: bool = True) -> None:
        self._view = view
        self._stopped = False
        self._late: list[str] = []  # written while the application was closing
        self.buffer = _InputBuffer(multiline=False, history=InMemoryHistory(),
                             accept_handler=self._accept)
        keys = KeyBindings()
        empty = Condition(lambda: not self.buffer.text)

        @keys.add("c-d", filter=empty)
        @keys.add("c-c")
        def _leave(event: KeyPressEvent) -> None:
            self.stop()

        layout = Layout(HSplit([
            ConditionalContainer(
                Window(FormattedTextControl(view.above_input), dont_extend_height=True),
                filter=Condition(view.has_above_input)),
            Window(FormattedTextControl(view.status), height=1, style="reverse"),
            Window(BufferControl(self.buffer, input_processors=[BeforeInput(view.prompt)]),
                   dont_extend_height=True, wrap_lines=True),
        ]))
        self.app: Application[None] = Application(
            layout=layout, key_bindings=keys, full_screen=False, erase_when_done=True,
            color_depth=None if color else ColorDepth.MONOCHROME)

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
            app.renderer.erase()
        output.write_raw(text)
        output.flush()
        if app.is_running:
            app.invalidate()

    def _accept(self, buffer: Buffer) -> bool:
        self._view.typed(buffer.text)
        return False  # clear the line, keep running
