"""The left navigation: the capabilities that are live, and those still being built (DESIGN §3),
each with the one paragraph its "建设中" page shows and the profile sections it will follow."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NavItem:
    slug: str
    title: str
    href: str
    live: bool
    summary: str = ""
    profile_sections: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()  # shown only to these roles (empty: to everyone)

    def shown_to(self, role: str) -> bool:
        return not self.roles or role in self.roles


LIVE_NAV = (
    NavItem("home", "首页", "/", True),
    NavItem("groups", "医疗集团", "/groups", True),
    NavItem("institutions", "机构目录", "/institutions", True),
    # the shared record (timeline, results, recognition) is reached through the resident
    NavItem("residents", "居民与健康档案", "/residents", True),
    NavItem("familydoctor", "家庭医生签约", "/familydoctor", True),
    NavItem("chronic", "慢病管理", "/chronic", True),
    NavItem("referral", "双向转诊", "/referrals", True),
    NavItem("capacity", "号源与床位", "/capacity", True),
    NavItem("indicators", "指标驾驶舱", "/indicators", True),
    NavItem(
        "comparison",
        "集团与网格对比",
        "/indicators/compare",
        True,
        roles=("admin", "commission_viewer"),
    ),
    NavItem("scorecard", "评判标准", "/scorecard", True),
    NavItem("profile", "政策方案", "/profile", True),
)

# Capabilities still being built (DESIGN §3); each links to a page that says what it will do.
COMING_NAV = (
    NavItem(
        "centres",
        "资源共享中心",
        "/coming/centres",
        False,
        "检验、影像、心电、病理、超声和消毒供应等资源共享中心为全体成员单位服务：成员单位开单、"
        "中心工作列表接收（乡检查、县诊断），报告回传开单机构，并监测报告周转时间；成员单位之间可发起远程会诊。",
        ("centres",),
    ),
    NavItem(
        "pharmacy",
        "统一药事",
        "/coming/pharmacy",
        False,
        "集团统一用药目录（国家药品编码，标注基本药物、集采和医保谈判药品），落实“1+X”基本药物配备和"
        "一品两规，处方前置审核（审方）规则，成员单位之间的处方流转，以及采购和集采任务完成情况。",
        ("pharmacy",),
    ),
    NavItem(
        "insurance",
        "医保结算",
        "/coming/insurance",
        False,
        "按覆盖人口核定医保总额预算并留取风险金，按季度预拨，年终依据考核结果清算，执行结余留用、"
        "合理超支分担（或超支自负），按人口在集团间分配，结余分配向基层倾斜；支持 DIP 区域点值法和"
        "家庭医生签约服务费的预拨与考核。",
        ("payment",),
    ),
)
COMING_BY_SLUG = {item.slug: item for item in COMING_NAV}
