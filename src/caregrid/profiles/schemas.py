"""Pydantic models of a policy profile (DESIGN §4): the plan's metadata, its parameters (every
value with the seed clause it comes from), its 评判标准 scorecard and its group layout.

The models validate themselves, so a profile built in code (an override, a test) obeys the same
rules as one read from a TOML file:

- a clause cites a seed (``NNN §...``, NNN in 000-004) or is ``default``; a ``default`` value
  must be ``provisional = true`` and carry a ``note`` saying why it was chosen;
- the value's type agrees with its unit (``share`` is a fraction in [0, 1], ``bool`` is a
  boolean, ``count`` a non-negative integer, ``trend`` is ``rising``/``falling``, ...);
- unknown fields are rejected;
- the five known profile ids are tied to their seed numbers (000 lincang ... 004 national_city),
  and every clause of a profile cites that profile's own seed.
"""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

#: Profile id -> seed file number (seeds/README.md).
PROFILE_SEEDS: dict[str, str] = {
    "lincang": "000",
    "linyi": "001",
    "zhongwei": "002",
    "yunnan_county": "003",
    "national_city": "004",
}

CLAUSE_RE = re.compile(r"^(00[0-4] .+|default)$")
KEY_PART_RE = re.compile(r"^[a-z][a-z0-9_]*$")
ISSUED_RE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")

Comparator = Literal[">=", "<=", "<", ">", "=="]
Unit = Literal[
    "share",  # a fraction in [0, 1]
    "percent",  # 0..100 (prefer share)
    "days",
    "hours",
    "months",
    "ratio",  # e.g. outpatient:discharge 12 (:1)
    "index",  # e.g. CMI
    "per_100k",
    "per_1000",
    "yuan",
    "count",  # a non-negative integer
    "bool",
    "text",
    "list",  # a list of Chinese strings
    "trend",  # "rising" / "falling" (逐年提升 / 逐年下降)
    "date",  # YYYY-MM-DD
]
GroupKind = Literal["city_group", "county_community", "city_alliance"]
ParameterValue = bool | int | float | str | list[str]

NUMERIC_UNITS: frozenset[str] = frozenset(
    {
        "share",
        "percent",
        "days",
        "hours",
        "months",
        "ratio",
        "index",
        "per_100k",
        "per_1000",
        "yuan",
        "count",
    }
)
TRENDS = ("rising", "falling")

GROUP_KIND_LABELS: dict[str, str] = {
    "city_group": "紧密型城市医疗集团",
    "county_community": "县域医共体",
    "city_alliance": "城市医联体",
}
TREND_LABELS = {"rising": "逐年提升", "falling": "逐年下降"}
COMPARATOR_SIGNS = {">=": "≥", "<=": "≤", "<": "<", ">": ">", "==": ""}


def show(value: object) -> str:
    """A value as it would be written in TOML, for one-line error messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text.replace("\n", " ")


def field_error(problem: str) -> PydanticCustomError:
    """A validation error of the field being validated, with a Chinese `problem`."""
    return PydanticCustomError("profile_rule", "{problem}", {"problem": problem})


CLAUSE_FORMAT = '条款应写作 "NNN §…"（NNN 为 000–004）'


def rule_error(field: str, problem: str) -> PydanticCustomError:
    """A validation error whose location (`field`, dotted) is carried in its context, so that
    model-level checks still name the key they are about."""
    return PydanticCustomError("profile_rule", "{problem}", {"field": field, "problem": problem})


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_value_type(value: object) -> object:
    ok = isinstance(value, bool | int | float | str) or (
        isinstance(value, list) and all(isinstance(item, str) for item in value)
    )
    if not ok:
        raise field_error(f"必须是布尔值、数字、文本或文本列表 (got {show(value)})")
    return value


Value = Annotated[ParameterValue, BeforeValidator(_check_value_type)]


def value_problem(value: object, unit: str | None) -> str | None:
    """Why `value` does not agree with `unit`, or None when it does."""
    if unit is None:
        return None
    if unit in NUMERIC_UNITS:
        if not _is_number(value):
            return f"单位 {unit} 要求数值 (got {show(value)})"
        number = float(value)  # type: ignore[arg-type]
        if unit == "share" and not 0 <= number <= 1:
            return f"必须在 0 到 1 之间 (got {show(value)})"
        if unit == "percent" and not 0 <= number <= 100:
            return f"必须在 0 到 100 之间 (got {show(value)})"
        if unit == "count" and not isinstance(value, int):
            return f"单位 count 要求整数 (got {show(value)})"
        if number < 0:
            return f"不能为负数 (got {show(value)})"
        return None
    if unit == "bool":
        return (
            None if isinstance(value, bool) else f"单位 bool 要求 true 或 false (got {show(value)})"
        )
    if unit == "text":
        if not isinstance(value, str) or not value.strip():
            return f"单位 text 要求非空文本 (got {show(value)})"
        return None
    if unit == "list":
        if not isinstance(value, list) or not value:
            return f"单位 list 要求非空文本列表 (got {show(value)})"
        return None
    if unit == "trend":
        if value not in TRENDS:
            return f'单位 trend 要求 "rising" 或 "falling" (got {show(value)})'
        return None
    if unit == "date":
        if not isinstance(value, str):
            return f"单位 date 要求 YYYY-MM-DD 文本 (got {show(value)})"
        try:
            date.fromisoformat(value)
        except ValueError:
            return f"日期应写作 YYYY-MM-DD (got {show(value)})"
        if len(value) != 10:
            return f"日期应写作 YYYY-MM-DD (got {show(value)})"
        return None
    return None  # pragma: no cover - Unit is a closed Literal


def value_kind(value: object) -> str:
    """bool / number / text / list: the families an override must not cross."""
    if isinstance(value, bool):
        return "bool"
    if _is_number(value):
        return "number"
    if isinstance(value, str):
        return "text"
    return "list"


KIND_LABELS = {"bool": "布尔值", "number": "数值", "text": "文本", "list": "文本列表"}


class ParameterSpec(BaseModel):
    """One parameter table as written in a profile file: ``value`` plus where it comes from."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    value: Value
    label: str = Field(min_length=1, description="中文名称")
    clause: str = Field(description="种子条款，如 `002 §四(三)1`，或 `default`")
    quote: str | None = Field(default=None, description="种子原文（节选）")
    note: str | None = Field(default=None, description="取值说明")
    comparator: Comparator | None = Field(default=None, description="目标与实际值的关系")
    unit: Unit | None = None
    provisional: bool = Field(default=False, description="暂定值：种子未规定，系统需要")
    year: int | None = Field(default=None, ge=1990, le=2100, description="目标年份")
    baseline_year: int | None = Field(default=None, ge=1990, le=2100, description="基线年份")
    scope: str | None = Field(default=None, description="适用对象，如 三级公立医院")

    @field_validator("clause")
    @classmethod
    def _clause_format(cls, clause: str) -> str:
        if not CLAUSE_RE.match(clause):
            raise field_error(f'{CLAUSE_FORMAT}或 "default" (got {show(clause)})')
        return clause

    @model_validator(mode="after")
    def _rules(self) -> Self:
        if self.clause == "default" and not self.provisional:
            raise rule_error("provisional", "clause 为 default 时必须写 provisional = true")
        if self.provisional and not (self.note and self.note.strip()):
            raise rule_error("note", "暂定值（provisional）必须在 note 中说明取值理由")
        problem = value_problem(self.value, self.unit)
        if problem:
            raise rule_error("value", problem)
        if self.comparator is not None and not _is_number(self.value):
            raise rule_error("comparator", f"comparator 只适用于数值 (got {show(self.value)})")
        return self


class Parameter(ParameterSpec):
    """A loaded parameter: the spec plus its dotted key and whether a group changed it."""

    key: str = Field(description="点分键，如 capacity.reserved_outpatient_share")
    overridden: bool = Field(default=False, description="集团调整过的值")
    original_value: Value | None = Field(default=None, description="调整前方案原值")

    @field_validator("key")
    @classmethod
    def _key_format(cls, key: str) -> str:
        parts = key.split(".")
        if len(parts) != 2 or not all(KEY_PART_RE.match(part) for part in parts):
            raise field_error(f"键应写作 section.name (got {show(key)})")
        return key

    @property
    def section(self) -> str:
        return self.key.split(".", 1)[0]

    @property
    def name(self) -> str:
        return self.key.split(".", 1)[1]

    def display_value(self) -> str:
        """The value for people: `≥ 33.33%`, `≤ 7.8 天`, `< 10.48/10万`, `是`, `逐年提升`."""
        value = self.value
        if isinstance(value, bool):
            text = "是" if value else "否"
        elif isinstance(value, list):
            text = "、".join(value)
        elif isinstance(value, str):
            text = TREND_LABELS.get(value, value) if self.unit == "trend" else value
        else:
            text = _format_number(value, self.unit)
        sign = COMPARATOR_SIGNS.get(self.comparator or "", "")
        if sign:
            text = f"{sign} {text}"
        if self.year is not None:
            text += f"（{self.year}年）"
        return text


def _format_number(value: float, unit: str | None) -> str:
    def plain(number: float) -> str:
        return f"{number:.4f}".rstrip("0").rstrip(".") if isinstance(number, float) else str(number)

    if unit == "share":
        return f"{plain(round(value * 100, 2))}%"
    suffix = {
        "percent": "%",
        "days": " 天",
        "hours": " 小时",
        "months": " 个月",
        "ratio": ":1",
        "per_100k": "/10万",
        "per_1000": "‰",
        "yuan": " 元",
    }.get(unit or "", "")
    return f"{plain(value)}{suffix}"


class ScorecardCriterion(BaseModel):
    """One line of a 紧密型城市医疗集团建设评判标准 table (001 附件3, 002 附件2)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    number: int = Field(ge=1, description="序号")
    dimension: str = Field(min_length=1, description="评判维度，如 资源协同")
    title: str = Field(min_length=1, description="标准的引导短语，如 人员一体化管理")
    text: str = Field(min_length=1, description="评判标准全文（照录种子）")

    @model_validator(mode="after")
    def _title_leads_text(self) -> Self:
        if not self.text.startswith(self.title):
            raise rule_error("title", f"text 应以 title 开头 (got {show(self.title)})")
        return self


class MonitoringItem(BaseModel):
    """A monitoring or assessment item a seed names where it gives no 评判标准 table."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    title: str = Field(min_length=1)
    text: str = Field(min_length=1, description="种子原文")
    clause: str

    @field_validator("clause")
    @classmethod
    def _clause_cites_seed(cls, clause: str) -> str:
        if not CLAUSE_RE.match(clause) or clause == "default":
            raise field_error(f"{CLAUSE_FORMAT} (got {show(clause)})")
        return clause


class Scorecard(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    source: str = Field(min_length=1, description="出处，如 001 附件3")
    note: str | None = None
    criteria: list[ScorecardCriterion] = Field(default_factory=list)
    monitoring: list[MonitoringItem] = Field(default_factory=list)

    @model_validator(mode="after")
    def _numbered_in_order(self) -> Self:
        for position, criterion in enumerate(self.criteria, start=1):
            if criterion.number != position:
                raise rule_error(
                    f"criteria.{position - 1}.number",
                    f"序号应从 1 起连续编号，此处应为 {position} (got {criterion.number})",
                )
        return self

    def dimensions(self) -> dict[str, list[ScorecardCriterion]]:
        """Criteria grouped by 评判维度, in the order the seed lists them."""
        grouped: dict[str, list[ScorecardCriterion]] = {}
        for criterion in self.criteria:
            grouped.setdefault(criterion.dimension, []).append(criterion)
        return grouped


MemberTier = Literal["lead", "secondary", "primary", "public_health", "member"]
TIER_LABELS = {
    "lead": "牵头医院",
    "secondary": "二级医院",
    "primary": "基层医疗卫生机构",
    "public_health": "专业公共卫生机构",
    "member": "成员单位",
}


class GroupMember(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    name: str = Field(min_length=1)
    tier: MemberTier = Field(description="在种子名单中的类别")
    district: str | None = Field(default=None, description="所在区")
    note: str | None = None


class GroupLayout(BaseModel):
    """A group the seed names with its members (001 附件1, 002 §四(一)1, 000 §三(一)1)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    name: str = Field(min_length=1)
    clause: str
    members: list[GroupMember] = Field(min_length=1)

    @field_validator("clause")
    @classmethod
    def _clause_cites_seed(cls, clause: str) -> str:
        return MonitoringItem._clause_cites_seed(clause)

    @model_validator(mode="after")
    def _one_lead(self) -> Self:
        leads = [member for member in self.members if member.tier == "lead"]
        if len(leads) != 1:
            raise rule_error("members", f'必须恰有一个 tier = "lead" 的牵头单位 (got {len(leads)})')
        return self

    @property
    def lead(self) -> GroupMember:
        return next(member for member in self.members if member.tier == "lead")


class ProfileMeta(BaseModel):
    """The ``[profile]`` table: which plan this is."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="方案标识，与文件名一致")
    name: str = Field(min_length=1, description="简称")
    plan_title: str = Field(min_length=1, description="方案全称")
    seed: str = Field(pattern=r"^\d{3}$", description="种子文件编号")
    issuer: str = Field(min_length=1, description="发文机关")
    document_number: str | None = Field(default=None, description="文号")
    issued: str = Field(description="发文日期 YYYY-MM-DD（或 YYYY-MM / YYYY）")
    group_kind: GroupKind
    structure: str = Field(min_length=1, description="网格与集团布局（一句话）")
    note: str | None = None

    @field_validator("issued")
    @classmethod
    def _issued_format(cls, issued: str) -> str:
        if not ISSUED_RE.match(issued):
            raise field_error(f"日期应写作 YYYY-MM-DD、YYYY-MM 或 YYYY (got {show(issued)})")
        return issued

    @model_validator(mode="after")
    def _seed_matches_id(self) -> Self:
        expected = PROFILE_SEEDS.get(self.id)
        if expected is not None and self.seed != expected:
            raise rule_error(
                "seed", f'方案 {self.id} 的 seed 必须是 "{expected}" (got {show(self.seed)})'
            )
        return self

    @property
    def group_kind_label(self) -> str:
        return GROUP_KIND_LABELS[self.group_kind]


class PolicyProfile(ProfileMeta):
    """A whole profile: metadata, parameters flattened by dotted key, scorecard, group layout."""

    parameters: dict[str, Parameter] = Field(default_factory=dict)
    scorecard: Scorecard
    groups: list[GroupLayout] = Field(default_factory=list)

    @model_validator(mode="after")
    def _cites_own_seed(self) -> Self:
        """Only what a profile's own seed says goes into it: every clause cites that seed."""
        own = f"{self.seed} "
        for key, parameter in self.parameters.items():
            if parameter.key != key:
                raise rule_error(
                    f"parameters.{key}", f"键与参数的 key 不一致 (got {show(parameter.key)})"
                )
            if parameter.clause != "default" and not parameter.clause.startswith(own):
                raise rule_error(
                    f"parameters.{key}.clause",
                    f"条款必须引用本方案的种子文件 {self.seed} (got {show(parameter.clause)})",
                )
        for index, item in enumerate(self.scorecard.monitoring):
            if not item.clause.startswith(own):
                raise rule_error(
                    f"scorecard.monitoring.{index}.clause",
                    f"条款必须引用本方案的种子文件 {self.seed} (got {show(item.clause)})",
                )
        for index, group in enumerate(self.groups):
            if not group.clause.startswith(own):
                raise rule_error(
                    f"groups.{index}.clause",
                    f"条款必须引用本方案的种子文件 {self.seed} (got {show(group.clause)})",
                )
        return self

    @property
    def meta(self) -> ProfileMeta:
        return ProfileMeta.model_validate(
            {name: getattr(self, name) for name in ProfileMeta.model_fields}
        )

    def get(self, key: str) -> Parameter | None:
        """The parameter at a dotted key, or None when this profile's seed does not set it."""
        return self.parameters.get(key)

    def value(self, key: str, default: Any = None) -> Any:
        """The value at a dotted key, or `default` when the profile does not set it."""
        parameter = self.parameters.get(key)
        return default if parameter is None else parameter.value

    def number(self, key: str) -> float | None:
        """A numeric value as float (None when absent); TypeError if the value is not a number
        (e.g. a `trend` target such as Linyi's 基层就诊率 “逐年提升”)."""
        parameter = self.parameters.get(key)
        if parameter is None:
            return None
        if not _is_number(parameter.value):
            raise TypeError(f"{self.id}: {key} 不是数值 (got {show(parameter.value)})")
        return float(parameter.value)  # type: ignore[arg-type]

    def flag(self, key: str) -> bool | None:
        """A boolean value (None when absent); TypeError if the value is not a boolean."""
        parameter = self.parameters.get(key)
        if parameter is None:
            return None
        if not isinstance(parameter.value, bool):
            raise TypeError(f"{self.id}: {key} 不是布尔值 (got {show(parameter.value)})")
        return parameter.value

    def items(self, key: str) -> list[str] | None:
        """A list value (None when absent); TypeError if the value is not a list."""
        parameter = self.parameters.get(key)
        if parameter is None:
            return None
        if not isinstance(parameter.value, list):
            raise TypeError(f"{self.id}: {key} 不是列表 (got {show(parameter.value)})")
        return list(parameter.value)

    def sections(self) -> dict[str, list[Parameter]]:
        """Parameters grouped by section, in file order."""
        grouped: dict[str, list[Parameter]] = {}
        for parameter in self.parameters.values():
            grouped.setdefault(parameter.section, []).append(parameter)
        return grouped


SECTION_TITLES: dict[str, str] = {
    "capacity": "号源与床位",
    "referral": "双向转诊",
    "targets": "目标值",
    "payment": "医保支付",
    "family_doctor": "家庭医生签约服务",
    "mutual_recognition": "检查检验结果互认",
    "pharmacy": "药品供应与药学服务",
    "centres": "资源共享中心",
    "governance": "管理体制",
    "workforce": "人员管理",
    "pricing": "医疗服务价格",
    "collaboration": "专科协作",
    "chronic": "慢病管理",
    "elderly_care": "医养结合",
    "information": "信息化",
    "timeline": "时间节点",
}
