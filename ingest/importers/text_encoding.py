"""Turn any text file into the UTF-8 file DuckDB's readers expect, losing only undecodable lines.

DuckDB's ``read_csv`` / ``read_text`` refuse a whole file at its first byte that is not UTF-8,
and a UTF-8 byte-order mark breaks a JSON document. So every file is checked first:

- UTF-8 without a BOM (the usual case): one chunked decode in C, no copy; the readers get the
  file itself, so a clean file keeps the fast path.
- UTF-8 with a BOM: copied without it. A UTF-16 BOM (Excel's "Unicode text"): transcoded.
- not UTF-8: when ``encoding`` is given, or when no non-ASCII line of the file is UTF-8 and
  more than one line in 1,000 is not (a whole file saved in a legacy encoding, e.g. GBK by
  Excel), the file is transcoded from that encoding (detected by charset-normalizer when not
  given). Otherwise the file is UTF-8 with a few broken lines: those lines are left out and
  reported (file:line and why); every other line goes in.

A line that the chosen encoding cannot decode is dropped the same way, so line numbers of the
other rows shift: :func:`original_line` maps them back for the import's messages.
"""

from __future__ import annotations

import codecs
import shutil
from dataclasses import dataclass, field
from pathlib import Path

UTF8_BOM = b"\xef\xbb\xbf"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
CHUNK = 1 << 20
LEGACY_SHARE = 1 / 1000       # more undecodable lines than this, and no UTF-8 line: legacy
DETECT_SAMPLE = 1 << 16       # bytes of undecodable lines given to charset-normalizer


@dataclass
class TextFile:
    """The UTF-8 file to read, and what preparing it found."""

    path: Path
    encoding: str = "utf-8"
    dropped: list[tuple[int, str]] = field(default_factory=list)   # (line, reason), 1-based
    notes: list[str] = field(default_factory=list)


def original_line(line: int, dropped: list[int]) -> int:
    """The line in the original file of ``line`` of the prepared one (``dropped`` sorted)."""
    for gone in dropped:          # few by nature: each dropped line shifts the later ones
        if gone <= line:
            line += 1
        else:
            break
    return line


def is_utf8(path: Path) -> bool:
    """True when the whole file decodes as UTF-8 (streamed in 1 MiB chunks, in C)."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def prepare(path: Path, scratch: Path, encoding: str | None = None,
            document: bool = False) -> TextFile:
    """The file as UTF-8 without a BOM (``path`` itself when it already is).

    ``document``: the file is one JSON document (not lines), so an undecodable byte is
    replaced (U+FFFD, with a note) instead of its line being dropped, which would break it.
    """
    with open(path, "rb") as fh:
        start = fh.read(4)
    if encoding is None and start.startswith(UTF16_BOMS):
        encoding = "utf-16"
    if encoding is None:
        if is_utf8(path):
            if not start.startswith(UTF8_BOM):
                return TextFile(path)
            return _without_bom(path, scratch)
        encoding = _guess_encoding(path)
    return _transcode(path, scratch, encoding, document)


def _out(path: Path, scratch: Path) -> Path:
    """A new file in ``scratch`` with ``path``'s name (its suffix is how formats know it)."""
    import tempfile

    return Path(tempfile.mkdtemp(dir=scratch, prefix="utf8-")) / path.name


def _without_bom(path: Path, scratch: Path) -> TextFile:
    out = _out(path, scratch)
    with open(path, "rb") as src, open(out, "wb") as dst:
        src.seek(len(UTF8_BOM))
        shutil.copyfileobj(src, dst, CHUNK)
    return TextFile(out, notes=["a UTF-8 byte-order mark was skipped"])


def _guess_encoding(path: Path) -> str:
    """UTF-8 (with broken lines) or the legacy encoding the file was saved in."""
    lines = utf8_lines = 0
    bad: list[bytes] = []
    sample = 0
    with open(path, "rb") as fh:
        for raw in fh:
            lines += 1
            if raw.isascii():
                continue
            try:
                raw.decode("utf-8")
                utf8_lines += 1
            except UnicodeDecodeError:
                if sample < DETECT_SAMPLE:
                    bad.append(raw)
                    sample += len(raw)
                else:
                    bad.append(b"")
    if utf8_lines or len(bad) <= max(1, lines * LEGACY_SHARE):
        return "utf-8"
    from charset_normalizer import from_bytes

    best = from_bytes(b"".join(bad)).best()
    name = best.encoding if best is not None else "utf-8"
    # GBK / GB2312 files are read as GB18030, their superset (Excel's "ANSI" in China)
    return "gb18030" if name in ("gbk", "gb2312", "hz") else name


def _transcode(path: Path, scratch: Path, encoding: str, document: bool) -> TextFile:
    """Write the file as UTF-8, dropping (or, for a document, repairing) undecodable lines."""
    try:
        codecs.lookup(encoding)
    except LookupError:
        from ledger import ImportFormatError

        raise ImportFormatError(f"{path}: unknown encoding {encoding!r}; pass --encoding "
                                "with a Python codec name (utf-8, gb18030, cp1252...)") from None
    out = _out(path, scratch)
    result = TextFile(out, encoding=encoding)
    if codecs.lookup(encoding).name.startswith("utf-16"):
        with open(path, encoding=encoding, errors="replace", newline="") as src, \
                open(out, "w", encoding="utf-8", newline="") as dst:
            shutil.copyfileobj(src, dst, CHUNK)
        result.notes.append(f"read as {encoding}")
        return result
    repaired = 0
    with open(path, "rb") as src, open(out, "wb") as dst:
        for number, raw in enumerate(src, 1):
            try:
                text = raw.decode(encoding)
            except UnicodeDecodeError as exc:
                if document:
                    text = raw.decode(encoding, errors="replace")
                    repaired += 1
                else:
                    result.dropped.append((number, _reason(encoding, raw, exc)))
                    continue
            if number == 1:
                text = text.removeprefix("\ufeff")
            dst.write(text.encode("utf-8"))
    if encoding != "utf-8":
        result.notes.append(f"read as {encoding} (pass --encoding to choose another)")
    if repaired:
        result.notes.append(f"{repaired} line(s) had bytes that are not {encoding}; they were "
                            "replaced with U+FFFD")
    return result


def _reason(encoding: str, raw: bytes, exc: UnicodeDecodeError) -> str:
    byte = raw[exc.start]
    shown = "UTF-8" if codecs.lookup(encoding).name == "utf-8" else encoding
    return (f"not {shown} text (byte 0x{byte:02x} at byte {exc.start + 1} of the line); "
            "fix the line, or pass --encoding if the file is in another encoding")


def shifted(lines: list[tuple[int, str]], dropped: list[tuple[int, str]]
            ) -> list[tuple[int, str]]:
    """Rejections of the prepared file in the original's line numbers, merged with ``dropped``."""
    gone = [n for n, _ in dropped]
    out = [(original_line(n, gone) if n is not None else n, r) for n, r in lines]
    return sorted(out + dropped, key=lambda x: (x[0] is None, x[0] or 0))


__all__ = ["TextFile", "is_utf8", "original_line", "prepare", "shifted"]
