"""Session ids issued by the login flows, each valid for a configured time.

Session ids look like real ones (``00D<org id>!<token>``). They are kept in memory: a restarted
emulator forgets them and clients log in again on the 401, as they would after a Salesforce restart.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass


@dataclass
class Session:
    token: str
    expires_at: float | None  # None: valid until revoked
    kind: str  # "soap", "oauth", "static"


class Sessions:
    """Issued sessions: create, validate, expire."""

    def __init__(self, org_id: str, lifetime_seconds: float) -> None:
        self.org_id = org_id
        self.lifetime_seconds = lifetime_seconds
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}

    def issue(self, kind: str, *, lifetime_seconds: float | None = -1, token: str | None = None) -> Session:
        """A new session; ``lifetime_seconds`` None never expires by time, -1 uses the configured lifetime."""
        lifetime = self.lifetime_seconds if lifetime_seconds == -1 else lifetime_seconds
        token = token or f"{self.org_id[:15]}!{secrets.token_urlsafe(72)}"
        session = Session(token, None if lifetime is None else time.monotonic() + lifetime, kind)
        with self._lock:
            self._sessions[token] = session
        return session

    def valid(self, token: str) -> bool:
        with self._lock:
            session = self._sessions.get(token)
            if session is None:
                return False
            if session.expires_at is not None and time.monotonic() >= session.expires_at:
                del self._sessions[token]
                return False
            return True

    def expire(self, token: str | None = None, *, include_static: bool = False) -> int:
        """Expire one session, or every login session (and the static one if asked); returns how many."""
        with self._lock:
            if token is not None:
                return 1 if self._sessions.pop(token, None) else 0
            doomed = [t for t, s in self._sessions.items() if include_static or s.kind != "static"]
            for t in doomed:
                del self._sessions[t]
            return len(doomed)
