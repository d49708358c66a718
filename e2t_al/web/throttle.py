"""Login throttling: a small rule of our own. ``limits``/``slowapi`` count requests in fixed windows; a sign-in
needs a wait that grows with each failure and a bound on how long someone else's failures can lock a person out.

Failures are counted per (account, client address), per client address and per account. Past ``free`` failures a
key waits ``base · 2^(failures − free)`` seconds after its last failure, at most ``cap``:

    account at one address  free 5,  cap 15 min   (guessing one account's password)
    client address          free 20, cap 15 min   (trying many accounts)
    account, any address    free 20, cap 60 s     (the bound on a lock-out caused from elsewhere)

A successful sign-in clears its account's counts. The state is in memory, per app process.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

RULES = {"pair": (5, 900.0), "address": (20, 900.0), "account": (20, 60.0)}  # key kind → (free failures, cap in s)
BASE_SECONDS = 2.0


@dataclass
class LoginThrottle:
    clock: callable = time.monotonic
    failures: dict[tuple, tuple[int, float]] = field(default_factory=dict)  # key → (failures, time of the last)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @staticmethod
    def keys(username: str, address: str) -> list[tuple]:
        return [("pair", username.lower(), address), ("address", address), ("account", username.lower())]

    def retry_after(self, username: str, address: str) -> int:
        """Seconds until this sign-in may be tried (0: now)."""
        now = self.clock()
        with self.lock:
            waits = []
            for key in self.keys(username, address):
                count, last = self.failures.get(key, (0, now))
                free, cap = RULES[key[0]]
                if count >= free:
                    waits.append(min(cap, BASE_SECONDS * 2 ** (count - free)) - (now - last))
        return int(max([0.0, *waits]) + 0.999)

    def failed(self, username: str, address: str) -> None:
        now = self.clock()
        with self.lock:
            for key in self.keys(username, address):
                self.failures[key] = (self.failures.get(key, (0, now))[0] + 1, now)

    def succeeded(self, username: str, address: str) -> None:
        with self.lock:
            for key in self.keys(username, address):
                if key[0] != "address":
                    self.failures.pop(key, None)
