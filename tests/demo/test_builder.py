"""The demo city: each profile's real structure, accounts for every role, residents with
valid unique ID numbers, deterministic for a seed; and the CLI around it."""

from __future__ import annotations

import os
from collections import Counter
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from caregrid.core.db import make_engine, new_session
from caregrid.demo.builder import build_demo
from caregrid.identity.models import ROLES, User
from caregrid.identity.service import authenticate
from caregrid.profiles.loader import profile_ids
from caregrid.registry.idnumber import parse_id_number
from caregrid.registry.models import Group, Institution, PractitionerRole, Resident

REFERENCE = date(2025, 12, 31)
LINYI_NAMED = {
    # 001 附件1: both groups and a sample of every kind of member
    "临沂市人民医院", "临沂市中医医院", "临沂市第三人民医院", "兰山区人民医院", "山东医专附属医院",
    "临沂市交通医院", "兰山区中医医院", "河东区妇幼保健院", "金雀山街道社区卫生服务中心",
    "郑旺镇中心卫生院", "芝麻墩街道中心卫生院", "银雀山街道社区卫生服务中心", "马厂湖卫生院",
    "白沙埠镇卫生院", "册山卫生院",
}  # fmt: skip


def build(tmp_path: Path, profile: str, residents: int, seed: int = 3) -> str:
    """The registry part of the demo (the year of activity is tested in tests/record)."""
    url = f"sqlite:///{tmp_path}/{profile}-{seed}.db"
    build_demo(make_engine(url), profile_id=profile, residents=residents, seed=seed,
               password="demo-pass-123", reference_date=REFERENCE, activity=False)  # fmt: skip
    return url


def test_linyi_has_both_groups_with_every_named_member(tmp_path: Path) -> None:
    session = new_session(make_engine(build(tmp_path, "linyi", 500)))
    groups = set(session.scalars(select(Group.name)).all())
    assert groups == {"临沂市人民医院医疗集团", "临沂市中医医院医疗集团"}
    names = set(session.scalars(select(Institution.name)).all())
    assert names >= LINYI_NAMED
    members = session.execute(
        select(Institution.level, func.count()).where(Institution.group_id.is_not(None),
                                                      Institution.source_clause.like("001%"))
        .group_by(Institution.level)
    ).all()  # fmt: skip
    by_level = dict(members)
    # 附件1: 2 lead hospitals, 6 secondary hospitals, 21 primary institutions (first batch).
    assert (by_level["tertiary"], by_level["secondary"], by_level["primary"]) == (2, 6, 21)


@pytest.mark.parametrize("profile", ["lincang", "zhongwei", "yunnan_county", "national_city"])
def test_every_profile_builds_its_structure(tmp_path: Path, profile: str) -> None:
    session = new_session(make_engine(build(tmp_path, profile, 200)))
    assert session.scalar(select(func.count()).select_from(Group)) >= 1
    leads = session.scalars(select(Group.lead_institution_id)).all()
    assert all(leads)
    assert session.scalar(select(func.count()).select_from(Resident)) == 200


def test_zhongwei_has_its_four_county_sub_centres(tmp_path: Path) -> None:
    session = new_session(make_engine(build(tmp_path, "zhongwei", 100)))
    subs = session.scalars(select(Institution.name).where(Institution.role == "sub_centre")).all()
    assert sorted(n[:2] for n in subs) == sorted(["宣和", "兴仁", "镇罗", "迎水"])


def test_accounts_exist_for_every_role_and_log_in(tmp_path: Path) -> None:
    session = new_session(make_engine(build(tmp_path, "linyi", 100)))
    roles = set(session.scalars(select(User.role)).all())
    assert roles == set(ROLES)
    assert authenticate(session, "admin", "demo-pass-123").role == "admin"
    gp = authenticate(session, "gp1", "demo-pass-123")
    assert gp.institution_id is not None and gp.practitioner_id is not None


def test_residents_have_valid_unique_numbers_agreeing_with_sex_and_birth(tmp_path: Path) -> None:
    session = new_session(make_engine(build(tmp_path, "linyi", 20000)))
    rows = session.execute(select(Resident.id_number, Resident.sex, Resident.birth_date)).all()
    assert len({r.id_number for r in rows}) == len(rows) == 20000
    for number, sex, birth in rows:
        info = parse_id_number(number, today=REFERENCE)
        assert (info.sex, info.birth_date) == (sex, birth)
    ages = Counter("60+" if (REFERENCE - b).days >= 60 * 365.25 else "younger" for _, _, b in rows)
    assert 0.17 < ages["60+"] / len(rows) < 0.25  # 2023: 21.1 % aged 60 and over
    males = sum(1 for _, s, _ in rows if s == "male") / len(rows)
    assert 0.495 < males < 0.53  # sex ratio 104.49 M per 100 F: 51.1 % male


def test_some_lead_physicians_practise_at_primary_members_too(tmp_path: Path) -> None:
    session = new_session(make_engine(build(tmp_path, "linyi", 100)))
    multi = session.scalar(
        select(func.count()).select_from(PractitionerRole).where(PractitionerRole.primary_site.is_(False))
    )  # fmt: skip
    assert multi and multi > 0


def test_the_same_seed_builds_the_same_city(tmp_path: Path) -> None:
    def snapshot(folder: str, seed: int) -> list[tuple[str, str]]:
        (tmp_path / folder).mkdir()
        session = new_session(make_engine(build(tmp_path / folder, "linyi", 300, seed=seed)))
        rows = session.execute(select(Resident.id_number, Resident.name).order_by(Resident.id))
        return [(number, name) for number, name in rows]

    first, second, other = snapshot("a", 11), snapshot("b", 11), snapshot("c", 12)
    assert first == second
    assert first != other


def test_cli_demo_builds_without_serving_and_rejects_bad_input(tmp_path: Path) -> None:
    from caregrid.cli import app
    from caregrid.core import db as core_db
    from caregrid.settings import get_settings

    runner = CliRunner()
    env = {"CAREGRID_DATABASE_URL": f"sqlite:///{tmp_path}/cli.db"}
    old = os.environ.copy()
    os.environ.update(env)
    get_settings.cache_clear()
    core_db.get_engine.cache_clear()
    try:
        ok = runner.invoke(app, ["demo", "--profile", "zhongwei", "--residents", "50", "--no-serve",
                                 "--password", "demo-pass-123"])  # fmt: skip
        assert ok.exit_code == 0, ok.output
        assert "demo-pass-123" in ok.output and "admin" in ok.output
        assert "人均就诊" in ok.output  # the default demo includes a year of activity
        unknown = runner.invoke(app, ["demo", "--profile", "atlantis", "--no-serve"])
        assert unknown.exit_code == 2
        short = runner.invoke(app, ["demo", "--password", "short", "--no-serve"])
        assert short.exit_code == 2
        verify = runner.invoke(app, ["audit", "verify"])
        assert verify.exit_code == 0 and "完整" in verify.output
        listed = runner.invoke(app, ["profile", "list"])
        assert listed.exit_code == 0 and all(p in listed.output for p in profile_ids())
    finally:
        os.environ.clear()
        os.environ.update(old)
        get_settings.cache_clear()
        core_db.get_engine.cache_clear()
