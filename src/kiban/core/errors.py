"""Domain errors carry a Japanese and an English message and the offending field, so every
interface (HTTP problem+json, form, CLI) can say the same thing."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class FieldError:
    field: str
    ja: str
    en: str


class KibanError(Exception):
    def __init__(self, ja: str, en: str, field: str | None = None, status: int = 400,
                 code: str = "invalid", errors: list[FieldError] | None = None) -> None:
        super().__init__(en)
        self.ja = ja
        self.en = en
        self.field = field
        self.status = status
        self.code = code
        self.errors = errors or []

    def __str__(self) -> str:
        return self.en


class ValidationFailed(KibanError):
    """Bad input: one or more fields (status 422)."""

    def __init__(self, errors: list[FieldError]) -> None:
        first = errors[0]
        super().__init__(
            ja=first.ja, en=first.en, field=first.field, status=422, code="validation",
            errors=errors,
        )


def invalid(field_name: str, ja: str, en: str) -> ValidationFailed:
    return ValidationFailed([FieldError(field_name, ja, en)])


class NotFound(KibanError):
    def __init__(self, ja: str = "見つかりません。", en: str = "Not found.") -> None:
        super().__init__(ja=ja, en=en, status=404, code="not-found")


class Forbidden(KibanError):
    def __init__(self, ja: str = "権限がありません。", en: str = "Forbidden.") -> None:
        super().__init__(ja=ja, en=en, status=403, code="forbidden")


class Conflict(KibanError):
    def __init__(self, ja: str, en: str, field: str | None = None) -> None:
        super().__init__(ja=ja, en=en, field=field, status=409, code="conflict")


class RuleViolation(KibanError):
    """The input is well formed but the domain refuses it (status 422)."""

    def __init__(self, ja: str, en: str, field: str | None = None) -> None:
        super().__init__(ja=ja, en=en, field=field, status=422, code="rule")
