"""Line mode, for pipes and scripts: each input line is sent, each update is one plain line.

No colour and no prompt. Lines of the user's rooms other than the current one (the one
a line typed goes to) start with the room: `[dev] <bob> hi`. When input ends, chatc
waits until the server has acknowledged every line sent (for `--ack-timeout` at most),
leaves politely and exits 0; losing the server exits 1, and so does a line that was not
sent: each is named on stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
from collections.abc import AsyncIterator

from chatc import commands, render
from chatc.connection import Client, ConnectFailed, Refused
from chatc.events import (
    CaughtUp,
    Confirmed,
    Failed,
    Gone,
    Lost,
    Reconnected,
    Throttled,
)
from chatc.options import Options
from chatc.reconnect import refused_status
from chatc.session import TooLong
from chatc.tokens import Saved
from chatc.windows import Windows, other_room
from chatc.words import words
from chatd import protocol as p

READ_SIZE = 64 * 1024
PREVIEW_CHARS = 60


def preview(text: str) -> str:
    text = render.safe(text)
    return repr(text[:PREVIEW_CHARS] + "…" if len(text) > PREVIEW_CHARS else text)


async def stdin_lines(fd: int = 0) -> AsyncIterator[str]:
    """Lines of a file descriptor, read by a thread so that files, pipes and terminals all
    work (the event loop cannot wait on a regular file)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()

    def put(chunk: bytes | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is reading
            loop.call_soon_threadsafe(queue.put_nowait, chunk)

    def read() -> None:
        # os.read, not sys.stdin: a daemon thread blocked inside a buffered reader
        # holds its lock and can crash the interpreter's shutdown.
        try:
            while chunk := os.read(fd, READ_SIZE):
                put(chunk)
        except OSError:
            pass
        put(None)

    threading.Thread(target=read, name="chatc-stdin", daemon=True).start()
    rest = b""
    while (chunk := await queue.get()) is not None:
        *lines, rest = (rest + chunk).split(b"\n")
        for line in lines:
            yield line.rstrip(b"\r").decode("utf-8", "replace")
    if rest:
        yield rest.rstrip(b"\r").decode("utf-8", "replace")


class _Out:
    """stdout for the conversation, stderr for chatc's own remarks."""

    def __init__(self) -> None:
        self.broken = False
        self.unsent = 0  # own lines refused, given up on or never sent
        self.rooms: Windows[None] = Windows()  # which rooms, and which is current

    def lines(self, lines: list[render.Line], room: str | None = None) -> None:
        """Lines, each marked with `room` if given (another room than the current)."""
        if self.broken:
            return
        mark = f"[{render.safe(room)}] " if room else ""
        try:
            for text in render.plain(lines):
                sys.stdout.write(mark + text + "\n")
            sys.stdout.flush()
        except BrokenPipeError:
            # Whoever read our output has gone; stop writing, quietly.
            self.broken = True
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())

    @staticmethod
    def remark(text: str) -> None:
        print(f"chatc: {text}", file=sys.stderr, flush=True)


async def run(options: Options) -> int:
    saved = Saved(options.tokens, options.host,
                  options.port, options.name)
    if options.ask_login and saved.token is None:
        print("chatc: --login: no password (set CHATC_LOGIN) and no saved login",
              file=sys.stderr)
        return 1
    client = Client(options.target, options.name, room=options.room,
                    password=options.password, login=options.login,
                    login_token=saved.token, on_token=saved.changed,
                    reconnect=options.reconnect is True,
                    ack_timeout=options.ack_timeout)
    out = _Out()
    try:
        welcome = await client.open()
    except ConnectFailed as exc:
        if isinstance(exc, Refused) and exc.error.code == p.ErrorCode.LOGIN_FAILED \
                and saved.token is not None:
            saved.changed(None)
            out.remark(f"{exc}; the saved login was forgotten: log in again with "
                       "--login and CHATC_LOGIN")
            return 1
        out.remark(str(exc))
        return refused_status(exc.error) if isinstance(exc, Refused) else 1
    out.rooms.welcome(welcome)
    out.lines(render.welcome(welcome))
    receiving = asyncio.create_task(_receive(client, out))
    sending = asyncio.create_task(_send(client, out, options.ack_timeout))
    await asyncio.wait({receiving, sending}, return_when=asyncio.FIRST_COMPLETED)
    if not sending.done():
        sending.cancel()
    code = await receiving
    for line in client.pending:  # waited for in vain, or the server went away
        out.remark(f"not sent: {preview(line.text)}")
        out.unsent += 1
    if out.unsent:
        out.remark(f"{out.unsent} line{'s' if out.unsent != 1 else ''} not sent")
    return code or (1 if out.unsent else 0)


async def _send(client: Client, out: _Out, wait: float) -> None:
    number = 0
    async for text in stdin_lines():
        number += 1
        action = commands.parse(text)
        if isinstance(action, commands.Quit):
            break
        if isinstance(action, commands.Say):
            try:
                client.say(action.text, action.to)
            except TooLong as exc:
                out.unsent += 1
                out.remark(f"line {number} not sent: {exc.size:,} bytes, and the server "
                           f"takes at most {exc.limit:,}: {preview(action.text)}")
        elif isinstance(action, commands.Send):
            if isinstance(action.event, p.Join):
                out.rooms.joining(action.event.room)
            client.command(action.event)
        elif isinstance(action, commands.Window):
            _window(client, out, action)
        elif isinstance(action, commands.Help):
            out.lines([render.notice(f"{usage} - {what}") for usage, what in commands.HELP])
        elif isinstance(action, commands.Bad):
            out.lines([render.error(action.message)])
    # Bounded: with the server away (and --reconnect) the lines may never be taken.
    await client.drain(wait)
    await client.close()


def _window(client: Client, out: _Out, action: commands.Window) -> None:
    """Line mode has no windows: /part leaves a room, /switch chooses the current one."""
    rooms = out.rooms
    if action.number is not None or action.query is not None:
        out.lines([render.error("line mode has no windows (/msg NAME TEXT sends a "
                                "private line)")])
    elif not rooms.multi:
        out.lines([render.error("this server keeps you in one room at a time "
                                "(/join ROOM moves you)")])
    elif action.part:
        client.command(p.Part(action.room))
    elif action.room is not None:
        client.command(p.Switch(action.room))


async def _receive(client: Client, out: _Out) -> int:
    away = 0.0  # how long the last reconnect took
    named = client.welcome.name if client.welcome is not None else ""
    async for event in client.events():
        me = client.name or ""
        if isinstance(event, Gone):
            if event.reason is not None:
                out.remark(event.reason if event.removed else f"disconnected: {event.reason}")
            return event.status
        if isinstance(event, Confirmed):
            out.lines([render.chat(me, event.line.text, me, event.time, to=event.line.to)])
        elif isinstance(event, Failed):
            out.unsent += 1
            said = words(event.error, to=event.line.to, limit=client.max_line_bytes)
            out.lines([render.error(f"{preview(event.line.text)} not sent: {said}",
                                    event.error.code)])
        elif isinstance(event, Throttled):
            out.remark(f"flood control: sending again in {event.retry_in:g}s")
        elif isinstance(event, Lost):
            if event.attempt == 1:  # each further attempt would say the same again
                out.remark(f"connection lost ({event.reason}); reconnecting")
        elif isinstance(event, Reconnected):
            for again in out.rooms.welcome(event.welcome):  # a new session: same rooms
                client.command(again)
            away = event.away
            if event.welcome.resumed:
                out.remark(render.back(away, True))
            elif named and event.welcome.name != named:  # 10.4: taken meanwhile, or 18.3
                why = f" ({event.welcome.notice})" if event.welcome.notice else ""
                out.remark(f"you are {event.welcome.name} now, not {named}{why}")
            named = event.welcome.name
        elif isinstance(event, CaughtUp):  # after a reconnect as a new session
            out.remark(render.back(away, False, event.count, event.known))
        else:
            room = other_room(event, out.rooms.server_room) if out.rooms.multi else None
            out.rooms.place(event)
            client.follow(out.rooms.server_room)
            out.lines(render.render(out.rooms.marked(event), me), room)
    return 0
