"""Who gets what: sessions, names, rooms, history and resume, as a pure state machine.

The hub never touches a socket. It works in two steps, so that one process and a
cluster run the same code:

* `Hub.handle(peer, event)` answers what the local state can answer at once (errors,
  who, rooms, history) and turns every state change into a command.
* `Hub.apply(command, stamp)` carries out one command, in log order (the stamp: its
  log entry's id and time), and
  returns what this node's peers must get. One process applies its commands at once
  (`chatd.bus.LocalBus`); a cluster applies the same commands, in the same order, on
  every node, so every node holds the same sessions, names and rooms.

Both return `Effects` (chatd.effects): an ordered list of operations that the shell
replays in order.

The parts, each owning its state: `state` (sessions and their status, names, rooms,
memberships), `history` (room lines, archive, private inboxes, all bounded in bytes),
`handlers` (the tables from line type and command type to handler), `apply` (the
commands of a session in: its lines, rooms and name), `lifecycle` (a session's join,
resume, hold and end; heartbeats), `accounts` and `account_apply` (account lines and
their commands), `moderation` (operators' lines and commands),
`replication` (snapshot and restore for a cluster), `core` (what the handlers share:
the parts and the delivery helpers) and `facade` (the `Hub` the shells hold: its
entry points).
"""

from chatd.commands import (
    BeatCmd,
    Command,
    DetachCmd,
    JoinCmd,
    JoinRoomCmd,
    LeaveCmd,
    Origin,
    PartCmd,
    RenameCmd,
    ResumeCmd,
    SayCmd,
    SwitchCmd,
)
from chatd.effects import Effects
from chatd.hub.base import Entry, HubConfig, Key, P, Peer, Stamp, entry_cost, id_key
from chatd.hub.facade import Hub
from chatd.hub.history import HistorySink
from chatd.hub.state import Room, Session, Status
from chatd.moderation import ModerationSink

__all__ = [
    "BeatCmd", "Command", "DetachCmd", "Effects", "Entry", "HistorySink", "Hub", "HubConfig",
    "JoinCmd", "JoinRoomCmd", "Key", "LeaveCmd", "ModerationSink", "Origin", "P",
    "PartCmd", "Peer", "RenameCmd", "ResumeCmd", "Room", "SayCmd", "Session", "Stamp",
    "Status", "SwitchCmd", "entry_cost", "id_key",
]
