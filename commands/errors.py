"""The one error type a command raises for bad input: it becomes the reply."""

from __future__ import annotations


class CommandError(Exception):
    """Bad input: `message` says what was wrong, `usage` shows how to do it right."""

    def __init__(self, message: str, usage: str | None = None, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.usage = usage
        self.field = field  # the form field it is about, when it came from a form

    def reply(self) -> str:
        """The text the person sees: the problem, then the right usage."""
        if self.usage:
            return f"{self.message}\n\nUsage:\n{self.usage}"
        return self.message
