"""File names from users: uploads and downloads keep a plain name inside their folder.

A browser sends the uploaded file's name; it may hold folders (``../../x``, ``C:\\x``), start
with a dot, carry control characters or be empty. Only the last component's letters, digits,
dot, dash, underscore, space and non-ASCII letters survive, and the result never starts with a
dot, so ``folder / safe_filename(name)`` is always a new file directly inside ``folder``.
"""

from __future__ import annotations

from pathlib import Path

MAX_NAME = 120


def safe_filename(name: str | None, fallback: str = "upload") -> str:
    """A plain file name from ``name`` (never a path, never hidden, never empty)."""
    last = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    kept = "".join(c if c.isalnum() or c in "._- " else "_" for c in last).strip(" .")
    kept = kept.lstrip("._-")[:MAX_NAME]
    return kept or fallback


def inside(folder: Path, name: str | None, fallback: str = "upload") -> Path:
    """``folder / safe_filename(name)``, checked to be directly inside ``folder``."""
    path = folder / safe_filename(name, fallback)
    if path.resolve().parent != folder.resolve():
        raise ValueError(f"{name!r} does not name a file inside {folder}")
    return path
