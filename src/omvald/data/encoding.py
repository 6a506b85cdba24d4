"""Which text encoding a CSV file uses, and a message instead of a decode traceback when it is none we read.

The contract asks for UTF-8, but the usual export from Excel on a Nordic
Windows machine ("CSV (semicolon delimited)") is Windows-1252 (cp1252), and
Excel's "Unicode text" is UTF-16. Rather than refuse the most common
export, omvald reads a file that is not UTF-8 as cp1252 and logs a warning
naming the first line that is not UTF-8. A file that mixes UTF-8 with
another encoding (rows pasted from two sources) is refused: reading it
either way would garble some of its names (``GÃ¶teborg``), and a category
spelled two ways is two categories.
"""

from __future__ import annotations

import codecs
import gzip
import logging
import re
from pathlib import Path
from typing import BinaryIO

from omvald.errors import DataContractError

log = logging.getLogger(__name__)

UTF8 = "utf8"
WINDOWS_1252 = "cp1252"
UTF16 = "utf-16"
SNIFF_BYTES = 1 << 16
SCAN_CHUNK = 1 << 24
# A UTF-8 encoded Latin-1 letter (å = C3 A5): in a file that is not UTF-8 it means two encodings are mixed.
UTF8_LATIN_LETTER = re.compile(rb"[\xc2\xc3][\x80-\xbf]")
SAVE_AS = "in Excel: Save As 'CSV UTF-8 (comma delimited)'"
# Bytes Windows-1252 leaves undefined: a file holding one is text in neither encoding we read.
CP1252_UNDEFINED = re.compile(rb"[\x81\x8d\x8f\x90\x9d]")
_CP1252_OF_LATIN1 = {
    byte: bytes([byte]).decode(WINDOWS_1252) for byte in range(0x80, 0xA0) if byte not in (0x81, 0x8D, 0x8F, 0x90, 0x9D)
}


def open_binary(path: Path) -> BinaryIO:
    """The file's bytes, decompressed when the name ends in ``.gz``."""
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")  # noqa: SIM115


def sniff_encoding(path: Path, table: str) -> str:
    """``utf8``, ``utf-16`` (byte-order mark) or ``cp1252`` (the header is not UTF-8); refuses workbooks.

    A body line that is not UTF-8 is found later, when the reader fails:
    :func:`fallback_encoding` then decides.
    """
    try:
        with open_binary(path) as fh:
            head = fh.read(SNIFF_BYTES)
    except (OSError, EOFError) as exc:
        raise DataContractError(table, None, f"cannot be read: {exc}", path=str(path)) from None
    if head.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
        raise DataContractError(table, None, f"is an Excel workbook, not a CSV file; {SAVE_AS}", path=str(path))
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return UTF16
    if b"\x00" in head:
        raise DataContractError(
            table,
            None,
            f"holds NUL bytes: not a text file (UTF-16 without a byte-order mark?); {SAVE_AS}",
            path=str(path),
        )
    header = head.split(b"\n", 1)[0]
    if b"\n" not in head and len(head) == SNIFF_BYTES:
        header = head[:-4]  # a header longer than the sniff: do not cut a letter in two
    try:
        header.decode("utf-8")
    except UnicodeDecodeError:
        return fallback_encoding(path, table)
    return UTF8


def whole_file_encoding(path: Path, table: str) -> str:
    """The encoding the local reader ends up reading the whole file in, decided before reading any row.

    For readers that cannot fall back half-way through a file (Spark):
    :func:`sniff_encoding`, then a scan of every line as the local reader's
    fallback does (:func:`fallback_encoding`: Windows-1252 with a warning,
    or an error for a file that mixes encodings). A byte Windows-1252 does
    not define is the local reader's error too.
    """
    encoding = sniff_encoding(path, table)
    if encoding == UTF8 and first_non_utf8_line(path)[0] is not None:
        encoding = fallback_encoding(path, table)
    if encoding == WINDOWS_1252 and _has_bytes_matching(path, CP1252_UNDEFINED):
        raise DataContractError(
            table,
            None,
            f"is neither UTF-8 nor Windows-1252 text (character maps to <undefined>); {SAVE_AS}",
            path=str(path),
        )
    return encoding


def latin1_to_cp1252(text: str) -> str:
    """Text read as ISO-8859-1 (one character per byte) as Windows-1252 would have read the same bytes.

    The two differ only in bytes 0x80-0x9F (``€``, ``‚``, ``"``, ``—``, ``™``,
    ``Š`` ...): Spark reads Windows-1252 files as ISO-8859-1 and this puts
    those letters right.
    """
    return text.translate(_CP1252_OF_LATIN1)


def _has_bytes_matching(path: Path, pattern: re.Pattern[bytes]) -> bool:
    with open_binary(path) as fh:
        while chunk := fh.read(SCAN_CHUNK):
            if pattern.search(chunk):
                return True
    return False


def fallback_encoding(path: Path, table: str) -> str:
    """The encoding of a file that is not UTF-8: cp1252, with a warning; :class:`DataContractError` if mixed."""
    line, mixed = first_non_utf8_line(path)
    if line is None:
        return UTF8
    if mixed:
        raise DataContractError(
            table,
            None,
            f"mixes UTF-8 with another encoding (line {line} is the first that is not UTF-8, while other lines "
            f"are); save the whole file again as one encoding: {SAVE_AS}",
            path=str(path),
        )
    log.warning(
        "%s is not UTF-8 (line %d is the first that is not): read as Windows-1252 (cp1252), the encoding of "
        "Excel's CSV on Nordic Windows. To silence this, %s.",
        path,
        line,
        SAVE_AS,
    )
    return WINDOWS_1252


def first_non_utf8_line(path: Path) -> tuple[int | None, bool]:
    """``(line, mixed)``: the 1-based line of the first byte that is not UTF-8 (``None``: all UTF-8),
    and whether the file also holds UTF-8 encoded letters (two encodings in one file)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line, bad, mixed = 1, None, False
    with open_binary(path) as fh:
        while chunk := fh.read(SCAN_CHUNK):
            pending = len(decoder.getstate()[0])
            if not pending and chunk.isascii():  # nothing to decode or find: the usual chunk, much faster
                line += chunk.count(b"\n") if bad is None else 0
                continue
            mixed = mixed or UTF8_LATIN_LETTER.search(chunk) is not None
            if bad is None:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    bad = line + chunk.count(b"\n", 0, max(exc.start - pending, 0))
                else:
                    line += chunk.count(b"\n")
            if bad is not None and mixed:
                break
    return bad, bad is not None and mixed
