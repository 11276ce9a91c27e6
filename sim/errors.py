"""The project's one error type: every refusal of bad input is a SearchsimError.

Each problem names the field (a dotted path), the value seen and what was expected, so the
CLI can print one line per problem and exit 2 without a traceback.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    field: str
    value: object
    expected: str
    message: str | None = None  # replaces "got ..., expected ..." when the value says nothing

    def __str__(self) -> str:
        if self.message is not None:
            return f"{self.field}: {self.message}"
        return f"{self.field}: got {self.value!r}, expected {self.expected}"


class SearchsimError(Exception):
    """Bad input refused; carries one or more problems, each printable on one line."""

    def __init__(self, problems: list[Problem] | Problem | str):
        if isinstance(problems, str):
            problems = [Problem("input", "", problems)]
            self.lines = [problems[0].expected]
        elif isinstance(problems, Problem):
            problems = [problems]
            self.lines = [str(problems[0])]
        else:
            self.lines = [str(p) for p in problems]
        self.problems = problems
        super().__init__("\n".join(self.lines))


def unknown_key(field: str, value: str, valid: list[str], what: str = "one of"
                ) -> SearchsimError:
    """An unknown catalog or option key, with the valid ones listed and the nearest named."""
    text = str(value).lower().replace("-", "_")
    starts = sorted((v for v in valid if v.lower().startswith(text)), reverse=True)
    near = starts[:1] or [v for v in valid if v.lower() in difflib.get_close_matches(
        text, [x.lower() for x in valid], n=1, cutoff=0.7)]
    hint = f" (did you mean '{near[0]}'?)" if near else ""
    return SearchsimError(Problem(field, value, f"{what}: " + ", ".join(sorted(valid)) + hint))
