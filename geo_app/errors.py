"""One error hierarchy: every error carries a message a user can act on."""

from __future__ import annotations


class GeoAppError(Exception):
    """Base class of every error this package raises on purpose.

    Parameters
    ----------
    user_message
        What went wrong and what to do about it, for the person using the app.
    """

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


class DataError(GeoAppError, ValueError):
    """A source file in ``data/`` is missing or malformed."""


class LayerSpecError(GeoAppError, ValueError):
    """A layer specification in ``layers/*.toml`` is invalid."""

    def __init__(self, path: str, key: str, problem: str) -> None:
        super().__init__(f"{path}: key '{key}': {problem}")
        self.path = path
        self.key = key


class FilterError(GeoAppError, ValueError):
    """A filter value is not in its controlled vocabulary."""


class ImportValidationError(GeoAppError, ValueError):
    """An import file has rows that cannot be loaded; nothing was written."""

    def __init__(self, user_message: str, problems: list[dict[str, str]] | None = None) -> None:
        super().__init__(user_message)
        self.problems = problems or []


class DatabaseBusyError(GeoAppError, RuntimeError):
    """The database file is locked by another writer for longer than the retry budget."""


class ExportError(GeoAppError, ValueError):
    """An export request cannot be served (unknown format or collection)."""


class APIError(GeoAppError, ValueError):
    """An HTTP API request cannot be served: carries the HTTP status and an OGC exception code.

    Parameters
    ----------
    user_message
        What is wrong with the request and how to fix it (sent to the client).
    status
        The HTTP status code of the response (400 bad parameter, 404 not found...).
    code
        The OGC API exception code, e.g. ``InvalidParameterValue`` or ``NotFound``.
    """

    def __init__(self, user_message: str, *, status: int = 400,
                 code: str = "InvalidParameterValue") -> None:
        super().__init__(user_message)
        self.status = status
        self.code = code


class NotAuthorisedError(GeoAppError, PermissionError):
    """The acting identity may not change the map (a viewer, not an editor); nothing was written."""
