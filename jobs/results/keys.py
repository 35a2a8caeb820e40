"""The keys an output's lines name, numbered in the order met: about 30 bytes a key.

The end-of-run summary tells keys apart by their JSON text. Held as a dict from key to
number, a million keys took 137 MB (a string, an integer and a dict entry each): more
than everything else the summary of 2,000,000 predictions holds. Here each key is its
*name* (a type letter and its text, in UTF-8) in one byte buffer, and the index from
name to number is a numpy array of the names' hashes, sorted, beside their numbers;
the keys met since the array was last sorted wait in a small dict. A hash found is
checked against the name in the buffer, so two keys whose hashes are equal stay apart.
"""

from __future__ import annotations

import json
from array import array

import numpy as np

__all__ = ["KeyTable"]

#: Keys met since the sorted arrays were last built, beyond which they are sorted in
#: (or beyond an eighth of the keys): a few MB in the dict, a sort now and then.
_SORT_AFTER = 1 << 16


class KeyTable:
    """Every key met, numbered in the order met.

    Keys are told apart as their JSON text: a string or an integer is its own text, one
    for one; any other key is named by its text (see :meth:`numbers` for ``canonical``).

    >>> table = KeyTable()
    >>> table.numbers(["a", 7, "a", 7.0, "7", 7])
    [0, 1, 0, 2, 3, 1]
    >>> table.find('"a"'), table.find("7.0"), table.find("8"), table.text(2), table.key(1)
    (0, 2, None, '7.0', 7)
    """

    def __init__(self) -> None:
        self._names = bytearray()  # every key's name, one after the other
        self._ends = array("Q", [0])  # key i's name: _names[_ends[i]:_ends[i + 1]]
        self._hashes = np.empty(0, np.int64)  # hashes of the names, sorted ...
        self._numbers = np.empty(0, np.uint32)  # ... and the number of each one's key
        self._recent: dict = {}  # name -> number, of the keys met since the last sort

    def __len__(self) -> int:
        return len(self._ends) - 1

    def numbers(self, keys: list, canonical: dict | None = None) -> list:
        """Each key's number; keys not met before are numbered next, in order.

        ``canonical``: a dict of the part file being read, where a key that is neither a
        string nor an integer stands for the keys equal to it (``0.0`` and ``-0.0``), so
        that within one file they are one key, named by the first met, as they always were.
        """
        names = [_name(key, canonical) for key in keys]
        found = self._find(names)
        recent = self._recent
        for row in np.flatnonzero(found < 0).tolist():
            name = names[row]
            number = recent.get(name)
            if number is None:
                number = recent[name] = len(self)
                self._names += name
                self._ends.append(len(self._names))
            found[row] = number
        if len(recent) > max(_SORT_AFTER, len(self._hashes) // 8):
            self._sort()
        return found.tolist()

    def find(self, text: str) -> int | None:
        """The number of the key whose JSON text is ``text``, if met."""
        try:
            key = json.loads(text)
        except ValueError:
            return None
        if json.dumps(key) != text:
            return None
        name = _name(key)
        number = int(self._find([name])[0])
        return self._recent.get(name) if number < 0 else number

    def key(self, number: int):
        """The key numbered ``number`` (a value equal to the one met, of its type)."""
        kind, text = self._split(number)
        if kind == "s":
            return text
        return int(text) if kind == "i" else json.loads(text)

    def text(self, number: int) -> str:
        """The JSON text of the key numbered ``number``: what the summary names it by."""
        kind, text = self._split(number)
        return json.dumps(text) if kind == "s" else text

    def _split(self, number: int) -> tuple:
        name = self._names[self._ends[number] : self._ends[number + 1]]
        return chr(name[0]), name[1:].decode("utf-8", "surrogatepass")

    def _find(self, names: list) -> np.ndarray:
        """The number of each name in the sorted arrays; -1 where not there."""
        found = np.full(len(names), -1, np.int64)
        size = len(self._hashes)
        if not size:
            return found
        hashes = list(map(hash, names))
        wanted = np.array(hashes, np.int64)
        at = np.searchsorted(self._hashes, wanted).clip(max=size - 1)
        sorted_hashes, numbers = memoryview(self._hashes), memoryview(self._numbers)
        all_names, ends = self._names, self._ends
        for row in np.flatnonzero(self._hashes[at] == wanted).tolist():
            name, wanted, i = names[row], hashes[row], int(at[row])
            while i < size and sorted_hashes[i] == wanted:  # equal hashes: check the name
                number = numbers[i]
                if all_names[ends[number] : ends[number + 1]] == name:
                    found[row] = number
                    break
                i += 1
        return found

    def _sort(self) -> None:
        """Move the recent keys into the sorted arrays."""
        names, numbers = list(self._recent), list(self._recent.values())
        hashes = np.concatenate([self._hashes, np.fromiter(map(hash, names), np.int64)])
        numbers = np.concatenate([self._numbers, np.array(numbers, np.uint32)])
        order = np.argsort(hashes)
        self._hashes, self._numbers = hashes[order], numbers[order]
        self._recent = {}


def _name(key, canonical: dict | None = None) -> bytes:
    """A key's name: a letter for its type, then its text (a string's own text, JSON
    text for the rest), in UTF-8 (lone surrogates kept: JSON strings may hold them)."""
    if key.__class__ is str:
        return b"s" + key.encode("utf-8", "surrogatepass")
    if key.__class__ is int:
        return b"i" + int.__repr__(key).encode()
    if canonical is not None:
        key = canonical.setdefault((key.__class__, key), key)
    return b"j" + json.dumps(key).encode()
