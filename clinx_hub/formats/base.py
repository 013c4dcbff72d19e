"""What every corpus reader shares: the error it raises, the finding reasons it reports, and text checks."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from clinx_hub.documents import Finding, Span

# Finding reasons; stats and the dataset card count findings by these names.
TEXT_MISMATCH = "text_mismatch"
"""The span's stored surface text differs from ``text[start:end]``; the span is kept as annotated."""
OFFSET_SHIFT = "offset_shift"
"""Every span of a document matched only after a constant shift, which was applied."""
CRLF_NORMALISED = "crlf_normalised"
"""The offsets count ``\\r\\n`` as one character, so the text's line endings were normalised to ``\\n``."""
REPAIRED_XML = "repaired_xml"
"""A known defect of the distributed XML (unescaped ``&``, malformed tag) was repaired before parsing."""
DUPLICATE_SPAN = "duplicate"
NESTED_SPAN = "nested"
CROSSING_SPAN = "crossing"
MISALIGNED_SPAN = "misaligned"


class CorpusFormatError(ValueError):
    """A corpus file that cannot be read as its format says; the message names the file and line.

    >>> str(CorpusFormatError("unknown line type 'X'", "train/a.ann", 3))
    "train/a.ann:3: unknown line type 'X'"
    """

    def __init__(self, message: str, path: str | Path, line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.reason = message
        where = self.path if line is None else f"{self.path}:{line}"
        super().__init__(f"{where}: {message}")


def read_text(path: Path) -> str:
    """Decode ``path`` as strict UTF-8, keeping a byte-order mark and ``\\r`` (both count in offsets).

    >>> import tempfile, os; p = Path(tempfile.mkdtemp()) / "a.txt"; _ = p.write_bytes(b"\\xef\\xbb\\xbfHola\\r\\n")
    >>> read_text(p)
    '\\ufeffHola\\r\\n'
    """
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise CorpusFormatError(
            f"not valid UTF-8: byte 0x{data[err.start]:02x} at offset {err.start}", path, line
        ) from None


def line_of(text: str, offset: int) -> int:
    """The 1-based line number of character ``offset`` in ``text``."""
    return text.count("\n", 0, offset) + 1


LINE_BREAKS = "\t\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
"""A tab and every character ``str.splitlines`` breaks on: none may sit in a field of a line-based file."""
_ONE_LINE = str.maketrans(LINE_BREAKS, " " * len(LINE_BREAKS))


def one_line(field: str) -> str:
    """``field`` with each tab or line break replaced by one space, so its length (and offsets) stay the same.

    >>> one_line("dolor\\r\\ntoracico\\tagudo")
    'dolor  toracico agudo'
    """
    return field.translate(_ONE_LINE)


def span_matches(text: str, span: Span) -> bool:
    """Whether ``span``'s stored text is what its offsets select (spans without stored text always match).

    A line-based file stores a tab or line break of the text as a space, so those compare equal.
    """
    if not span.text:
        return True
    fragments = span.fragments or ((span.start, span.end),)
    # BRAT joins the fragments of a discontinuous span with a single space.
    selected = " ".join(text[s:e] for s, e in fragments)
    return selected == span.text or one_line(selected) == one_line(span.text)


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8, line endings as given) to ``path`` so that it is never seen half written.

    The text goes to a hidden temporary file in the same folder (same file system) first, which
    ``os.replace`` then renames over ``path`` in one step: an interrupt leaves the old file or the
    new one, plus at most a stray ``.*.tmp`` that no ``*.ann``/``*.txt`` glob picks up.

    >>> import tempfile; p = Path(tempfile.mkdtemp()) / "a.ann"
    >>> write_text_atomic(p, "T1\\tX 0 4\\tHola\\n"); p.read_text(encoding="utf-8")
    'T1\\tX 0 4\\tHola\\n'
    """
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        # Mode "x" creates the file with the usual permissions (umask), as a plain open would;
        # newline="" keeps "\r" and a byte-order mark exactly, so offsets stay valid. No fsync:
        # the rename already guarantees whole files against an interrupted process.
        with temporary.open("x", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def mismatch_finding(doc_id: str, text: str, span: Span, location: str) -> Finding:
    return Finding(
        doc_id,
        TEXT_MISMATCH,
        location,
        span,
        f"annotated {span.text!r} but the text at {span.start}-{span.end} is {text[span.start:span.end]!r}",
    )


def best_shift(text: str, spans: list[Span], shifts: tuple[int, ...] = (-1, 1, -2, 2)) -> int:
    """The constant offset shift under which every span's stored text matches, or 0 if none does.

    XML releases of i2b2 2012/2014 sometimes count from the CDATA without its leading newline
    (or with it), which moves every span of a document by the same amount.
    """
    if all(span_matches(text, s) for s in spans):
        return 0
    for shift in shifts:
        if all(
            0 <= s.start + shift <= s.end + shift <= len(text)
            and text[s.start + shift : s.end + shift] == s.text
            for s in spans
        ):
            return shift
    return 0
