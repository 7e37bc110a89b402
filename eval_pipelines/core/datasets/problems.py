"""What is wrong with dataset files: each Problem with its place, and the error that lists them all."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eval_pipelines.core.errors import InvalidInputError

MAX_LISTED_PROBLEMS = 50


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input, printed as `file:line: field: problem`."""

    file: str
    line: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        location = self.file if self.line is None else f"{self.file}:{self.line}"
        return ": ".join(part for part in (location, self.field, self.message) if part)


def format_problems(problems: Sequence[Problem], limit: int = MAX_LISTED_PROBLEMS) -> str:
    count = len(problems)
    lines = [
        f"the dataset files have {count} problem{'s' if count != 1 else ''}; nothing was stored:"
    ]
    lines += [f"  {problem}" for problem in problems[:limit]]
    if count > limit:
        lines.append(f"  ... and {count - limit} more")
    return "\n".join(lines)


class DatasetInputError(InvalidInputError):
    """The dataset files break the format; `problems` holds every violation found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__(format_problems(self.problems))
