"""FHIR R4 helpers shared by domains: JSON responses with the FHIR media type, searchset
bundles, and the registry of supported resources that the CapabilityStatement is built from.

Domains map their own tables in their `fhir.py` and register the interactions and search
parameters they serve with `capability()`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from caregrid import __version__
from caregrid.core.errors import Invalid

FHIR_JSON = "application/fhir+json"
CODESYSTEM_BASE = "https://caregrid.org/fhir/CodeSystem"
# 居民身份证号码 (the identifier OID used by Chinese health information standards).
ID_CARD_SYSTEM = "urn:oid:2.16.156.10011.1.3"


class FhirResponse(JSONResponse):
    media_type = FHIR_JSON


@dataclass
class SearchParam:
    name: str
    type: str
    documentation: str


@dataclass
class ResourceCapability:
    type: str
    interactions: list[str]
    search_params: list[SearchParam] = field(default_factory=list)
    # (name, canonical URL of its OperationDefinition), e.g. ("find", "https://profiles...")
    operations: list[tuple[str, str]] = field(default_factory=list)


_capabilities: dict[str, ResourceCapability] = {}


def capability(
    resource_type: str,
    interactions: list[str],
    params: list[SearchParam],
    operations: list[tuple[str, str]] | None = None,
) -> None:
    _capabilities[resource_type] = ResourceCapability(
        resource_type, interactions, params, operations or []
    )


def capability_statement(base_url: str) -> dict[str, Any]:
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-23",
        "publisher": "caregrid",
        "kind": "instance",
        "software": {"name": "caregrid", "version": __version__},
        "implementation": {
            "description": "caregrid 医疗集团协同平台 FHIR R4 接口",
            "url": base_url,
        },
        "fhirVersion": "4.0.1",
        "format": ["json", FHIR_JSON],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                    "code": "OAuth",
                                }
                            ]
                        }
                    ],
                    "description": "Bearer 令牌：POST /api/v1/auth/token（OAuth2 密码模式）",
                },
                "resource": [
                    {
                        "type": cap.type,
                        "interaction": [{"code": code} for code in cap.interactions],
                        "searchParam": [
                            {"name": p.name, "type": p.type, "documentation": p.documentation}
                            for p in cap.search_params
                        ],
                        **(
                            {
                                "operation": [
                                    {"name": name, "definition": url}
                                    for name, url in cap.operations
                                ]
                            }
                            if cap.operations
                            else {}
                        ),
                    }
                    for cap in sorted(_capabilities.values(), key=lambda c: c.type)
                ],
            }
        ],
    }


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/fhir/R4"


def searchset(
    request: Request, resources: list[dict[str, Any]], total: int, *, page: int, count: int
) -> dict[str, Any]:
    base = base_url(request)
    self_url = str(request.url)
    links = [{"relation": "self", "url": self_url}]
    if page * count < total:
        query = dict(request.query_params)
        query.update({"_page": str(page + 1), "_count": str(count)})
        next_url = str(request.url.replace_query_params(**query))
        links.append({"relation": "next", "url": next_url})
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": links,
        "entry": [
            {
                "fullUrl": f"{base}/{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in resources
        ],
    }


def parameters_of(body: Any) -> dict[str, list[dict[str, Any]]]:
    """The `parameter` entries of a FHIR Parameters body, by name (an operation's input)."""
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise Invalid("请求体须为 FHIR Parameters 资源", field="resourceType")
    found: dict[str, list[dict[str, Any]]] = {}
    for entry in body.get("parameter") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise Invalid("Parameters.parameter 的每一项都须有 name", field="parameter")
        found.setdefault(entry["name"], []).append(entry)
    return found


def split_token(value: str) -> tuple[str | None, str]:
    """A FHIR token search value: `system|code`, `|code` or `code`."""
    if "|" in value:
        system, code = value.split("|", 1)
        return (system or None), code
    return None, value


def reference_id(value: str, resource_type: str) -> str:
    """`Organization/12`, a full URL ending in it, or a bare id -> "12"."""
    value = value.rstrip("/")
    marker = f"{resource_type}/"
    if marker in value:
        return value.rsplit(marker, 1)[1]
    return value
