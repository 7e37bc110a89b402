"""JSON from users (request files, dataset lines): every way it can be unusable is a named problem.

`json.loads` fails on legal-looking text in ways that are not JSONDecodeError (a 5,000-digit number
raises ValueError, deep nesting RecursionError) and accepts text that cannot be stored later (a lone
surrogate such as "\\ud800" has no UTF-8 form). Doors parse through here so such input is refused as
invalid input, never a crash after part of the work was done.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from eval_pipelines.core.paths import shown_field

MAX_DEPTH = 64


class JsonProblem(ValueError):
    """Why a JSON text is unusable: `field` (a dotted path, None for the text as a whole), the
    problem, and the 1-based line when the parser knows it."""

    def __init__(self, problem: str, field: str | None = None, line: int | None = None) -> None:
        super().__init__(f"{field}: {problem}" if field else problem)
        self.problem = problem
        self.field = field
        self.line = line


def decode_json(
    text: str | bytes,
    object_pairs_hook: Callable[[list[tuple[str, Any]]], Any] | None = None,
) -> Any:
    """json.loads, with each way it can fail (not only JSONDecodeError) as a JsonProblem."""
    try:
        return json.loads(text, object_pairs_hook=object_pairs_hook)
    except json.JSONDecodeError as exc:
        raise JsonProblem(
            f"invalid JSON ({exc.msg} at column {exc.colno})", None, exc.lineno
        ) from None
    except RecursionError:
        raise JsonProblem(f"nested more than {MAX_DEPTH} levels deep") from None
    except UnicodeDecodeError as exc:  # bytes that are not UTF-8 (a ValueError too)
        raise JsonProblem(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except ValueError:  # int() refuses numbers longer than sys.get_int_max_str_digits()
        raise JsonProblem(f"a number has more than {sys.get_int_max_str_digits()} digits") from None


def parse_json(
    text: str | bytes,
    object_pairs_hook: Callable[[list[tuple[str, Any]]], Any] | None = None,
) -> Any:
    """The value of a JSON text, nested at most MAX_DEPTH deep, with no string that is not Unicode."""
    value = decode_json(text, object_pairs_hook)
    check_value(value)
    return value


def not_unicode(text: str) -> bool:
    """True when text holds a lone surrogate: it has no UTF-8 form, so no file or terminal takes it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _path(parts: tuple[Any, ...]) -> str | None:
    return ".".join(shown_field(p) for p in parts) or None


def check_value(value: Any, max_depth: int = MAX_DEPTH, prefix: str | None = None) -> None:
    """Raise JsonProblem at the first place a decoded value is nested too deeply or is not Unicode
    (its path starts with prefix, e.g. the field holding it)."""
    start: tuple[Any, ...] = (prefix,) if prefix else ()
    stack: list[tuple[Any, tuple[Any, ...]]] = [(value, start)]
    while stack:
        item, where = stack.pop()
        if len(where) - len(start) > max_depth:
            raise JsonProblem(
                f"nested more than {max_depth} levels deep", _path(where[: len(start) + max_depth])
            )
        if isinstance(item, str):
            if not_unicode(item):
                raise JsonProblem(
                    "contains a lone surrogate (not valid Unicode text)", _path(where)
                )
        elif isinstance(item, dict):
            for key in item:
                if isinstance(key, str) and not_unicode(key):
                    raise JsonProblem(
                        "a key contains a lone surrogate (not valid Unicode text)", _path(where)
                    )
            stack.extend((child, (*where, key)) for key, child in reversed(item.items()))
        elif isinstance(item, list | tuple):
            stack.extend((item[i], (*where, i)) for i in reversed(range(len(item))))
