"""Errors as ClickHouse sends them: its error codes, the HTTP status it maps each to, its text."""

from __future__ import annotations

import re

# Error codes we raise ourselves (names and numbers as in ClickHouse's ErrorCodes.cpp).
SYNTAX_ERROR = (62, "SYNTAX_ERROR")
NOT_IMPLEMENTED = (48, "NOT_IMPLEMENTED")
UNKNOWN_COMPRESSION_METHOD = (146, "UNKNOWN_COMPRESSION_METHOD")
UNKNOWN_SETTING = (115, "UNKNOWN_SETTING")
CANNOT_DECOMPRESS = (354, "CANNOT_DECOMPRESS")
SESSION_IS_LOCKED = (373, "SESSION_IS_LOCKED")
AUTHENTICATION_FAILED = (516, "AUTHENTICATION_FAILED")
READONLY = (164, "READONLY")
ACCESS_DENIED = (497, "ACCESS_DENIED")
SETTING_CONSTRAINT_VIOLATION = (452, "SETTING_CONSTRAINT_VIOLATION")
STD_EXCEPTION = (1001, "STD_EXCEPTION")

# HTTP status for an exception code, as ClickHouse's exceptionCodeToHTTPStatus maps them.
_STATUS_BY_CODE: dict[int, int] = {
    194: 401,  # REQUIRED_PASSWORD
    **dict.fromkeys((192, 193, 516, 512, 497), 403),  # UNKNOWN_USER, WRONG_PASSWORD, AUTH…, ACCESS_DENIED
    **dict.fromkeys(
        (36, 427, 6, 25, 26, 38, 41, 72, 441, 442, 376, 27, 61, 44, 9, 1, 52, 53, 167, 168, 4, 117, 321, 62),
        400,
    ),
    **dict.fromkeys((60, 46, 47, 50, 56, 81, 115, 107, 63, 73, 170, 511, 57), 404),
    202: 413,  # QUERY_IS_TOO_LARGE
    48: 501,  # NOT_IMPLEMENTED
    **dict.fromkeys((209, 76, 439), 503),  # SOCKET_TIMEOUT, CANNOT_OPEN_FILE, CANNOT_SCHEDULE_TASK
    159: 408,  # TIMEOUT_EXCEEDED
}


_ERROR_CODE = re.compile(r"Code: (\d+)\. ")
_ERROR_NAME = re.compile(r"\(([A-Z_][A-Z0-9_]+)\)\s*$")


class ClickHouseError(Exception):
    """An error to send to the client as ClickHouse would."""

    def __init__(self, code: int, name: str, message: str, *, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.name = name
        # Set when the client is to come back later (HTTP 429 with Retry-After): sign-ins slowed down.
        self.retry_after_s = retry_after_s

    @classmethod
    def ours(cls, code_and_name: tuple[int, str], message: str, *, retry_after_s: int | None = None) -> ClickHouseError:
        return cls(code_and_name[0], code_and_name[1], message, retry_after_s=retry_after_s)

    @classmethod
    def from_engine(cls, exc: BaseException) -> ClickHouseError:
        """Wrap a chDB exception; its text is already `Code: N. DB::Exception: … (NAME)`."""
        text = str(exc)
        match = _ERROR_CODE.search(text)
        if not match:
            return cls(STD_EXCEPTION[0], STD_EXCEPTION[1], text)
        message = text[match.start() :].strip().split("DB::Exception: ", 1)[-1]
        name = _ERROR_NAME.search(message)
        if name:
            message = message[: name.start()].rstrip()
        return cls(int(match.group(1)), name.group(1) if name else "", message)

    @property
    def http_status(self) -> int:
        return 429 if self.retry_after_s is not None else _STATUS_BY_CODE.get(self.code, 500)

    def render(self, version: str) -> bytes:
        message = str(self) if str(self).endswith(".") else f"{self}."
        name = f" ({self.name})" if self.name else ""
        return f"Code: {self.code}. DB::Exception: {message}{name} (version {version})\n".encode()
