"""Bulk FHIR NDJSON import (`caregrid import fhir PATH`): one resource per line, as written by a
member's FHIR Bulk Data export (issue 3 §2; 003 §二(四)12 电子健康档案和电子病历连续记录).

Two passes over the file: the first keeps the resources others point at (Patient, Organization,
Practitioner, PractitionerRole) and the Conditions / Procedures, grouped by the Encounter they
reference, so Patient lines may come first or anywhere; the second maps the Encounters,
Observations, DiagnosticReports and MedicationRequests in batches of `batch_size` lines, each
batch with its Encounters' Conditions and Procedures. Each batch is all-or-nothing through
`ingest_batch` in its own `unit_of_work()`; errors name the line. Idempotent: re-running the
import changes nothing."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from caregrid.core.actor import Actor
from caregrid.record.ingest.fhir_map import Context, map_resources
from caregrid.record.ingest.records import RecordError

REFERENCED = ("Patient", "Organization", "Practitioner", "PractitionerRole")
ATTACHED = ("Condition", "Procedure")

Progress = Callable[[int], None]


@dataclass
class NdjsonSummary:
    lines: int = 0
    batches: int = 0
    failed_batches: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    residents_registered: int = 0
    errors: list[RecordError] = field(default_factory=list)


def _lines(path: Path) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """(line number, resource or None, problem) for every non-blank line."""
    with path.open(encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                resource = json.loads(text)
            except json.JSONDecodeError as exc:
                yield number, None, f"不是合法的 JSON：{exc.msg}"
                continue
            if not isinstance(resource, dict) or "resourceType" not in resource:
                yield number, None, "每行须为一个 FHIR 资源（含 resourceType）"
                continue
            yield number, resource, None


def _encounter_key(ref: dict[str, Any] | None) -> str | None:
    reference = (ref or {}).get("reference") or ""
    return "/".join(reference.split("/")[-2:]) if reference else None


def import_ndjson(
    path: Path,
    actor: Actor,
    *,
    batch_size: int = 2000,
    progress: Progress | None = None,
) -> NdjsonSummary:
    """Import a FHIR NDJSON file; returns counts and every error with its line number."""
    from caregrid.core.db import unit_of_work
    from caregrid.record.ingest.upsert import ingest_batch

    summary = NdjsonSummary()
    known: dict[str, tuple[int, dict[str, Any]]] = {}
    attached: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for number, resource, problem in _lines(path):
        summary.lines += 1
        if resource is None:
            summary.errors.append(RecordError(line=number, field="", problem=problem or ""))
            continue
        kind = resource["resourceType"]
        if kind in REFERENCED and resource.get("id"):
            known[f"{kind}/{resource['id']}"] = (number, resource)
        elif kind == "Encounter" and resource.get("id"):
            # a stub, so results in other batches can name their Encounter
            keep = ("resourceType", "id", "identifier", "serviceProvider", "meta")
            stub: dict[str, Any] = {k: resource[k] for k in keep if k in resource}
            known[f"Encounter/{resource['id']}"] = (number, stub)
        elif kind in ATTACHED:
            key = _encounter_key(resource.get("encounter"))
            attached.setdefault(key or "", []).append((number, resource))
    used: set[str] = set()

    def run(batch: list[tuple[int, str | None, dict[str, Any]]]) -> None:
        if not batch:
            return
        items = list(batch)
        for _, _, resource in batch:
            if resource["resourceType"] == "Encounter" and resource.get("id"):
                key = f"Encounter/{resource['id']}"
                used.add(key)
                items += [(n, None, r) for n, r in attached.get(key, [])]
        mapped = map_resources(items, Context(known=known))
        summary.batches += 1
        errors = [e.model_copy(update={"line": e.index, "index": None}) for e in mapped.errors]
        if not errors:
            with unit_of_work() as session:
                report = ingest_batch(session, actor, [m.record for m in mapped.records])
                if report.errors:
                    session.rollback()
                    for e in report.errors:
                        line = mapped.records[e.index or 0].positions[0]
                        errors.append(e.model_copy(update={"line": line, "index": None}))
                else:
                    summary.created += report.created
                    summary.updated += report.updated
                    summary.unchanged += report.unchanged
                    summary.residents_registered += report.residents_registered
        if errors:
            summary.failed_batches += 1
            summary.errors.extend(errors)
        if progress:
            progress(len(batch))

    batch: list[tuple[int, str | None, dict[str, Any]]] = []
    for number, resource, _problem in _lines(path):
        if resource is None or resource["resourceType"] in (*REFERENCED, *ATTACHED):
            if progress:
                progress(1)
            continue
        batch.append((number, None, resource))
        if len(batch) >= batch_size:
            run(batch)
            batch = []
    run(batch)
    for key, rows in attached.items():
        if key not in used:
            for number, resource in rows:
                summary.errors.append(
                    RecordError(
                        line=number,
                        field="encounter",
                        problem=f"{resource['resourceType']} 引用的 Encounter 不在文件中",
                    )
                )
    summary.errors.sort(key=lambda e: e.line or 0)
    return summary


def fhir(
    path: Annotated[Path, typer.Argument(help="FHIR NDJSON 文件（每行一个资源）")],
    batch_size: Annotated[int, typer.Option(help="每批行数（每批全部成功或全部不写入）")] = 2000,
) -> None:
    """导入 FHIR NDJSON 批量文件到共享健康档案（幂等：重复导入不会产生重复记录）。"""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from caregrid.core.console import err, fail

    if not path.is_file():
        raise fail(f"文件不存在：{path}")
    if batch_size < 1:
        raise fail("batch-size 须为正整数")
    with path.open(encoding="utf-8") as handle:
        total = sum(1 for line in handle if line.strip())
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
    ) as bar:
        task = bar.add_task("导入 FHIR 资源", total=total)
        summary = import_ndjson(
            path,
            Actor.system("import-fhir"),
            batch_size=batch_size,
            progress=lambda n: bar.advance(task, n),
        )
    typer.echo(
        f"共 {summary.lines} 行，{summary.batches} 批；新增 {summary.created}，"
        f"更新 {summary.updated}，未变 {summary.unchanged}，"
        f"新登记居民 {summary.residents_registered}；失败批次 {summary.failed_batches}"
    )
    for error in summary.errors[:50]:
        err.print(f"第 {error.line} 行 {error.field}：{error.problem}", highlight=False)
    if len(summary.errors) > 50:
        err.print(f"……另有 {len(summary.errors) - 50} 个错误", highlight=False)
    if summary.errors:
        raise typer.Exit(2)
