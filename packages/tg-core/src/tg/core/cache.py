"""The on-disk cache (compiled kernels, search choices), written so that a bad file can never hurt.

Every entry is `MAGIC`, a SHA-256 over the entry's key and payload, a newline, then the payload; a read
checks all three and treats a mismatch (truncation, flipped bytes, another kernel's file, a file from an
older format) as a miss: the entry is rebuilt and rewritten, with one TgCacheWarning. Directories are
created private (0700) and a directory that others may write is not used at all, since its contents end up
as native code in this process. Writes go to a temporary file renamed into place, so readers never see half
an entry. The cache lives in TG_CACHE_DIR, else ~/.cache/tg.
"""
from __future__ import annotations

import hashlib
import os
import stat
import tempfile
import warnings
from pathlib import Path
from typing import Optional

from . import config

MAGIC = b"TGC1 "


class TgCacheWarning(UserWarning):
    """A cache entry or directory was not used (corrupt, foreign or unsafe); tg rebuilt what it needed."""


_warned: set[str] = set()


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        warnings.warn(message, TgCacheWarning, stacklevel=3)


def root() -> Path:
    return config.cache_root()


def directory(name: str) -> Optional[Path]:
    """The private cache subdirectory `name`, created 0700; None if it cannot be made or others can write it."""
    path = root() / name
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        mode = path.stat().st_mode
    except OSError:
        return None
    if mode & (stat.S_IWGRP | stat.S_IWOTH) or path.stat().st_uid != os.getuid():
        _warn_once(str(path), f"tg: not using the cache directory {path}: it is writable by other users or owned by "
                              "another one, and its files would run as code here; chmod 700 it or set TG_CACHE_DIR")
        return None
    return path


def _digest(key: str, payload: bytes) -> bytes:
    return hashlib.sha256(key.encode() + b"\0" + payload).hexdigest().encode()


def read(path: Path, key: str) -> Optional[bytes]:
    """The payload stored under `key` at `path`, or None when missing or not exactly what was written."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    head, _, payload = data.partition(b"\n")
    if not head.startswith(MAGIC) or head[len(MAGIC):] != _digest(key, payload):
        _warn_once(str(path.parent), f"tg: ignoring damaged or foreign cache entries in {path.parent} (first: "
                                     f"{path.name}); rebuilding them")
        return None
    return payload


def write(path: Path, key: str, payload: bytes) -> None:
    """Store `payload` under `key` at `path` atomically; a full or read-only disk only costs a rebuild later."""
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC + _digest(key, payload) + b"\n" + payload)
        os.replace(tmp, path)
    except OSError:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
