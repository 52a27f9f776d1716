"""The authenticated caller, as a plain value every layer can pass around."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    user_id: int | None
    username: str
    role: str
    institution_id: int | None = None
    group_id: int | None = None
    practitioner_id: int | None = None
    display_name: str = ""

    @classmethod
    def system(cls, name: str = "system") -> Actor:
        """The platform itself (imports, the demo builder, CLI maintenance)."""
        return cls(user_id=None, username=name, role="system", display_name="系统")
