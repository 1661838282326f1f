"""API keys (SPEC §10): made, found by their hash, listed, revoked.

A key is a high-entropy random token; only its SHA-256 is stored. Finding a key is
one lookup by that digest (a digest of a random token says nothing about the token,
so the lookup leaks nothing), then a constant-time comparison of the digests.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import ApiKey

PREFIX = "sbk_"  # so a leaked key is recognisable (secret scanners, logs)


def digest(token: str) -> str:
    """The SHA-256 of a key, as stored."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def create(session: Session, *, name: str, now: datetime) -> tuple[ApiKey, str]:
    """A new key named `name`; the row and the token (shown once, never stored)."""
    token = PREFIX + secrets.token_urlsafe(32)  # 256 bits
    key = ApiKey(name=name, digest=digest(token), created_at=now)
    session.add(key)
    session.flush()
    return key, token


def live(session: Session) -> list[ApiKey]:
    """Keys not revoked, oldest first."""
    stmt = select(ApiKey).where(ApiKey.revoked_at.is_(None)).order_by(ApiKey.id)
    return list(session.scalars(stmt))


def named(session: Session, name: str) -> ApiKey | None:
    """The live key with this name."""
    stmt = select(ApiKey).where(ApiKey.name == name, ApiKey.revoked_at.is_(None))
    return session.scalars(stmt).first()


def find(session: Session, token: str) -> ApiKey | None:
    """The live key this token is, or None."""
    wanted = digest(token)
    key = session.scalars(select(ApiKey).where(ApiKey.digest == wanted)).first()
    if key is None or key.revoked_at is not None:
        return None
    return key if hmac.compare_digest(key.digest, wanted) else None
