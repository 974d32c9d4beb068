"""Account commands carried out in log order, on every node alike (PROTOCOL.txt 18):
a registration, a new password, a dropped or renamed account, an operator made or
unmade, a device's login token issued or revoked, a failed login counted, and the
expiry of unused accounts.

chatd.hub.accounts turns account lines into these commands (`AccountCmd`, carrying a
hash, never a password); this module changes the accounts every node holds, in the
same order everywhere, and tells the local peers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias

from chatd import protocol as p
from chatd.accounts import Account
from chatd.commands import AccountCmd, BeatCmd, RenameCmd
from chatd.effects import Close, Effects
from chatd.hub.accounts import joined
from chatd.hub.base import Stamp
from chatd.hub.state import Session
from chatd.protocol import ErrorCode, ProtocolError

if TYPE_CHECKING:
    from chatd.hub.core import Core as Hub

EXPIRE_EVERY = 3600.0  # seconds between two looks for expired accounts (18.9)


def _sessions_of(hub: Hub[Any], key: str) -> list[Session[Any]]:
    return [s for s in hub.state.sessions.values() if s.account == key]


Remove: TypeAlias = Callable[..., None]


def applier(rename: Callable[[Hub[Any], Effects[Any], Session[Any], RenameCmd, Stamp], None],
            remove: Remove) -> Callable[[Hub[Any], Effects[Any], AccountCmd, Stamp], None]:
    """The handler of AccountCmd; `rename` and `remove` are chatd.hub.apply's (an online
    user renamed with its account takes the name as a nick does; a dropped account's
    devices but one end)."""
    def applied(hub: Hub[Any], fx: Effects[Any], cmd: AccountCmd, st: Stamp) -> None:
        if cmd.op in ("oper", "deoper", "rename"):
            _operators(hub, fx, cmd, st, rename)
        else:
            apply_account(hub, fx, cmd, st, remove)
    return applied


def _operators(hub: Hub[Any], fx: Effects[Any], cmd: AccountCmd, st: Stamp,
               rename: Callable[[Hub[Any], Effects[Any], Session[Any], RenameCmd, Stamp],
                                None]) -> None:
    acc = hub.acc
    policy = acc.policy
    account = policy.accounts.get(cmd.key)
    if account is None:
        hub.answer(fx, cmd.origin, p.Error(ErrorCode.NO_SUCH_ACCOUNT, "the account is gone"))
        return
    if cmd.op == "rename":
        old = account.name
        try:
            account = policy.rename(account.key, cmd.name)
        except ProtocolError as exc:  # the name was registered meanwhile
            hub.answer(fx, cmd.origin, p.error_of(exc))
            return
        if acc.sink is not None:
            acc.sink.rename_account(cmd.key, account)
        hub.state.rekey(cmd.key, account.key)
        if devices := hub.state.devices.get(account.key):  # every device at once (18.4)
            rename(hub, fx, devices[0], RenameCmd(cmd.origin, devices[0].sid, account.name),
                   st)
        hub.answer(fx, cmd.origin, p.AccountNote("renamed", account.name,
                                                 f"{old} is renamed {account.name}"))
        fx.audit = f"{cmd.by} renamed the account {old} to {account.name}"
        return
    policy.accounts.set_operator(account.key, cmd.op == "oper")
    acc.save(account)
    for session in _sessions_of(hub, account.key):
        hub.state.set_oper(session, policy.is_operator(account))
    hub.answer(fx, cmd.origin, p.AccountNote(
        "operator", account.name,
        f"{account.name} is {'now' if policy.is_operator(account) else 'no longer'} an "
        "operator", operator=policy.is_operator(account)))
    fx.audit = f"{cmd.by} {'made' if cmd.op == 'oper' else 'unmade'} the account " \
               f"{account.name} an operator"


def apply_account(hub: Hub[Any], fx: Effects[Any], cmd: AccountCmd, st: Stamp,
                  remove: Remove) -> None:
    acc = hub.acc
    policy = acc.policy
    if cmd.op == "token":  # a device's login token, issued on its node (its digest)
        if policy.accounts.get(cmd.key) is not None:
            policy.tokens.load([(cmd.password_hash, cmd.key, st.now)])
            acc.save_token(cmd.password_hash, cmd.key, st.now)
        return
    if cmd.op == "failed":  # a wrong password for the account from `name`, an address
        if (account := policy.accounts.get(cmd.key)) is not None:
            line = policy.failed_line(account, cmd.name, st.now).removeprefix("audit: ")
            if cmd.origin.node == hub.node:  # logged where the password was checked
                fx.audit = line
        return
    if cmd.op == "logout":
        if policy.tokens.revoke(cmd.password_hash) is not None and acc.sink is not None:
            acc.sink.drop_token(cmd.password_hash)
        return
    waiting = acc.waiting.pop(cmd.origin.cid, None) if cmd.origin.node == hub.node else None

    def tell(update: p.Update) -> None:
        if waiting is not None:
            hub.reply(fx, waiting, update)
        else:
            hub.answer(fx, cmd.origin, update)

    if cmd.op == "register":
        try:
            made = policy.register_done(cmd.name, cmd.password_hash, st.now)
        except ProtocolError as exc:  # a look-alike was registered meanwhile
            tell(p.error_of(exc))
            return
        acc.save(made)
        session = hub.state.sessions.get(cmd.sid)
        token = ""
        if session is not None and p.name_key(session.name) == made.key:
            joined(hub, session, made)
            if cmd.origin.node == hub.node and session.peer is not None:
                # The registering device is logged in: its login token, as a login's
                # welcome gives one (18.3), so a restart brings it back as the account.
                token, session.login_digest = policy.tokens.issue(made.key, st.now)
                fx.publish(AccountCmd(cmd.origin, "token", made.key,
                                      password_hash=session.login_digest))
        tell(p.AccountNote("registered", made.name,
                           f"{made.name} is registered: connect with its password to "
                           f"be {made.name} on any device", login_token=token))
        fx.note = f"account {made.name} registered"
        return
    account = policy.accounts.get(cmd.key)
    if account is None:
        return
    if cmd.op == "password":
        device = hub.state.sessions.get(cmd.sid)
        revoked = policy.password_done(account, cmd.password_hash,
                                       device.login_digest if device is not None else None)
        acc.save(account)
        if acc.sink is not None:
            for digest in revoked:
                acc.sink.drop_token(digest)
        tell(p.AccountNote("password", account.name,
                           f"the password of {account.name} is changed"))
        fx.note = f"account {account.name}: password changed"
    elif cmd.op == "drop":
        policy.drop(account.key)
        if acc.sink is not None:
            acc.sink.drop_account(account.key)
        gone = p.AccountNote("unregistered" if not cmd.by else "dropped", account.name,
                             f"{account.name} is no longer an account; you stay, as a guest"
                             if not cmd.by else f"the account {account.name} was dropped "
                             f"by {cmd.by}; you stay, as a guest")
        _log_out(hub, fx, account, cmd, st, remove=remove, gone=gone)
        tell(gone)
        if cmd.by:
            fx.audit = f"{cmd.by} dropped the account {account.name}"
        else:
            fx.note = f"account {account.name} unregistered"


def _log_out(hub: Hub[Any], fx: Effects[Any], account: Account, cmd: AccountCmd, st: Stamp, *,
             remove: Remove, gone: p.AccountNote) -> None:
    """The account went: one device stays, as a guest under the name (the one that
    unregistered, else the most recent); the others are closed with logged_out."""
    devices = list(hub.state.devices.get(account.key, ()))
    stays = hub.state.sessions.get(cmd.sid) if cmd.sid else None
    if stays not in devices:
        stays = devices[-1] if devices else None
    for device in devices:
        if device is not stays:
            peer = device.peer
            if peer is not None:
                hub.reply(fx, peer, p.Error(ErrorCode.LOGGED_OUT,
                                            f"the account {account.name} is no more"))
            remove(hub, fx, device, st, None)
            if peer is not None:
                fx.ops.append(Close(peer))
    hub.state.log_out(account.key)
    if cmd.by and stays is not None and stays.peer is not None:
        hub.reply(fx, stays.peer, gone)


def expire(hub: Hub[Any], fx: Effects[Any], st: Stamp) -> None:
    """Accounts unused past --account-expiry go (18.9), looked for once an hour, in log
    order (the log's clock, so every node drops the same). Online accounts are in use."""
    acc = hub.acc
    if not acc.on or st.now - acc.expired_at < EXPIRE_EVERY:
        return
    acc.expired_at = st.now
    accounts = acc.policy.accounts
    for session in hub.state.sessions.values():
        if session.account:
            accounts.touch(session.account, st.now)
    gone = acc.policy.expire(st.now)
    for account in gone:
        if acc.sink is not None:
            acc.sink.drop_account(account.key)
    if gone:
        fx.note = f"accounts: {len(gone)} unused for {accounts.expiry:g}s expired"


def with_expiry(beat: Callable[[Hub[Any], Effects[Any], BeatCmd, Stamp], None]
                ) -> Callable[[Hub[Any], Effects[Any], BeatCmd, Stamp], None]:
    def beat_and_expire(hub: Hub[Any], fx: Effects[Any], cmd: BeatCmd, st: Stamp) -> None:
        beat(hub, fx, cmd, st)
        expire(hub, fx, st)
    return beat_and_expire
