"""Text read from a cluster is data: it is made printable once, where it enters the model.

File names, certificate fields, member and pod names, event messages and error strings come from
machines in trouble and from files that other people (and DaemonSets) can write. An ESC in a file
name would reach the operator's terminal as an escape sequence (`ESC ] 52 ; c ; …` writes their
clipboard), a CR would overwrite what a line says, a bidi override would make a name read
backwards, and a lone surrogate (a non-UTF-8 byte of a file name) would make printing raise.

So every string a source hands to the model passes `printable()`: control characters other than
tab and newline become visible placeholders (`␛` for ESC, `\\x9b` for a C1 byte, `\\u202e` for a
bidi control, `\\xNN` for an undecodable byte), and a string that needs none of that is returned
as the very same object. `neutralized()` applies it to every string inside a snapshot part
(dataclasses, tuples, dicts), so a field added later is covered without anyone remembering to.
Markup is the widgets' concern: they render these strings as literal text, never as markup.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import Any, TypeVar

T = TypeVar("T")

# C0 but tab and newline, DEL, C1, the bidi embeddings/overrides/isolates, lone surrogates.
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _placeholder(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x20:
        return chr(0x2400 + code)  # the Unicode control pictures: ␀ … ␛ …
    if code == 0x7F:
        return "␡"
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape: the byte a file name had
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` with every control character shown as a placeholder; the same object if clean."""
    if UNSAFE.search(text) is None:
        return text
    return UNSAFE.sub(_placeholder, text)


def neutralized(value: T) -> T:
    """`value` with every string in it made printable, walking frozen dataclasses, tuples,
    lists and dicts (keys too); untouched parts are returned as the same objects, so a
    snapshot that needed nothing costs no copies."""
    return _neutralized(value)  # type: ignore[no-any-return]


# id -> (object, its neutralized form), for immutable parts: sources hand the same parsed
# certificates back on every read of an unchanged node (their parsers are memoised), and
# walking them again each second would cost a millisecond a node. The object is held, so its
# id cannot be reused while it is in here; the memo is emptied when full.
_MEMO: dict[int, tuple[Any, Any]] = {}
MEMO_ENTRIES = 4096


def _neutralized(value: Any) -> Any:
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, tuple) or _frozen(value):
        known = _MEMO.get(id(value))
        if known is not None and known[0] is value:
            return known[1]
        result = _walked(value)
        if len(_MEMO) >= MEMO_ENTRIES:
            _MEMO.clear()
        _MEMO[id(value)] = (value, result)
        return result
    return _walked(value)


def _walked(value: Any) -> Any:
    if isinstance(value, tuple | list):
        items = [_neutralized(item) for item in value]
        if all(new is old for new, old in zip(items, value, strict=True)):
            return value
        return type(value)(items) if not hasattr(value, "_fields") else type(value)(*items)
    if isinstance(value, dict):
        pairs = [(_neutralized(k), _neutralized(v)) for k, v in value.items()]
        if all(
            k is old_k and v is old_v
            for (k, v), (old_k, old_v) in zip(pairs, value.items(), strict=True)
        ):
            return value
        return type(value)(pairs)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {}
        for name in _init_fields(type(value)):
            old = getattr(value, name)
            new = _neutralized(old)
            if new is not old:
                changes[name] = new
        return dataclasses.replace(value, **changes) if changes else value
    return value


def _frozen(value: Any) -> bool:
    params = getattr(value, "__dataclass_params__", None)
    return params is not None and params.frozen and not isinstance(value, type)


@functools.cache
def _init_fields(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls) if f.init)
