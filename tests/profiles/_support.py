"""Helpers shared by the profiles tests."""

from __future__ import annotations

import os
import re
from pathlib import Path

SEEDS_DIR = Path(
    os.environ.get("CAREGRID_SEEDS_DIR", Path(__file__).parents[3] / "shared" / "seeds")
)

MINIMAL_PROFILE = """\
[profile]
id = "custom"
name = "测试集团"
plan_title = "测试方案"
seed = "002"
issuer = "测试市人民政府办公室"
issued = "2023-11-02"
group_kind = "city_group"
structure = "市辖区作为1个网格。"

[parameters.capacity.reserved_outpatient_share]
value = 0.3
label = "牵头医院下沉门诊号源比例（下限）"
clause = "002 §四(三)1"
comparator = ">="
unit = "share"

[scorecard]
source = "002 附件2"
"""


def normalise(text: str) -> str:
    """Seed text without whitespace: the seeds break sentences across page breaks."""
    return re.sub(r"\s+", "", text)
