"""Argon2id password hashing, off the event loop."""

from __future__ import annotations

import asyncio
import os
import secrets
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from app.settings import Settings


class Passwords:
    def __init__(self, settings: Settings) -> None:
        self.hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
            type=Type.ID,
        )
        # Verified against when no account matches, so a miss costs the same time as a wrong password.
        self._dummy = self.hasher.hash(secrets.token_urlsafe(16))
        # Hashing gets a pool of its own, one thread per core: more threads cannot hash faster, and every thread
        # keeps its argon2 memory (19 MiB) allocated for good once it has hashed.
        self._pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="argon2")

    async def hash(self, password: str) -> str:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self.hasher.hash, password)

    async def verify(self, stored_hash: str | None, password: str) -> tuple[bool, str | None]:
        """(matches, a re-hash to store when the parameters changed since `stored_hash` was made)."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._verify, stored_hash, password)

    def _verify(self, stored_hash: str | None, password: str) -> tuple[bool, str | None]:
        try:
            self.hasher.verify(stored_hash or self._dummy, password)
        except (VerificationError, InvalidHashError):
            return False, None
        if stored_hash is None:
            return False, None
        if self.hasher.check_needs_rehash(stored_hash):
            return True, self.hasher.hash(password)
        return True, None
