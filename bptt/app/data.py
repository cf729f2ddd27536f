"""Text corpora that need no download, a character vocabulary, and text loading with clear errors.

Corpora (Chapter 4): the Zen of Python (the standard library's ``this`` module), the help topics of
the standard library's ``pydoc_data`` (about 0.7 MB of English technical prose), or any text file.
"""

from __future__ import annotations

import codecs
import contextlib
import io
from collections.abc import Iterable
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path

import numpy as np


def zen_of_python() -> str:
    """The Zen of Python (PEP 20), decoded from the standard library's ``this`` module.

    Explained in Chapter 4.
    """
    with contextlib.redirect_stdout(io.StringIO()):  # importing `this` prints the poem
        import this
    return codecs.decode(this.s, "rot13")


def pydoc_topics(max_chars: int | None = None) -> str:
    """The help texts of the standard library's ``pydoc_data.topics``, joined in sorted order.

    Explained in Chapter 4.
    """
    from pydoc_data.topics import topics

    text = "\n\n".join(topics[key].strip() for key in sorted(topics))
    return text if max_chars is None else text[:max_chars]


def read_text(path: str | Path, encoding: str = "utf-8") -> str:
    """Read a text file, with errors that say what went wrong and where.

    Explained in Chapter 4 and Appendix A1.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist or is not a file.
    ValueError
        If ``encoding`` is not a text encoding, the bytes are not valid ``encoding`` (the message
        gives the byte offset), or the file is empty.
    """
    check_encoding(encoding)
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"text file {str(p)!r} does not exist or is not a file")
    raw = p.read_bytes()
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as err:
        raise ValueError(
            f"text file {str(p)!r} is not valid {encoding}: byte {err.start} "
            f"(0x{raw[err.start]:02x}) cannot be decoded; convert the file to {encoding} "
            "or pass its encoding"
        ) from None
    except UnicodeError as err:  # codecs such as idna fail without a byte offset
        raise ValueError(f"text file {str(p)!r} is not valid {encoding}: {err}") from None
    if not text:
        raise ValueError(f"text file {str(p)!r} is empty")
    return text


def check_encoding(encoding: str) -> str:
    """Return ``encoding`` if Python can decode text with it, else raise a ``ValueError``.

    Explained in Appendix A1.
    """
    if not isinstance(encoding, str):
        raise TypeError(f"encoding must be a str such as 'utf-8', got {encoding!r}")
    try:
        codecs.lookup(encoding)
        b"x".decode(encoding)  # codecs that are not text encodings (rot13, base64) refuse this
    except LookupError:
        raise ValueError(
            f"encoding must be a text encoding such as 'utf-8', 'latin-1' or 'utf-16', "
            f"got {encoding!r}"
        ) from None
    except UnicodeError:  # a real text encoding that cannot decode a lone b"x" (utf-16, ...)
        pass
    return encoding


@dataclass(frozen=True)
class Vocabulary:
    """A character vocabulary: the sorted distinct characters of a text, with ids 0..V-1.

    Explained in Chapter 4.
    """

    chars: tuple[str, ...]

    @classmethod
    def from_text(cls, text: str) -> Vocabulary:
        """The vocabulary of ``text`` (sorted, so the same text always gives the same ids)."""
        if not isinstance(text, str) or not text:
            raise ValueError(f"text must be a non-empty string, got {text!r:.40}")
        return cls(tuple(sorted(set(text))))

    @property
    def size(self) -> int:
        """V, the number of distinct characters."""
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """Ids ``(len(text),)`` of the characters of ``text``; unknown characters raise."""
        index = {c: i for i, c in enumerate(self.chars)}
        unknown = sorted(set(text) - index.keys())
        if unknown:
            raise ValueError(f"text has characters outside the vocabulary: {unknown[:10]}")
        return np.fromiter((index[c] for c in text), dtype=np.int64, count=len(text))

    def decode(self, ids: Iterable[int]) -> str:
        """The text spelled by ``ids``; an id outside ``[0, V)`` raises (no wrap-around for -1)."""
        out: list[str] = []
        for position, i in enumerate(ids):
            if isinstance(i, bool) or not isinstance(i, Integral):
                raise TypeError(f"ids[{position}] must be an integer id, got {i!r}")
            if not 0 <= i < self.size:
                raise ValueError(f"ids[{position}] must be an id in [0, {self.size}), got {i}")
            out.append(self.chars[i])
        return "".join(out)
