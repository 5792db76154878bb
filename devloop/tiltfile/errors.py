"""Errors of Tiltfile evaluation, always tied to the place the user wrote."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    path: str
    line: int
    column: int = 0

    def __str__(self) -> str:
        if self.column:
            return f"{self.path}:{self.line}:{self.column}"
        return f"{self.path}:{self.line}"


class TiltfileError(Exception):
    """A Tiltfile could not be evaluated; `location` says where, `backtrace` how we got there."""

    def __init__(self, message: str, location: Location | None = None,
                 backtrace: tuple[Location, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.location = location
        self.backtrace = backtrace

    def __str__(self) -> str:
        if self.location is None:
            return self.message
        return f"{self.location}: {self.message}"

    def render(self) -> str:
        """Tilt-style report: the traceback of user frames, then the error."""
        lines = []
        if len(self.backtrace) > 1:
            lines.append("Traceback (most recent call last):")
            lines.extend(f"  {frame}" for frame in self.backtrace)
        lines.append(str(self))
        return "\n".join(lines)


class ResolutionError(TiltfileError):
    """A name that no scope defines; found before anything runs."""


class BuiltinError(Exception):
    """Raised by a builtin for bad arguments; evaluation turns it into a TiltfileError."""
