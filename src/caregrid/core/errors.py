"""The one error hierarchy every domain raises.

Each error knows its HTTP status; one handler renders it as JSON (`{"error": ..., "detail": ...,
**fields}`), FHIR routes render an OperationOutcome, pages show the message beside the field
named in `fields["field"]`, and the CLI prints one line and exits with code 2. Nobody catches
and re-wraps.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    """Base of every error a user can cause. `detail` is a Chinese sentence for people;
    `fields` carries machine-readable context (e.g. ``field="id_number"``)."""

    status_code: ClassVar[int] = 400

    def __init__(self, detail: str, **fields: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.fields = fields

    @property
    def name(self) -> str:
        return type(self).__name__

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.name, "detail": self.detail, **self.fields}


class Invalid(DomainError):
    """Input that breaks a rule (the request was well-formed but its content is wrong)."""

    status_code = 422


class NotFound(DomainError):
    """The thing does not exist, or the caller may not know it exists."""

    status_code = 404


class Conflict(DomainError):
    """The request clashes with the current state (duplicate, illegal transition)."""

    status_code = 409


class Unauthorized(DomainError):
    """No valid credentials (wrong password, expired session or token)."""

    status_code = 401


class Forbidden(DomainError):
    """Authenticated, but the caller's role may not perform this action at all.

    Never used for a resident the caller has no care relationship with: that is `NotFound`,
    so that existence is not revealed."""

    status_code = 403


class Locked(DomainError):
    """The account is locked after repeated failed logins."""

    status_code = 423


class PayloadTooLarge(DomainError):
    status_code = 413
