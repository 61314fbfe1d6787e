"""Who a run or an imported dataset belongs to, and who may stop, delete or re-run it.

In class everyone shares one app, and a name typed in the sidebar is only a
label: anyone can type "alice". What makes a run alice's is the *private
key* of the browser she started it from: a random token the app gives each
browser (``new_key``), kept in a cookie and shown once so that she can carry
it to another device. The store keeps the display name and only a hash of
the key (``key_hash``), so reading the database does not reveal anyone's key.

Three kinds of actor ask to change things:

- a **person** in a browser: a display name and a key. They may change what
  was made with the same key, whatever name they typed then or now.
- the **teacher**: a person who typed the server's teacher password
  (environment variable ``MTL_TEACHER_PASSWORD``); may change anything.
- the **machine's user**: the command line (``python -m mtlcore cancel``)
  and library code given no owner. Whoever can run commands on this machine
  can also open the data folder's files, so it is trusted and may change
  anything; its messages say that it acted as the machine's user.

Runs and datasets with no key (made before keys existed, or by the command
line) belong to the machine's user: the teacher and the command line may
change them; a browser may not, whatever name it types. Local code that
names an owner without a key (``Owner("alice")``, e.g. tests or scripts)
matches such keyless rows by name.

Names are compared after ``fold_name`` (Unicode NFKC, invisible characters
dropped, white space collapsed, case folded), so "Alice", " alice " and
"al\u200bice" are one name. This is protection against classmates in one
room, not authentication against a hostile network: see the README.
"""
from __future__ import annotations

import hashlib
import hmac
import math
import os
import re
import secrets
import threading
import time
import unicodedata
from dataclasses import dataclass

PERSON, TEACHER, MACHINE = "person", "teacher", "machine"
ANONYMOUS = "anonymous"
MACHINE_NAME = "the machine's user (command line)"
TEACHER_PASSWORD_VARIABLE = "MTL_TEACHER_PASSWORD"
MAX_NAME_CHARS = 40
KEY_BYTES = 18  # 144 random bits: 24 URL-safe characters

# Unicode categories that print nothing: format (zero-width space, joiners, bidi marks),
# control, surrogates, private use and unassigned code points.
_INVISIBLE = {"Cf", "Cc", "Cs", "Co", "Cn"}
_SPACES = re.compile(r"\s+")
_KEY = re.compile(r"^[A-Za-z0-9_-]{16,128}$")


def display_name(text: str | None) -> str:
    """A typed name as it is shown and stored: NFKC, no invisible characters, single spaces, at most 40 characters.

    Blank (or only invisible characters) gives "anonymous".
    """
    text = unicodedata.normalize("NFKC", str(text or ""))
    text = "".join(" " if ch.isspace() else ch for ch in text if unicodedata.category(ch) not in _INVISIBLE
                   or ch.isspace())
    text = _SPACES.sub(" ", text).strip()[:MAX_NAME_CHARS].strip()
    return text or ANONYMOUS


def fold_name(text: str | None) -> str:
    """The form two names are compared in: ``display_name`` case-folded ("Alice" and "alice " are one name)."""
    return display_name(text).casefold()


def new_key() -> str:
    """A fresh private key for a browser (random, URL-safe)."""
    return secrets.token_urlsafe(KEY_BYTES)


def valid_key(key: str | None) -> bool:
    """Whether ``key`` looks like a key ``new_key`` made (a pasted key is checked before it is used)."""
    return isinstance(key, str) and bool(_KEY.match(key))


def key_hash(key: str) -> str:
    """What the store keeps of a key: its SHA-256, in hex. The key itself is never stored."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def teacher_password_ok(password: str | None) -> bool:
    """Whether ``password`` is the server's teacher password; always False when none is set."""
    expected = os.environ.get(TEACHER_PASSWORD_VARIABLE, "")
    if not expected or not password:
        return False
    return hmac.compare_digest(password.encode("utf-8"), expected.encode("utf-8"))


class PasswordAttempts:
    """Slows down guessing the teacher password, per source (an IP address or a browser key).

    The first ``free`` wrong passwords from a source cost nothing (typos happen); after
    that each further try must wait, twice as long after each miss, up to ``max_wait``
    seconds. A right password clears the source's misses. Per source, not for the whole
    server, so that a student guessing cannot lock the teacher out. Kept in memory:
    a restart forgets it, which only gives a guesser a fresh few tries.
    """

    def __init__(self, free: int = 5, first_wait: float = 30.0, max_wait: float = 900.0, clock=time.monotonic):
        self.free, self.first_wait, self.max_wait, self.clock = free, first_wait, max_wait, clock
        self._misses: dict[str, tuple[int, float]] = {}  # source -> (wrong tries, when the last one was)
        self._lock = threading.Lock()

    def wait_left(self, source: str) -> float:
        """Seconds before ``source`` may try again (0: now)."""
        with self._lock:
            misses, last = self._misses.get(source, (0, 0.0))
        if misses < self.free:
            return 0.0
        wait = min(self.max_wait, self.first_wait * 2 ** (misses - self.free))
        return max(0.0, last + wait - self.clock())

    def check(self, source: str, password: str | None) -> tuple[bool, str | None]:
        """Whether ``password`` unlocks teacher mode, and a sentence when it does not."""
        wait = self.wait_left(source)
        if wait > 0:
            return False, (f"Too many wrong teacher passwords from here: try again in {math.ceil(wait)} s.")
        if teacher_password_ok(password):
            with self._lock:
                self._misses.pop(source, None)
            return True, None
        if not password:
            return False, None
        with self._lock:
            misses, _ = self._misses.get(source, (0, 0.0))
            self._misses[source] = (misses + 1, self.clock())
        return False, "That is not the teacher password."


TEACHER_ATTEMPTS = PasswordAttempts()  # one per server process: the app's sessions share it


def teacher_password_set() -> bool:
    return bool(os.environ.get(TEACHER_PASSWORD_VARIABLE))


@dataclass(frozen=True)
class Owner:
    """Who makes or asks: a display name, the hash of a browser's key (None: no key), and a role.

    >>> alice = Owner.from_key("Alice ", key)        # a person in a browser
    >>> alice.may_change(record.owner, record.owner_key)
    >>> Owner.machine().may_change("bob", None)      # the command line: True
    """

    name: str = ANONYMOUS
    key_hash: str | None = None
    role: str = PERSON

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", display_name(self.name))
        if self.role not in (PERSON, TEACHER, MACHINE):
            raise ValueError(f"An owner's role is one of {PERSON}, {TEACHER}, {MACHINE}, not {self.role!r}.")

    @classmethod
    def from_key(cls, name: str | None, key: str, teacher: bool = False) -> "Owner":
        """The person using a browser whose private key is ``key`` (the teacher when ``teacher``)."""
        return cls(name or ANONYMOUS, key_hash(key), TEACHER if teacher else PERSON)

    @classmethod
    def machine(cls) -> "Owner":
        """The machine's own user: the command line, trusted local access."""
        return cls(MACHINE_NAME, None, MACHINE)

    @property
    def trusted(self) -> bool:
        """The teacher and the machine's user may change anything."""
        return self.role in (TEACHER, MACHINE)

    def owns(self, owner_name: str, owner_key: str | None) -> bool:
        """Whether a row stored with ``owner_name`` and ``owner_key`` (a key hash, or None) is this owner's.

        With a key, the key decides (a name corrected later keeps its runs).
        Without one, only a keyless owner of the same folded name matches:
        a browser always has a key, so it never owns keyless rows.
        """
        if owner_key is not None:
            return self.key_hash is not None and hmac.compare_digest(self.key_hash, owner_key)
        return self.key_hash is None and fold_name(self.name) == fold_name(owner_name)

    def may_change(self, owner_name: str, owner_key: str | None) -> bool:
        """Whether this actor may stop, delete or re-run something stored with that owner."""
        return self.trusted or self.owns(owner_name, owner_key)

    def refusal(self, what: str, owner_name: str, owner_key: str | None, verb: str) -> str:
        """The sentence that says why this actor may not ``verb`` ``what`` (e.g. "this run", "stop")."""
        name = display_name(owner_name)
        if owner_key is None:
            return (f"Only {name} can {verb} {what}. It was made without a browser key (from the command line, "
                    "or before keys existed), so only the teacher or the command line can.")
        return (f"Only {name} can {verb} {what}, with the private key of the browser it was made in "
                "(or the teacher).")

    @property
    def acting_as(self) -> str:
        """How a message names this actor: "as the teacher", "as the machine's user (command line)", ""."""
        if self.role == MACHINE:
            return f"as {MACHINE_NAME}"
        if self.role == TEACHER:
            return "as the teacher"
        return ""


def as_owner(value: "Owner | str | None", default: "Owner | None" = None) -> Owner:
    """``value`` as an Owner: an Owner as is, a plain name as a keyless person, None as ``default`` (the machine)."""
    if isinstance(value, Owner):
        return value
    if value is None:
        return default if default is not None else Owner.machine()
    return Owner(str(value))
