"""Tests of the corpora, the vocabulary and text loading (bptt/app/data.py)."""

from __future__ import annotations

import numpy as np
import pytest

import bptt


def test_vocabulary_round_trip():
    text = "hello world, hello BPTT!\n"
    vocab = bptt.Vocabulary.from_text(text)
    assert vocab.chars == tuple(sorted(set(text)))
    assert vocab.size == len(set(text))
    ids = vocab.encode(text)
    assert ids.dtype == np.int64
    assert ids.shape == (len(text),)
    assert ids.min() >= 0 and ids.max() < vocab.size
    assert vocab.decode(ids) == text
    assert vocab.decode([]) == ""
    assert vocab.encode("").shape == (0,)


def test_vocabulary_is_deterministic():
    assert bptt.Vocabulary.from_text("cab") == bptt.Vocabulary.from_text("abcabc")


def test_vocabulary_errors():
    vocab = bptt.Vocabulary.from_text("abc")
    with pytest.raises(ValueError, match=r"characters outside the vocabulary: \['x', 'z'\]"):
        vocab.encode("abxz")
    with pytest.raises(ValueError, match="text must be a non-empty string"):
        bptt.Vocabulary.from_text("")
    with pytest.raises(ValueError, match="text must be a non-empty string"):
        bptt.Vocabulary.from_text(b"abc")


def test_zen_of_python():
    zen = bptt.zen_of_python()
    assert zen.startswith("The Zen of Python, by Tim Peters")
    assert "Beautiful is better than ugly." in zen


def test_pydoc_topics():
    text = bptt.pydoc_topics()
    assert len(text) > 100_000
    assert bptt.pydoc_topics(max_chars=500) == text[:500]


def test_read_text(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("héllo\n", encoding="utf-8")
    assert bptt.read_text(path) == "héllo\n"
    assert bptt.read_text(str(path)) == "héllo\n"
    latin = tmp_path / "latin.txt"
    latin.write_bytes("café".encode("latin-1"))
    assert bptt.read_text(latin, encoding="latin-1") == "café"


def test_read_text_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist or is not a file"):
        bptt.read_text(tmp_path / "nope.txt")
    with pytest.raises(FileNotFoundError, match="does not exist or is not a file"):
        bptt.read_text(tmp_path)  # a directory


def test_read_text_undecodable_bytes_give_the_offset(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"abc\xffdef")
    with pytest.raises(ValueError, match=r"is not valid utf-8: byte 3 \(0xff\) cannot be decoded"):
        bptt.read_text(path)


def test_read_text_empty(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="is empty"):
        bptt.read_text(path)


def test_decode_refuses_ids_outside_the_vocabulary():
    vocab = bptt.Vocabulary.from_text("abc")
    assert vocab.decode(np.array([2, 0, 1])) == "cab"
    with pytest.raises(ValueError, match=r"ids\[0\] must be an id in \[0, 3\), got -1"):
        vocab.decode([-1])  # not the last character, as Python's indexing would give
    with pytest.raises(ValueError, match=r"ids\[2\] must be an id in \[0, 3\), got 3"):
        vocab.decode([0, 1, 3])
    with pytest.raises(TypeError, match=r"ids\[0\] must be an integer id, got 1.5"):
        vocab.decode([1.5])
    with pytest.raises(TypeError, match=r"ids\[0\] must be an integer id, got True"):
        vocab.decode([True])


@pytest.mark.parametrize("encoding", ["bogus-enc", "rot13", "base64", "hex", ""])
def test_read_text_refuses_what_is_not_a_text_encoding(tmp_path, encoding):
    path = tmp_path / "a.txt"
    path.write_text("hello", encoding="utf-8")
    with pytest.raises(ValueError, match=f"encoding must be a text encoding.*got '{encoding}'"):
        bptt.read_text(path, encoding=encoding)


def test_check_encoding():
    from bptt.app.data import check_encoding

    for name in ("utf-8", "latin-1", "utf-16", "cp1252", "UTF8"):
        assert check_encoding(name) == name
    with pytest.raises(TypeError, match="encoding must be a str"):
        check_encoding(None)
