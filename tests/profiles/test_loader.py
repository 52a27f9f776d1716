"""The five shipped profiles load, and their values are the seeds' (one row per clause)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from caregrid.profiles.loader import list_profiles, load_profile, profile_ids
from caregrid.profiles.schemas import PROFILE_SEEDS, PolicyProfile

from ._support import normalise

ALL = list(PROFILE_SEEDS)


def test_all_five_profiles_ship_in_seed_order() -> None:
    assert profile_ids() == ["lincang", "linyi", "zhongwei", "yunnan_county", "national_city"]
    assert [meta.seed for meta in list_profiles()] == ["000", "001", "002", "003", "004"]


@pytest.mark.parametrize("name", ALL)
def test_profile_loads_with_its_own_seed(name: str) -> None:
    profile = load_profile(name)
    assert isinstance(profile, PolicyProfile)
    assert profile.id == name
    assert profile.seed == PROFILE_SEEDS[name]
    assert profile.parameters
    for key, parameter in profile.parameters.items():
        assert parameter.key == key
        assert (
            parameter.clause == "default"
            or parameter.clause.startswith(f"{profile.seed} §")
            or (parameter.clause.startswith(f"{profile.seed} 附件"))
        )


def test_load_profile_is_cached() -> None:
    assert load_profile("zhongwei") is load_profile("zhongwei")


@pytest.mark.parametrize(
    ("name", "kind", "document_number", "issued"),
    [
        ("lincang", "city_group", "临政办发〔2023〕58号", "2023-12-22"),
        ("linyi", "city_group", None, "2024-09-11"),
        ("zhongwei", "city_group", "卫政办发〔2023〕67号", "2023-11-02"),
        ("yunnan_county", "county_community", "云卫基层发〔2019〕7号", "2019-12-20"),
        ("national_city", "city_alliance", None, "2019"),
    ],
)
def test_profile_metadata_follows_the_seed_header(
    name: str, kind: str, document_number: str | None, issued: str
) -> None:
    meta = load_profile(name).meta
    assert (meta.group_kind, meta.document_number, meta.issued) == (kind, document_number, issued)


# One row per clause: (profile, key, value, clause).
SEED_VALUES: list[tuple[str, str, object, str]] = [
    # 000 临沧
    ("lincang", "referral.catalogue_by_level_required", True, "000 §三(一)2"),
    ("lincang", "referral.primary_first_contact", True, "000 §三(四)3"),
    ("lincang", "referral.grading_focus_diseases", ["高血压", "糖尿病"], "000 §三(五)1"),
    ("lincang", "governance.legal_status", "非独立法人组织", "000 §三(一)1"),
    ("lincang", "workforce.multi_site_practice_without_registration", True, "000 §三(三)2"),
    ("lincang", "pharmacy.long_prescription", True, "000 §三(三)6"),
    ("lincang", "pharmacy.extended_prescription", True, "000 §三(三)6"),
    ("lincang", "centres.remote_diagnosis", ["心电", "影像", "病理"], "000 §三(三)5"),
    (
        "lincang",
        "family_doctor.package_population_groups",
        ["普通人群", "慢性病患者", "妇女", "儿童", "老年人", "残疾人", "计划生育特殊家庭"],
        "000 §三(五)2",
    ),
    (
        "lincang",
        "elderly_care.bed_transitions",
        ["治疗床位", "护理床位", "养老床位"],
        "000 §三(六)",
    ),
    # 001 临沂
    ("linyi", "capacity.reserved_outpatient_share", 0.2, "001 §三(三)1"),
    ("linyi", "capacity.reserved_bed_share", 0.2, "001 §三(三)1"),
    ("linyi", "capacity.referral_priority", ["优先就诊", "优先检查", "优先住院"], "001 §三(三)1"),
    ("linyi", "capacity.priority_requires_contract", True, "001 §三(三)1"),
    (
        "linyi",
        "referral.down_referral_categories",
        ["急性病恢复期患者", "术后恢复期患者", "危重症稳定期患者"],
        "001 §三(一)3",
    ),
    ("linyi", "referral.single_registration", True, "001 §三(二)5"),
    ("linyi", "targets.primary_visit_share", "rising", "001 §二"),
    ("linyi", "targets.down_referral_rate", "rising", "001 §二"),
    ("linyi", "targets.first_batch_secondary_hospitals", 6, "001 §二"),
    ("linyi", "targets.first_batch_primary_institutions", 21, "001 §二"),
    ("linyi", "mutual_recognition.deadline", "2024-12-31", "001 §三(三)2"),
    (
        "linyi",
        "centres.shared_centres",
        ["医学检验", "医学影像", "心电诊断", "病理", "消毒供应"],
        "001 §三(三)2",
    ),
    ("linyi", "governance.min_secondary_general_hospitals", 1, "001 §三(一)2"),
    # 002 中卫
    ("zhongwei", "capacity.reserved_outpatient_share", pytest.approx(1 / 3), "002 §四(三)1"),
    ("zhongwei", "capacity.reserved_bed_share", 0.25, "002 §四(三)1"),
    (
        "zhongwei",
        "capacity.referral_priority",
        ["优先就诊", "优先检查", "优先住院"],
        "002 §四(三)1",
    ),
    ("zhongwei", "targets.primary_visit_share", 0.65, "002 §四(一)3"),
    ("zhongwei", "targets.cmi", 1.0, "002 §四(一)3"),
    ("zhongwei", "targets.average_length_of_stay", 7.8, "002 §四(一)3"),
    ("zhongwei", "targets.grade4_surgery_share", 0.15, "002 §四(一)3"),
    ("zhongwei", "targets.outpatient_discharge_ratio", 12, "002 §四(一)3"),
    ("zhongwei", "targets.maternal_mortality", 10.48, "002 §四(一)3"),
    ("zhongwei", "targets.infant_mortality", 3, "002 §四(一)3"),
    ("zhongwei", "targets.under5_mortality", 5, "002 §四(一)3"),
    ("zhongwei", "targets.tcm_hall_coverage", 1.0, "002 §四(三)3"),
    ("zhongwei", "targets.county_fiscal_subsidy_share", 0.25, "002 §四(四)1"),
    ("zhongwei", "targets.other_fiscal_subsidy_share", 0.15, "002 §四(四)1"),
    ("zhongwei", "payment.mode", "总额付费", "002 §四(四)4"),
    ("zhongwei", "payment.surplus_rule", "结余留用", "002 §四(四)4"),
    ("zhongwei", "payment.overspend_rule", "合理超支分担", "002 §四(四)4"),
    ("zhongwei", "payment.overspend_shared", True, "002 §四(四)4"),
    ("zhongwei", "payment.dip_point_method", True, "002 §四(四)4"),
    ("zhongwei", "pricing.reviews_per_year_max", 2, "002 §四(四)5"),
    ("zhongwei", "pharmacy.drug_use_model", "1+X", "002 §四(三)5"),
    ("zhongwei", "pharmacy.one_product_two_specs", True, "002 §四(三)5"),
    (
        "zhongwei",
        "pharmacy.one_product_two_specs_exemptions",
        ["联盟集采药品", "国家谈判药品", "特殊诊疗用药"],
        "002 §四(三)5",
    ),
    (
        "zhongwei",
        "centres.shared_centres",
        ["医学检验", "医学影像", "超声诊断", "心电诊断", "病理"],
        "002 §四(二)2(5)",
    ),
    ("zhongwei", "governance.head_office_staff", 25, "002 §四(一)1"),
    ("zhongwei", "mutual_recognition.within_group", True, "002 附件2 第9条"),
    # 003 云南县域
    ("yunnan_county", "targets.county_visit_share", 0.9, "003 §一"),
    ("yunnan_county", "targets.primary_visit_share", 0.65, "003 §一"),
    ("yunnan_county", "targets.out_of_county_inpatient_share", "falling", "003 §一"),
    ("yunnan_county", "targets.county_hospital_capability_share", 0.9, "003 §二(四)13"),
    ("yunnan_county", "targets.central_township_disease_count", 100, "003 §二(四)14"),
    ("yunnan_county", "targets.other_primary_disease_count", 60, "003 §二(四)14"),
    ("yunnan_county", "targets.primary_tcm_visit_share", 0.3, "003 §二(四)14"),
    ("yunnan_county", "targets.tcm_hall_coverage", 1.0, "003 §二(四)14"),
    ("yunnan_county", "targets.village_clinic_tcm_share", 0.8, "003 §二(四)14"),
    ("yunnan_county", "targets.chronic_standard_management_rate", 0.6, "003 §二(四)15"),
    ("yunnan_county", "targets.premature_cvd_mortality_reduction", 0.1, "003 §二(四)15"),
    ("yunnan_county", "targets.county_critical_care_centres_min", 1, "003 §二(四)15"),
    (
        "yunnan_county",
        "capacity.referral_priority",
        ["优先接诊", "优先检查", "优先住院"],
        "003 §二(五)17",
    ),
    ("yunnan_county", "referral.catalogue_by_level_required", True, "003 §二(五)17"),
    ("yunnan_county", "payment.mode", "按人头总额预付", "003 §二(六)20"),
    ("yunnan_county", "payment.prepaid_share", 0.8, "003 §二(六)20"),
    ("yunnan_county", "payment.prepay_interval_months", 3, "003 §二(六)20"),
    ("yunnan_county", "payment.prepay_in_first_month", True, "003 §二(六)20"),
    ("yunnan_county", "payment.allocation_by_population", True, "003 §二(六)20"),
    ("yunnan_county", "payment.surplus_rule", "结余留用", "003 §二(六)20"),
    ("yunnan_county", "payment.overspend_rule", "超支自负", "003 §二(六)20"),
    ("yunnan_county", "payment.overspend_shared", False, "003 §二(六)20"),
    ("yunnan_county", "payment.surplus_tilt_primary", True, "003 §二(六)20"),
    ("yunnan_county", "family_doctor.fee_prepaid_share", 0.8, "003 §二(六)21"),
    ("yunnan_county", "mutual_recognition.model", "乡检查、县诊断、区域互认", "003 §二(四)12"),
    ("yunnan_county", "mutual_recognition.between_groups", True, "003 §二(四)11"),
    ("yunnan_county", "pharmacy.two_invoice_system", True, "003 §二(三)8"),
    # 004 全国城市医联体
    ("national_city", "referral.deductible_counted_once", True, "004 §四(三)2"),
    (
        "national_city",
        "referral.down_referral_categories",
        ["急性病恢复期患者", "术后恢复期患者", "危重症稳定期患者"],
        "004 §五(三)1",
    ),
    ("national_city", "payment.mode", "总额打包付费", "004 §四(三)2"),
    ("national_city", "payment.surplus_rule", "结余留用", "004 §四(三)2"),
    ("national_city", "payment.overspend_rule", "超支合理分担", "004 §四(三)2"),
    ("national_city", "capacity.pooled_resources", ["床位", "号源", "设备"], "004 §五(二)1"),
    ("national_city", "mutual_recognition.within_group", True, "004 §五(二)1"),
    ("national_city", "pharmacy.unified_coding", True, "004 §五(二)4"),
    ("national_city", "governance.pilot_city_count", 100, "004 §一(三)"),
    ("national_city", "governance.grid_within_insurance_pool", True, "004 §四(一)"),
]


@pytest.mark.parametrize(("name", "key", "value", "clause"), SEED_VALUES)
def test_value_is_the_seeds(name: str, key: str, value: object, clause: str) -> None:
    parameter = load_profile(name).get(key)
    assert parameter is not None, f"{name} lacks {key}"
    assert parameter.value == value
    assert parameter.clause == clause
    assert not parameter.provisional or parameter.note


@pytest.mark.parametrize(
    ("name", "key", "comparator", "year"),
    [
        ("zhongwei", "capacity.reserved_outpatient_share", ">=", None),
        ("zhongwei", "targets.primary_visit_share", ">=", 2024),
        ("zhongwei", "targets.average_length_of_stay", "<=", 2024),
        ("zhongwei", "targets.outpatient_discharge_ratio", "<=", 2024),
        ("zhongwei", "targets.maternal_mortality", "<", 2025),
        ("zhongwei", "targets.infant_mortality", "<", 2025),
        ("zhongwei", "targets.under5_mortality", "<", 2025),
        ("yunnan_county", "targets.county_visit_share", ">=", 2020),
        ("yunnan_county", "targets.chronic_standard_management_rate", ">=", 2020),
        ("yunnan_county", "targets.county_critical_care_centres_min", ">=", 2021),
    ],
)
def test_target_direction_and_year(name: str, key: str, comparator: str, year: int | None) -> None:
    parameter = load_profile(name).get(key)
    assert parameter is not None
    assert (parameter.comparator, parameter.year) == (comparator, year)


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("lincang", "capacity.reserved_outpatient_share"),
        ("yunnan_county", "capacity.reserved_outpatient_share"),
        ("national_city", "capacity.reserved_bed_share"),
        ("linyi", "payment.mode"),
        ("lincang", "targets.primary_visit_share"),
        ("zhongwei", "referral.deductible_counted_once"),
        ("national_city", "referral.single_registration"),
    ],
)
def test_a_parameter_the_seed_does_not_set_is_absent(name: str, key: str) -> None:
    profile = load_profile(name)
    assert profile.get(key) is None
    assert profile.value(key) is None
    assert profile.value(key, default=0) == 0


def test_premature_cvd_mortality_reduction_is_against_2018() -> None:
    parameter = load_profile("yunnan_county").get("targets.premature_cvd_mortality_reduction")
    assert parameter is not None
    assert parameter.baseline_year == 2018


def test_risk_reserve_amount_is_provisional_because_the_seed_does_not_set_it() -> None:
    parameter = load_profile("yunnan_county").get("payment.risk_reserve_share")
    assert parameter is not None
    assert parameter.clause == "003 §二(六)20"
    assert parameter.provisional and parameter.note


@pytest.mark.parametrize("name", ALL)
def test_every_profile_has_a_provisional_referral_time_limit(name: str) -> None:
    parameter = load_profile(name).get("referral.response_time_limit_hours")
    assert parameter is not None
    assert parameter.clause == "default"
    assert parameter.provisional
    assert parameter.unit == "hours"
    assert parameter.note


@pytest.mark.parametrize("name", ALL)
def test_every_quote_is_verbatim_from_the_seed(name: str, seed_text: Callable[[str], str]) -> None:
    profile = load_profile(name)
    text = seed_text(profile.seed)
    missing = [
        key
        for key, parameter in profile.parameters.items()
        if parameter.quote and normalise(parameter.quote) not in text
    ]
    assert not missing
    for item in profile.scorecard.monitoring:
        assert normalise(item.text) in text
        assert item.title in item.text


def test_linyi_scorecard_has_16_criteria_in_four_dimensions() -> None:
    scorecard = load_profile("linyi").scorecard
    assert scorecard.source == "001 附件3"
    assert [c.number for c in scorecard.criteria] == list(range(1, 17))
    counts = {dimension: len(items) for dimension, items in scorecard.dimensions().items()}
    assert counts == {"权责协同": 3, "资源协同": 7, "业务协同": 4, "机制协同": 2}


def test_zhongwei_scorecard_has_15_criteria_in_four_dimensions() -> None:
    scorecard = load_profile("zhongwei").scorecard
    assert scorecard.source == "002 附件2"
    assert [c.number for c in scorecard.criteria] == list(range(1, 16))
    counts = {dimension: len(items) for dimension, items in scorecard.dimensions().items()}
    assert counts == {"责权协同": 3, "资源协同": 6, "业务协同": 4, "机制协同": 2}


@pytest.mark.parametrize(
    ("name", "number", "title"),
    [
        ("linyi", 4, "人员一体化管理"),
        ("linyi", 9, "优质医疗资源下沉"),
        ("linyi", 16, "薪酬制度改革"),
        ("zhongwei", 4, "人员一体化管理"),
        ("zhongwei", 8, "优质医疗资源下沉"),
        ("zhongwei", 15, "薪酬制度改革"),
    ],
)
def test_criterion_titles(name: str, number: int, title: str) -> None:
    criterion = load_profile(name).scorecard.criteria[number - 1]
    assert criterion.number == number
    assert criterion.title == title


@pytest.mark.parametrize("name", ["linyi", "zhongwei"])
def test_criteria_are_copied_verbatim(name: str, seed_text: Callable[[str], str]) -> None:
    profile = load_profile(name)
    text = seed_text(profile.seed)
    for criterion in profile.scorecard.criteria:
        assert normalise(criterion.text) in text, criterion.number


def test_yunnan_has_monitoring_items_instead_of_criteria() -> None:
    scorecard = load_profile("yunnan_county").scorecard
    assert scorecard.criteria == []
    titles = {item.title: item.clause for item in scorecard.monitoring}
    assert titles["县域就诊率"] == "003 §二(三)9"
    assert titles["目录外费用占比"] == "003 §二(六)22"


@pytest.mark.parametrize("name", ["lincang", "national_city"])
def test_lincang_and_national_have_no_criteria_and_say_why(name: str) -> None:
    scorecard = load_profile(name).scorecard
    assert scorecard.criteria == []
    assert scorecard.note


def test_national_scorecard_names_the_2018_assessment_document() -> None:
    assert "国卫医发〔2018〕26号" in load_profile("national_city").scorecard.source


def test_linyi_groups_are_the_annex_1_members() -> None:
    groups = load_profile("linyi").groups
    assert [group.lead.name for group in groups] == ["临沂市人民医院", "临沂市中医医院"]
    secondary = sum(1 for group in groups for member in group.members if member.tier == "secondary")
    primary = sum(1 for group in groups for member in group.members if member.tier == "primary")
    profile = load_profile("linyi")
    assert secondary == profile.value("targets.first_batch_secondary_hospitals") == 6
    assert primary == profile.value("targets.first_batch_primary_institutions") == 21


def test_sections_group_parameters_in_file_order() -> None:
    sections = load_profile("zhongwei").sections()
    assert next(iter(sections)) == "capacity"
    assert sections["capacity"][0].key == "capacity.reserved_outpatient_share"
    assert all(p.section == "targets" for p in sections["targets"])


def test_typed_accessors() -> None:
    zhongwei = load_profile("zhongwei")
    assert zhongwei.number("capacity.reserved_bed_share") == 0.25
    assert zhongwei.flag("capacity.priority_requires_contract") is True
    assert zhongwei.items("capacity.referral_priority") == ["优先就诊", "优先检查", "优先住院"]
    assert zhongwei.number("capacity.nothing") is None
    with pytest.raises(TypeError):
        load_profile("linyi").number("targets.primary_visit_share")


@pytest.mark.parametrize(
    ("name", "key", "shown"),
    [
        ("zhongwei", "capacity.reserved_outpatient_share", "≥ 33.33%"),
        ("zhongwei", "targets.average_length_of_stay", "≤ 7.8 天（2024年）"),
        ("zhongwei", "targets.maternal_mortality", "< 10.48/10万（2025年）"),
        ("zhongwei", "targets.infant_mortality", "< 3‰（2025年）"),
        ("zhongwei", "targets.outpatient_discharge_ratio", "≤ 12:1（2024年）"),
        ("linyi", "targets.primary_visit_share", "逐年提升（2025年）"),
        ("linyi", "referral.single_registration", "是"),
    ],
)
def test_display_value(name: str, key: str, shown: str) -> None:
    parameter = load_profile(name).get(key)
    assert parameter is not None
    assert parameter.display_value() == shown
