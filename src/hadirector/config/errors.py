"""Configuration problems: each names where it is (file:line or a key path) and what was expected.

Loading never stops at the first problem: parsers collect every error and warning, and
`ConfigError` carries them all so `hadirector check` can print each on its own line.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import HadirectorError


@dataclass(frozen=True)
class Problem:
    where: str  # "ha.cf:12", "cluster.timing.deadtime" or "authkeys"
    message: str
    warning: bool = False

    def __str__(self) -> str:
        return f"{self.where}: {'warning: ' if self.warning else ''}{self.message}"


@dataclass(frozen=True)
class Unused:
    """A legacy line that is accepted but not acted on and is not in the model (a fence device, a
    failfast command), kept so `hadirector check` can list it with what will and will not run."""

    where: str  # "ha.cf:12"
    directive: str  # "stonith_host"
    text: str  # the rest of the line


class ConfigError(HadirectorError):
    """Raised when a configuration does not load; `problems` holds every error found."""

    def __init__(self, problems: list[Problem]):
        self.problems = [p for p in problems if not p.warning]
        self.warnings = [p for p in problems if p.warning]
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass
class Collector:
    """Gathers problems while a file is parsed. `where` is a prefix such as the file name."""

    problems: list[Problem] = field(default_factory=list)
    unused: list[Unused] = field(default_factory=list)

    def note(self, where: str, directive: str, text: str) -> None:
        self.unused.append(Unused(where, directive, text))

    def error(self, where: str, message: str) -> None:
        self.problems.append(Problem(where, message))

    def warn(self, where: str, message: str) -> None:
        self.problems.append(Problem(where, message, warning=True))

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if not p.warning]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.warning]

    def raise_if_errors(self) -> None:
        if self.errors:
            raise ConfigError(self.problems)
