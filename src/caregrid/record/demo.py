"""The shared record's step of the synthetic city: one year of activity for every resident
already in the registry (encounters with diagnoses, procedures and costs; lab, imaging and
vital-sign results; prescriptions; deaths). Deterministic for the rng it is given.

Calibration (national figures from `reference/statistics.md`; "chosen" = not found there, a
plausible value picked for the demo):

Visits (诊疗人次)
- 6.8 visits per person per year (2023 公报 §1; 7.2 in 2024). Age-dependent: a negative
  binomial per age band (dispersion chosen) with children under 5 and people over 60 visiting
  about twice as often as young adults (chosen), plus the chronic follow-ups below.
- Share at primary level (基层, incl. 村卫生室): 51.7 % nationally (§1). The demo lands a little
  higher (~56-58 %) so that a 65 % target (Zhongwei 002 §四(一)3, Yunnan county) is near but
  not met. About 30 % of a resident's primary visits go to a village clinic under the home
  institution when it has one (chosen).
- Out-of-area visits (县外/市外/省外, external hospital named): ~10 % of all visits, so the
  县域内就诊率 lands near 90 % (Yunnan target 0.9); the only national figure is 82.5 % in H1
  2017 (§10). Split 60 % out of county, 32 % out of city, 8 % out of province (chosen).
- Hospital visits: ~8 % of secondary/tertiary visits are emergency visits (chosen); members of
  a level are chosen in proportion to their beds; CDCs and elderly-care members get none.
- TCM: every visit at a TCM institution, and 12 % of primary visits (chosen; 中医类 is 16.1 %
  of all visits in 2023, §11, and the TCM share at primary level was not found), so a
  "基层中医诊疗量 ≥ 30 %" target is not met.

Admissions
- 21.4 admissions per 100 people (2023 公报 §2), more in the elderly (rates by age band chosen),
  plus deliveries: 6.39 births per 1,000 people (NBS 2023, §7) as delivery admissions of women
  aged 20-39. Level split: tertiary 45 %, secondary 32 %, primary 13 %, out of area 10 %
  (§2: 49 / 25 / 15 % by level; out-of-area chosen). This puts the lead hospital's
  outpatient:discharge ratio near 12:1 (Zhongwei target ≤ 12; nationally 17.8 at 三级, §10).
- ALOS (§3): tertiary 8.1 (the lead's target ≤ 7.8 is just missed), secondary 9.5, primary
  6.4 (乡镇卫生院), out of area 9; gamma-distributed (shape chosen).
- DRG weight: lognormal (σ 0.35) around a mean by level and surgery grade, giving a CMI near
  1.05 at tertiary hospitals, ~0.8 at secondary, ~0.55 at primary (chosen; no national CMI was
  found, §10). DRG codes are illustrative CHS-DRG-shaped codes (MDC letter + ADRG + severity),
  not the output of the official grouper.
- Surgery: 32 % of tertiary stays, 22 % secondary, 5 % primary (chosen); grade mix at
  tertiary 22/33/31/14 % so the 四级手术 share (of operated discharges, the 三级公立医院绩效
  考核 definition) lands just below the 15 % target (no national figure, §10).
- Deaths: 7.87 ‰ crude death rate (NBS 2023, §7) with age-specific probabilities (chosen,
  rising steeply after 60); 35 % of deaths happen in hospital (chosen, not found), recorded as a
  terminal admission with disposition `death`. Deceased residents get `deceased_on`, and none
  of their encounters falls after it.
- Births are NOT added as new residents: the registry's age pyramid already includes babies
  born during the year. Each delivery admission is that of a newborn resident's mother: per
  grid, as many babies born in the year as there are deliveries (5 % of women aged 20-39, the
  rate above) get a mother among those women, admitted on the baby's birth day; a `birth` row
  links the baby to the delivery. The other babies of the year were born elsewhere (moved in).
  Infant deaths: 4.5 ‰ (婴儿死亡率 2023, reference §8), only among babies of recorded deliveries,
  after their birth; no baby has an encounter before it was born.

Costs (fen; parts always add up exactly to the total)
- Outpatient per visit: tertiary 389.5 元, secondary 252.1 元 (三级/二级公立, Jan-Nov 2023,
  §4), primary 120 元 and village clinic 45 元 (chosen: not found), out of area 400 元 (chosen);
  lognormal, σ 0.6. Visits without a prescription carry no drug cost.
- Inpatient per stay: tertiary 12,879 元, secondary 6,425 元 (§4), primary 3,000 元 and out of
  area 15,000 元 (chosen), scaled by the stay's DRG weight.
- Split drug / consumable / exam / treatment (chosen: the latest drug share found is from 2010,
  §4) and insurance / out-of-catalogue (目录外) / self-pay: outpatient 50 / 5 / 45 %, inpatient
  65 / 8 / 27 % on average (chosen; out-of-pocket share of health spending is 27.3 %, §4).

Chronic disease (§6)
- Hypertension 27.5 % of adults, diabetes 11.9 %, by age band (rates chosen to average to
  these), decided once per resident. Every such resident carries the diagnosis (the demo treats
  prevalence as diagnosed; real awareness is ~50 %). 80 % are managed at their primary member
  with 4-8 follow-ups a year (BP: 8480-6 / 8462-4 mmHg; fasting glucose 1558-6 mmol/L; HbA1c
  4548-4 % twice a year), 20 % are "lost" (0-2 follow-ups). Control: 45 % of hypertensive and
  50 % of diabetic patients are controlled (chosen near the treated/controlled figures of §6).
  Follow-ups come with a 28-84 day prescription of antihypertensives and/or metformin.

Results and prescriptions (chosen)
- Lab panels (CBC, LFT, RFT, LIPID, UA) on 30 % of hospital and 8 % of primary visits; imaging,
  ultrasound or ECG reports on 10 % / 2 %; at admission CBC, LFT, RFT always, plus urine,
  imaging, ECG, ultrasound, and pathology after half of the operations. EQA passed for 98 % of
  tertiary, 93 % of secondary and 80 % of primary results. One row per panel, carrying its key
  value (WBC, ALT, creatinine, total cholesterol; urine as text).
- Prescriptions on 60 % of outpatient visits with 1-3 items whose costs add up to the visit's
  drug cost; no 国家医保药品编码 is invented (drug_code stays NULL); no inpatient orders.

Identifiers: `source_system` is the institution's code (external hospitals "EXT-..."),
`source_id` is built from the year, the resident and the visit's ordinal, so a re-import of the
same records through the ingestion path is idempotent.

Speed: residents are read in id order and cut into chunks; every value that can be is drawn
from precomputed pools (costs, result values, drugs, timestamps) with one random number; rows
are tuples inserted with executemany on the raw SQLite cursor or PostgreSQL COPY. Where `fork`
is available a child process runs the generation loop (same rng, same order, so the same rows
and ids) and hands each chunk's rows over a pipe, so generating chunk n+1 overlaps inserting
chunk n; the inserts, done by the database, are the bottleneck.
"""

from __future__ import annotations

import math
import multiprocessing
import random
import traceback
from bisect import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Index, select
from sqlalchemy.orm import Session

from caregrid.core.clock import now
from caregrid.core.db import Base, bulk_insert
from caregrid.record.models import (
    Diagnosis,
    Encounter,
    Prescription,
    PrescriptionItem,
    Procedure,
    Result,
)
from caregrid.registry import service as registry
from caregrid.registry.demo import Structure
from caregrid.registry.models import Institution

Progress = Callable[[int], None]
Row = tuple[Any, ...]

# Age bands: 0-4, 5-14, 15-44, 45-59, 60-74, 75+.
BAND_EDGES = (5, 15, 45, 60, 75)
# Non-follow-up visits per person per year by band (chosen; tuned to ~6.8 in total).
VISIT_MEAN = (10.0, 4.6, 3.6, 5.1, 7.4, 8.6)
VISIT_DISPERSION = 1.3  # negative-binomial shape k (variance = m + m²/k)
# Admissions per 100 people by band (deliveries come on top).
ADMISSION_RATE = (16.0, 5.0, 13.0, 21.0, 35.0, 55.0)
DEATH_RATE = (0.0012, 0.0002, 0.0008, 0.004, 0.015, 0.07)
HYPERTENSION_RATE = (0.0, 0.0, 0.10, 0.32, 0.52, 0.60)  # age >= 18 only
DIABETES_RATE = (0.0, 0.0, 0.05, 0.14, 0.22, 0.22)
DELIVERY_RATE_WOMEN_20_39 = 0.050
INFANT_DEATH_RATE = 0.0045  # 婴儿死亡率 4.5 ‰ (2023, reference §8)
IN_HOSPITAL_DEATH_SHARE = 0.35

# Where a non-follow-up visit goes: cumulative thresholds primary / out of area / tertiary / rest.
VISIT_PRIMARY = 0.46
VISIT_OUT = 0.13
VISIT_TERTIARY = 0.21
VILLAGE_SHARE = 0.30
EMERGENCY_SHARE = 0.08
PRIMARY_TCM_SHARE = 0.12
ADMIT_LEVEL = (("tertiary", 0.45), ("secondary", 0.32), ("primary", 0.13), ("out", 0.10))
ALOS = {"tertiary": 8.1, "secondary": 9.5, "primary": 6.4, "out": 9.0}
SURGERY_SHARE = {"tertiary": 0.32, "secondary": 0.22, "primary": 0.05, "out": 0.30}
GRADE_MIX = {
    "tertiary": (0.22, 0.33, 0.31, 0.14),
    "secondary": (0.35, 0.40, 0.22, 0.03),
    "primary": (0.70, 0.30, 0.0, 0.0),
    "out": (0.15, 0.30, 0.35, 0.20),
}
WEIGHT_FACTOR = {"tertiary": 1.0, "secondary": 0.78, "primary": 0.55, "out": 1.05}
MEDICAL_WEIGHT = 0.85
SURGICAL_WEIGHT = (0.9, 1.2, 1.7, 3.0)
OUTPATIENT_COST_YUAN = {
    "tertiary": 389.5,
    "secondary": 252.1,
    "primary": 120.0,
    "village": 45.0,
    "out": 400.0,
}
INPATIENT_COST_YUAN = {"tertiary": 12879.3, "secondary": 6425.3, "primary": 3000.0, "out": 15000.0}
OUT_SCOPES = (("out_of_county", 0.60), ("out_of_city", 0.32), ("out_of_province", 0.08))
EXTERNAL_HOSPITALS: dict[str, dict[str, tuple[str, ...]]] = {
    "临沂市": {
        "out_of_county": ("沂水县人民医院", "费县人民医院"),
        "out_of_city": ("山东大学齐鲁医院", "山东第一医科大学附属省立医院"),
        "out_of_province": ("北京协和医院", "中国医学科学院肿瘤医院"),
    },
    "中卫市": {
        "out_of_county": ("中宁县人民医院", "海原县人民医院"),
        "out_of_city": ("宁夏医科大学总医院", "银川市第一人民医院"),
        "out_of_province": ("西安交通大学第一附属医院", "兰州大学第一医院"),
    },
    "临沧市": {
        "out_of_county": ("凤庆县人民医院", "云县人民医院"),
        "out_of_city": ("昆明医科大学第一附属医院", "云南省第一人民医院"),
        "out_of_province": ("四川大学华西医院", "北京协和医院"),
    },
}
DEFAULT_EXTERNAL = {
    "out_of_county": ("邻县人民医院",),
    "out_of_city": ("省人民医院", "省医科大学附属医院"),
    "out_of_province": ("北京协和医院", "四川大学华西医院"),
}

# Outpatient diagnoses by level: (code, name, weight). Codes are 国家临床版 2.0-shaped and
# inside the level's default 诊疗病种目录 (registry/data/disease_catalogs.toml).
COMMON_DX: tuple[tuple[str, str, float], ...] = (
    ("J06.900", "急性上呼吸道感染", 22),
    ("J20.900", "急性支气管炎", 7),
    ("J02.900", "急性咽炎", 5),
    ("K29.700", "胃炎", 6),
    ("A09.900", "感染性腹泻", 3),
    ("K59.000", "便秘", 2),
    ("M54.500", "腰痛", 5),
    ("M17.900", "膝关节病", 4),
    ("M75.000", "肩周炎", 2),
    ("L30.900", "皮炎", 3),
    ("L50.900", "荨麻疹", 2),
    ("H10.900", "结膜炎", 2),
    ("J30.400", "变应性鼻炎", 3),
    ("E78.500", "高脂血症", 4),
    ("I25.100", "动脉粥样硬化性心脏病", 3),
    ("J44.900", "慢性阻塞性肺疾病", 2),
    ("N39.000", "泌尿道感染", 2),
    ("K02.900", "龋病", 2),
    ("G47.000", "失眠", 2),
    ("I69.300", "脑梗死后遗症", 2),
)
HOSPITAL_DX: tuple[tuple[str, str, float], ...] = (
    ("I48.x00", "心房颤动", 2),
    ("I50.900", "心力衰竭", 2),
    ("J18.900", "肺炎", 4),
    ("N18.900", "慢性肾脏病", 2),
    ("K80.200", "胆囊结石", 2),
    ("N20.000", "肾结石", 2),
    ("E04.100", "甲状腺结节", 3),
    ("H25.900", "老年性白内障", 2),
    ("M51.200", "腰椎间盘突出", 3),
    ("I63.900", "脑梗死", 2),
    ("C34.900", "肺恶性肿瘤", 1),
    ("D25.900", "子宫平滑肌瘤", 1),
    ("K21.000", "胃食管反流病伴食管炎", 2),
)
# Inpatient principal diagnoses by level: (code, name, weight, MDC letter + ADRG).
INPATIENT_DX: dict[str, tuple[tuple[str, str, float, str], ...]] = {
    "tertiary": (
        ("I21.900", "急性心肌梗死", 4, "FM1"),
        ("I63.900", "脑梗死", 8, "BR2"),
        ("I61.900", "脑出血", 3, "BR1"),
        ("C34.900", "肺恶性肿瘤", 5, "ER1"),
        ("C16.900", "胃恶性肿瘤", 3, "GR1"),
        ("C50.900", "乳腺恶性肿瘤", 3, "JR1"),
        ("J18.900", "肺炎", 8, "ES2"),
        ("I50.900", "心力衰竭", 5, "FR3"),
        ("J44.100", "慢性阻塞性肺疾病伴急性加重", 5, "ES1"),
        ("K80.100", "胆囊结石伴胆囊炎", 4, "HC3"),
        ("S72.000", "股骨颈骨折", 3, "IC2"),
        ("M17.900", "膝关节病", 3, "IC3"),
        ("N18.500", "慢性肾脏病5期", 2, "LR1"),
        ("A41.900", "脓毒症", 1, "SR1"),
    ),
    "secondary": (
        ("J18.900", "肺炎", 12, "ES2"),
        ("J44.100", "慢性阻塞性肺疾病伴急性加重", 7, "ES1"),
        ("I63.900", "脑梗死", 8, "BR2"),
        ("I25.100", "动脉粥样硬化性心脏病", 6, "FR4"),
        ("K35.800", "急性阑尾炎", 4, "GC1"),
        ("K40.900", "腹股沟疝", 3, "GC2"),
        ("K80.100", "胆囊结石伴胆囊炎", 4, "HC3"),
        ("S52.500", "桡骨远端骨折", 3, "IC4"),
        ("M51.200", "腰椎间盘突出", 4, "IU1"),
        ("N20.000", "肾结石", 3, "LU1"),
        ("H25.900", "老年性白内障", 3, "CB3"),
        ("I10.x00", "高血压", 4, "FV3"),
    ),
    "primary": (
        ("J18.900", "肺炎", 10, "ES2"),
        ("J20.900", "急性支气管炎", 8, "ES3"),
        ("J44.900", "慢性阻塞性肺疾病", 6, "ES1"),
        ("I69.300", "脑梗死后遗症", 6, "BV1"),
        ("I10.x00", "高血压", 6, "FV3"),
        ("E11.900", "2型糖尿病", 4, "KS1"),
        ("M54.500", "腰痛", 3, "IU2"),
        ("A09.900", "感染性腹泻", 3, "GS1"),
    ),
}
INPATIENT_DX["out"] = INPATIENT_DX["tertiary"]
DELIVERY_DX = (("O80.000", "单胎顺产", "OC2"), ("O82.000", "剖宫产分娩", "OB1"))
# Procedures (ICD-9-CM-3 国家临床版 3.0-shaped) by surgery grade: (code, name, minimally invasive).
PROCEDURES: dict[int, tuple[tuple[str, str, bool], ...]] = {
    1: (("86.2200", "伤口清创术", False), ("86.0400", "皮肤和皮下组织切开引流术", False)),
    2: (
        ("47.0100", "腹腔镜下阑尾切除术", True),
        ("53.0000", "单侧腹股沟疝修补术", False),
        ("13.4100", "白内障超声乳化抽吸术", True),
    ),
    3: (
        ("51.2300", "腹腔镜下胆囊切除术", True),
        ("36.0700", "经皮冠状动脉药物洗脱支架置入术", True),
        ("79.3500", "股骨骨折切开复位内固定术", False),
        ("68.4100", "腹腔镜下全子宫切除术", True),
    ),
    4: (
        ("81.5100", "全髋关节置换术", False),
        ("32.4100", "胸腔镜下肺叶切除术", True),
        ("43.7x00", "胃部分切除伴胃空肠吻合术", False),
        ("36.1000", "冠状动脉旁路移植术", False),
        ("01.5900", "脑病损切除术", False),
    ),
}
CAESAREAN = ("74.1x00", "子宫下段剖宫产术", False)

HYPERTENSION = ("I10.x00", "原发性高血压")
DIABETES = ("E11.900", "2型糖尿病")
ANTIHYPERTENSIVES = (
    ("苯磺酸氨氯地平片", "5mg", "qd", 1.0),
    ("硝苯地平控释片", "30mg", "qd", 1.0),
    ("缬沙坦胶囊", "80mg", "qd", 1.0),
    ("厄贝沙坦片", "150mg", "qd", 1.0),
    ("美托洛尔缓释片", "47.5mg", "qd", 1.0),
)
ANTIDIABETICS = (("盐酸二甲双胍片", "0.5g", "tid", 3.0), ("阿卡波糖片", "50mg", "tid", 3.0))
ACUTE_DRUGS = (
    ("阿莫西林胶囊", "0.5g", "tid", 3.0, 5),
    ("头孢克肟分散片", "0.1g", "bid", 2.0, 5),
    ("布洛芬缓释胶囊", "0.3g", "bid", 2.0, 3),
    ("对乙酰氨基酚片", "0.5g", "prn", 2.0, 3),
    ("氯雷他定片", "10mg", "qd", 1.0, 7),
    ("奥美拉唑肠溶胶囊", "20mg", "qd", 1.0, 14),
    ("蒙脱石散", "3g", "tid", 3.0, 3),
    ("复方甘草口服溶液", "10ml", "tid", 3.0, 5),
    ("盐酸氨溴索片", "30mg", "tid", 3.0, 5),
    ("双氯芬酸钠缓释片", "75mg", "qd", 1.0, 7),
    ("阿托伐他汀钙片", "20mg", "qn", 1.0, 28),
    ("阿司匹林肠溶片", "100mg", "qd", 1.0, 28),
)
TCM_DRUGS = (
    ("连花清瘟胶囊", "1.4g", "tid", 3.0, 5),
    ("中药饮片（汤剂）", "1剂", "bid", 2.0, 7),
    ("藿香正气口服液", "10ml", "bid", 2.0, 3),
    ("复方丹参滴丸", "270mg", "tid", 3.0, 14),
)

# Result items: code -> (category, name, cost in fen).
LAB_ITEMS = {
    "CBC": ("lab", "血常规", 2000),
    "LFT": ("lab", "肝功能", 6000),
    "RFT": ("lab", "肾功能", 3500),
    "LIPID": ("lab", "血脂", 3500),
    "UA": ("lab", "尿常规", 1000),
}
LAB_WEIGHTS = (("CBC", 45), ("LFT", 15), ("RFT", 15), ("LIPID", 12), ("UA", 13))
# Panels keep their key value: (unit, reference low, high, mean, sd).
LAB_VALUES = {
    "CBC": ("10^9/L", 3.5, 9.5, 7.0, 2.4),
    "LFT": ("U/L", 9.0, 50.0, 32.0, 16.0),
    "RFT": ("μmol/L", 57.0, 111.0, 82.0, 22.0),
    "LIPID": ("mmol/L", 0.0, 5.2, 4.8, 0.9),
}
REPORTS: dict[str, tuple[str, str, str, int, tuple[tuple[str, str], ...]]] = {
    "CT-CHEST": (
        "imaging",
        "胸部CT平扫",
        "",
        25000,
        (
            ("双肺纹理清晰，未见明显实变影，纵隔居中。", "胸部CT平扫未见明显异常。"),
            ("右肺下叶见斑片状密度增高影，边缘模糊。", "右肺下叶炎症，建议治疗后复查。"),
            ("左肺上叶见一直径约6mm实性结节，边界清。", "左肺上叶小结节，建议12个月后复查。"),
        ),
    ),
    "DR-CHEST": (
        "imaging",
        "胸部正位片",
        "",
        8000,
        (
            ("两肺纹理稍增多，心影大小形态正常。", "心肺未见明显异常。"),
            ("两肺纹理增粗紊乱，右下肺野见斑片影。", "考虑右下肺炎。"),
        ),
    ),
    "US-ABD": (
        "ultrasound",
        "腹部彩超",
        "",
        12000,
        (
            ("肝脏大小形态正常，实质回声均匀；胆囊壁光滑。", "肝胆胰脾未见明显异常。"),
            ("肝实质回声细密增强，后方回声衰减。", "脂肪肝（轻度）。"),
            ("胆囊内见一强回声团，大小约12mm，后伴声影。", "胆囊结石。"),
        ),
    ),
    "ECG": (
        "ecg",
        "常规心电图",
        "",
        2500,
        (
            ("窦性心律，心率72次/分，各导联ST-T未见明显异常。", "正常心电图。"),
            ("窦性心律，V4-V6导联ST段压低约0.05mV。", "ST-T改变。"),
            ("心房颤动，平均心室率88次/分。", "心房颤动。"),
        ),
    ),
    "PATH": (
        "pathology",
        "手术标本病理检查",
        "",
        30000,
        (
            ("送检组织镜下见慢性炎细胞浸润。", "慢性炎症。"),
            ("送检组织镜下见异型细胞呈腺管状排列。", "腺癌，详见免疫组化。"),
        ),
    ),
}
REPORT_WEIGHTS = (("DR-CHEST", 30), ("CT-CHEST", 20), ("US-ABD", 30), ("ECG", 20))
EQA_PASS = {"tertiary": 0.98, "secondary": 0.93, "primary": 0.80, "village": 0.80, "out": 0.95}

POOL = 4096
ENCOUNTER_COLUMNS = (
    "id", "resident_id", "institution_id", "group_id", "department_id", "practitioner_id",
    "encounter_class", "area_scope", "external_institution", "started_at", "ended_at",
    "disposition", "tcm", "drg_code", "drg_weight", "total_fen", "drug_fen", "consumable_fen",
    "exam_fen", "treatment_fen", "insurance_fen", "out_of_catalogue_fen", "self_pay_fen",
    "source_system", "source_id", "updated_at",
)  # fmt: skip
DIAGNOSIS_COLUMNS = ("encounter_id", "resident_id", "code", "name", "rank")
BIRTH_COLUMNS = ("delivery_encounter_id", "newborn_id")
PROCEDURE_COLUMNS = (
    "encounter_id", "resident_id", "code", "name", "grade", "minimally_invasive", "performed_at",
)  # fmt: skip
RESULT_COLUMNS = (
    "resident_id", "encounter_id", "institution_id", "group_id", "category", "item_code",
    "item_name", "value_num", "value_text", "unit", "ref_low", "ref_high", "abnormal_flag",
    "findings", "conclusion", "observed_at", "eqa_passed", "cost_fen", "source_system",
    "source_id",
)  # fmt: skip
PRESCRIPTION_COLUMNS = (
    "id", "resident_id", "encounter_id", "institution_id", "group_id", "practitioner_id",
    "prescribed_at", "source_system", "source_id",
)  # fmt: skip
ITEM_COLUMNS = (
    "prescription_id", "drug_code", "drug_name", "dose", "frequency", "days_supplied",
    "quantity", "cost_fen",
)  # fmt: skip


@dataclass
class LeadFigures:
    """The lead hospital's 三级公立医院绩效考核 figures the profiles set targets for."""

    name: str
    outpatient: int = 0
    discharges: int = 0
    bed_days: int = 0
    weight_sum: float = 0.0
    operated: int = 0
    grade4: int = 0

    @property
    def alos(self) -> float:
        return self.bed_days / self.discharges if self.discharges else 0.0

    @property
    def cmi(self) -> float:
        return self.weight_sum / self.discharges if self.discharges else 0.0

    @property
    def grade4_share(self) -> float:
        return self.grade4 / self.operated if self.operated else 0.0

    @property
    def outpatient_discharge_ratio(self) -> float:
        return self.outpatient / self.discharges if self.discharges else 0.0


@dataclass
class ActivityReport:
    year: int
    residents: int = 0
    encounters: int = 0
    outpatient: int = 0
    emergency: int = 0
    inpatient: int = 0
    diagnoses: int = 0
    procedures: int = 0
    results: int = 0
    prescriptions: int = 0
    prescription_items: int = 0
    deaths: int = 0
    in_hospital_deaths: int = 0
    deliveries: int = 0  # each with its newborn linked (a `birth` row)
    infant_deaths: int = 0
    hypertension_patients: int = 0
    diabetes_patients: int = 0
    primary_visits: int = 0
    out_of_area_visits: int = 0
    primary_tcm_visits: int = 0
    leads: dict[int, LeadFigures] = field(default_factory=dict)

    @property
    def visits(self) -> int:
        return self.outpatient + self.emergency

    @property
    def visits_per_person(self) -> float:
        return self.visits / self.residents if self.residents else 0.0

    @property
    def admissions_per_100(self) -> float:
        return 100 * self.inpatient / self.residents if self.residents else 0.0

    @property
    def primary_share(self) -> float:
        return self.primary_visits / self.visits if self.visits else 0.0

    @property
    def out_of_area_share(self) -> float:
        return self.out_of_area_visits / self.visits if self.visits else 0.0

    @property
    def primary_tcm_share(self) -> float:
        return self.primary_tcm_visits / self.primary_visits if self.primary_visits else 0.0

    @property
    def lead(self) -> LeadFigures:
        """All lead hospitals taken together."""
        total = LeadFigures(name="、".join(f.name for f in self.leads.values()))
        for f in self.leads.values():
            total.outpatient += f.outpatient
            total.discharges += f.discharges
            total.bed_days += f.bed_days
            total.weight_sum += f.weight_sum
            total.operated += f.operated
            total.grade4 += f.grade4
        return total

    def lines(self) -> list[str]:
        """What the demo CLI prints."""
        lead = self.lead
        return [
            f"就诊 {self.encounters:,} 人次（门急诊 {self.visits:,}，住院 {self.inpatient:,}）",
            f"人均就诊 {self.visits_per_person:.2f} 次；每百人住院 {self.admissions_per_100:.1f}",
            f"基层就诊占比 {self.primary_share:.1%}；县域外就诊占比 {self.out_of_area_share:.1%}",
            f"检查检验结果 {self.results:,}；处方 {self.prescriptions:,}",
            f"死亡 {self.deaths:,}（院内 {self.in_hospital_deaths:,}，"
            f"婴儿 {self.infant_deaths:,}）；分娩 {self.deliveries:,}（新生儿均关联母亲）",
            f"牵头医院：平均住院日 {lead.alos:.2f}，CMI {lead.cmi:.2f}，"
            f"四级手术占比 {lead.grade4_share:.1%}，"
            f"门诊出院比 {lead.outpatient_discharge_ratio:.1f}",
        ]


@dataclass(frozen=True)
class _Inst:
    id: int
    code: str
    name: str
    level: str
    kind: str
    group_id: int | None
    grid_id: int | None
    parent_id: int | None
    beds: int


def load_structure_from_db(session: Session) -> Structure:
    """Rebuild the registry step's `Structure` from the tables (region codes are not stored
    and stay empty)."""
    out = Structure(city="")
    for grid in registry.list_grids(session):
        out.city = out.city or grid.city
        out.grid_ids[grid.code] = grid.id
        out.grid_population[grid.id] = int(grid.population or 0)
        out.grid_districts[grid.id] = [d for d in (grid.districts or "").split("、") if d]
    for g in registry.list_groups(session):
        out.group_ids[g.group.code] = g.group.id
    for i in _institutions(session):
        out.institution_ids[i.code] = i.id
        out.institution_level[i.id] = i.level
        out.institution_group[i.id] = i.group_id
        if i.level == "primary" and i.grid_id is not None and i.kind == "general":
            out.primary_by_grid.setdefault(i.grid_id, []).append(i.id)
    return out


def _institutions(session: Session) -> list[Institution]:
    """Every institution, in id order (the order generation draws from)."""
    return sorted(session.scalars(registry.institutions_query()), key=lambda i: i.id)


def _negative_binomial_cdf(mean: float, k: float, limit: int = 120) -> list[float]:
    p = k / (k + mean)
    pmf = p**k
    cdf: list[float] = []
    acc = 0.0
    for n in range(limit):
        acc += pmf
        cdf.append(acc)
        pmf *= (n + k) / (n + 1) * (1 - p)
    cdf[-1] = 1.0
    return cdf


def _cum(weights: Sequence[float]) -> list[float]:
    out: list[float] = []
    acc = 0.0
    total = float(sum(weights))
    for w in weights:
        acc += w / total
        out.append(acc)
    out[-1] = 1.0
    return out


def _split(total: int, shares: Sequence[float]) -> tuple[int, ...]:
    """Integer parts of `total` by `shares`; the last part takes the remainder."""
    parts = [int(total * s) for s in shares[:-1]]
    parts.append(total - sum(parts))
    return tuple(parts)


def _cost_pool(
    rng: random.Random, mean_yuan: float, sigma: float, *, drug: bool, inpatient: bool
) -> list[Row]:
    """POOL cost tuples (total, drug, consumable, exam, treatment, insurance, ooc, self-pay)."""
    pool: list[Row] = []
    mu = math.log(mean_yuan * 100) - sigma * sigma / 2
    for _ in range(POOL):
        total = max(100, int(rng.lognormvariate(mu, sigma)))
        if inpatient:
            d = rng.uniform(0.22, 0.34)
            c = rng.uniform(0.12, 0.28)
            e = rng.uniform(0.15, 0.25)
            ins = rng.uniform(0.55, 0.75)
            ooc = rng.uniform(0.03, 0.12)
        else:
            d = rng.uniform(0.35, 0.6) if drug else 0.0
            c = rng.uniform(0.0, 0.08)
            e = rng.uniform(0.1, 0.35)
            ins = rng.uniform(0.35, 0.65)
            ooc = rng.uniform(0.0, 0.1)
        pool.append(
            (total, *_split(total, (d, c, e, 1 - d - c - e)), *_split(total, (ins, ooc, 1 - ins)))
        )
    return pool


def _lab_pool(rng: random.Random, code: str) -> list[Row]:
    """(category, code, name, value_num, value_text, unit, low, high, flag, findings,
    conclusion) tuples for one lab panel."""
    category, name, _ = LAB_ITEMS[code]
    pool: list[Row] = []
    for _ in range(POOL // 4):
        if code == "UA":
            abnormal = rng.random() < 0.12
            text = "尿蛋白 +，潜血 ±" if abnormal else "尿蛋白 阴性，潜血 阴性，白细胞 阴性"
            pool.append((category, code, name, None, text, None, None, None,
                         "A" if abnormal else "N", None, None))  # fmt: skip
            continue
        unit, low, high, mean, sd = LAB_VALUES[code]
        value = round(max(0.1, rng.gauss(mean, sd)), 2)
        flag = "H" if value > high else "L" if value < low else "N"
        pool.append((category, code, name, value, None, unit, low, high, flag, None, None))
    return pool


def _report_pool(code: str) -> list[Row]:
    category, name, _, _, texts = REPORTS[code]
    # The first (normal) report is the most frequent.
    weighted = [texts[0]] * 6 + list(texts[1:])
    return [
        (category, code, name, None, None, None, None, None, "N" if i == 0 else "A", f, c)
        for i, (f, c) in enumerate(weighted)
    ]


class _Tables:
    """Rows of one chunk, by table."""

    def __init__(self) -> None:
        self.encounter: list[Row] = []
        self.diagnosis: list[Row] = []
        self.procedure: list[Row] = []
        self.result: list[Row] = []
        self.prescription: list[Row] = []
        self.item: list[Row] = []
        self.birth: list[Row] = []
        self.deaths: list[Row] = []


def write_tables(connection: Connection, tables: _Tables) -> None:
    # The rows carry their times as PostgreSQL's text (`_Generator.day_text`): text COPY.
    for table, columns, rows in (
        ("encounter", ENCOUNTER_COLUMNS, tables.encounter),
        ("diagnosis", DIAGNOSIS_COLUMNS, tables.diagnosis),
        ("birth", BIRTH_COLUMNS, tables.birth),
        ("procedure_record", PROCEDURE_COLUMNS, tables.procedure),
        ("result", RESULT_COLUMNS, tables.result),
        ("prescription", PRESCRIPTION_COLUMNS, tables.prescription),
        ("prescription_item", ITEM_COLUMNS, tables.item),
    ):
        bulk_insert(connection, table, columns, rows, binary=False)
    if tables.deaths:
        driver = connection.connection.driver_connection
        assert driver is not None
        mark = "%s" if connection.dialect.name == "postgresql" else "?"
        cursor = driver.cursor()
        cursor.executemany(
            f"UPDATE resident SET deceased_on = {mark} WHERE id = {mark}", tables.deaths
        )
        cursor.close()


def _resident_chunks(connection: Connection, size: int, year_start: date) -> list[list[Row]]:
    """Residents alive at the start of the year, in id order, `size` at a time."""
    rows = connection.exec_driver_sql(
        "SELECT id, birth_date, sex, grid_id, home_institution_id FROM resident "
        "WHERE deceased_on IS NULL OR deceased_on >= %(start)s ORDER BY id"
        if connection.dialect.name == "postgresql"
        else "SELECT id, birth_date, sex, grid_id, home_institution_id FROM resident "
        "WHERE deceased_on IS NULL OR deceased_on >= ? ORDER BY id",
        {"start": year_start}
        if connection.dialect.name == "postgresql"
        else (year_start.isoformat(),),
    ).all()
    residents = [tuple(r) for r in rows]
    return [residents[k : k + size] for k in range(0, len(residents), size)]


class _Generator:
    """Precomputed pools and the per-resident generation loop."""

    def __init__(
        self, session: Session, rng: random.Random, structure: Structure, year: int
    ) -> None:
        self.rng = rng
        self.year = year
        connection = session.connection()
        self.postgres = connection.dialect.name == "postgresql"
        insts = [
            _Inst(i.id, i.code, i.name, i.level, i.kind, i.group_id, i.grid_id, i.parent_id,
                  int(i.beds or 100))
            for i in _institutions(session)
        ]  # fmt: skip
        self.inst = {i.id: i for i in insts}
        self.group_of_grid: dict[int, int] = {}
        self.leads: dict[int, int] = {}
        for g in registry.list_groups(session):  # in id order
            self.group_of_grid.setdefault(g.group.grid_id, g.group.id)
            if g.group.lead_institution_id is not None:
                self.leads[g.group.lead_institution_id] = g.group.id
        staff: dict[int, list[tuple[int | None, int | None]]] = {}
        for pid, inst_id, dept in registry.role_assignments(session):
            staff.setdefault(inst_id, []).append((pid, dept))
        self.staff: dict[int, list[tuple[int | None, int | None]]] = {
            i.id: staff.get(i.id) or [(None, None)] for i in insts
        }
        clinical = [i for i in insts if i.kind not in ("cdc", "elderly_care")]
        self.hospitals: dict[tuple[int | None, str], tuple[list[int], list[float]]] = {}
        for level in ("tertiary", "secondary"):
            for group_id in {i.group_id for i in clinical}:
                members = [i for i in clinical if i.group_id == group_id and i.level == level]
                if members:
                    self.hospitals[(group_id, level)] = (
                        [i.id for i in members],
                        _cum([i.beds for i in members]),
                    )
        self.villages: dict[int, list[int]] = {}
        for i in clinical:
            if i.level == "village" and i.parent_id is not None:
                self.villages.setdefault(i.parent_id, []).append(i.id)
        self.primary_of_group: dict[int | None, list[int]] = {}
        for i in clinical:
            if i.level == "primary":
                self.primary_of_group.setdefault(i.group_id, []).append(i.id)
        self.primary_of_grid = structure.primary_by_grid

        r = rng
        self.cost_out = {
            (lvl, drug): _cost_pool(r, mean, 0.6, drug=drug, inpatient=False)
            for lvl, mean in OUTPATIENT_COST_YUAN.items()
            for drug in (False, True)
        }
        self.cost_in = {
            lvl: _cost_pool(r, mean, 0.35, drug=True, inpatient=True)
            for lvl, mean in INPATIENT_COST_YUAN.items()
        }
        self.lab_pools = {code: _lab_pool(r, code) for code in LAB_ITEMS}
        self.report_pools = {code: _report_pool(code) for code in REPORTS}
        self.lab_codes = [c for c, _ in LAB_WEIGHTS]
        self.lab_cum = _cum([w for _, w in LAB_WEIGHTS])
        self.report_codes = [c for c, _ in REPORT_WEIGHTS]
        self.report_cum = _cum([w for _, w in REPORT_WEIGHTS])
        self.result_cost = {c: v[2] for c, v in LAB_ITEMS.items()}
        self.result_cost.update({c: v[3] for c, v in REPORTS.items()})
        self.common_cum = _cum([w for *_, w in COMMON_DX])
        hospital_dx = COMMON_DX + HOSPITAL_DX
        self.hospital_dx = [(c, n) for c, n, _ in hospital_dx]
        self.hospital_cum = _cum([w for *_, w in hospital_dx])
        self.common_dx = [(c, n) for c, n, _ in COMMON_DX]
        self.in_dx = {lvl: [(c, n, d) for c, n, _, d in e] for lvl, e in INPATIENT_DX.items()}
        self.in_cum = {lvl: _cum([w for _, _, w, _ in e]) for lvl, e in INPATIENT_DX.items()}
        self.visit_cdf = [_negative_binomial_cdf(m, VISIT_DISPERSION) for m in VISIT_MEAN]
        city = structure.city or next(iter({i.name for i in insts}), "")
        self.external = EXTERNAL_HOSPITALS.get(city, DEFAULT_EXTERNAL)
        self.scope_cum = _cum([w for _, w in OUT_SCOPES])
        self.scopes = [s for s, _ in OUT_SCOPES]
        self.external_codes = {
            (scope, name): f"EXT-{scope[7:].upper()}-{n + 1}"
            for scope, names in self.external.items()
            for n, name in enumerate(names)
        }
        self.admit_cum = _cum([w for _, w in ADMIT_LEVEL])
        self.admit_levels = [lvl for lvl, _ in ADMIT_LEVEL]
        start = date(year, 1, 1)
        self.days = (date(year + 1, 1, 1) - start).days
        suffix = "+00" if self.postgres else ".000000"
        self.day_text = [(start + timedelta(days=d)).isoformat() for d in range(self.days + 1)]
        self.day_dates = [start + timedelta(days=d) for d in range(self.days + 1)]
        # Clinic hours 08:00-17:55 Asia/Shanghai are 00:00-09:55 UTC.
        self.clock = [f" {h:02d}:{m:02d}:00{suffix}" for h in range(10) for m in range(0, 60, 5)]
        self.stamp = now().strftime("%Y-%m-%d %H:%M:%S.%f") if not self.postgres else now()
        self.noise = [rng.gauss(0.0, 1.0) for _ in range(POOL)]
        # Births (`_pair_births`): mother -> (newborn, birth day); every baby born in the year ->
        # its birth day; the babies of recorded deliveries.
        self.birth_rng = random.Random(rng.getrandbits(64))
        self.deliveries: dict[int, tuple[int, int]] = {}
        self.birth_day: dict[int, int] = {}
        self.linked: set[int] = set()

    # -- helpers ------------------------------------------------------------------------------

    def _hospital(self, gid: int | None, level: str, u: float) -> int | None:
        members = self.hospitals.get((gid, level))
        if members is None:
            other = "secondary" if level == "tertiary" else "tertiary"
            members = self.hospitals.get((gid, other))
            if members is None:
                return None
        ids, cum = members
        return ids[bisect(cum, u)] if len(ids) > 1 else ids[0]

    def _external(self, u: float) -> tuple[str, str, str]:
        scope = self.scopes[bisect(self.scope_cum, u)]
        names = self.external[scope]
        name = names[int(u * 1000) % len(names)]
        return scope, name, self.external_codes[(scope, name)]

    def _pair_births(self, chunks: list[list[Row]]) -> None:
        """Give each delivery of the year a newborn resident of the same grid born that year
        (and each of those babies a mother): per grid, each woman aged 20-39 delivers with
        the delivery rate, up to the number of babies born in the grid; mothers and babies
        are drawn at random and paired. Runs before generation, on its own rng."""
        year = self.year
        start = date(year, 1, 1)
        babies: dict[int, list[int]] = {}
        women: dict[int, list[int]] = {}
        for chunk in chunks:
            for rid, birth, sex, grid_id, _ in chunk:
                born = int(str(birth)[:4])
                if born == year:
                    self.birth_day[rid] = (date.fromisoformat(str(birth)[:10]) - start).days
                    babies.setdefault(grid_id or 0, []).append(rid)
                elif sex == "female" and 20 <= year - born < 40:
                    women.setdefault(grid_id or 0, []).append(rid)
        rnd = self.birth_rng.random
        for grid_id in sorted(babies):
            kids, mothers = babies[grid_id], women.get(grid_id, [])
            n = min(len(kids), sum(1 for _ in mothers if rnd() < DELIVERY_RATE_WOMEN_20_39))
            for mother, kid in zip(
                self.birth_rng.sample(mothers, n), self.birth_rng.sample(kids, n), strict=True
            ):
                self.deliveries[mother] = (kid, self.birth_day[kid])
                self.linked.add(kid)

    # -- the loop -----------------------------------------------------------------------------

    def run(
        self,
        connection: Connection,
        report: ActivityReport,
        progress: Progress | None,
        chunk_size: int,
        first_encounter_id: int,
        first_prescription_id: int,
    ) -> None:
        # The residents are read first (one query; a few hundred MB for millions), then
        # generation (Python, CPU-bound) and the inserts (the database driver) overlap: a forked
        # child process generates chunk n+1 while this process inserts chunk n. The child runs
        # the same loop with the same rng, so the rows, their ids and the insert order are
        # exactly those of a single process; it hands back the report and the rng's state.
        chunks = _resident_chunks(connection, chunk_size, date(self.year, 1, 1))
        self._pair_births(chunks)
        if len(chunks) < 2 or "fork" not in multiprocessing.get_all_start_methods():
            eid, pid = first_encounter_id, first_prescription_id
            for chunk in chunks:
                tables = _Tables()
                eid, pid = self._chunk_counted(chunk, tables, report, eid, pid)
                write_tables(connection, tables)
                if progress:
                    progress(len(chunk))
            return
        context = multiprocessing.get_context("fork")
        receiver, sender = context.Pipe(duplex=False)
        child = context.Process(
            target=self._child,
            args=(sender, report, chunks, first_encounter_id, first_prescription_id),
            name="demo-activity-generator",
            daemon=True,
        )
        child.start()
        sender.close()
        try:
            for chunk in chunks:
                message = receiver.recv()
                if message[0] == "error":
                    raise RuntimeError(f"demo activity generator failed:\n{message[1]}")
                tables = message[1]
                write_tables(connection, tables)
                if progress:
                    progress(len(chunk))
            message = receiver.recv()
            if message[0] == "error":
                raise RuntimeError(f"demo activity generator failed:\n{message[1]}")
            _, child_report, rng_state = message
        except BaseException:
            child.terminate()
            raise
        finally:
            receiver.close()
            child.join()
        report.__dict__.update(child_report.__dict__)
        self.rng.setstate(rng_state)

    def _child(
        self, sender: Any, report: ActivityReport, chunks: list[list[Row]], eid: int, pid: int
    ) -> None:  # pragma: no cover - runs in the forked child (on its copy of `report`)
        try:
            for chunk in chunks:
                tables = _Tables()
                eid, pid = self._chunk_counted(chunk, tables, report, eid, pid)
                sender.send(("tables", tables))
            sender.send(("done", report, self.rng.getstate()))
        except BaseException:
            sender.send(("error", traceback.format_exc()))
        finally:
            sender.close()

    def _chunk_counted(
        self, chunk: list[Row], tables: _Tables, report: ActivityReport, eid: int, pid: int
    ) -> tuple[int, int]:
        eid, pid = self._chunk(chunk, tables, report, eid, pid)
        report.residents += len(chunk)
        report.diagnoses += len(tables.diagnosis)
        report.procedures += len(tables.procedure)
        report.results += len(tables.result)
        report.prescriptions += len(tables.prescription)
        report.prescription_items += len(tables.item)
        return eid, pid

    def _chunk(
        self, chunk: list[Row], t: _Tables, rep: ActivityReport, eid: int, pid: int
    ) -> tuple[int, int]:
        rnd = self.rng.random
        year = self.year
        days = self.days
        day_text = self.day_text
        clock = self.clock
        n_clock = len(clock)
        stamp = self.stamp
        inst = self.inst
        staff = self.staff
        leads = self.leads
        cost_out = self.cost_out
        noise = self.noise
        enc = t.encounter.append
        dx = t.diagnosis.append
        res = t.result.append
        rx = t.prescription.append
        item = t.item.append
        common_dx, common_cum = self.common_dx, self.common_cum
        hospital_dx, hospital_cum = self.hospital_dx, self.hospital_cum
        lab_pools, lab_codes, lab_cum = self.lab_pools, self.lab_codes, self.lab_cum
        report_pools, report_codes, report_cum = (
            self.report_pools,
            self.report_codes,
            self.report_cum,
        )
        result_cost = self.result_cost
        year_tag = f"D{year}R"
        for rid, birth, _, grid_id, home in chunk:
            age = year - int(str(birth)[:4])
            if age < 0:
                continue  # born after the simulated year
            band = bisect(BAND_EDGES, age)
            adult = age >= 18
            htn = adult and rnd() < HYPERTENSION_RATE[band]
            dm = adult and rnd() < DIABETES_RATE[band]
            gid = inst[home].group_id if home is not None else None
            if gid is None:
                gid = self.group_of_grid.get(grid_id) if grid_id is not None else None
            if home is None:
                homes = self.primary_of_group.get(gid) or self.primary_of_grid.get(grid_id or 0)
                home = homes[rid % len(homes)] if homes else None
            villages = self.villages.get(home or 0)
            # A baby of the year: nothing before its birth day; it may die only if born in a
            # recorded delivery (the others moved in).
            born_day = 0
            death_rate = DEATH_RATE[band]
            if age == 0:
                born_day = self.birth_day[rid]
                death_rate = INFANT_DEATH_RATE if rid in self.linked else 0.0
            delivery = self.deliveries.get(rid)
            # Death first: nothing happens after it.
            dies = rnd() < death_rate
            alive_days = born_day + int(rnd() * (days - born_day)) + 1 if dies else days
            if dies and delivery is not None:
                alive_days = max(alive_days, min(days, delivery[1] + 6))  # survives the stay
            if dies and age == 0:
                rep.infant_deaths += 1
            key = f"{year_tag}{rid:010d}V"
            seq = 0
            chronic_dx: list[tuple[str, str]] = []
            if htn:
                chronic_dx.append(HYPERTENSION)
                rep.hypertension_patients += 1
            if dm:
                chronic_dx.append(DIABETES)
                rep.diabetes_patients += 1

            # Chronic follow-ups at the primary member (or its village clinic).
            if (htn or dm) and home is not None:
                managed = rnd() < 0.8
                follow_ups = 4 + int(rnd() * 5) if managed else int(rnd() * 3)
                sbp_mean = 128.0 if rnd() < 0.45 else 152.0
                glu_mean = 6.4 if rnd() < 0.5 else 9.2
                a1c_left = 2 if dm else 0
                drug_h = ANTIHYPERTENSIVES[rid % len(ANTIHYPERTENSIVES)]
                drug_d = ANTIDIABETICS[0 if rid % 4 else 1]
                for f in range(follow_ups):
                    seq += 1
                    site = home
                    if villages and rnd() < VILLAGE_SHARE:
                        site = villages[int(rnd() * len(villages))]
                    s = inst[site]
                    day = int((f + rnd()) * alive_days / follow_ups)
                    start = day_text[day] + clock[int(rnd() * n_clock)]
                    prac, dept = staff[site][int(rnd() * len(staff[site]))]
                    level = "village" if s.level == "village" else "primary"
                    cost = cost_out[(level, True)][int(rnd() * POOL)]
                    src = f"{key}{seq:03d}"
                    enc((eid, rid, site, s.group_id, dept, prac, "outpatient", "local", None,
                         start, None, None, False, None, None, *cost, s.code, src,
                         stamp))  # fmt: skip
                    rep.outpatient += 1
                    rep.primary_visits += 1
                    for rank, (code, name) in enumerate(chronic_dx, 1):
                        dx((eid, rid, code, name, rank))
                    if htn:
                        sbp = round(sbp_mean + 9 * noise[int(rnd() * POOL)])
                        dbp = round(sbp * 0.58 + 6 * noise[int(rnd() * POOL)])
                        res((rid, eid, site, s.group_id, "vital", "8480-6", "收缩压", sbp, None,
                             "mmHg", 90.0, 139.0, "H" if sbp >= 140 else "N", None, None, start,
                             None, 0, s.code, f"{src}-S"))  # fmt: skip
                        res((rid, eid, site, s.group_id, "vital", "8462-4", "舒张压", dbp, None,
                             "mmHg", 60.0, 89.0, "H" if dbp >= 90 else "N", None, None, start,
                             None, 0, s.code, f"{src}-D"))  # fmt: skip
                    if dm:
                        glu = round(max(3.5, glu_mean + 1.3 * noise[int(rnd() * POOL)]), 1)
                        res((rid, eid, site, s.group_id, "lab", "1558-6", "空腹血糖", glu, None,
                             "mmol/L", 3.9, 6.1, "H" if glu > 6.1 else "N", None, None, start,
                             True, 500, s.code, f"{src}-G"))  # fmt: skip
                        if a1c_left and (f == 0 or f == follow_ups // 2 + 1):
                            a1c_left -= 1
                            a1c = round(
                                max(4.8, glu_mean * 0.85 + 0.6 * noise[int(rnd() * POOL)]), 1
                            )
                            res((rid, eid, site, s.group_id, "lab", "4548-4", "糖化血红蛋白", a1c,
                                 None, "%", 4.0, 6.0, "H" if a1c > 6.0 else "N", None, None, start,
                                 True, 6000, s.code, f"{src}-A"))  # fmt: skip
                    # The follow-up's prescription: drug cost split over the chronic drugs.
                    drugs = []
                    if htn:
                        drugs.append(drug_h)
                    if dm:
                        drugs.append(drug_d)
                    supply = 28 if rnd() < 0.5 else 56 if rnd() < 0.6 else 84
                    rx((pid, rid, eid, site, s.group_id, prac, start, s.code, src))
                    drug_fen = cost[1]
                    share = drug_fen // len(drugs)
                    for n, (name, dose, freq, per_day) in enumerate(drugs):
                        fen = drug_fen - share * (len(drugs) - 1) if n == 0 else share
                        item((pid, None, name, dose, freq, supply, per_day * supply, fen))
                    pid += 1
                    eid += 1

            # Other visits.
            n_visits = bisect(self.visit_cdf[band], rnd())
            for _ in range(n_visits):
                seq += 1
                u = rnd()
                day = born_day + int(rnd() * (alive_days - born_day))
                start = day_text[day] + clock[int(rnd() * n_clock)]
                src = f"{key}{seq:03d}"
                cls = "outpatient"
                scope = "local"
                ext = None
                if u < VISIT_PRIMARY:
                    site = home
                    if villages and rnd() < VILLAGE_SHARE:
                        site = villages[int(rnd() * len(villages))]
                    if site is None:
                        site = self._hospital(gid, "secondary", rnd())
                elif u < VISIT_PRIMARY + VISIT_OUT:
                    site = None
                else:
                    level = (
                        "tertiary"
                        if u < VISIT_PRIMARY + VISIT_OUT + VISIT_TERTIARY
                        else "secondary"
                    )
                    site = self._hospital(gid, level, rnd())
                if site is None:
                    scope, ext, code = self._external(rnd())
                    level = "out"
                    group: int | None = None
                    prac = dept = None
                    tcm = False
                    rep.out_of_area_visits += 1
                else:
                    s = inst[site]
                    level, group, code = s.level, s.group_id, s.code
                    prac, dept = staff[site][int(rnd() * len(staff[site]))]
                    if level == "primary" or level == "village":
                        rep.primary_visits += 1
                        tcm = s.kind == "tcm" or rnd() < PRIMARY_TCM_SHARE
                        if tcm:
                            rep.primary_tcm_visits += 1
                    else:
                        tcm = s.kind == "tcm"
                        if rnd() < EMERGENCY_SHARE:
                            cls = "emergency"
                        if site in leads and cls == "outpatient":
                            rep.leads[site].outpatient += 1
                if cls == "emergency":
                    rep.emergency += 1
                else:
                    rep.outpatient += 1
                has_rx = rnd() < 0.6
                cost = cost_out[(level, has_rx)][int(rnd() * POOL)]
                enc((eid, rid, site, group, dept, prac, cls, scope, ext, start, None, None, tcm,
                     None, None, *cost, code, src, stamp))  # fmt: skip
                hospital = level in ("tertiary", "secondary", "out")
                if hospital:
                    code1, name1 = hospital_dx[bisect(hospital_cum, rnd())]
                else:
                    code1, name1 = common_dx[bisect(common_cum, rnd())]
                dx((eid, rid, code1, name1, 1))
                rank = 1
                for code2, name2 in chronic_dx:
                    if code2 != code1 and rnd() < 0.5:
                        rank += 1
                        dx((eid, rid, code2, name2, rank))
                if rank == 1 and rnd() < 0.15:
                    code2, name2 = common_dx[bisect(common_cum, rnd())]
                    if code2 != code1:
                        dx((eid, rid, code2, name2, 2))
                # Results.
                if level != "village":
                    p_lab, p_rep = (0.30, 0.10) if hospital else (0.08, 0.02)
                    eqa = EQA_PASS[level]
                    v = rnd()
                    if v < p_lab:
                        lab = lab_codes[bisect(lab_cum, v / p_lab)]
                        res((rid, eid, site, group, *lab_pools[lab][int(rnd() * 1024)], start,
                             rnd() < eqa, result_cost[lab], code, f"{src}-{lab}"))  # fmt: skip
                        if v < p_lab * 0.3:
                            res((rid, eid, site, group, *lab_pools["CBC" if lab != "CBC" else "UA"][
                                int(rnd() * 1024)], start, rnd() < eqa,
                                 result_cost["CBC" if lab != "CBC" else "UA"], code,
                                 f"{src}-{'CBC' if lab != 'CBC' else 'UA'}"))  # fmt: skip
                    w = rnd()
                    if w < p_rep:
                        rcode = report_codes[bisect(report_cum, w / p_rep)]
                        pool = report_pools[rcode]
                        res((rid, eid, site, group, *pool[int(rnd() * len(pool))], start,
                             rnd() < eqa, result_cost[rcode], code, f"{src}-{rcode}"))  # fmt: skip
                if has_rx:
                    rx((pid, rid, eid, site, group, prac, start, code, src))
                    k = 1 if (v := rnd()) < 0.5 else 2 if v < 0.85 else 3
                    drug_fen = cost[1]
                    share = drug_fen // k
                    pool_d = TCM_DRUGS if tcm else ACUTE_DRUGS
                    first = int(rnd() * len(pool_d))
                    for n in range(k):
                        name, dose, freq, per_day, supply = pool_d[(first + n * 5) % len(pool_d)]
                        fen = drug_fen - share * (k - 1) if n == 0 else share
                        item((pid, None, name, dose, freq, supply, per_day * supply, fen))
                    pid += 1
                eid += 1

            # Admissions (plus a delivery, plus a terminal stay for an in-hospital death).
            stays: list[str] = []
            rate = ADMISSION_RATE[band] / 100 / 1.25
            if rnd() < rate:
                v = rnd()
                stays = ["ill"] * (1 if v < 0.8 else 2 if v < 0.95 else 3)
            if delivery is not None:
                stays.append("delivery")
            if dies and rnd() < IN_HOSPITAL_DEATH_SHARE:
                stays.append("death")
            for kind in stays:
                seq += 1
                eid = self._admission(
                    t, rep, rid, gid, kind, born_day, alive_days, f"{key}{seq:03d}", eid,
                    chronic_dx, delivery,
                )  # fmt: skip
            if dies:
                rep.deaths += 1
                death_day = self.day_dates[alive_days - 1 if alive_days > 0 else 0]
                t.deaths.append((death_day if self.postgres else death_day.isoformat(), rid))
        return eid, pid

    def _admission(
        self,
        t: _Tables,
        rep: ActivityReport,
        rid: int,
        gid: int | None,
        kind: str,
        born_day: int,
        alive_days: int,
        src: str,
        eid: int,
        chronic_dx: list[tuple[str, str]],
        delivery: tuple[int, int] | None,
    ) -> int:
        rng = self.rng
        rnd = rng.random
        if kind == "delivery":
            level = "secondary" if rnd() < 0.55 else "tertiary" if rnd() < 0.9 else "out"
        elif kind == "death":
            level = "tertiary" if rnd() < 0.6 else "secondary"
        else:
            level = self.admit_levels[bisect(self.admit_cum, rnd())]
        site: int | None = None
        if level in ("tertiary", "secondary"):
            site = self._hospital(gid, level, rnd())
        elif level == "primary":
            homes = self.primary_of_group.get(gid)
            site = homes[rid % len(homes)] if homes else None
        if site is None:
            level = "out"
            scope, ext, code = self._external(rnd())
            group = prac = dept = None
        else:
            s = self.inst[site]
            level, group, code = s.level, s.group_id, s.code
            scope, ext = "local", None
            prac, dept = self.staff[site][int(rnd() * len(self.staff[site]))]
        # Length of stay, surgery, DRG weight.
        surgery: tuple[str, str, bool] | None = None
        grade: int | None = None
        if kind == "delivery":
            los = 3 + int(rnd() * 3)
            caesarean = rnd() < 0.4
            dcode, dname, drg = DELIVERY_DX[1 if caesarean else 0]
            weight = rng.lognormvariate(math.log(0.55 if caesarean else 0.4), 0.2)
            if caesarean:
                surgery, grade = CAESAREAN, 2
            rep.deliveries += 1
        else:
            los = max(1, round(rng.gammavariate(2.2, ALOS[level] / 2.2)))
            dcode, dname, drg = self.in_dx[level][bisect(self.in_cum[level], rnd())]
            base = MEDICAL_WEIGHT
            if rnd() < SURGERY_SHARE[level]:
                grade = bisect(_cum(GRADE_MIX[level]), rnd()) + 1
                options = PROCEDURES[grade]
                surgery = options[int(rnd() * len(options))]
                base = SURGICAL_WEIGHT[grade - 1]
            weight = rng.lognormvariate(math.log(base * WEIGHT_FACTOR[level]) - 0.06, 0.35)
        weight = round(weight, 4)
        if kind == "death":
            end_day = alive_days - 1
        elif kind == "delivery" and delivery is not None:
            end_day = delivery[1] + los  # admitted on the baby's birth day
        else:
            end_day = born_day + los + int(rnd() * max(1, alive_days - born_day - los - 1))
        end_day = min(end_day, self.days - 1)
        start_day = max(born_day, end_day - los)
        if kind == "delivery" and delivery is not None:
            start_day = delivery[1]
        los = end_day - start_day
        start_clock = int(rnd() * len(self.clock))
        # a same-day stay (death on admission, a stay clipped at the year's end) ends after it
        # started: 10:00 or later the same morning
        end_clock = max(24, start_clock) if end_day == start_day else 24
        start = self.day_text[start_day] + self.clock[start_clock]
        end = self.day_text[end_day] + self.clock[end_clock]
        severity = "1" if weight > 2 else "3" if weight > 1 else "5"
        disposition = "death" if kind == "death" else "home"
        cost_pool = self.cost_in[level]
        scale = weight / (WEIGHT_FACTOR[level] * 1.05)
        base_cost = cost_pool[int(rnd() * POOL)]
        total = max(50000, int(base_cost[0] * scale))
        d, c, e = (base_cost[1] / base_cost[0], base_cost[2] / base_cost[0],
                   base_cost[3] / base_cost[0])  # fmt: skip
        i, o = base_cost[5] / base_cost[0], base_cost[6] / base_cost[0]
        cost = _split(total, (d, c, e, 1 - d - c - e)) + _split(total, (i, o, 1 - i - o))
        t.encounter.append(
            (eid, rid, site, group, dept, prac, "inpatient", scope, ext, start, end, disposition,
             site is not None and self.inst[site].kind == "tcm", f"{drg}{severity}", weight,
             total, *cost, code, src, self.stamp)
        )  # fmt: skip
        rep.inpatient += 1
        if kind == "delivery" and delivery is not None:
            t.birth.append((eid, delivery[0]))
        if disposition == "death":
            rep.in_hospital_deaths += 1
        t.diagnosis.append((eid, rid, dcode, dname, 1))
        for rank, (c2, n2) in enumerate((x for x in chronic_dx if x[0] != dcode), 2):
            t.diagnosis.append((eid, rid, c2, n2, rank))
        if surgery is not None:
            t.procedure.append(
                (eid, rid, surgery[0], surgery[1], grade, surgery[2],
                 self.day_text[min(start_day + 1, end_day)] + self.clock[12])
            )  # fmt: skip
        if site in self.leads:
            f = rep.leads[site]
            f.discharges += 1
            f.bed_days += los
            f.weight_sum += weight
            if grade is not None:
                f.operated += 1
                f.grade4 += grade == 4
        eqa = EQA_PASS[level]
        items = ["CBC", "LFT", "RFT"]
        if rnd() < 0.6:
            items.append("UA")
        for lab in items:
            row = self.lab_pools[lab][int(rnd() * 1024)]
            t.result.append((rid, eid, site, group, *row, start, rnd() < eqa,
                             self.result_cost[lab], code, f"{src}-{lab}"))  # fmt: skip
        reports = []
        if rnd() < 0.6:
            reports.append("CT-CHEST" if level in ("tertiary", "out") else "DR-CHEST")
        if rnd() < 0.5:
            reports.append("ECG")
        if rnd() < 0.4:
            reports.append("US-ABD")
        if grade is not None and grade >= 2 and rnd() < 0.5:
            reports.append("PATH")
        for rcode in reports:
            pool = self.report_pools[rcode]
            t.result.append((rid, eid, site, group, *pool[int(rnd() * len(pool))], start,
                             rnd() < eqa, self.result_cost[rcode], code,
                             f"{src}-{rcode}"))  # fmt: skip
        return eid + 1


def _secondary_indexes() -> list[Index]:
    """Non-unique indexes of the tables the activity step fills (unique constraints stay:
    they guard the source identifiers)."""
    models = (Encounter, Diagnosis, Procedure, Result, Prescription, PrescriptionItem)
    tables = [Base.metadata.tables[m.__tablename__] for m in models]
    return [i for table in tables for i in table.indexes if not i.unique]


def generate_activity(
    session: Session,
    rng: random.Random,
    structure: Structure,
    *,
    year: int,
    progress: Progress | None = None,
    chunk_size: int = 5_000,
) -> ActivityReport:
    """One year (`year`) of activity for every resident alive at its start, inserted in bulk
    (SQLite executemany on the raw cursor, PostgreSQL COPY) in the session's transaction.
    Calibration and sources: the module docstring."""
    connection = session.connection()
    postgres = connection.dialect.name == "postgresql"
    gen = _Generator(session, rng, structure, year)
    report = ActivityReport(year=year)
    for lead_id in gen.leads:
        report.leads[lead_id] = LeadFigures(name=gen.inst[lead_id].name)
    first_eid = (connection.exec_driver_sql("SELECT max(id) FROM encounter").scalar() or 0) + 1
    first_pid = (connection.exec_driver_sql("SELECT max(id) FROM prescription").scalar() or 0) + 1
    if not postgres:
        # The indexes of tens of millions of rows must stay in memory during the load.
        connection.exec_driver_sql("PRAGMA cache_size=-4000000")
    # Into empty tables (a fresh demo), load first and build the secondary indexes afterwards:
    # one sorted build is about twice as fast as maintaining them row by row.
    deferred = _secondary_indexes() if first_eid == 1 else []
    for index in deferred:
        index.drop(connection)
    try:
        gen.run(connection, report, progress, chunk_size, first_eid, first_pid)
    finally:
        for index in deferred:
            index.create(connection)
        if not postgres:
            connection.exec_driver_sql("PRAGMA cache_size=-2000")
    if postgres:
        # COPY with explicit ids leaves the sequences behind.
        for table in ("encounter", "prescription"):
            connection.exec_driver_sql(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT coalesce(max(id), 1) FROM {table}))"
            )
    report.encounters = report.outpatient + report.emergency + report.inpatient
    session.expire_all()
    return report


__all__ = ["ActivityReport", "LeadFigures", "generate_activity", "load_structure_from_db"]


@dataclass(frozen=True)
class ReferralCandidate:
    """A demo encounter at a secondary or tertiary member of the resident's group, with the
    resident's home (primary) institution: the visit a referral leads to or follows."""

    encounter_id: int
    resident_id: int
    institution_id: int
    group_id: int | None
    department_id: int | None
    encounter_class: str
    started_at: Any
    ended_at: Any
    home_institution_id: int
    diagnosis_code: str | None
    diagnosis_name: str | None


def referral_candidates(session: Session, *, year: int) -> list[ReferralCandidate]:
    """Encounters of `year` at secondary/tertiary members of the resident's own group, of
    residents kept by a primary member, oldest first (for the referral demo step)."""
    from caregrid.registry.models import Resident

    home = Institution.__table__.alias("home")
    site = Institution.__table__.alias("site")
    start = datetime(year, 1, 1, tzinfo=UTC)
    end = datetime(year + 1, 1, 1, tzinfo=UTC)
    rows = session.execute(
        select(
            Encounter.id,
            Encounter.resident_id,
            Encounter.institution_id,
            Encounter.group_id,
            Encounter.department_id,
            Encounter.encounter_class,
            Encounter.started_at,
            Encounter.ended_at,
            Resident.home_institution_id,
            Diagnosis.code,
            Diagnosis.name,
        )
        .join(Resident, Resident.id == Encounter.resident_id)
        .join(site, site.c.id == Encounter.institution_id)
        .join(home, home.c.id == Resident.home_institution_id)
        .outerjoin(Diagnosis, (Diagnosis.encounter_id == Encounter.id) & (Diagnosis.rank == 1))
        .where(
            Encounter.started_at >= start,
            Encounter.started_at < end,
            site.c.level.in_(("tertiary", "secondary")),
            home.c.level == "primary",
            home.c.group_id == Encounter.group_id,
        )
        .order_by(Encounter.started_at, Encounter.id)
    ).all()
    return [ReferralCandidate(*row) for row in rows]  # type: ignore[arg-type]
