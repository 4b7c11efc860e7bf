"""Users, roles, API keys and the registration switch.

Why one module: these are the identity facts the auth dependencies need; passwords, tokens and
key hashing are delegated to ``services.auth``.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from limner.core.errors import ConflictError, InvalidRequestError, NotFoundError, PermissionDeniedError
from limner.db.base import utcnow
from limner.db.models import ApiKey, Role, ServerSetting, User
from limner.services.auth.api_keys import ALL_SCOPES, Scope, display_prefix, key_hash, new_key
from limner.services.auth.passwords import MIN_PASSWORD_LENGTH, Passwords

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{1,62}$")
REGISTRATION_KEY = "registration_open"


class Users:
    def __init__(self, passwords: Passwords) -> None:
        self._passwords = passwords

    def create(self, session: Session, username: str, password: str, role: Role = Role.USER) -> User:
        if not USERNAME.match(username):
            raise InvalidRequestError(
                "2-63 letters, digits, '_', '.' or '-', starting with a letter or digit", param="username"
            )
        if len(password) < MIN_PASSWORD_LENGTH:
            raise InvalidRequestError(f"must be at least {MIN_PASSWORD_LENGTH} characters", param="password")
        user = User(
            username=username,
            password_hash=self._passwords.hash(password),
            role=role.value,
            webhook_secret=secrets.token_hex(32),
        )
        session.add(user)
        try:
            session.commit()
        except IntegrityError as exc:
            session.rollback()
            raise ConflictError(f"the username {username!r} is taken", param="username") from exc
        return user

    def local_user(self, session: Session, username: str, *, create: bool = True) -> User:
        """The named user of a CLI command; created on first use with an unusable random password."""
        user = session.scalar(select(User).where(User.username == username))
        if user is not None:
            return user
        if not create:
            raise NotFoundError(f"no user {username!r}", param="user")
        return self.create(session, username, secrets.token_urlsafe(32), Role.USER)

    def authenticate(self, session: Session, username: str, password: str) -> User | None:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            self._passwords.hash(password)  # same cost either way: no username probing by timing
            return None
        if user.disabled or not self._passwords.verify(user.password_hash, password):
            return None
        return user

    def count(self, session: Session) -> int:
        return session.scalar(select(func.count()).select_from(User)) or 0

    def by_id(self, session: Session, user_id: str) -> User | None:
        user = session.get(User, user_id)
        return None if user is None or user.disabled else user

    def all(self, session: Session) -> list[User]:
        return list(session.scalars(select(User).order_by(User.created_at)).all())

    # -- registration switch ---------------------------------------------------------------

    def registration_open(self, session: Session, default: bool) -> bool:
        setting = session.get(ServerSetting, REGISTRATION_KEY)
        return default if setting is None else bool(setting.value)

    def set_registration_open(self, session: Session, is_open: bool) -> None:
        setting = session.get(ServerSetting, REGISTRATION_KEY)
        if setting is None:
            session.add(ServerSetting(key=REGISTRATION_KEY, value=is_open))
        else:
            setting.value = is_open
        session.commit()

    # -- API keys --------------------------------------------------------------------------

    def create_key(self, session: Session, owner: User, name: str, scopes: Iterable[str]) -> tuple[ApiKey, str]:
        """Create a key; the plain key is returned once and never stored."""
        wanted = set(scopes) or {Scope.READ.value, Scope.GENERATE.value}
        unknown = wanted - {scope.value for scope in ALL_SCOPES}
        if unknown:
            raise InvalidRequestError(f"unknown scopes {sorted(unknown)}; use read, generate, admin", param="scopes")
        if Scope.ADMIN.value in wanted and not owner.is_admin:
            raise PermissionDeniedError("only admins can create keys with the admin scope", param="scopes")
        plain = new_key()
        key = ApiKey(
            owner_id=owner.id, name=name, prefix=display_prefix(plain), key_hash=key_hash(plain), scopes=sorted(wanted)
        )
        session.add(key)
        session.commit()
        return key, plain

    def keys(self, session: Session, owner: User) -> list[ApiKey]:
        query = select(ApiKey).where(ApiKey.owner_id == owner.id).order_by(ApiKey.created_at)
        return list(session.scalars(query).all())

    def revoke_key(self, session: Session, owner: User, key_id: str) -> ApiKey:
        key = session.get(ApiKey, key_id)
        if key is None or key.owner_id != owner.id:
            raise NotFoundError(f"no API key {key_id!r}", param="key_id")
        if key.revoked_at is None:
            key.revoked_at = utcnow()
            session.commit()
        return key

    def user_for_key(self, session: Session, plain: str, now: datetime) -> tuple[User, ApiKey] | None:
        key = session.scalar(select(ApiKey).where(ApiKey.key_hash == key_hash(plain)))
        if key is None or key.revoked_at is not None:
            return None
        user = self.by_id(session, key.owner_id)
        if user is None:
            return None
        key.last_used_at = now
        session.commit()
        return user, key
