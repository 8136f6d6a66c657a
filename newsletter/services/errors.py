"""Errors services raise for bad input; the web and API turn them into 4xx answers."""
from __future__ import annotations


class ValidationError(ValueError):
    """Input refused; `field` names it so forms and the API can point at it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class NotFound(LookupError):
    def __init__(self, what: str, ident: object) -> None:
        super().__init__(f"No {what} with id {ident}.")
        self.what = what
        self.ident = ident


class Conflict(ValueError):
    """The request clashes with existing data (an address already present, say)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class StateConflict(Conflict, ValidationError):
    """The thing is in the wrong state for this (a sent campaign edited, say): a 409 for the
    API, and still a ValidationError on `field` for the forms that show it."""

    def __init__(self, field: str, message: str) -> None:
        ValueError.__init__(self, message)
        self.field = field
        self.message = message
