"""Reading policy profiles from their TOML data files (pure: no database).

`load_profile("zhongwei")` reads ``data/zhongwei.toml`` once and caches it;
`load_profile_file(path)` reads any file (``caregrid profile validate``);
`apply_overrides(profile, {...})` returns a copy with a group's own values (DESIGN §4: a group
can start from a profile and override values).

Every problem becomes one `ProfileInvalid` whose detail names the file, the key and the problem
on one line, e.g. ``linyi.toml: parameters.capacity.reserved_outpatient_share.value: 必须在 0 到 1
之间 (got 1.2)``; TOML syntax errors name the line and column.
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from caregrid.profiles.errors import ProfileInvalid, UnknownProfile
from caregrid.profiles.schemas import (
    KEY_PART_RE,
    KIND_LABELS,
    PROFILE_SEEDS,
    GroupLayout,
    Parameter,
    ParameterSpec,
    PolicyProfile,
    ProfileMeta,
    Scorecard,
    show,
    value_kind,
)

DATA_DIR = Path(__file__).parent / "data"
TOP_LEVEL_TABLES = ("profile", "parameters", "scorecard", "groups")
OVERRIDE_NOTE = "集团调整"

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_TOML_POSITION_RE = re.compile(r"\(at line (\d+), column (\d+)\)")


# --- errors -----------------------------------------------------------------------------------


def _fail(
    file: str, key: str | None, problem: str, *, where: str | None = None, **extra: Any
) -> NoReturn:
    """Raise the one-line error: ``file: key: problem`` (``where`` replaces the key in the
    sentence for problems that have no key, e.g. a TOML syntax error's line and column)."""
    problem = " ".join(problem.split())  # one line, whatever the value contained
    position = where or key
    detail = f"{file}: {position}: {problem}" if position else f"{file}: {problem}"
    raise ProfileInvalid(detail, file=file, key=key, problem=problem, **extra)


_PYDANTIC_PROBLEMS: dict[str, str] = {
    "missing": "缺少必填项",
    "extra_forbidden": "未知字段",
    "string_type": "应为文本",
    "bool_type": "应为 true 或 false",
    "int_type": "应为整数",
    "float_type": "应为数字",
    "list_type": "应为列表",
    "dict_type": "应为表",
    "model_type": "应为表",
    "model_attributes_type": "应为表",
    "string_too_short": "不能为空",
    "too_short": "不能为空",
    "greater_than_equal": "数值过小",
    "less_than_equal": "数值过大",
    "string_pattern_mismatch": "格式不符",
}


def _describe(error: ErrorDetails) -> tuple[str, str]:
    """The dotted location and the Chinese problem of one pydantic error."""
    loc = [str(part) for part in error["loc"]]
    ctx = error.get("ctx") or {}
    if error["type"] == "profile_rule":
        if ctx.get("field"):
            loc.append(str(ctx["field"]))
        return ".".join(loc), str(ctx.get("problem", error["msg"]))
    if error["type"] == "literal_error":
        expected = str(ctx.get("expected", "")).replace(" or ", ", ")
        return ".".join(loc), f"必须是以下之一: {expected} (got {show(error['input'])})"
    problem = _PYDANTIC_PROBLEMS.get(error["type"], error["msg"])
    if error["type"] == "greater_than_equal":
        problem = f"不能小于 {ctx.get('ge')}"
    elif error["type"] == "less_than_equal":
        problem = f"不能大于 {ctx.get('le')}"
    elif error["type"] == "string_pattern_mismatch":
        problem = f"格式不符（应匹配 {ctx.get('pattern')}）"
    if error["type"] not in ("missing", "extra_forbidden"):
        problem += f" (got {show(error['input'])})"
    return ".".join(loc), problem


M = TypeVar("M", bound=BaseModel)


def _validate(model: type[M], data: object, *, file: str, prefix: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        location, problem = _describe(exc.errors()[0])
        key = ".".join(part for part in (prefix, location) if part)
        _fail(file, key or prefix, problem)


# --- reading ----------------------------------------------------------------------------------


def _read_toml(path: Path) -> dict[str, Any]:
    file = path.name
    try:
        raw = path.read_bytes()
    except OSError as exc:
        _fail(file, None, f"无法读取文件：{exc.strerror or exc}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        _fail(file, None, "不是 UTF-8 编码")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = _TOML_POSITION_RE.search(message)
        reason = _TOML_POSITION_RE.sub("", message).strip()
        if match is None:
            _fail(file, None, f"TOML 语法错误：{reason}")
        line, column = int(match.group(1)), int(match.group(2))
        _fail(
            file,
            None,
            f"TOML 语法错误：{reason}",
            where=f"第 {line} 行第 {column} 列",
            line=line,
            column=column,
        )


def _parameters(raw: object, *, file: str) -> dict[str, Parameter]:
    """Flatten ``[parameters.<section>.<name>]`` tables into ``{"section.name": Parameter}``."""
    if not isinstance(raw, dict):
        _fail(file, "parameters", f"应为表 (got {show(raw)})")
    parameters: dict[str, Parameter] = {}
    for section, entries in raw.items():
        if not KEY_PART_RE.match(section):
            _fail(file, f"parameters.{section}", "分区名只能用小写字母、数字和下划线")
        if not isinstance(entries, dict):
            _fail(file, f"parameters.{section}", f"应为表 (got {show(entries)})")
        for name, table in entries.items():
            prefix = f"parameters.{section}.{name}"
            if not KEY_PART_RE.match(name):
                _fail(file, prefix, "参数名只能用小写字母、数字和下划线")
            if not isinstance(table, dict):
                _fail(file, prefix, f"参数应为含 value、label、clause 的表 (got {show(table)})")
            spec = _validate(ParameterSpec, table, file=file, prefix=prefix)
            key = f"{section}.{name}"
            parameters[key] = Parameter(**spec.model_dump(), key=key)
    return parameters


def parse_profile(
    data: Mapping[str, Any], *, file: str, expected_id: str | None = None
) -> PolicyProfile:
    """Validate the parsed TOML of one profile. `file` names it in errors; `expected_id` (the
    file name without ``.toml``) must equal ``profile.id`` when given."""
    for table in data:
        if table not in TOP_LEVEL_TABLES:
            _fail(file, table, f"未知的顶层表（允许：{'、'.join(TOP_LEVEL_TABLES)}）")
    if "profile" not in data:
        _fail(file, "profile", "缺少 [profile] 表")
    meta = _validate(ProfileMeta, data["profile"], file=file, prefix="profile")
    if expected_id is not None and meta.id != expected_id:
        _fail(file, "profile.id", f'必须与文件名 "{expected_id}" 一致 (got {show(meta.id)})')
    parameters = _parameters(data.get("parameters", {}), file=file)
    if "scorecard" not in data:
        _fail(file, "scorecard", "缺少 [scorecard] 表")
    scorecard = _validate(Scorecard, data["scorecard"], file=file, prefix="scorecard")
    raw_groups = data.get("groups", [])
    if not isinstance(raw_groups, list):
        _fail(file, "groups", f"应为表数组 [[groups]] (got {show(raw_groups)})")
    groups = [
        _validate(GroupLayout, group, file=file, prefix=f"groups.{index}")
        for index, group in enumerate(raw_groups)
    ]
    return _validate(
        PolicyProfile,
        {**meta.model_dump(), "parameters": parameters, "scorecard": scorecard, "groups": groups},
        file=file,
        prefix="",
    )


def load_profile_file(path: str | Path) -> PolicyProfile:
    """Read and validate any profile file; its ``profile.id`` must equal the file name."""
    path = Path(path)
    if path.suffix != ".toml":
        _fail(path.name, None, "政策方案文件的扩展名应为 .toml")
    return parse_profile(_read_toml(path), file=path.name, expected_id=path.stem)


def profile_ids() -> list[str]:
    """Ids of the profiles shipped in ``data/``, in seed order."""
    ids = [path.stem for path in DATA_DIR.glob("*.toml")]
    return sorted(ids, key=lambda name: (PROFILE_SEEDS.get(name, "999"), name))


def load_profile(name: str) -> PolicyProfile:
    """The shipped profile `name` (e.g. ``"zhongwei"``), read once and cached.

    Raises UnknownProfile for a name that is not shipped, ProfileInvalid for a broken file."""
    if not _NAME_RE.match(name) or not (DATA_DIR / f"{name}.toml").is_file():
        available = "、".join(profile_ids())
        raise UnknownProfile(f"未知的政策方案：{name}（可用：{available}）", profile=name)
    return _load_cached(name)


@functools.cache
def _load_cached(name: str) -> PolicyProfile:
    return load_profile_file(DATA_DIR / f"{name}.toml")


def clear_cache() -> None:
    """Forget cached profiles (after editing a data file in a long-running process)."""
    _load_cached.cache_clear()


def list_profiles() -> list[ProfileMeta]:
    """Metadata of every shipped profile, in seed order (000 lincang ... 004 national_city)."""
    return [load_profile(name).meta for name in profile_ids()]


# --- overrides --------------------------------------------------------------------------------


def apply_overrides(profile: PolicyProfile, overrides: Mapping[str, object]) -> PolicyProfile:
    """A copy of `profile` with a group's own values (DESIGN §4).

    Only keys the profile sets can be overridden, with a value of the same kind (boolean,
    number, text, list) that passes the parameter's rules (a share stays within 0..1). The
    overridden parameter keeps its clause, gets the note "集团调整", ``overridden=True`` and
    ``original_value`` (the profile's value). Errors name the profile, the key and the problem."""
    if not overrides:
        return profile
    parameters = dict(profile.parameters)
    for key, value in overrides.items():
        current = parameters.get(key)
        if current is None:
            _override_fail(profile, key, "方案中没有这个参数，不能调整")
        if not _is_plain(value) or value_kind(value) != value_kind(current.value):
            expected = KIND_LABELS[value_kind(current.value)]
            _override_fail(profile, key, f"类型不符：应为{expected} (got {show(value)})")
        original = current.original_value if current.overridden else current.value
        data = current.model_dump()
        data.update(value=value, note=OVERRIDE_NOTE, overridden=True, original_value=original)
        try:
            parameters[key] = Parameter.model_validate(data)
        except ValidationError as exc:
            location, problem = _describe(exc.errors()[0])
            _override_fail(profile, f"{key}.{location}" if location else key, problem)
    return profile.model_copy(update={"parameters": parameters})


def _is_plain(value: object) -> bool:
    return isinstance(value, bool | int | float | str) or (
        isinstance(value, list) and all(isinstance(item, str) for item in value)
    )


def _override_fail(profile: PolicyProfile, key: str, problem: str) -> NoReturn:
    problem = " ".join(problem.split())
    raise ProfileInvalid(
        f"{profile.id}（{OVERRIDE_NOTE}）: {key}: {problem}",
        file=f"{profile.id}.toml",
        profile=profile.id,
        key=key,
        problem=problem,
    )
