"""The registry API end to end: institutions, groups, practitioners (multi-site), residents
(validated ID numbers, masking, duplicates, access, audit) and bad input."""

from __future__ import annotations

from datetime import date

from fastapi.testclient import TestClient
from tests.conftest import City, login

from caregrid.registry.idnumber import make_id_number

ZHANG = make_id_number("371302", date(1958, 3, 14), 2)  # female (even sequence)


def register(client: TestClient, headers: dict[str, str], city: City, **extra: object) -> dict:
    body = {
        "id_number": ZHANG,
        "name": "张秀英",
        "home_institution_id": city.township_id,
        "grid_id": city.grid_id,
        "phone": "13812345678",
    } | extra
    response = client.post("/api/v1/residents", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def test_groups_list_their_named_members(client: TestClient, city: City) -> None:
    headers = login(client, "gp_wang")
    groups = client.get("/api/v1/groups", headers=headers).json()
    names = {g["name"]: g for g in groups}
    assert names["测试市人民医院医疗集团"]["member_count"] == 2
    members = client.get(f"/api/v1/groups/{city.group_id}/members", headers=headers).json()
    assert [m["role"] for m in members] == ["lead", "member"]


def test_institutions_search_and_filter_with_pagination(client: TestClient, city: City) -> None:
    headers = login(client, "gp_wang")
    page = client.get(
        "/api/v1/institutions", params={"q": "人民医院", "size": 1}, headers=headers
    ).json()
    assert page["total"] == 1 and page["items"][0]["level"] == "tertiary"
    primary = client.get(
        "/api/v1/institutions", params={"level": "primary"}, headers=headers
    ).json()
    assert {i["name"] for i in primary["items"]} == {"金雀山街道社区卫生服务中心"}
    assert (
        client.get(
            "/api/v1/institutions", params={"level": "quaternary"}, headers=headers
        ).status_code
        == 422
    )
    assert (
        client.get("/api/v1/institutions", params={"size": 1000}, headers=headers).status_code
        == 422
    )


def test_unknown_institution_is_404_naming_it(client: TestClient, city: City) -> None:
    response = client.get("/api/v1/institutions/999999", headers=login(client, "gp_wang"))
    assert response.status_code == 404
    assert response.json()["error"] == "UnknownInstitution"


def test_only_admins_create_institutions_and_bad_links_are_named(
    client: TestClient, city: City
) -> None:
    body = {
        "code": "T-NEW",
        "name": "新建社区卫生服务站",
        "level": "village",
        "kind": "general",
        "group_id": city.group_id,
        "parent_id": city.township_id,
    }
    assert (
        client.post("/api/v1/institutions", json=body, headers=login(client, "gp_wang")).status_code
        == 403
    )
    admin = login(client, "admin_sun")
    created = client.post("/api/v1/institutions", json=body, headers=admin)
    assert created.status_code == 201
    assert created.json()["grid_id"] == city.grid_id
    bad = client.post(
        "/api/v1/institutions", json=body | {"code": "T-NEW2", "parent_id": 424242}, headers=admin
    )
    assert bad.status_code == 404 and bad.json()["field"] == "parent_id"
    dup = client.post("/api/v1/institutions", json=body, headers=admin)
    assert dup.status_code == 422 and dup.json()["field"] == "code"


def test_a_practitioner_can_practise_at_several_members(client: TestClient, city: City) -> None:
    admin = login(client, "admin_sun")
    p = client.post(
        "/api/v1/practitioners",
        json={"code": "P-1", "name": "刘德明", "sex": "male", "title": "主任医师"},
        headers=admin,
    ).json()
    client.post(
        f"/api/v1/practitioners/{p['id']}/roles",
        json={"institution_id": city.lead_id, "primary_site": True},
        headers=admin,
    )
    both = client.post(
        f"/api/v1/practitioners/{p['id']}/roles",
        json={"institution_id": city.township_id},
        headers=admin,
    ).json()
    assert {s["institution_id"] for s in both["sites"]} == {city.lead_id, city.township_id}
    assert [s["primary_site"] for s in both["sites"]] == [True, False]


def test_registering_a_resident_masks_the_number_and_derives_sex_and_birth(
    client: TestClient, city: City
) -> None:
    created = register(client, login(client, "gp_wang"), city)
    resident = created["resident"]
    assert resident["sex"] == "female" and resident["birth_date"] == "1958-03-14"
    assert resident["id_number_masked"] == ZHANG[:4] + "*" * 10 + ZHANG[-4:]
    assert ZHANG not in str(created)
    assert resident["phone_masked"] == "138****5678"


def test_a_bad_id_number_is_422_naming_the_field(client: TestClient, city: City) -> None:
    headers = login(client, "gp_wang")
    bad = ZHANG[:-1] + ("0" if ZHANG[-1] != "0" else "1")
    response = client.post(
        "/api/v1/residents", json={"id_number": bad, "name": "张秀英"}, headers=headers
    )
    assert response.status_code == 422
    assert response.json()["field"] == "id_number"
    assert "校验" in response.json()["detail"]


def test_sex_disagreeing_with_the_number_is_rejected(client: TestClient, city: City) -> None:
    headers = login(client, "gp_wang")
    response = client.post(
        "/api/v1/residents",
        json={"id_number": ZHANG, "name": "张秀英", "sex": "male"},
        headers=headers,
    )
    assert response.status_code == 422 and response.json()["field"] == "sex"


def test_the_same_number_twice_is_a_conflict_and_nothing_is_written(
    client: TestClient, city: City
) -> None:
    headers = login(client, "gp_wang")
    register(client, headers, city)
    again = client.post(
        "/api/v1/residents", json={"id_number": ZHANG, "name": "张秀英"}, headers=headers
    )
    assert again.status_code == 409
    found = client.get("/api/v1/residents", params={"q": ZHANG}, headers=headers).json()
    assert found["total"] == 1


def test_a_probable_duplicate_under_another_number_is_reported(
    client: TestClient, city: City
) -> None:
    headers = login(client, "gp_wang")
    register(client, headers, city)
    other = make_id_number("371311", date(1958, 3, 14), 4)
    second = register(client, headers, city, id_number=other)
    assert [d["id_number_masked"][-4:] for d in second["possible_duplicates"]] == [ZHANG[-4:]]
    dups = client.get("/api/v1/residents/duplicates", headers=login(client, "admin_sun")).json()
    assert len(dups) == 1 and len(dups[0]["residents"]) == 2


def test_search_by_name_prefix_or_full_number_never_shows_the_number(
    client: TestClient, city: City
) -> None:
    headers = login(client, "gp_wang")
    register(client, headers, city)
    by_name = client.get("/api/v1/residents", params={"q": "张秀"}, headers=headers).json()
    by_number = client.get("/api/v1/residents", params={"q": ZHANG.lower()}, headers=headers).json()
    assert by_name["items"][0]["name"] == by_number["items"][0]["name"] == "张秀英"
    assert ZHANG not in str(by_name) + str(by_number)
    partial = client.get("/api/v1/residents", params={"q": ZHANG[:10]}, headers=headers)
    assert partial.status_code == 422


def test_a_doctor_of_another_group_gets_404_and_the_denial_is_in_the_audit(
    client: TestClient, city: City
) -> None:
    rid = register(client, login(client, "gp_wang"), city)["resident"]["id"]
    outsider = login(client, "outsider_zhao")
    assert client.get(f"/api/v1/residents/{rid}", headers=outsider).status_code == 404
    assert client.get("/api/v1/residents/98765432", headers=outsider).status_code == 404
    log = client.get(f"/api/v1/residents/{rid}/audit", headers=login(client, "gp_wang")).json()
    outcomes = [(e["username"], e["action"], e["outcome"]) for e in log["items"]]
    assert ("outsider_zhao", "read", "denied") in outcomes
    assert ("gp_wang", "create", "allowed") in outcomes


def test_break_glass_through_the_api(client: TestClient, city: City) -> None:
    rid = register(client, login(client, "gp_wang"), city)["resident"]["id"]
    outsider = login(client, "outsider_zhao")
    short = client.post(
        f"/api/v1/residents/{rid}/break-glass", json={"reason": "看"}, headers=outsider
    )
    assert short.status_code == 422 and short.json()["field"] == "reason"
    ok = client.post(
        f"/api/v1/residents/{rid}/break-glass",
        json={"reason": "急诊抢救需要既往史"},
        headers=outsider,
    )
    assert ok.status_code == 201
    record = client.get(f"/api/v1/residents/{rid}", headers=outsider).json()
    assert record["access_basis"] == "break_glass"


def test_updating_a_resident_is_audited_with_the_fields(client: TestClient, city: City) -> None:
    headers = login(client, "gp_wang")
    rid = register(client, headers, city)["resident"]["id"]
    response = client.patch(
        f"/api/v1/residents/{rid}", json={"address": "兰山区金雀山路1号"}, headers=headers
    )
    assert response.status_code == 200 and response.json()["address"] == "兰山区金雀山路1号"
    log = client.get(f"/api/v1/residents/{rid}/audit", headers=headers).json()["items"]
    assert any(e["action"] == "update" for e in log)


def test_malformed_and_oversized_json_get_clear_4xx(client: TestClient, city: City) -> None:
    headers = login(client, "gp_wang") | {"Content-Type": "application/json"}
    malformed = client.post("/api/v1/residents", content=b'{"id_number": ', headers=headers)
    assert malformed.status_code == 422 and malformed.json()["error"] == "ValidationError"
    huge = client.post(
        "/api/v1/residents", content=b'{"name": "' + b"x" * 3_000_000 + b'"}', headers=headers
    )
    assert huge.status_code == 413


def test_disease_catalogue_says_whether_a_level_treats_a_code(
    client: TestClient, city: City, db
) -> None:  # type: ignore[no-untyped-def]
    from caregrid.registry.service import install_default_catalogs

    install_default_catalogs(db)
    headers = login(client, "gp_wang")
    hypertension = client.get(
        "/api/v1/disease-catalogs/check",
        params={"level": "primary", "code": "I10.x00"},
        headers=headers,
    ).json()
    assert hypertension, "hypertension is treated at primary care"
    infarction = client.get(
        "/api/v1/disease-catalogs/check",
        params={"level": "primary", "code": "I21.9"},
        headers=headers,
    ).json()
    assert infarction == []
    bad = client.get(
        "/api/v1/disease-catalogs/check",
        params={"level": "primary", "code": "hello"},
        headers=headers,
    )
    assert bad.status_code == 422


def test_nul_characters_are_refused_before_reaching_the_database(
    client: TestClient, city: City
) -> None:
    headers = login(client, "gp_wang")
    body = {"id_number": ZHANG, "name": "张\u0000秀英"}
    response = client.post("/api/v1/residents", json=body, headers=headers)
    assert response.status_code == 422 and response.json()["error"] == "InvalidCharacter"
    query = client.get("/api/v1/residents?q=%00", headers=headers)
    assert query.status_code == 422
    # "%00" is ordinary text inside JSON
    ok = register(client, headers, city, address="幸福路100%00号")
    assert ok["resident"]["address"] == "幸福路100%00号"
