"""Image variants: what a connector makes of a post's picture, made once and shared.

A variant (WeChat's cover thumb: a JPEG of at most 64 KB; an in-body image re-encoded under
1 MB) is a pure function of the source bytes and the variant's spec, so it is produced once per
picture, not once per account: the hub wires a :class:`FileVariants` store (``Wiring`` service
``"image_variants"``) that keeps each variant under the media folder, named by the source's
SHA-256 and the spec (``media/variants/<sha256>-<spec>``), and every account's publication, in
every worker thread and process, reads the same bytes. The connector keeps the rule (what its
platform accepts: only it knows); the store keeps the once-only promise:

- a per-variant lock file (``flock``, which also excludes threads of one process: each opens its
  own descriptor), re-checked after it is taken, so concurrent producers wait for the first one
  instead of decoding the same photo 32 times;
- the file written to a temporary name and renamed into place (``os.replace``): a reader never
  sees half a variant, and a producer killed mid-way leaves nothing behind that looks finished;
- a small in-process memo of the last variants read, so a fan-out reads each file once.

Upload ids remain per account (``media_id`` is the account's own), so the upload itself is not
shared: only the decode, resize and encode are.

A connector built without the service (tests, tools) uses :class:`MemoryVariants` (per process).
:class:`NoVariants` produces every time: the behaviour before variants, for benchmarks
(``GOVHUB_IMAGE_VARIANTS=off``).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

SPEC = re.compile(r"^[a-z0-9][a-z0-9._-]{0,80}$")
DIGEST = re.compile(r"^[0-9a-f]{64}$")


def digest_of(data: bytes) -> str:
    """The key of a source picture: its SHA-256, hex."""
    return hashlib.sha256(data).hexdigest()


class VariantStore(Protocol):
    def variant(self, digest: str, spec: str, produce: Callable[[], bytes]) -> bytes:
        """The variant ``spec`` of the picture whose SHA-256 is ``digest``: produced by
        ``produce()`` the first time, the same bytes every time after."""
        ...


def _check(digest: str, spec: str) -> str:
    if not DIGEST.match(digest) or not SPEC.match(spec):
        raise ValueError(f"bad variant name: {digest!r} {spec!r}")
    return f"{digest}-{spec}"


class _Memo:
    """Bounded (by bytes), thread-safe: name -> variant bytes, least recently used dropped."""

    def __init__(self, max_bytes: int) -> None:
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._bytes = 0
        self._max = max_bytes
        self._lock = threading.Lock()

    def get(self, name: str) -> bytes | None:
        with self._lock:
            value = self._items.get(name)
            if value is not None:
                self._items.move_to_end(name)
            return value

    def put(self, name: str, value: bytes) -> bytes:
        with self._lock:
            if name not in self._items:
                self._items[name] = value
                self._bytes += len(value)
            while self._bytes > self._max and len(self._items) > 1:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= len(dropped)
        return value


class FileVariants:
    """Variants as files under ``root``, produced once across threads and processes.

    ``produced`` counts the variants this instance produced (not read): what a test counts.
    """

    def __init__(self, root: str | Path, *, memo_bytes: int = 32 * 1024 * 1024) -> None:
        self.root = Path(root)
        self.produced = 0
        self._memo = _Memo(memo_bytes)
        self._count_lock = threading.Lock()

    def path(self, digest: str, spec: str) -> Path:
        return self.root / _check(digest, spec)

    def variant(self, digest: str, spec: str, produce: Callable[[], bytes]) -> bytes:
        name = _check(digest, spec)
        cached = self._memo.get(name)
        if cached is not None:
            return cached
        path = self.root / name
        found = _read(path)
        if found is not None:
            return self._memo.put(name, found)
        self.root.mkdir(parents=True, exist_ok=True)
        locks = self.root / ".locks"
        locks.mkdir(exist_ok=True)
        with open(locks / name, "a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)  # released when the file closes
            found = _read(path)  # the producer we waited for has written it
            if found is not None:
                return self._memo.put(name, found)
            data = produce()
            with self._count_lock:
                self.produced += 1
            temporary = self.root / f".{name}.{os.getpid()}.{threading.get_ident()}.tmp"
            try:
                temporary.write_bytes(data)
                os.replace(temporary, path)
            except OSError:
                temporary.unlink(missing_ok=True)
                # a read-only or full media folder must not stop a publication: send it anyway
        return self._memo.put(name, data)


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


class MemoryVariants:
    """Variants in this process only (one lock per variant): a connector with no shared store."""

    def __init__(self, *, memo_bytes: int = 32 * 1024 * 1024) -> None:
        self.produced = 0
        self._memo = _Memo(memo_bytes)
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def variant(self, digest: str, spec: str, produce: Callable[[], bytes]) -> bytes:
        name = _check(digest, spec)
        cached = self._memo.get(name)
        if cached is not None:
            return cached
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:
            cached = self._memo.get(name)
            if cached is not None:
                return cached
            data = produce()
            with self._guard:
                self.produced += 1
                self._locks.pop(name, None)
            return self._memo.put(name, data)


class NoVariants:
    """Every call produces its variant anew: the cost the stores save, for benchmarks."""

    def __init__(self) -> None:
        self.produced = 0
        self._lock = threading.Lock()

    def variant(self, digest: str, spec: str, produce: Callable[[], bytes]) -> bytes:
        _check(digest, spec)
        data = produce()
        with self._lock:
            self.produced += 1
        return data
