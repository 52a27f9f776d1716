"""居民身份证号码 (GB 11643-1999): parsing, validation, generation and masking.

An 18-character number is 6 digits of address code (GB/T 2260) + 8 digits of birth date
(YYYYMMDD) + 3 digits of sequence (odd: male, even: female) + 1 check character computed with
ISO 7064:1983 MOD 11-2 (`reference/standards.md` §2.7). Legacy 15-digit numbers
(GB 11643-1989) have a 2-digit year and no check character; they are converted by inserting
"19" before the year and computing the check character.

Every problem raises `InvalidIdNumber` with a Chinese sentence saying exactly what is wrong and
``field="id_number"`` (``"sex"`` / ``"birth_date"`` when the stated values disagree with the
number), so the API and the pages can show it beside the field.

The masks (`mask_id_number`, `mask_phone`, `mask_name`) never raise: whatever is shown to
people goes through them, including malformed legacy data.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date
from operator import mul
from typing import Literal

from caregrid.core.clock import today as china_today
from caregrid.registry.errors import InvalidIdNumber

Sex = Literal["male", "female"]

# ISO 7064 MOD 11-2: W_i = 2^(18-i) mod 11 for i = 1..17; check = MAP[sum mod 11].
WEIGHTS: tuple[int, ...] = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_MAP = "10X98765432"
_ZERO_OFFSET = ord("0") * sum(WEIGHTS)

# First two digits of the GB/T 2260 address code: the provincial-level divisions, plus 71
# (台湾), 81 (香港), 82 (澳门) and 83 (港澳台居民居住证, 2018).
PROVINCE_CODES: frozenset[str] = frozenset(
    [str(n) for n in range(11, 16)]
    + [str(n) for n in range(21, 24)]
    + [str(n) for n in range(31, 38)]
    + [str(n) for n in range(41, 47)]
    + [str(n) for n in range(50, 55)]
    + [str(n) for n in range(61, 66)]
    + ["71", "81", "82", "83"]
)

# The earliest plausible birth date. GB 11643-1999's own worked example (440524188001010014)
# is born 1880-01-01, and residents registered in the 1980s with claimed birth years in the
# 1880s exist, so the bound is 1880 rather than 1890; it still catches typing slips such as
# 1080 or 0980 for 1980.
EARLIEST_BIRTH = date(1880, 1, 1)

# Two-character surnames kept whole by `mask_name` (欧阳娜娜 -> 欧阳**). Kept here rather than
# imported from the demo name generator so the registry does not depend on demo code.
COMPOUND_SURNAMES: frozenset[str] = frozenset((
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文",
    "司徒", "夏侯", "令狐", "端木", "轩辕", "独孤", "南宫", "西门", "呼延", "澹台", "公冶",
    "申屠", "太史", "闻人", "赫连", "钟离", "宗政", "濮阳", "万俟",
))  # fmt: skip


@dataclass(frozen=True)
class IdNumberInfo:
    """What a valid number says: `number` is the normalised 18-character form (upper-case X,
    legacy numbers converted)."""

    number: str
    region_code: str
    birth_date: date
    sex: Sex
    sequence: int


def _check(first17: str) -> str:
    # Weighted sum over the ASCII bytes, minus the '0' offset of every byte (hot in the demo:
    # a million residents each get a generated number).
    return CHECK_MAP[(sum(map(mul, first17.encode("ascii"), WEIGHTS)) - _ZERO_OFFSET) % 11]


def check_digit(first17: str) -> str:
    """The GB 11643 check character (ISO 7064 MOD 11-2) of the first 17 digits."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError(f"check_digit needs exactly 17 ASCII digits, got {first17!r}")
    return _check(first17)


def _fail(detail: str) -> InvalidIdNumber:
    return InvalidIdNumber(detail, field="id_number")


def _normalise(raw: str) -> str:
    # Numbers are often typed in groups (3713 0219 ...) or with a full-width input method
    # (３７１３…Ｘ); NFKC maps full-width characters to ASCII, split() drops every space.
    return "".join(unicodedata.normalize("NFKC", raw).split()).upper()


def _parse_birth(text: str, *, today: date) -> date:
    try:
        born = date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        raise _fail(
            f"身份证号中的出生日期 {text[:4]}-{text[4:6]}-{text[6:8]} 不是有效日期"
        ) from None
    if born > today:
        raise _fail(f"身份证号中的出生日期 {born.isoformat()} 晚于今天（{today.isoformat()}）")
    if born < EARLIEST_BIRTH:
        raise _fail(
            f"身份证号中的出生日期 {born.isoformat()} 早于 {EARLIEST_BIRTH.year} 年，不合理"
        )
    return born


def parse_id_number(raw: str, *, today: date | None = None) -> IdNumberInfo:
    """Validate and decode a 身份证号 (GB 11643-1999; legacy 15-digit numbers of GB 11643-1989
    are converted to 18 digits). Checks, in order: length, characters, province code, birth
    date (a real date, not in the future, not before `EARLIEST_BIRTH`), check character.
    Raises `InvalidIdNumber` (field ``id_number``) naming the first problem found."""
    today = today or china_today()
    if not isinstance(raw, str):
        raise _fail("身份证号必须是文本")
    number = _normalise(raw)
    if not number:
        raise _fail("请填写身份证号")
    if len(number) not in (15, 18):
        raise _fail(f"身份证号应为 18 位（或旧式 15 位），实际为 {len(number)} 位")
    if len(number) == 15:
        if not (number.isascii() and number.isdigit()):
            raise _fail("旧式 15 位身份证号只能由数字组成")
        legacy = True
        body = number[:6] + "19" + number[6:]
    else:
        legacy = False
        body = number[:17]
        if not (body.isascii() and body.isdigit()):
            raise _fail("身份证号前 17 位只能是数字")
        if not (number[17].isascii() and (number[17].isdigit() or number[17] == "X")):
            raise _fail("身份证号第 18 位（校验码）只能是数字或 X")
    region = body[:6]
    if region[:2] not in PROVINCE_CODES:
        raise _fail(f"身份证号前两位 {region[:2]} 不是有效的省级行政区划代码")
    born = _parse_birth(body[6:14], today=today)
    expected = _check(body)
    if legacy:
        number = body + expected
    elif number[17] != expected:
        raise _fail(f"身份证号校验码错误：第 18 位应为 {expected}，实际为 {number[17]}")
    sequence = int(body[14:17])
    return IdNumberInfo(
        number=number,
        region_code=region,
        birth_date=born,
        sex="male" if sequence % 2 else "female",
        sequence=sequence,
    )


def make_id_number(region_code: str, birth_date: date, sequence: int) -> str:
    """A valid 18-character number for a 6-digit region code, a birth date and a sequence
    0..999 (odd: male, even: female). Used by the demo and tests; bad arguments are a
    programming error (ValueError), not user input."""
    if len(region_code) != 6 or not (region_code.isascii() and region_code.isdigit()):
        raise ValueError(f"region_code must be 6 digits, got {region_code!r}")
    if not 0 <= sequence <= 999:
        raise ValueError(f"sequence must be 0..999, got {sequence}")
    first17 = (
        f"{region_code}{birth_date.year:04d}{birth_date.month:02d}{birth_date.day:02d}"
        f"{sequence:03d}"
    )
    return first17 + _check(first17)


def check_agrees(info: IdNumberInfo, *, sex: str | None, birth_date: date | None) -> None:
    """Raise `InvalidIdNumber` (field ``sex`` or ``birth_date``) when a stated sex or birth date
    disagrees with what the number encodes; values not stated (None) are not checked."""
    if sex is not None and sex != info.sex:
        stated = {"male": "男", "female": "女"}.get(sex, sex)
        encoded = "男" if info.sex == "male" else "女"
        raise InvalidIdNumber(
            f"填写的性别（{stated}）与身份证号不符：身份证号第 17 位表示{encoded}性",
            field="sex",
        )
    if birth_date is not None and birth_date != info.birth_date:
        raise InvalidIdNumber(
            f"填写的出生日期（{birth_date.isoformat()}）与身份证号中的出生日期"
            f"（{info.birth_date.isoformat()}）不符",
            field="birth_date",
        )


def _as_text(value: object) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def mask_id_number(s: str) -> str:
    """Keep the first 4 and the last 4 characters, `*` in between (``3713**********002X``).
    Strings of 8 characters or fewer are masked completely. Never raises."""
    text = "".join(_as_text(s).split())
    if len(text) <= 8:
        return "*" * len(text)
    return text[:4] + "*" * (len(text) - 8) + text[-4:]


def mask_phone(s: str) -> str:
    """Keep the first 3 and the last 4 characters (``138****1234``). Strings of 7 characters or
    fewer are masked completely. Never raises."""
    text = "".join(_as_text(s).split())
    if len(text) <= 7:
        return "*" * len(text)
    return text[:3] + "*" * (len(text) - 7) + text[-4:]


def mask_name(s: str) -> str:
    """Mask a personal name, keeping the surname (and, for long names, the last character):

    - a known two-character surname is kept whole, the given name masked: ``欧阳**``, ``司马*``;
    - one character: ``*``; two: first + ``*`` (``张*``);
    - three or more: first + ``*``... + last (``王*明``, ``李**华``).

    Never raises."""
    text = _as_text(s).strip()
    if not text:
        return ""
    if len(text) >= 3 and text[:2] in COMPOUND_SURNAMES:
        return text[:2] + "*" * (len(text) - 2)
    if len(text) == 1:
        return "*"
    if len(text) == 2:
        return text[0] + "*"
    return text[0] + "*" * (len(text) - 2) + text[-1]
