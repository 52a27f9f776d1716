"""The template environment: Jinja2 with autoescaping, Chinese labels and Asia/Shanghai times,
plus the response helpers every page uses (security headers, the error page)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from caregrid.core.clock import local
from caregrid.identity.service import ROLE_LABELS as USER_ROLE_LABELS
from caregrid.registry.schemas import (
    GROUP_KIND_LABELS,
    KIND_LABELS,
    LEVEL_LABELS,
    ROLE_LABELS,
    SEX_LABELS,
)
from caregrid.web.auth import CSRF_FIELD, csrf_token

WEB_DIR = Path(__file__).parent
STATIC_DIR = WEB_DIR / "static"
TEMPLATES_DIR = WEB_DIR / "templates"

PRODUCT_NAME = "caregrid 医疗集团协同平台"

# How a care relationship is named to people (the `basis` of an access).
BASIS_LABELS = {
    "home_institution": "建档机构",
    "encounter": "就诊",
    "referral": "转诊",
    "contract": "家庭医生签约",
    "consultation": "会诊",
    "break_glass": "紧急调阅",
    "system": "系统",
}
ACTION_LABELS = {
    "read": "查看",
    "search": "检索",
    "create": "新建",
    "update": "修改",
    "delete": "删除",
    "break_glass": "紧急调阅（破窗）",
    "merge": "合并",
    "export": "导出",
    "import": "导入",
}
RESOURCE_LABELS = {
    "Resident": "居民档案",
    "Patient": "居民档案（FHIR）",
    "AuditLog": "访问记录",
    "Encounter": "就诊记录",
    "Condition": "诊断（FHIR）",
    "Observation": "检验与体征（FHIR）",
    "DiagnosticReport": "检查报告（FHIR）",
    "Result": "检查检验结果",
    "Prescription": "处方",
    "Timeline": "健康档案时间线",
    "VitalSigns": "血压血糖趋势",
    "OrderCheck": "互认查询",
    "OrderDecision": "互认决定",
    "RecognitionRule": "互认规则",
    "ResidentDuplicates": "疑似重复档案",
    "Contract": "家庭医生签约",
    "CareTeam": "家庭医生团队",
    "ChronicEnrolment": "慢病管理档案",
    "FollowUp": "慢病随访",
    "LongPrescription": "长期处方",
}
OUTCOME_LABELS = {"allowed": "允许", "denied": "拒绝"}
# Audit entries are also written by the platform itself (imports, the demo builder).
ACTOR_ROLE_LABELS = {**USER_ROLE_LABELS, "system": "系统"}

# Pages with strict headers: no framing, no third-party scripts, no referrer leaks of URLs
# that may carry a resident id. ECharts and htmx set inline styles, hence 'unsafe-inline' for
# styles only.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
        "form-action 'self'; base-uri 'self'; object-src 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def shanghai(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """A stored (UTC) time as people in China read it."""
    if value is None:
        return "—"
    return local(value).strftime(fmt)


def cn_date(value: date | str | None) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        parts = value.split("-")
        units = ["年", "月", "日"]
        return "".join(f"{int(p)}{u}" for p, u in zip(parts, units, strict=False))
    return f"{value.year}年{value.month}月{value.day}日"


def label(mapping: dict[str, str], value: str | None) -> str:
    if value is None:
        return "—"
    return mapping.get(value, value)


def thousands(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def pct(value: Decimal | float | None) -> str:
    """A share as a percentage with one decimal (`63.2%`), `—` when undefined."""
    return "—" if value is None else f"{float(value) * 100:.1f}%"


def yuan(fen: int | None) -> str:
    """Integer fen shown as yuan with two decimals and thousands separators."""
    if fen is None:
        return "—"
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole:,}.{cents:02d}"


templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
_env = templates.env
_env.trim_blocks = True
_env.lstrip_blocks = True
_env.filters.update(
    shanghai=shanghai,
    cn_date=cn_date,
    thousands=thousands,
    pct=pct,
    yuan=yuan,
    level_label=lambda v: label(LEVEL_LABELS, v),
    kind_label=lambda v: label(KIND_LABELS, v),
    role_label=lambda v: label(ROLE_LABELS, v),
    group_kind_label=lambda v: label(GROUP_KIND_LABELS, v),
    sex_label=lambda v: label(SEX_LABELS, v),
    user_role_label=lambda v: label(ACTOR_ROLE_LABELS, v),
    basis_label=lambda v: label(BASIS_LABELS, v),
    action_label=lambda v: label(ACTION_LABELS, v),
    resource_label=lambda v: label(RESOURCE_LABELS, v),
    outcome_label=lambda v: label(OUTCOME_LABELS, v),
)
_env.globals.update(
    PRODUCT_NAME=PRODUCT_NAME,
    CSRF_FIELD=CSRF_FIELD,
    LEVEL_LABELS=LEVEL_LABELS,
    KIND_LABELS=KIND_LABELS,
)


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    ctx: dict[str, Any] = {"csrf_token": csrf_token(request)}
    # The layout (top bar, navigation) reads `chrome`; pages add it with `chrome_for`.
    ctx.update(context or {})
    response = templates.TemplateResponse(
        request, template, ctx, status_code=status_code, headers=headers
    )
    response.headers.update(SECURITY_HEADERS)
    return response
