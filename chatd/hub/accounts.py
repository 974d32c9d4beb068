"""Accounts in the hub (PROTOCOL.txt 18): logging in, registering, changing and dropping
a password, and the names accounts protect.

The decisions are chatd.accounts' (`AccountsPolicy`, split around the slow hash); this
module joins them to the hub's state and to the log. A password is never hashed here:
a handler returns a `Hash` effect, the shell runs it on chatd.passwords' pool, off the
loop, and gives the outcome back to `hashed` with the record (`then`) of what waits
for it. A change of the accounts (a registration, a new hash, an unregister) is then a
command of the log (`AccountCmd`, carrying the hash, never the password), applied on
every node alike, so a registration is known everywhere at once; a login is checked on
the connection's node, against the accounts every node holds. The commands are
applied by chatd.hub.account_apply.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chatd import protocol as p
from chatd.accounts import (
    Account,
    AccountsMode,
    Verify,
)
from chatd.commands import AccountCmd, JoinCmd, LeaveCmd, Origin
from chatd.effects import HASH_BUSY, Close, Effects, Hash, Settled
from chatd.hub.state import Session, Status
from chatd.protocol import ErrorCode, ProtocolError

if TYPE_CHECKING:
    from chatd.hub.core import Core as Hub

REPLACED_LOGIN = "replaced by a new login to the account"


# What waits for a hash (the `then` of a Hash effect).


@dataclass(frozen=True, slots=True)
class LoginThen:
    event: p.Connect
    address: str
    account: Account


@dataclass(frozen=True, slots=True)
class RegisterThen:
    name: str
    key: str
    sid: str  # the session registering its own name; "": a name not online
    joined: bool  # False: the connection has not joined (it waits for the answer)


@dataclass(frozen=True, slots=True)
class ChangeThen:
    sid: str
    key: str
    address: str
    new: str | None = field(repr=False)  # None: an unregister


@dataclass(frozen=True, slots=True)
class NewHashThen:
    sid: str
    key: str


def _now() -> float:
    # Accounts keep wall-clock times: expiry must outlast a restart (chatd.accounts).
    return time.time()


# ---------------------------------------------------------------------- connect (18.3)


def login(hub: Hub[Any], fx: Effects[Any], peer: Any, event: p.Connect, *, name: str,
          address: str) -> bool | tuple[Account, str]:
    """Before a connect joins: whether it goes on now (no account involved, or a
    variant name is to be picked), or the account a login token logged in to (and the
    token's digest); False: its outcome comes later (a hash, a text-mode password
    prompt). Refusals are ProtocolErrors."""
    acc = hub.acc
    if not acc.on:
        return True
    policy = acc.policy
    if event.login_token is not None and event.login is None:  # no hash (18.3)
        found = policy.token_login(name, event.login_token, address, _now())
        if isinstance(found, tuple):
            acc.save_token(found[1], found[0].key, _now())
            device(hub, fx, found[0])
            return found
        return True
    account = policy.registered(p.name_key(name))
    if (peer.text and account is not None and event.login is None and not event.decline):
        if policy.mode is AccountsMode.REQUIRED:
            other = "another name"
        else:
            other = "join as " + hub.state.free_name(name, acc.registered)
        hub.reply(fx, peer, p.Notice(f"{account.name} is a registered name: type its "
                                     f"password (a blank line: {other})"))
        fx.ops.append(Settled(peer, False, login=True))
        return False
    plan = policy.login_plan(name, event.login, address, _now())
    if isinstance(plan, Verify):
        assert event.login is not None
        fx.ops.append(Hash(peer, event.login, plan.account.password,
                           LoginThen(event, address, plan.account)))
        return False
    return True


def device(hub: Hub[Any], fx: Effects[Any], account: Account) -> None:
    """Before a login joins: the account's name must be free, or the account's (a
    further device, 18.4) with fewer than --max-devices sessions; at the bound the
    oldest held one (its connection broke) gives way, else too_many_devices."""
    holder = hub.state.names.get(account.key)
    if holder is None:
        return
    if holder.account != account.key:
        raise ProtocolError(ErrorCode.NAME_TAKEN, f"{holder.name} is taken")
    devices = hub.state.devices.get(account.key, [])
    most = hub.config.max_devices
    if len(devices) < most:
        return
    held = [s for s in devices if s.status is Status.HELD]
    if held:
        fx.publish(LeaveCmd(min(held, key=lambda s: s.detached_at).sid, REPLACED_LOGIN))
        return
    raise ProtocolError(ErrorCode.TOO_MANY_DEVICES, _too_many(account.name, most))


def _too_many(name: str, most: int) -> str:
    return (f"{name} is online on {most} device(s), the most this server allows: log "
            "out on one first")


def join_name(hub: Hub[Any], fx: Effects[Any], cmd: JoinCmd
              ) -> tuple[str, str | None, Account | None] | None:
    """The name a join takes (in log order), why it is not the one asked for, and the
    account logged in to; None: refused (answered here)."""
    state, acc = hub.state, hub.acc
    if cmd.account:
        account = acc.policy.accounts.get(cmd.account) if acc.on else None
        if account is not None and (
                account.key not in state.names  # or a further device (18.4):
                or 0 < len(state.devices.get(account.key, ())) < hub.config.max_devices):
            return account.name, None, account
        hub.tokens.pop(cmd.sid, None)
        peer = state.settle(cmd.origin.cid) if cmd.origin.node == hub.node else None
        if peer is not None:  # dropped, or logged in from elsewhere, meanwhile
            acc.issued.pop(peer.cid, None)
            hub.reply(fx, peer, p.Error(
                ErrorCode.LOGIN_FAILED if account is None else ErrorCode.TOO_MANY_DEVICES,
                "the account is gone" if account is None
                else _too_many(account.name, hub.config.max_devices)))
            fx.ops.append(Settled(peer, False))
        return None
    name = state.free_name(cmd.name, acc.registered if acc.on else None)
    if name == cmd.name:
        return name, None, None
    owner = acc.policy.registered(p.name_key(cmd.name))
    why = (f"{owner.name} is a registered name, so you are {name}" if owner is not None
           else f"{cmd.name} is taken, so you are {name}")
    return name, why, None


def joined(hub: Hub[Any], session: Session[Any], account: Account | None,
           digest: str = "") -> None:
    """A session logged in to `account` joined: an operator if the account is one (18.8).
    `digest`: its device's login token's."""
    if account is not None:
        if session.sid in hub.state.sessions:  # registered its name while online
            hub.state.log_in(session, account.key)
        else:
            session.account = account.key
        session.login_digest = digest
        hub.state.set_oper(session, session.oper or hub.acc.policy.is_operator(account))


def check_nick(hub: Hub[Any], session: Session[Any], name: str) -> None:
    """A nick: a logged-in user's name is its account's; an account's name, or a
    look-alike of it, is nobody else's (18.1)."""
    if not hub.acc.on:
        return
    key = p.name_key(name)
    if session.account and session.account != key:
        raise ProtocolError(ErrorCode.ACCOUNT_NAME,
                            f"you are logged in to {session.name}: the name is the account's")
    owner = hub.acc.policy.registered(key)
    if owner is not None and owner.key != session.account:
        raise ProtocolError(ErrorCode.NAME_REGISTERED, f"{owner.name} is a registered name")


# ---------------------------------------------------------------------- account lines


def register(hub: Hub[Any], fx: Effects[Any], peer: Any, event: p.Register, address: str
             ) -> None:
    session = hub.state.local.get(peer.cid)
    policy = hub.acc.policy
    if session is None:
        if event.name is None or hub.state.status(peer) is not None:
            raise ProtocolError(ErrorCode.NOT_JOINED,
                                'give "name" to register before joining, or connect first')
        if peer.cid in hub.acc.waiting:
            raise ProtocolError(ErrorCode.ACCOUNTS_BUSY, "your registration is on its way",
                                retry_after=1)
        name = p.normalize_name(event.name)
        hub.state.check_free(name, None)  # name_taken: someone online has it
        sid = ""
    elif event.name is not None and p.name_key(event.name) != p.name_key(session.name):
        if not session.oper:  # an operator registers accounts for others (18.8)
            raise ProtocolError(ErrorCode.NOT_OPERATOR,
                                "only operators register names other than their own")
        name, sid = p.normalize_name(event.name), ""
        hub.state.check_free(name, None)
    else:
        name, sid = session.name, session.sid
    oper = session is not None and session.oper
    key = policy.register_plan(name, event.password, address or
                               (session.address if session else ""), _now(),
                               logged_in=bool(session and session.account and sid),
                               operator=oper)
    fx.ops.append(Hash(peer, event.password, None,
                       RegisterThen(name, key, sid, session is not None)))


def change(hub: Hub[Any], fx: Effects[Any], peer: Any, session: Session[Any],
           event: p.Password | p.Unregister) -> None:
    """A password change or an unregister: the current password is verified first."""
    new = event.new if isinstance(event, p.Password) else None
    plan = hub.acc.policy.change_plan(session.account or None, new, session.address, _now())
    fx.ops.append(Hash(peer, event.password, plan.account.password,
                       ChangeThen(session.sid, plan.account.key, session.address, new)))


def hashed(hub: Hub[Any], fx: Effects[Any], peer: Any, then: object, outcome: object, *,
           connect: Callable[..., None]) -> None:
    """A hash asked for by this module came back: `outcome` a bool (verified), a str
    (a new hash) or HASH_BUSY. `connect` carries on a login (chatd.hub.handlers)."""
    if outcome is HASH_BUSY:
        raise ProtocolError(ErrorCode.ACCOUNTS_BUSY,
                            "too many password checks at once; try again in a second",
                            retry_after=1)
    policy, now = hub.acc.policy, _now()
    origin = Origin(hub.node, peer.cid)
    if isinstance(then, LoginThen | ChangeThen):
        account = then.account if isinstance(then, LoginThen) \
            else policy.accounts.get(then.key)
        if account is None:
            raise ProtocolError(ErrorCode.LOGIN_FAILED, "the account is gone")
        if outcome is not True:  # counted on every node alike: a command of the log
            fx.publish(AccountCmd(origin, "failed", account.key, then.address))
        account = policy.login_done(account, outcome is True, then.address, now)
        if isinstance(then, LoginThen):
            hub.acc.save(account)  # its last use, for expiry
            device(hub, fx, account)
            # This device's login token (18.3): the token in its welcome, its digest
            # through the log to every node.
            token, digest = policy.tokens.issue(account.key, now)
            hub.acc.issued[peer.cid] = token
            fx.publish(AccountCmd(origin, "token", account.key, password_hash=digest))
            connect(hub, fx, peer, then.event, then.address, account=account, digest=digest)
        elif then.new is not None:
            fx.ops.append(Hash(peer, then.new, None, NewHashThen(then.sid, account.key)))
        else:
            fx.publish(AccountCmd(origin, "drop", account.key, sid=then.sid))
    elif isinstance(then, RegisterThen) and isinstance(outcome, str):
        if not then.joined:
            hub.acc.waiting[peer.cid] = peer
        fx.publish(AccountCmd(origin, "register", then.key, then.name, outcome, then.sid))
    elif isinstance(then, NewHashThen) and isinstance(outcome, str):
        fx.publish(AccountCmd(origin, "password", then.key, password_hash=outcome,
                              sid=then.sid))


def admin(hub: Hub[Any], fx: Effects[Any], peer: Any, session: Session[Any],
          event: p.AccountAdmin) -> None:
    """An operator's account line (18.8): info at once; a change through the log."""
    if not session.oper:
        raise ProtocolError(ErrorCode.NOT_OPERATOR,
                            "only operators may do that (/oper NAME PASSWORD)")
    policy = hub.acc.policy
    if not hub.acc.on:
        raise ProtocolError(ErrorCode.ACCOUNTS_OFF, "this server has no accounts")
    account = policy.accounts.get(p.name_key(event.name))
    if account is None:
        raise ProtocolError(ErrorCode.NO_SUCH_ACCOUNT, f"{event.name[:40]} is not an account")
    origin = hub.origin_of(session, peer)
    if event.drop:
        fx.publish(AccountCmd(origin, "drop", account.key, by=session.name))
    elif event.rename is not None:
        new = p.normalize_name(event.rename)
        if p.name_key(new) != account.key:
            policy.accounts.check_register(new)  # name_registered, 익명
        holder = hub.state.names.get(account.key)
        hub.state.check_free(new, holder)
        fx.publish(AccountCmd(origin, "rename", account.key, new, by=session.name))
    elif event.operator is not None:
        fx.publish(AccountCmd(origin, "oper" if event.operator else "deoper", account.key,
                              by=session.name))
    else:
        devices = sum(1 for s in hub.state.sessions.values()
                      if s.account == account.key and s.status is Status.ATTACHED)
        hub.reply(fx, peer, p.AccountNote(
            "info", account.name, f"{account.name}: "
            + ("an operator, " if policy.is_operator(account) else "")
            + f"registered {p.format_time(account.created)}, last used "
            f"{p.format_time(account.used)}, {devices} device(s) online",
            operator=policy.is_operator(account), created=p.format_time(account.created),
            used=p.format_time(account.used), devices=devices))


def logout(hub: Hub[Any], fx: Effects[Any], peer: Any, session: Session[Any],
           event: p.Logout) -> None:
    """Leave as a disconnect does (3.3), and this device's login token goes (18.3)."""
    if session.account and session.login_digest:
        fx.publish(AccountCmd(hub.origin_of(session, peer), "logout", session.account,
                              password_hash=session.login_digest))
    hub.unbind(fx, session)
    fx.publish(LeaveCmd(session.sid))
    if peer.text:
        hub.reply(fx, peer, p.farewell(session.name))
    fx.ops.append(Close(peer))
