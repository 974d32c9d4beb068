"""The `Hub`: the one object the shells hold. Its entry points, `handle` (a local
connection's line) and `apply` (a command in log order), hand each line or command to
its handler (the tables of chatd.hub.handlers); the handlers reach the parts, and
answer, through `Core`."""

from __future__ import annotations

from chatd import protocol as p
from chatd.commands import (
    BanCmd,
    Command,
    DetachCmd,
    JoinCmd,
    JoinRoomCmd,
    KickCmd,
    LeaveCmd,
    MuteCmd,
    OperCmd,
    PartCmd,
    RenameCmd,
    ResumeCmd,
    SayCmd,
    SwitchCmd,
    TopicCmd,
    UnbanCmd,
)
from chatd.effects import Effects, Settled
from chatd.hub import accounts
from chatd.hub.base import P, Stamp
from chatd.hub.core import Core
from chatd.hub.handlers import COMMANDS, EVENTS, connect
from chatd.protocol import ErrorCode, ProtocolError


class Hub(Core[P]):
    def handle(self, peer: P, event: p.Event, address: str = "") -> Effects[P]:
        """A parsed line from a local peer; `address`, its IP, matters for a connect."""
        fx: Effects[P] = Effects()
        try:
            EVENTS[type(event)](self, fx, peer, event, address)
        except ProtocolError as exc:
            self.reply(fx, peer, p.error_of(exc))
            if isinstance(event, p.Connect) and self.state.status(peer) is None:
                fx.ops.append(Settled(peer, False))  # it may send another connect
        return fx

    def hashed(self, peer: P, then: object, outcome: object) -> Effects[P]:
        """A password hash the hub asked for (a `Hash` effect) came back from the shell's
        pool: True/False (verified), the new hash, or HASH_BUSY (PROTOCOL.txt 18.7)."""
        fx: Effects[P] = Effects()
        try:
            accounts.hashed(self, fx, peer, then, outcome, connect=connect)
        except ProtocolError as exc:
            self.reply(fx, peer, p.error_of(exc))
            if isinstance(then, accounts.LoginThen) and self.state.status(peer) is None:
                fx.ops.append(Settled(peer, False))  # it may send another connect
        return fx

    def apply(self, cmd: Command, stamp: Stamp) -> Effects[P]:
        """Carry out one command from the log, stamped with its log entry's id and time
        (the log's clock). The commands of one log entry share its stamp, so their
        updates' ids differ."""
        fx: Effects[P] = Effects()
        self.now = stamp.now
        COMMANDS[type(cmd)](self, fx, cmd, stamp)
        return fx

    def disconnected(self, peer: P, reason: str | None, resumable: bool = True,
                     grace: float | None = None) -> Effects[P]:
        """The peer's connection ended; `reason` None means it closed cleanly (EOF).

        A JSON session whose connection broke (`resumable`) is held for the resume grace
        period (or `grace`, if shorter), unannounced; everyone else leaves at once
        (PROTOCOL.txt 2.4).
        """
        fx: Effects[P] = Effects()
        self.state.settle(peer.cid)
        session = self.state.local.get(peer.cid)
        if session is None:
            return fx
        self.unbind(fx, session)
        if reason is None or not resumable or session.text or self.config.resume_grace <= 0:
            fx.publish(LeaveCmd(session.sid, reason))
        else:
            fx.publish(DetachCmd(session.sid, reason, grace))
        return fx

    def refuse(self, cmd: Command, message: str) -> Effects[P]:
        """A command that cannot reach the log: tell the connection it came from."""
        fx: Effects[P] = Effects()
        if isinstance(cmd, (JoinCmd, ResumeCmd)):
            self.tokens.pop(cmd.sid if isinstance(cmd, JoinCmd) else cmd.fallback.sid, None)
            peer = self.state.settle(cmd.origin.cid)  # it may try to connect again
            if peer is not None:
                self.reply(fx, peer, p.Error(ErrorCode.UNAVAILABLE, message))
                fx.ops.append(Settled(peer, False))
        elif isinstance(cmd, SayCmd):
            self.answer(fx, cmd.origin, p.Error(ErrorCode.UNAVAILABLE, message, cmd.ref))
        elif isinstance(cmd, (JoinRoomCmd, PartCmd, SwitchCmd, RenameCmd, OperCmd, KickCmd,
                              BanCmd, UnbanCmd, MuteCmd, TopicCmd)):
            self.answer(fx, cmd.origin, p.Error(ErrorCode.UNAVAILABLE, message))
        return fx
