"""Each indicator on a small hand-built dataset, the expected answer worked out by hand in
the test: zero denominators, deaths, transfers, out-of-area visits and period boundaries."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from caregrid.indicators.registry import INDICATORS, premature_mortality
from tests.indicators.builders import (
    ALL,
    G1,
    G2,
    LEAD,
    SECOND,
    TOWN,
    VILLAGE,
    contract,
    delivery,
    package_service,
    resident,
    run,
    stay,
    store,
    visit,
)

D = Decimal


def test_every_indicator_is_declared_with_source_definition_and_unique_slug() -> None:
    slugs = [i.slug for i in INDICATORS]
    assert len(slugs) == len(set(slugs))
    for indicator in INDICATORS:
        assert indicator.source and indicator.definition and indicator.title
        assert (indicator.denominator is None) == (indicator.denominator_label is None)


def test_primary_visit_share_counts_village_and_township_visits_over_all_visits() -> None:
    s = store(
        encounter=[
            visit(date(2025, 1, 1), member=TOWN),  # primary, first day of the period
            visit(date(2025, 3, 5), member=VILLAGE),  # primary
            visit(date(2025, 3, 6), member=LEAD),  # hospital
            visit(date(2025, 4, 1), member=None, scope="out_of_city"),  # outside the group
            visit(date(2024, 12, 31), member=TOWN),  # previous year: not counted
            visit(date(2026, 1, 1), member=TOWN),  # next year: not counted
            stay(date(2025, 5, 1), date(2025, 5, 4)),  # admissions are not visits
        ]
    )
    # 2 primary visits out of 4 visits in 2025 = 50 %.
    assert run(s, "primary_visit_share")[ALL] == (2, 4, D("0.500000"))
    by_month = run(s, "primary_visit_share", by=("month",))
    assert by_month[(None, None, "2025-01", None)] == (1, 1, D("1.000000"))
    assert by_month[(None, None, "2025-03", None)] == (1, 2, D("0.500000"))
    assert by_month[(None, None, "2025-04", None)] == (0, 1, D("0.000000"))
    # the member dimension is not declared for this indicator: reported across members
    assert set(run(s, "primary_visit_share", by=("member",))) == {ALL}


def test_zero_denominator_gives_no_value_not_zero() -> None:
    s = store(encounter=[stay(date(2025, 1, 1), date(2025, 1, 2))])
    assert run(s, "primary_visit_share")[ALL] == (0, 0, None)
    assert run(s, "primary_tcm_share")[ALL] == (0, 0, None)


def test_county_and_city_visit_shares_count_visits_and_admissions_by_scope() -> None:
    s = store(
        encounter=[
            visit(date(2025, 2, 1), scope="local"),
            visit(date(2025, 2, 2), scope="local"),
            visit(date(2025, 2, 3), member=None, scope="out_of_county"),
            visit(date(2025, 2, 4), member=None, scope="out_of_city"),
            stay(date(2025, 2, 5), date(2025, 2, 9), scope="local"),
            stay(date(2025, 12, 30), None, member=None, scope="out_of_province"),  # still in
        ]
    )
    # 6 encounters; local: 2 visits + 1 stay = 3; in the city: + out_of_county = 4.
    assert run(s, "county_visit_share")[ALL] == (3, 6, D("0.500000"))
    assert run(s, "city_visit_share")[ALL][:2] == (4, 6)
    assert run(s, "city_visit_share")[ALL][2] == D("0.666667")


def test_a_groups_coverage_counts_its_own_residents_care_wherever_they_sought_it() -> None:
    """县域内就诊率 of a group is about the group's residents: their visits outside the county
    (at no member, so with no group of their own) count against it, and a visit of another
    group's resident at one of its members counts for that other group."""
    s = store(
        encounter=[
            visit(date(2025, 2, 1), scope="local"),  # G1 resident at a G1 member
            visit(date(2025, 2, 2), member=None, group=None, scope="out_of_county"),  # G1 res.
            stay(
                date(2025, 3, 1), date(2025, 3, 4), member=None, group=None, scope="out_of_province"
            ),  # a G1 resident admitted outside the province
            visit(date(2025, 2, 3), scope="local", home_group=G2),  # G2 resident at G1
            visit(date(2025, 2, 4), member=None, group=None, scope="out_of_city", home_group=G2),
        ]
    )
    # G1's residents: 3 encounters, 1 within the county.
    assert run(s, "county_visit_share", group_id=G1)[ALL] == (1, 3, D("0.333333"))
    assert run(s, "county_inpatient_share", group_id=G1)[ALL] == (0, 1, D("0.000000"))
    assert run(s, "out_of_county_inpatient_share", group_id=G1)[ALL] == (1, 1, D("1.000000"))
    # G2's residents: 2 encounters, 1 within the county (at a G1 member).
    assert run(s, "county_visit_share", group_id=G2)[ALL] == (1, 2, D("0.500000"))
    by_group = run(s, "city_visit_share", by=("group",))
    assert by_group[(G1, None, None, None)][:2] == (2, 3)  # out of county is in the city
    assert by_group[(G2, None, None, None)][:2] == (1, 2)


def test_county_inpatient_share_and_its_complement_use_admissions_only() -> None:
    s = store(
        encounter=[
            stay(date(2025, 1, 10), date(2025, 1, 12)),
            stay(date(2025, 2, 10), date(2025, 2, 12)),
            stay(date(2025, 3, 10), date(2025, 3, 20), member=None, scope="out_of_county"),
            stay(date(2024, 12, 28), date(2025, 1, 3)),  # admitted last year: not counted
            visit(date(2025, 1, 1), member=None, scope="out_of_county"),
        ]
    )
    assert run(s, "county_inpatient_share")[ALL] == (2, 3, D("0.666667"))
    assert run(s, "out_of_county_inpatient_share")[ALL] == (1, 3, D("0.333333"))


def test_lead_cmi_is_mean_drg_weight_of_grouped_lead_discharges() -> None:
    s = store(
        encounter=[
            stay(date(2025, 1, 1), date(2025, 1, 5), drg_w=12000),  # 1.2
            stay(date(2025, 1, 3), date(2025, 1, 8), drg_w=8000, died=True),  # 0.8, death
            stay(date(2025, 1, 3), date(2025, 1, 9), drg_w=None),  # not grouped
            stay(date(2025, 1, 3), date(2025, 1, 9), member=TOWN, drg_w=5000),  # not the lead
            stay(date(2024, 12, 20), date(2025, 1, 2), drg_w=16000),  # discharged in 2025
            stay(date(2025, 12, 20), date(2026, 1, 2), drg_w=30000),  # discharged in 2026
        ]
    )
    # (1.2 + 0.8 + 1.6) / 3 = 1.2
    assert run(s, "lead_cmi")[ALL] == (36000, 3, D("1.200000"))


def test_average_length_of_stay_counts_same_day_stays_as_one_day_and_includes_deaths() -> None:
    s = store(
        encounter=[
            stay(date(2025, 3, 1), date(2025, 3, 1)),  # same day: 1
            stay(date(2025, 3, 1), date(2025, 3, 11), died=True),  # 10
            stay(date(2025, 2, 27), date(2025, 3, 3)),  # 4 (transfer across the month end)
            stay(date(2025, 3, 1), None),  # still in hospital: not a discharge
        ]
    )
    # (1 + 10 + 4) / 3 = 5
    assert run(s, "average_length_of_stay")[ALL] == (15, 3, D("5.000000"))


def test_grade4_share_counts_operations_and_surgery_share_counts_discharges() -> None:
    s = store(
        encounter=[
            stay(date(2025, 6, 1), date(2025, 6, 9), graded=2, grade4=1),
            stay(date(2025, 6, 1), date(2025, 6, 9), graded=1, grade4=1),
            stay(date(2025, 6, 1), date(2025, 6, 9), graded=1, grade4=0),
            stay(date(2025, 6, 1), date(2025, 6, 9)),
            stay(date(2025, 6, 1), date(2025, 6, 9), member=SECOND, group=G2, graded=5, grade4=5),
        ]
    )
    g1 = run(s, "grade4_surgery_share", group_id=G1)
    # group 1 lead: 2 grade-4 of 4 graded operations = 50 %; 3 of 4 discharges operated.
    assert g1[ALL] == (2, 4, D("0.500000"))
    assert run(s, "surgery_share", group_id=G1)[ALL] == (3, 4, D("0.750000"))
    by_group = run(s, "grade4_surgery_share", by=("group",))
    assert by_group[(G2, None, None, None)] == (5, 5, D("1.000000"))


def test_outpatient_discharge_ratio_dates_visits_and_discharges_separately() -> None:
    visits = [visit(date(2025, 1, d), member=LEAD) for d in range(1, 25)]
    s = store(
        encounter=[
            *visits,
            visit(date(2025, 1, 1), member=TOWN),  # not the lead
            stay(date(2024, 12, 30), date(2025, 1, 2)),
            stay(date(2025, 1, 10), date(2025, 2, 1)),  # discharged in February
        ]
    )
    january = (date(2025, 1, 1), date(2025, 1, 31))
    # 24 lead visits / 1 January discharge = 24:1
    assert run(s, "outpatient_discharge_ratio", period=january)[ALL] == (24, 1, D("24.000000"))
    assert run(s, "outpatient_discharge_ratio")[ALL][:2] == (24, 2)


def test_primary_tcm_share_by_member() -> None:
    s = store(
        encounter=[
            visit(date(2025, 1, 1), member=TOWN, tcm=True),
            visit(date(2025, 1, 2), member=TOWN),
            visit(date(2025, 1, 3), member=VILLAGE),
            visit(date(2025, 1, 4), member=LEAD, tcm=True),  # hospital TCM is not primary
        ]
    )
    assert run(s, "primary_tcm_share")[ALL] == (1, 3, D("0.333333"))
    by_member = run(s, "primary_tcm_share", by=("member",))
    assert by_member[(None, TOWN, None, None)] == (1, 2, D("0.500000"))
    assert by_member[(None, VILLAGE, None, None)] == (0, 1, D("0.000000"))


def test_out_of_catalogue_share_bills_stays_on_discharge_and_skips_outside_care() -> None:
    s = store(
        encounter=[
            visit(date(2025, 1, 1), total_fen=10_000, ooc_fen=500),
            stay(date(2024, 12, 25), date(2025, 1, 4), total_fen=90_000, ooc_fen=9_500),
            visit(
                date(2025, 1, 1), member=None, scope="out_of_city", total_fen=50_000, ooc_fen=50_000
            ),
        ]
    )
    # (500 + 9,500) / (10,000 + 90,000) = 10 %
    assert run(s, "out_of_catalogue_share")[ALL] == (10_000, 100_000, D("0.100000"))


def test_mutual_recognition_counts_rate_and_avoided_cost() -> None:
    def decision(on: date, used: bool, fen: int, member: int = TOWN) -> dict[str, object]:
        return {
            "id": on.toordinal() * 10 + fen % 7,
            "group_id": G1,
            "member": member,
            "day": on,
            "used": int(used),
            "avoided_fen": fen if used else 0,
        }

    s = store(
        decision=[
            decision(date(2025, 5, 1), True, 4_550),
            decision(date(2025, 5, 2), True, 12_000, member=LEAD),
            decision(date(2025, 5, 3), False, 0),
            decision(date(2026, 1, 1), True, 99_999),  # next period
        ]
    )
    assert run(s, "recognition_used")[ALL] == (2, None, D("2.000000"))
    assert run(s, "recognition_rate")[ALL] == (2, 3, D("0.666667"))
    # 45.50 + 120.00 元
    assert run(s, "recognition_avoided_cost")[ALL] == (16_550, None, D("165.500000"))


def _referral(
    rid: int,
    on: date,
    *,
    up: bool,
    accepted: bool = True,
    closed: bool = False,
    cancelled: bool = False,
    member: int = TOWN,
) -> dict[str, object]:
    return {
        "id": rid,
        "group_id": G1,
        "member": member,
        "to_member": LEAD,
        "up": int(up),
        "down": int(not up),
        "submitted_day": on,
        "accepted": int(accepted),
        "cancelled": int(cancelled),
        "closed": int(closed),
    }


def test_referral_counts_down_rate_and_closed_loop() -> None:
    s = store(
        referral=[
            _referral(1, date(2025, 1, 1), up=True, closed=True),
            _referral(2, date(2025, 1, 2), up=True, closed=False),
            _referral(3, date(2025, 1, 3), up=True, accepted=False),  # rejected or waiting
            _referral(4, date(2025, 1, 4), up=True, cancelled=True),  # cancelled: left out
            _referral(5, date(2025, 1, 5), up=False, closed=True, member=LEAD),
            _referral(6, date(2024, 12, 31), up=False, closed=True, member=LEAD),
        ]
    )
    assert run(s, "up_referrals")[ALL][0] == 3
    assert run(s, "down_referrals")[ALL][0] == 1
    # 1 down of 4 referrals
    assert run(s, "down_referral_rate")[ALL] == (1, 4, D("0.250000"))
    # accepted: 1, 2, 5; closed among them: 1, 5
    assert run(s, "closed_loop_rate")[ALL] == (2, 3, D("0.666667"))
    by_member = run(s, "up_referrals", by=("member",))
    assert by_member[(None, TOWN, None, None)][0] == 3


def test_reserved_slot_share_and_use() -> None:
    def slot(sid: int, reserved: bool, used: bool, booked: bool) -> dict[str, object]:
        return {
            "id": sid,
            "group_id": G1,
            "member": LEAD,
            "day": date(2025, 3, 1),
            "reserved_offered": int(reserved),
            "booked": int(booked),
            "reserved_used": int(used),
        }

    s = store(
        slot=[
            slot(1, True, True, True),
            slot(2, True, False, True),  # released, then booked by anyone: not used as reserved
            slot(3, True, False, False),
            slot(4, False, False, True),
            slot(5, False, False, False),
            slot(6, False, False, False),
        ]
    )
    assert run(s, "reserved_slot_share")[ALL] == (3, 6, D("0.500000"))
    assert run(s, "reserved_slot_use")[ALL] == (1, 3, D("0.333333"))


def test_reserved_bed_share_on_the_last_day_and_bed_use_counts_admissions_in_the_period() -> None:
    def beds(first: int, reserved: int, since: date | None) -> list[dict[str, object]]:
        return [
            {"id": i, "group_id": G1, "member": LEAD, "reserved": int(i < first + reserved),
             "since": since}
            for i in range(first, first + 4)
        ]  # fmt: skip

    def stay(sid: int, on: date, reserved: bool) -> dict[str, object]:
        return {"id": sid, "group_id": G1, "member": LEAD, "day": on, "reserved": int(reserved)}

    s = store(
        bed=[
            *beds(1, 1, None),  # a ward pooled before the date was recorded: always counted
            *beds(5, 1, date(2024, 7, 1)),
            *beds(9, 1, date(2025, 12, 31)),  # pooled on the last day of 2025
            *beds(13, 4, date(2026, 2, 1)),  # a ward wholly reserved, pooled in 2026
        ],
        bed_stay=[
            stay(1, date(2025, 3, 1), True),
            stay(2, date(2025, 3, 2), False),
            stay(3, date(2025, 3, 3), False),
            stay(4, date(2025, 3, 4), False),
            stay(5, date(2024, 12, 31), True),  # previous year
        ],
    )
    # 31 December 2025: three wards, 3 of 12 beds reserved = 25 % (Zhongwei: at least 1/4)
    assert run(s, "reserved_bed_share")[ALL] == (3, 12, D("0.250000"))
    # June 2025: the first two wards
    june = (date(2025, 6, 1), date(2025, 6, 30))
    assert run(s, "reserved_bed_share", period=june)[ALL] == (2, 8, D("0.250000"))
    # 2026: the reserved ward joins: 7 of 16
    assert run(s, "reserved_bed_share", period=(date(2026, 1, 1), date(2026, 12, 31)))[ALL] == (
        7, 16, D("0.437500"),
    )  # fmt: skip
    # 2020: only the ward with no recorded date
    assert run(s, "reserved_bed_share", period=(date(2020, 1, 1), date(2020, 1, 31)))[ALL] == (
        1, 4, D("0.250000"),
    )  # fmt: skip
    assert run(s, "reserved_bed_use")[ALL] == (1, 4, D("0.250000"))


def test_chronic_standard_management_and_control_follow_the_public_health_standard() -> None:
    def enrol(eid: int, program: str, on: date, closed: date | None = None) -> dict[str, object]:
        return {
            "id": eid,
            "group_id": G1,
            "member": TOWN,
            "grid": None,
            "program": program,
            "enrolled_on": on,
            "enrolled_ord": on.toordinal(),
            "closed_on": closed,
        }

    ids = iter(range(1, 1000))

    def follow(eid: int, on: date, controlled: bool, face: bool = True) -> dict[str, object]:
        return {
            "id": next(ids),
            "enrolment_id": eid,
            "followed_on": on,
            "controlled": int(controlled),
            "face": int(face),
        }

    followups = [
        # 1: four clinic visits, the last controlled -> standard, controlled
        *[follow(1, date(2025, m, 1), m == 11) for m in (2, 5, 8, 11)],
        # 2: enrolled 10 January: 356 days -> floor((8 x 356 + 365) / 730) = 4 required;
        #    five visits, the last not controlled -> standard, not controlled
        *[follow(2, date(2025, m, 1), m != 12) for m in (2, 4, 6, 8, 12)],
        # 3: three visits -> not standard; last controlled
        *[follow(3, date(2025, m, 1), m == 9) for m in (3, 6, 9)],
        # 8: enrolled 1 October: 92 days -> floor((736 + 365) / 730) = 1 required; one home visit
        follow(8, date(2025, 11, 20), True),
        # 9: four visits but one by phone -> 3 face-to-face of 4 required; last by phone, not
        #    controlled
        *[follow(9, date(2025, m, 1), False, face=m != 10) for m in (1, 4, 7, 10)],
        # a follow-up of patient 2 in the next year does not count
        follow(2, date(2026, 1, 5), True),
        # 10: last seen controlled on 1 March, over 182 days before 31 December: lost, so not
        #     controlled (the chronic domain's rule)
        follow(10, date(2025, 3, 1), True),
        # 11: two follow-ups on one day: the later record (not controlled) decides
        follow(11, date(2025, 12, 20), True),
        follow(11, date(2025, 12, 20), False),
    ]
    s = store(
        enrolment=[
            enrol(1, "hypertension", date(2024, 5, 1)),
            enrol(2, "hypertension", date(2025, 1, 10)),
            enrol(3, "hypertension", date(2023, 1, 1)),
            enrol(4, "hypertension", date(2025, 11, 1)),  # no follow-up yet: 1 required
            enrol(5, "hypertension", date(2020, 1, 1), closed=date(2024, 6, 1)),  # closed before
            enrol(6, "hypertension", date(2026, 2, 1)),  # enrolled after the period
            enrol(7, "diabetes", date(2024, 1, 1)),
            enrol(8, "hypertension", date(2025, 10, 1)),
            enrol(9, "hypertension", date(2024, 1, 1)),
            enrol(10, "hypertension", date(2023, 1, 1)),
            enrol(11, "hypertension", date(2024, 1, 1)),
        ],
        followup=followups,
    )
    # managed in 2025: 1, 2, 3, 4, 8, 9, 10, 11; standard: 1, 2, 8 -> 3 of 8 (10 and 11 have
    # one and two face-to-face visits of 4 required)
    assert run(s, "hypertension_standard_management")[ALL] == (3, 8, D("0.375000"))
    # controlled on 31 December: 1 (1 Nov), 3 (1 Sep, 121 days before: not lost), 8 -> 3 of 8;
    # 2 and 9 were last not controlled, 4 never came, 10 is lost, 11's later record decides
    assert run(s, "hypertension_control")[ALL] == (3, 8, D("0.375000"))
    # December alone: the latest follow-up may be before the month (1: 1 November, 3:
    # 1 September, 8: 20 November), as in the chronic domain's status on 31 December
    december = (date(2025, 12, 1), date(2025, 12, 31))
    assert run(s, "hypertension_control", period=december)[ALL] == (3, 8, D("0.375000"))
    assert run(s, "diabetes_standard_management")[ALL] == (0, 1, D("0.000000"))


def test_contract_coverage_of_everyone_and_of_key_populations_on_the_last_day() -> None:
    def signed(cid: int, rid: int, start: date, last: date) -> dict[str, object]:
        return {
            "id": cid,
            "resident_id": rid,
            "group_id": G1,
            "start_date": start,
            "last_day": last,
        }

    s = store(
        resident=[
            resident(1, date(1950, 1, 1)),  # 75: key, signed
            resident(2, date(1950, 1, 1)),  # 75: key, contract ended in June
            resident(3, date(2021, 6, 1)),  # 4: key (child), not signed
            resident(4, date(1990, 1, 1)),  # 35: enrolled hypertensive -> key, signed
            resident(5, date(1990, 1, 1)),  # 35: not key, signed
            resident(6, date(1990, 1, 1)),  # 35: not key, not signed
            resident(7, date(1940, 1, 1), died=date(2025, 12, 1)),  # died: not counted
            resident(8, date(2026, 1, 1)),  # born after the period: not counted
        ],
        contract=[
            signed(1, 1, date(2025, 1, 1), date(2025, 12, 31)),
            signed(2, 2, date(2025, 1, 1), date(2025, 6, 30)),
            signed(3, 4, date(2024, 3, 1), date(2026, 2, 28)),
            signed(4, 5, date(2025, 12, 31), date(2026, 12, 30)),  # signed on the last day
            signed(5, 7, date(2025, 1, 1), date(2025, 12, 31)),
        ],
        enrolment=[
            {
                "id": 1,
                "resident_id": 4,
                "group_id": G1,
                "member": TOWN,
                "program": "hypertension",
                "enrolled_on": date(2023, 1, 1),
                "enrolled_ord": date(2023, 1, 1).toordinal(),
                "closed_on": None,
            }
        ],
    )
    # alive on 31 December: 1-6; signed: 1, 4, 5
    assert run(s, "contract_coverage")[ALL] == (3, 6, D("0.500000"))
    # key: 1, 2, 3, 4; signed among them: 1, 4
    assert run(s, "key_population_contract_coverage")[ALL] == (2, 4, D("0.500000"))


def test_maternal_infant_and_under5_mortality_per_live_births() -> None:
    births = [
        stay(date(2025, m, 10), date(2025, m, 13), resident=100 + m, delivery=True, member=LEAD)
        for m in range(1, 11)
    ]
    s = store(
        encounter=births,
        resident=[
            # mother 101 dies 30 days after her delivery discharge: maternal death
            resident(101, date(1995, 1, 1), died=date(2025, 2, 12), female=True),
            # mother 102 dies 60 days after: not maternal
            resident(102, date(1995, 1, 1), died=date(2025, 4, 14), female=True),
            resident(1, date(2025, 3, 1), died=date(2025, 9, 1)),  # infant
            resident(2, date(2024, 9, 1), died=date(2025, 8, 31)),  # 11 months old: infant
            resident(3, date(2024, 9, 1), died=date(2025, 9, 1)),  # first birthday: not infant
            resident(4, date(2021, 1, 1), died=date(2025, 6, 1)),  # 4 years: under five
            resident(5, date(2020, 1, 1), died=date(2025, 6, 1)),  # 5 years: not
            resident(6, date(2025, 1, 1), died=date(2026, 1, 1)),  # next year
        ],
    )
    # 1 maternal death / 10 live births x 100,000
    assert run(s, "maternal_mortality")[ALL] == (1, 10, D("10000.000000"))
    # infant deaths 1, 2 -> 2 / 10 x 1000 = 200 ‰
    assert run(s, "infant_mortality")[ALL] == (2, 10, D("200.000000"))
    # under five: 1, 2, 3, 4 -> 400 ‰
    assert run(s, "under5_mortality")[ALL] == (4, 10, D("400.000000"))


def test_premature_mortality_life_table_by_hand() -> None:
    # Band 0 (30-34): 2 deaths in 1,000 people; other bands: 0 deaths.
    # m = 0.002, q = 5 x 0.002 / (1 + 2.5 x 0.002) = 0.01 / 1.005; result = q
    expected = D("0.01") / D("1.005")
    population = {band: 1000 for band in range(8)}
    q12 = D("1e-12")
    assert premature_mortality({0: 2}, population).quantize(q12) == expected.quantize(q12)  # type: ignore[union-attr]
    # two bands with q each: 1 - (1 - q)^2
    two = premature_mortality({0: 2, 7: 2}, population)
    assert two is not None and two.quantize(q12) == (1 - (1 - expected) ** 2).quantize(q12)
    assert premature_mortality({}, {0: 10}) is None  # a band without people


def test_premature_mortality_from_deaths_and_mid_year_population() -> None:
    residents = [resident(i, date(1990, 1, 1)) for i in range(1, 11)]  # 35 at mid-2025: band 1
    residents += [resident(100 + b, date(1993 - 5 * b, 1, 1)) for b in range(8)]  # one per band
    residents.append(resident(200, date(1960, 1, 1), died=date(2025, 3, 1)))  # 65: band 7
    residents.append(resident(201, date(1990, 1, 1), died=date(2025, 3, 1)))  # 35, not chronic
    s = store(
        resident=residents,
        encounter=[
            stay(date(2025, 2, 20), date(2025, 3, 1), resident=200, died=True, chronic4=True),
            stay(date(2025, 2, 20), date(2025, 3, 1), resident=201, died=True),
        ],
    )
    # band 7 (65-69): 1 chronic death (201 died of something else); people alive at mid-year
    # in band 7: resident 107 only (200 died before mid-year). m = 1, q = 5 / 3.5 > 1 is
    # capped at 1 (everyone in the band dies), so the probability is 1.
    num, den, value = run(s, "premature_chronic_mortality")[ALL]
    assert num == 1
    assert den == 10 + 8  # residents 30-69 alive at mid-year
    assert value == D(1)


def test_contract_fulfilment_counts_services_due_and_delivered_capped_on_the_last_day() -> None:
    chronic_pkg, basic_pkg = 1, 2
    services = [
        package_service(1, chronic_pkg, "chronic_followup", 4),
        package_service(2, chronic_pkg, "health_check", 1),
        package_service(3, basic_pkg, "health_education", 1),
    ]
    contracts = [
        # A: 1 March 2025 - 1 March 2026, chronic package. Follow-ups fall due after 91, 182,
        # 273 and 364 days (31 May, 30 Aug, 29 Nov, 28 Feb): 3 due by 31 December; the
        # health check falls due on 28 February 2026: 0 due.
        contract(1, 1, date(2025, 3, 1), date(2026, 3, 1), chronic_pkg, member=TOWN, grid=100),
        # B: two years from 1 July 2024, basic package: one due in its first year (30 June
        # 2025), none yet in the second (due 30 June 2026)
        contract(2, 2, date(2024, 7, 1), date(2026, 7, 1), basic_pkg, member=TOWN, grid=100),
        # C: 2025 calendar year, basic package: due on 31 December 2025, not delivered
        contract(3, 3, date(2025, 1, 1), date(2026, 1, 1), basic_pkg, member=VILLAGE, grid=200),
        # D: expired on 1 January 2025; E: terminated on 1 September: not in force at the end
        contract(4, 4, date(2024, 1, 1), date(2025, 1, 1), chronic_pkg),
        contract(5, 5, date(2025, 2, 1), date(2026, 2, 1), chronic_pkg, ended=date(2025, 9, 1)),
        # F (group 2): signed 10 March 2025, its only service falls due in March 2026
        contract(6, 6, date(2025, 3, 10), date(2026, 3, 10), basic_pkg, group=G2, grid=300),
    ]
    ids = iter(range(1, 100))

    def follow(rid: int, on: date, face: bool = True) -> dict[str, object]:
        return {"id": next(ids), "enrolment_id": rid, "resident_id": rid,
                "followed_on": on, "controlled": 1, "face": int(face)}  # fmt: skip

    followups = [
        follow(1, date(2025, 2, 15)),  # before A began: not A's
        *[follow(1, date(2025, m, 1)) for m in (4, 7, 10, 12)],  # 4 delivered, 3 due: 3
        follow(1, date(2025, 11, 1), face=False),  # by phone: not a face-to-face follow-up
        follow(5, date(2025, 5, 1)),
    ]
    deliveries = [
        delivery(1, 1, "health_check", date(2025, 6, 1)),  # early: 1 delivered, 0 due -> 0
        delivery(2, 2, "health_education", date(2024, 9, 1)),  # B: 1 of 1
        delivery(3, 2, "health_education", date(2026, 1, 10)),  # after the period
        delivery(4, 4, "health_check", date(2024, 6, 1)),
    ]
    s = store(contract=contracts, package_service=services, followup=followups,
              delivery=deliveries)  # fmt: skip
    # due: A 3 + 0, B 1, C 1 = 5; done: A 3 (4 capped at 3) + 0, B 1, C 0 = 4
    assert run(s, "contract_fulfilment")[ALL] == (4, 5, D("0.800000"))
    by_member = run(s, "contract_fulfilment", ("member",))
    assert by_member[(None, TOWN, None, None)] == (4, 4, D("1.000000"))
    assert by_member[(None, VILLAGE, None, None)] == (0, 1, D("0.000000"))
    by_grid = run(s, "contract_fulfilment", ("grid",))
    assert by_grid[(None, None, None, 100)] == (4, 4, D("1.000000"))
    assert by_grid[(None, None, None, 200)] == (0, 1, D("0.000000"))
    # zero denominator: group 2's contract has nothing due yet -> no value, not 0 %
    assert run(s, "contract_fulfilment", group_id=G2)[ALL] == (0, 0, None)


def test_contract_fulfilment_due_counts_match_the_family_doctor_rules() -> None:
    """The engines' closed form gives the same number due as familydoctor.rules for contracts
    of one to three years, across 29 February and on every kind of day."""
    from caregrid.familydoctor import rules as fd

    starts = [date(2024, 2, 29), date(2023, 3, 1), date(2024, 12, 31), date(2025, 6, 15)]
    cases = []
    for start in starts:
        for years in (1, 2, 3):
            for times in (1, 2, 4, 6):
                cases.append((start, fd.contract_end(start, years), times))
    services = [package_service(n, n, "health_check", t) for n, (_, _, t) in enumerate(cases, 1)]
    contracts = [
        contract(n, n, start, end, n, group=n) for n, (start, end, _) in enumerate(cases, 1)
    ]
    s = store(contract=contracts, package_service=services)
    for on in (date(2025, 2, 28), date(2025, 12, 31), date(2026, 6, 30)):
        cells = run(s, "contract_fulfilment", ("group",), period=(date(on.year, 1, 1), on))
        for n, (start, end, times) in enumerate(cases, 1):
            expected = fd.service_status(
                fd.ServiceSpec("health_check", "", times), start=start, end=end,
                delivered=0, on=on,
            ).due  # fmt: skip
            in_force = start <= on <= end
            got = cells.get((n, None, None, None), (0, 0, None))[1]
            assert got == (expected if in_force else 0), (start, end, times, on)
