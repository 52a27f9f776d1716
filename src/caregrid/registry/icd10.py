"""ICD-10 codes and code ranges, as used by the per-level 诊疗病种目录.

Chinese hospitals code diagnoses with ICD-10 国家临床版 2.0 (病案首页) and 医保版 2.0 (医保结算清单,
DRG/DIP) (`reference/standards.md` §2.8). Both extend WHO ICD-10 to ``A00.000``: the 3-character
category, a dot, three characters whose first is the WHO 4th-character subdivision or ``x``
when the category has none (``I10.x00``), and an optional ``x001``-style extension
(``I20.800x007``). Catalogues and rules compare codes at the WHO level, so `normalize_icd10`
reduces every code to its category plus, when present, the 4th-character subdivision:

    I10.x00 -> I10     E11.900 -> E11.9     I20.800x007 -> I20.8     J06.9 -> J06.9

A range (`parse_range`) is one code (``I10``, ``E11.9``) or two codes joined by a dash
(``I10-I15``, ``J00-J06.9``). A bound without a subdivision stands for the whole category, so
``I10-I15`` holds I10 to I15 with all their subdivisions, while ``E11.9`` holds only E11.9 and
its extensions. A code belongs to a range when everything it may denote does: ``E11`` (any
subdivision) is not inside ``E11.9``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from caregrid.registry.errors import InvalidIcd10Code

# Category: a letter and two digits. Then either the dotted Chinese/WHO subdivision (a digit
# or the placeholder x, up to two more digits, then an optional x + 3-digit extension), or a
# dotless WHO subdivision of one or two digits (E119), as some exports write it. A trailing
# dagger/asterisk (剑号/星号 of dual classification) is tolerated.
_CODE = re.compile(
    r"""
    (?P<cat>[A-Z][0-9]{2})
    (?:
        \.(?P<sub>[0-9X])(?P<more>[0-9]{0,2})(?P<ext>X[0-9]{3})?
      | (?P<plain>[0-9])[0-9]?
    )?
    [*†+]?
    """,
    re.VERBOSE,
)
_DASH = re.compile(r"\s*[-–—~～至]\s*")

_EXAMPLES = "应形如 I10、J06.9、E11.900 或 I20.800x007"


def _clean(code: str) -> str:
    return "".join(unicodedata.normalize("NFKC", code).split()).upper()


def _parse(code: object) -> tuple[str, int | None]:
    """(category, 4th-character subdivision or None) of a code, or InvalidIcd10Code."""
    if not isinstance(code, str) or not code.strip():
        raise InvalidIcd10Code("请填写 ICD-10 编码", field="code")
    cleaned = _clean(code)
    match = _CODE.fullmatch(cleaned)
    if match is None:
        raise InvalidIcd10Code(
            f"ICD-10 编码格式不正确：“{code.strip()}”（{_EXAMPLES}）", field="code"
        )
    if match["ext"] and len(match["more"]) != 2:
        # The extension only follows the full three-character subdivision (I20.800x007).
        raise InvalidIcd10Code(
            f"ICD-10 编码格式不正确：“{code.strip()}”，扩展码前须有三位细目（如 I20.800x007）",
            field="code",
        )
    sub = match["sub"] or match["plain"]
    if sub is None or sub == "X":
        return match["cat"], None
    return match["cat"], int(sub)


def normalize_icd10(code: str) -> str:
    """The comparison form of an ICD-10 code: upper-case category plus the 4th-character
    subdivision when the code has one (``I10.x00`` -> ``I10``, ``I20.800x007`` -> ``I20.8``).
    Raises `InvalidIcd10Code` (field ``code``) for anything not ICD-10 shaped."""
    category, sub = _parse(code)
    return category if sub is None else f"{category}.{sub}"


def _key(category: str, sub: int) -> int:
    # A total order matching ICD-10's: letter, then category number, then subdivision.
    return (ord(category[0]) - ord("A")) * 1000 + int(category[1:]) * 10 + sub


def _bounds(code: str) -> tuple[int, int]:
    """The interval of subdivision keys a code stands for (a whole category: .0 to .9)."""
    category, sub = _parse(code)
    if sub is None:
        return _key(category, 0), _key(category, 9)
    key = _key(category, sub)
    return key, key


@dataclass(frozen=True)
class Icd10Range:
    """A code or a closed range of codes, bounds in normalised form (``I10``-``I15``)."""

    start: str
    end: str

    @property
    def spec(self) -> str:
        return self.start if self.start == self.end else f"{self.start}-{self.end}"

    def __str__(self) -> str:
        return self.spec

    def contains(self, code: str) -> bool:
        """Whether every code `code` may denote lies inside the range. Raises
        `InvalidIcd10Code` for a malformed code."""
        low, high = _bounds(code)
        return _bounds(self.start)[0] <= low and high <= _bounds(self.end)[1]


def parse_range(spec: str) -> Icd10Range:
    """``I10``, ``E11.9``, ``I10-I15`` or ``J00-J06.9`` (full-width or en dashes and ``~``
    accepted). Raises `InvalidIcd10Code` (field ``code``) for a malformed bound or a range
    whose start comes after its end."""
    if not isinstance(spec, str) or not spec.strip():
        raise InvalidIcd10Code("请填写 ICD-10 编码或编码范围", field="code")
    parts = _DASH.split(unicodedata.normalize("NFKC", spec).strip())
    if len(parts) == 1:
        code = normalize_icd10(parts[0])
        return Icd10Range(code, code)
    if len(parts) != 2 or not all(parts):
        raise InvalidIcd10Code(
            f"ICD-10 编码范围格式不正确：“{spec.strip()}”（应形如 I10、I10-I15 或 J00-J06.9）",
            field="code",
        )
    start, end = normalize_icd10(parts[0]), normalize_icd10(parts[1])
    if _bounds(start)[0] > _bounds(end)[1]:
        raise InvalidIcd10Code(
            f"ICD-10 编码范围“{spec.strip()}”的起点 {start} 在终点 {end} 之后", field="code"
        )
    return Icd10Range(start, end)


def range_covers_any(ranges: Iterable[Icd10Range | str], code: str) -> bool:
    """Whether any of `ranges` (parsed or as text) contains `code`. The code is validated
    even when `ranges` is empty."""
    low, high = _bounds(code)
    for item in ranges:
        rng = parse_range(item) if isinstance(item, str) else item
        if _bounds(rng.start)[0] <= low and high <= _bounds(rng.end)[1]:
            return True
    return False
