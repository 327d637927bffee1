"""Users, groups (departments), passwords and API tokens (who may do what: engine.authz).

Passwords are hashed with scrypt (a memory-hard KDF from the standard library).  A
verified Basic credential is remembered in memory for a short time so that a client
sending Basic auth on every request does not pay the KDF each time.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from .audit import record_system
from .clock import utcnow
from .errors import BadRequest, Forbidden, NotFound
from .fastsql import Statement
from .models import ApiToken, Group, Membership, User
from .variables import format_date

ADMIN_USER = "admin"
ADMIN_GROUP = "camunda-admin"
DESIGNERS_GROUP = "designers"
WORKERS_GROUP = "external-workers"

# scrypt's cost for new hashes (OWASP's minimum; a hash keeps its own, so raising it later
# leaves old passwords valid).  The test suite lowers N: it hashes a fresh admin and users
# for every test, and at this cost that was a third of its time (tests/conftest.py).
SCRYPT_COST = {"n": 2**14, "r": 8, "p": 1}


@dataclass(frozen=True)
class Principal:
    user_id: str
    groups: frozenset
    supervisor: bool = False      # a member of Settings.supervisors_group (督查): authz.with_roles

    @property
    def is_admin(self) -> bool:
        return ADMIN_GROUP in self.groups

    def may_deploy(self) -> bool:
        return self.is_admin or DESIGNERS_GROUP in self.groups


# The server acting on its own (timers, tacit approvals, start-up, the workers' service
# account): the actor of every audit event that no signed-in user caused.  Only a login
# under an unknown user id has none (that id is recorded only as a hash).
SYSTEM = Principal("system", frozenset({ADMIN_GROUP}))


# --- passwords ----------------------------------------------------------------------

def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **SCRYPT_COST)
    return "scrypt${n}${r}${p}$".format(**SCRYPT_COST) + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def verify_password(password: str, stored: str | None) -> bool:
    if not stored or not stored.startswith("scrypt$"):
        return False
    _, n, r, p, salt, digest = stored.split("$")
    candidate = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r),
                               p=int(p), dklen=32)
    return hmac.compare_digest(candidate, base64.b64decode(digest))


class _VerifiedCredentials:
    """(user, password digest, credentials version) -> verified, for `ttl` seconds."""

    def __init__(self, ttl: float = 60.0) -> None:
        self.ttl = ttl
        self._seen: dict = {}
        self._lock = threading.Lock()
        self._pepper = secrets.token_bytes(16)   # digests are useless outside this process
        # scrypt takes 16 MB and ~50 ms: 16 threads meeting an unknown or expired credential
        # at once made a worker peak at 366 MB (bench/bench_http.py); they now take turns
        # and the first one's result serves the others.
        self.kdf_slots = threading.BoundedSemaphore(2)

    def key(self, user_id: str, password: str, version: int) -> bytes:
        return hmac.digest(self._pepper, f"{user_id}\0{password}\0{version}".encode(), "sha256")

    def fresh(self, key: bytes) -> bool:
        with self._lock:
            until = self._seen.get(key)
        return until is not None and until > time.monotonic()

    def remember(self, key: bytes) -> None:
        with self._lock:
            if len(self._seen) > 10_000:
                self._seen.clear()
            self._seen[key] = time.monotonic() + self.ttl


_verified = _VerifiedCredentials()


# --- authentication -----------------------------------------------------------------

def groups_of(session: Session, user_id: str) -> frozenset:
    rows = session.execute(select(Membership.group_id).where(Membership.user_id == user_id)).scalars()
    return frozenset(rows)


# Every request authenticates: the user, their groups and their token each in one
# statement built once, run on the driver's cursor (engine/fastsql.py; an ORM get plus a
# group query cost 0.2 of a task completion, bench/bench_overhead.py).
_USERS, _MEMBERSHIPS, _TOKENS = User.__table__, Membership.__table__, ApiToken.__table__
_CREDENTIALS = Statement(
    select(_USERS.c.password_hash, _USERS.c.credentials_version, _USERS.c.failed_logins, _USERS.c.locked_until,
           _MEMBERSHIPS.c.group_id)
    .select_from(_USERS.outerjoin(_MEMBERSHIPS, _MEMBERSHIPS.c.user_id == _USERS.c.id))
    .where(_USERS.c.id == bindparam("user_id")))
_TOKEN = Statement(
    select(_TOKENS.c.user_id, _TOKENS.c.expires, _TOKENS.c.revoked, _MEMBERSHIPS.c.group_id)
    .select_from(_TOKENS.outerjoin(_MEMBERSHIPS, _MEMBERSHIPS.c.user_id == _TOKENS.c.user_id))
    .where(_TOKENS.c.token_hash == bindparam("token_hash")))

UNKNOWN, WRONG, LOCKED = "unknown user", "wrong password", "locked"


@dataclass(frozen=True)
class Login:
    """The outcome of a password check.  `refused` says why there is no principal;
    `reset` that the user logged in after failed attempts (the count goes back to 0)."""
    principal: Principal | None
    refused: str | None = None
    locked_until: datetime | None = None
    reset: bool = False

    @property
    def needs_writing(self) -> bool:
        return self.refused is not None or self.reset


def check_password(session: Session | Connection, user_id: str, password: str) -> Login:
    """Read-only: who this is, or why not.  A locked account is refused even with the
    right password (`record_login` counts the failures and locks)."""
    if not user_id or len(user_id) > 64 or "\x00" in user_id:     # no user has such an id (PostgreSQL refuses NUL)
        return Login(None, UNKNOWN)
    rows = _CREDENTIALS.execute(session, {"user_id": user_id}).all()
    if not rows or not rows[0].password_hash:
        return Login(None, UNKNOWN)
    first = rows[0]
    if _still_locked(first.locked_until):
        return Login(None, LOCKED, first.locked_until)
    key = _verified.key(user_id, password, first.credentials_version)
    if not _verified.fresh(key):
        with _verified.kdf_slots:
            if not _verified.fresh(key):
                if not verify_password(password, first.password_hash):
                    return Login(None, WRONG)
                # Guesses sent together all pass the check above before the one that locks
                # is counted; a right one among them must still meet the lock.  (Not in the
                # snapshot of a transaction begun before it: SQLite's would show the old
                # row.  On a bare connection the first read ran outside any transaction on
                # SQLite, and PostgreSQL reads committed rows statement by statement.)
                session.rollback()
                locked_until = session.execute(select(_USERS.c.locked_until).where(_USERS.c.id == user_id)).scalar()
                if _still_locked(locked_until):
                    return Login(None, LOCKED, locked_until)
                _verified.remember(key)
    return Login(Principal(user_id, frozenset(r.group_id for r in rows if r.group_id is not None)),
                 reset=bool(first.failed_logins))


def _still_locked(locked_until: datetime | None, now: datetime | None = None) -> bool:
    return locked_until is not None and locked_until > (now or utcnow())


class AuditThrottle:
    """Refusals nobody is counting (an unknown user, an account already locked) are
    audited at most once a minute per user (per engine, i.e. per server process), with how
    many were left out, so that junk credentials cannot turn every request into a write on
    the audit chain."""

    def __init__(self, interval: float = 60.0) -> None:
        self.interval = interval
        self._last: dict = {}
        self._lock = threading.Lock()

    def admit(self, key) -> int | None:
        """None to leave this one out, else how many were left out before it."""
        now = time.monotonic()
        with self._lock:
            last, skipped = self._last.get(key, (None, 0))
            if last is not None and now - last < self.interval:
                self._last[key] = (last, skipped + 1)
                return None
            if len(self._last) > 10_000:
                self._last.clear()
            self._last[key] = (now, 0)
            return skipped



def record_login(session: Session, user_id: str, login: Login, max_attempts: int, lock_minutes: int,
                 throttle: AuditThrottle | None = None) -> Login:
    """Write what a login attempt changes, in the caller's write transaction: a wrong
    password counts (the `max_attempts`-th in a row locks the account for `lock_minutes`,
    0 never; a lock that has run out starts the count afresh), a success after failures
    resets the count unless a lock came in between, and refused attempts go into the system
    audit chain.  Returns the login as it stands: locked by this failure, or refused
    after all because a concurrent one locked the account."""
    now = utcnow()
    if login.reset or login.refused == WRONG:
        row = session.execute(select(_USERS.c.failed_logins, _USERS.c.locked_until)
                              .where(_USERS.c.id == user_id).with_for_update()).first()
        if row is None:                                  # deleted meanwhile
            return Login(None, UNKNOWN) if login.reset else login
        locked = _still_locked(row.locked_until, now)
        if login.reset:
            if locked:
                return Login(None, LOCKED, row.locked_until)
            session.execute(update(_USERS).where(_USERS.c.id == user_id).values(failed_logins=0, locked_until=None))
            return login
        expired = row.locked_until is not None and not locked
        attempts = 1 if expired else (row.failed_logins or 0) + 1
        locked_until = now + timedelta(minutes=lock_minutes) if 0 < max_attempts <= attempts else None
        session.execute(update(_USERS).where(_USERS.c.id == user_id)
                        .values(failed_logins=attempts, locked_until=locked_until))
        record_system(session, user_id, "LoginFailed",
                      {"reason": WRONG, "attempts": attempts, "maxAttempts": max_attempts,
                       "lockedUntil": format_date(locked_until)}, outcome="denied")
        return Login(None, LOCKED if locked_until else WRONG, locked_until)
    if login.refused == LOCKED:
        skipped = throttle.admit((LOCKED, user_id)) if throttle else 0
        if skipped is not None:
            record_system(session, user_id, "LoginFailed", {"reason": "account locked",
                                                            "lockedUntil": format_date(login.locked_until),
                                                            "leftOut": skipped}, outcome="denied")
    elif login.refused == UNKNOWN:
        # Not the id itself: people type their password into the user field.
        digest = hashlib.sha256(user_id.encode("utf-8", "replace")).hexdigest()[:16]
        skipped = throttle.admit((UNKNOWN, digest)) if throttle else 0
        if skipped is not None:
            record_system(session, None, "LoginFailed", {"reason": UNKNOWN, "userIdSha256": digest,
                                                         "leftOut": skipped}, outcome="denied")
    return login


def unlock(session: Session, user_id: str, *, actor: str, by: str | None = None) -> None:
    """`by` names the command when no user asked (`app.py unlock`)."""
    if session.get(User, user_id) is None:
        raise NotFound(f"no user with id '{user_id}'")
    session.execute(update(_USERS).where(_USERS.c.id == user_id).values(failed_logins=0, locked_until=None))
    record_system(session, actor, "UserUnlocked", {"userId": user_id, **({"by": by} if by else {})})


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def authenticate_token(session: Session | Connection, token: str) -> Principal | None:
    rows = _TOKEN.execute(session, {"token_hash": token_digest(token)}).all()
    now = utcnow()
    if not rows or rows[0].revoked is not None or (rows[0].expires is not None and rows[0].expires <= now):
        return None
    return Principal(rows[0].user_id, frozenset(r.group_id for r in rows if r.group_id is not None))


def issue_token(session: Session, user_id: str, label: str | None = None, ttl: timedelta | None = None,
                *, actor: str) -> tuple[ApiToken, str]:
    token = "apr_" + secrets.token_urlsafe(32)
    row = ApiToken(id=secrets.token_hex(8), user_id=user_id, token_hash=token_digest(token), label=label,
                   created=utcnow(), expires=(utcnow() + ttl) if ttl else None)
    session.add(row)
    record_system(session, actor, "TokenIssued", {"tokenId": row.id, "userId": user_id, "label": label})
    return row, token


def revoke_token(session: Session, principal: Principal, token_id: str, reason: str | None = None) -> None:
    """`reason` says why in the audit event when the server revokes on its own."""
    row = session.get(ApiToken, token_id)
    if row is None or (row.user_id != principal.user_id and not principal.is_admin):
        raise NotFound(f"no token with id {token_id}")
    row.revoked = utcnow()
    record_system(session, principal.user_id, "TokenRevoked",
                  {"tokenId": token_id, "userId": row.user_id, **({"reason": reason} if reason else {})})


# --- users and groups ---------------------------------------------------------------

# Who changed users, groups, memberships and tokens goes into the system audit chain here,
# where the change is made, so that the API and the server's own start-up (the workers'
# service account, workers/companions.py) leave the same events.  `actor` is the user id
# of who asked, or identity.SYSTEM's for the server itself.

def create_user(session: Session, user_id: str, password: str | None, first_name=None, last_name=None,
                email=None, *, actor: str) -> User:
    _check_id(user_id, "user")
    if session.get(User, user_id) is not None:
        raise BadRequest(f"a user with id '{user_id}' already exists")
    user = User(id=user_id, first_name=first_name, last_name=last_name, email=email,
                password_hash=hash_password(password) if password else None)
    session.add(user)
    record_system(session, actor, "UserCreated", {"userId": user_id})
    return user


def set_password(session: Session, user_id: str, password: str, *, actor: str) -> None:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user with id '{user_id}'")
    user.password_hash = hash_password(password)
    user.credentials_version = (user.credentials_version or 0) + 1
    user.failed_logins, user.locked_until = 0, None      # the lock guarded the old password
    record_system(session, actor, "PasswordChanged", {"userId": user_id})    # never the password


def create_group(session: Session, group_id: str, name=None, type_=None, *, actor: str) -> Group:
    _check_id(group_id, "group")
    if session.get(Group, group_id) is not None:
        raise BadRequest(f"a group with id '{group_id}' already exists")
    group = Group(id=group_id, name=name, type=type_)
    session.add(group)
    record_system(session, actor, "GroupCreated", {"groupId": group_id})
    return group


def add_member(session: Session, group_id: str, user_id: str, *, actor: str) -> None:
    """Idempotent (Camunda's PUT); only a membership that was not there is an event."""
    if session.get(Group, group_id) is None:
        raise NotFound(f"no group with id '{group_id}'")
    if session.get(User, user_id) is None:
        raise NotFound(f"no user with id '{user_id}'")
    if session.get(Membership, (user_id, group_id)) is None:
        session.add(Membership(user_id=user_id, group_id=group_id))
        record_system(session, actor, "MembershipAdded", {"groupId": group_id, "userId": user_id})


def remove_member(session: Session, group_id: str, user_id: str, *, actor: str) -> None:
    """Idempotent as add_member: an unknown group or user is a 404, and only a membership
    that was there is an event (a DELETE of one that never existed wrote "removed" into
    the system chain)."""
    if session.get(Group, group_id) is None:
        raise NotFound(f"no group with id '{group_id}'")
    if session.get(User, user_id) is None:
        raise NotFound(f"no user with id '{user_id}'")
    removed = session.execute(delete(Membership).where(Membership.group_id == group_id,
                                                       Membership.user_id == user_id)).rowcount
    if removed:
        record_system(session, actor, "MembershipRemoved", {"groupId": group_id, "userId": user_id})


def ensure_admin(session: Session, password: str | None) -> str | None:
    """Create the admin account (group camunda-admin) if needed.

    Returns a generated password to print once, or None when one was given or the
    account already had a password."""
    if session.get(Group, ADMIN_GROUP) is None:
        session.add(Group(id=ADMIN_GROUP, name="Administrators", type="SYSTEM"))
    for gid, name in ((DESIGNERS_GROUP, "Process designers"), (WORKERS_GROUP, "External task workers")):
        if session.get(Group, gid) is None:
            session.add(Group(id=gid, name=name, type="SYSTEM"))
    user = session.get(User, ADMIN_USER)
    generated = None
    if user is None:
        user = User(id=ADMIN_USER, first_name="Administrator")
        session.add(user)
    if password:
        if not verify_password(password, user.password_hash):
            user.password_hash = hash_password(password)
            user.credentials_version = (user.credentials_version or 0) + 1
            record_system(session, SYSTEM.user_id, "AdminPasswordSet", {"userId": ADMIN_USER, "from": "ADMIN_PASSWORD"})
    elif not user.password_hash:
        generated = secrets.token_urlsafe(12)
        user.password_hash = hash_password(generated)
        record_system(session, SYSTEM.user_id, "AdminPasswordSet", {"userId": ADMIN_USER, "from": "generated"})
    session.flush()
    if session.get(Membership, (ADMIN_USER, ADMIN_GROUP)) is None:
        session.add(Membership(user_id=ADMIN_USER, group_id=ADMIN_GROUP))
    return generated


def _check_id(value: str, what: str) -> None:
    if not isinstance(value, str) or not value.strip() or len(value) > 64 or any(c in value for c in "/\\ \t\n"):
        raise BadRequest(f"invalid {what} id {value!r}: 1-64 characters, no spaces or slashes")


# --- permissions (who may act on tasks and cases: engine.authz) -----------------------

def require_current_password(principal: Principal, login: Login | None) -> None:
    """A stolen token or a borrowed session alone must not take an account over: changing
    one's own password needs the current one, checked (and counted) as a login."""
    if login is None or login.principal is None:
        raise Forbidden("changing your password needs your current password in 'authenticatedUserPassword' "
                        "(and an account that is not locked)", userId=principal.user_id)


def require_admin(principal: Principal, action: str) -> None:
    if not principal.is_admin:
        raise Forbidden(f"{action} requires membership in group '{ADMIN_GROUP}'",
                        userId=principal.user_id)
