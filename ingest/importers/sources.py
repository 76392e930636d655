"""What one path on the command line stands for: files, a folder's files, compressed members.

- a file: itself. ``x.csv.gz`` / ``x.jsonl.gz``: its content, decompressed (streamed) into the
  import's scratch folder under the inner name, so format detection sees ``x.csv``.
- ``x.zip``: every member that is a file (folders and macOS ``__MACOSX`` / dot files left
  out), each named ``x.zip:member`` in messages; a member that is itself ``.gz`` is opened too.
- a folder: every file directly inside it, in name order, hidden files left out; with
  ``recursive`` every file below it. A folder never silently yields nothing: an empty one is
  an error naming it.

Nothing is extracted outside the scratch folder: a member is written under its last name part,
and one whose path holds a hidden or ".." part is left out.
"""

from __future__ import annotations

import gzip
import shutil
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ledger import ImportFormatError

CHUNK = 1 << 20


@dataclass(frozen=True)
class Source:
    """One file to import: ``label`` names it in messages, ``path`` is where it can be read."""

    label: str
    path: Path


def expand(path: Path, recursive: bool = False) -> list[Path]:
    """The files a command-line path stands for (a folder: its files), or ImportFormatError."""
    if path.is_file():
        return [path]
    if not path.exists():
        raise ImportFormatError(f"{path}: no such file")
    if not path.is_dir():
        raise ImportFormatError(f"{path}: not a regular file")
    walk = path.rglob("*") if recursive else path.iterdir()
    files = sorted(p for p in walk if p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(path).parts))
    if not files:
        more = "" if recursive else " (pass --recursive to read its sub-folders)"
        raise ImportFormatError(f"{path}: a folder with no files to import{more}")
    return files


def open_sources(path: Path, scratch: Path) -> Iterator[Source]:
    """The importable files inside ``path`` (itself, or decompressed into ``scratch``)."""
    name = path.name.lower()
    if name.endswith(".gz"):
        yield Source(str(path), _gunzip(path, path.name[:-3], scratch))
    elif name.endswith(".zip"):
        yield from _zip_members(path, scratch)
    else:
        yield Source(str(path), path)


def _safe_name(name: str, fallback: str) -> str:
    last = Path(name.replace("\\", "/")).name
    return last if last not in ("", ".", "..") else fallback


def _gunzip(path: Path, inner: str, scratch: Path) -> Path:
    out = _fresh(scratch, _safe_name(inner, "data"))
    try:
        with gzip.open(path, "rb") as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst, CHUNK)
    except (OSError, EOFError) as exc:
        raise ImportFormatError(f"{path}: not a readable gzip file ({exc}); is it truncated?"
                                ) from None
    return out


def _zip_members(path: Path, scratch: Path) -> Iterator[Source]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ImportFormatError(f"{path}: not a readable zip file ({exc})") from None
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()
                   and not any(p.startswith((".", "__MACOSX"))
                               for p in m.filename.replace("\\", "/").split("/"))]
        if not members:
            raise ImportFormatError(f"{path}: a zip file with no files inside")
        for member in members:
            inner = _safe_name(member.filename, "member")
            out = _fresh(scratch, inner)
            with archive.open(member) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst, CHUNK)
            label = f"{path}:{member.filename}"
            if inner.lower().endswith(".gz"):
                yield Source(label, _gunzip(out, inner[:-3], scratch))
            else:
                yield Source(label, out)


def _fresh(scratch: Path, name: str) -> Path:
    """A new folder in ``scratch`` holding ``name`` (members may share a name)."""
    n = sum(1 for _ in scratch.iterdir())
    folder = scratch / f"s{n}"
    folder.mkdir()
    return folder / name
