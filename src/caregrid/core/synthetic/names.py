"""Synthetic personal names, mobile numbers and addresses for the demo city.

Surnames follow the national frequency order published by the Ministry of Public Security
(《二〇二〇年全国姓名报告》: 王, 李, 张, 刘, 陈, 杨, 黄, 赵, 吴, 周, ...). The shares below are
rounded approximations of published surname statistics (王 and 李 about 7 % each), not
quoted figures; the real top 100 cover about 85 % of people, and the table is renormalised so
its ~100 surnames stand for everyone, plus a handful of two-character surnames (欧阳, 司马, ...)
at their small real shares. Given names have one (≈ 20 %) or two (≈ 80 %) characters drawn
with Zipf-like weights from pools that differ by sex (reduplicated names such as 婷婷 occur for
women only); the pools mix generations rather than follow the birth year.

Mobile numbers use the 13x/15x/18x/19x mainland prefixes (11 digits); addresses are
"市 + 区 + 街道 + 路 + 号 + 单元 + 室" in town and "市 + 区 + 镇 + 村 + 组 + 号" in the
countryside, from small word lists. Everything is deterministic for the given
`random.Random`.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from itertools import accumulate

# (surname, approximate share in %); order of the 2020 national name report.
SURNAMES: tuple[tuple[str, float], ...] = (
    ("王", 7.10), ("李", 7.00), ("张", 6.70), ("刘", 5.40), ("陈", 4.60), ("杨", 3.10),
    ("黄", 2.40), ("赵", 2.30), ("吴", 2.00), ("周", 1.90), ("徐", 1.70), ("孙", 1.50),
    ("马", 1.50), ("胡", 1.40), ("朱", 1.40), ("郭", 1.40), ("何", 1.30), ("罗", 1.20),
    ("高", 1.20), ("林", 1.20), ("郑", 1.10), ("梁", 1.10), ("谢", 1.00), ("唐", 0.90),
    ("宋", 0.90), ("许", 0.90), ("邓", 0.80), ("冯", 0.80), ("韩", 0.80), ("曹", 0.70),
    ("曾", 0.70), ("彭", 0.70), ("肖", 0.60), ("蔡", 0.60), ("潘", 0.60), ("田", 0.60),
    ("董", 0.60), ("袁", 0.60), ("于", 0.60), ("余", 0.50), ("叶", 0.50), ("蒋", 0.50),
    ("杜", 0.50), ("苏", 0.50), ("魏", 0.50), ("程", 0.50), ("吕", 0.50), ("丁", 0.40),
    ("沈", 0.40), ("任", 0.40), ("姚", 0.40), ("卢", 0.40), ("钟", 0.40), ("姜", 0.40),
    ("崔", 0.40), ("谭", 0.40), ("廖", 0.40), ("范", 0.40), ("汪", 0.40), ("陆", 0.40),
    ("金", 0.30), ("石", 0.30), ("戴", 0.30), ("贾", 0.30), ("韦", 0.30), ("夏", 0.30),
    ("邱", 0.30), ("方", 0.30), ("侯", 0.30), ("邹", 0.30), ("熊", 0.30), ("孟", 0.30),
    ("秦", 0.30), ("白", 0.30), ("毛", 0.30), ("江", 0.30), ("闫", 0.30), ("薛", 0.30),
    ("尹", 0.20), ("段", 0.20), ("雷", 0.20), ("黎", 0.20), ("史", 0.20), ("龙", 0.20),
    ("钱", 0.20), ("贺", 0.20), ("陶", 0.20), ("顾", 0.20), ("龚", 0.20), ("郝", 0.20),
    ("邵", 0.20), ("万", 0.20), ("覃", 0.20), ("武", 0.20), ("严", 0.20),
    ("赖", 0.20), ("洪", 0.20), ("莫", 0.20), ("孔", 0.20), ("向", 0.20), ("常", 0.20),
    # Two-character surnames: rare, but they exercise code that assumes one character.
    ("欧阳", 0.050), ("司马", 0.010), ("上官", 0.008), ("诸葛", 0.008), ("东方", 0.005),
    ("皇甫", 0.005), ("尉迟", 0.002), ("慕容", 0.002),
)  # fmt: skip

# Given-name characters by sex (weights: earlier = more frequent, see `_pool`).
MALE_CHARS = (
    "伟强磊军勇杰涛斌超明刚平辉鹏华飞鑫波宇浩凯健俊帆帅旭宁龙林洋博文建国志海东峰亮成"
    "晨阳然轩睿泽子昊天思一诚毅鸿翔嘉瑞宏彬松柏德宝金福永兵庆新春晓振兴家豪安"
)
FEMALE_CHARS = (
    "芳娜敏静丽艳娟霞秀英玲桂兰萍红燕梅琳雪婷慧丹莉洁倩颖佳欣怡雨萱涵梓诗梦思晶璐露蕾"
    "媛月悦瑶琪彤妍馨若菲薇春凤华云荣琴珍淑素美玉"
)
# Share of one-character given names (the rest have two).
SINGLE_GIVEN_SHARE = 0.2

# Mobile prefixes in common use (三大运营商; 19x numbers issued since 2017).
PHONE_PREFIXES: tuple[tuple[str, float], ...] = (
    ("130", 3), ("131", 3), ("132", 3), ("133", 3), ("134", 3), ("135", 5), ("136", 5),
    ("137", 5), ("138", 6), ("139", 6), ("150", 3), ("151", 3), ("152", 3), ("153", 2),
    ("155", 2), ("156", 2), ("157", 2), ("158", 3), ("159", 3), ("180", 2), ("181", 2),
    ("182", 2), ("183", 2), ("184", 1), ("185", 2), ("186", 3), ("187", 3), ("188", 2),
    ("189", 3), ("191", 1), ("193", 1), ("195", 1), ("198", 2), ("199", 2),
)  # fmt: skip

STREET_WORDS = (
    "幸福", "和平", "人民", "建设", "解放", "新华", "文化", "光明", "东风", "胜利", "团结",
    "朝阳", "振兴", "滨河", "金桥", "银河", "育才", "健康", "花园", "青年", "春晖", "凤凰",
    "长安", "兴华", "锦绣", "富民", "通达", "北园", "南湖", "西城",
)  # fmt: skip
ROAD_SUFFIXES = ("路", "街", "大道", "路", "街", "巷")
TOWN_WORDS = (
    "新安", "永丰", "太平", "兴隆", "黄山", "马庄", "大庄", "李家", "王庄", "石桥", "白沙",
    "清泉", "柳林", "东岭", "西坡", "河口", "龙泉", "高峰", "前进", "红旗",
)  # fmt: skip
VILLAGE_WORDS = (
    "东", "西", "南", "北", "前", "后", "上", "下", "大", "小", "新", "老", "中", "高", "张",
    "王", "李", "刘", "杨", "赵",
)  # fmt: skip
VILLAGE_TAILS = ("庄", "家", "营", "屯", "沟", "寨", "坪", "湾", "岭", "河")
URBAN_SHARE = 0.65  # share of urban-style addresses (China's 2023 urbanisation: 66 %)


def _pool(chars: str) -> tuple[list[str], list[float]]:
    """Characters with Zipf-like cumulative weights (the i-th gets weight 1/(i+8)), so common
    characters repeat as they do in real name lists without a few dominating."""
    unique = list(dict.fromkeys(chars))
    return unique, list(accumulate(1 / (i + 8) for i in range(len(unique))))


class NameGenerator:
    """Names, mobile numbers and addresses drawn from `rng` (deterministic for its state)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self._surnames = [s for s, _ in SURNAMES]
        self._surname_cum = list(accumulate(w for _, w in SURNAMES))
        self._male, self._male_cum = _pool(MALE_CHARS)
        self._female, self._female_cum = _pool(FEMALE_CHARS)
        self._prefixes = [int(p) for p, _ in PHONE_PREFIXES]
        self._prefix_cum = list(accumulate(w for _, w in PHONE_PREFIXES))

    def names(self, n: int, sexes: Sequence[str]) -> list[str]:
        """`n` full names; `sexes[i]` ("male"/"female") picks the given-name pool of name i."""
        if len(sexes) != n:
            raise ValueError(f"need {n} sexes, got {len(sexes)}")
        rng = self.rng
        surnames = rng.choices(self._surnames, cum_weights=self._surname_cum, k=n)
        males = sum(1 for s in sexes if s == "male")
        male_chars = rng.choices(self._male, cum_weights=self._male_cum, k=2 * males)
        female_chars = rng.choices(self._female, cum_weights=self._female_cum, k=2 * (n - males))
        rand = rng.random
        out: list[str] = []
        append = out.append
        mi = fi = 0
        for i in range(n):
            if sexes[i] == "male":
                a, b = male_chars[mi], male_chars[mi + 1]
                mi += 2
                # Reduplicated given names (婷婷, 丹丹) are common for women, rare for men.
                if a == b:
                    b = ""
            else:
                a, b = female_chars[fi], female_chars[fi + 1]
                fi += 2
            append(surnames[i] + a if rand() < SINGLE_GIVEN_SHARE else surnames[i] + a + b)
        return out

    def phones(self, n: int) -> list[str]:
        """`n` 11-digit mainland mobile numbers (13x/15x/18x/19x)."""
        rng = self.rng
        prefixes = rng.choices(self._prefixes, cum_weights=self._prefix_cum, k=n)
        rand = rng.random
        return [str(p * 100_000_000 + int(rand() * 100_000_000)) for p in prefixes]

    def addresses(self, n: int, district_names: Sequence[str], city: str) -> list[str]:
        """`n` addresses in `city`, in districts drawn uniformly from `district_names`, e.g.
        ``临沂市兰山区幸福街道和平路12号3单元402`` or ``临沂市兰山区太平镇东庄村3组17号``."""
        if n <= 0:
            return []
        districts = list(district_names) or [""]
        rand = self.rng.random
        streets, roads, towns = STREET_WORDS, ROAD_SUFFIXES, TOWN_WORDS
        vil_a, vil_b = VILLAGE_WORDS, VILLAGE_TAILS
        ns, nr, nt, na, nb = len(streets), len(roads), len(towns), len(vil_a), len(vil_b)
        nd = len(districts)
        # One random number per part of the address decoded by successive divmod (the
        # products stay far below 2**53, so every part is uniform).
        urban_cells = nd * ns * ns * nr * 299 * 6 * 18 * 4
        rural_cells = nd * nt * na * nb * 12 * 79
        out: list[str] = []
        append = out.append
        for _ in range(n):
            if rand() < URBAN_SHARE:
                x = int(rand() * urban_cells)
                x, d = divmod(x, nd)
                x, s1 = divmod(x, ns)
                x, s2 = divmod(x, ns)
                x, r = divmod(x, nr)
                x, no = divmod(x, 299)
                x, unit = divmod(x, 6)
                room, floor = divmod(x, 18)
                append(
                    f"{city}{districts[d]}{streets[s1]}街道{streets[s2]}{roads[r]}{no + 1}号"
                    f"{unit + 1}单元{floor + 1}{room + 1:02d}"
                )
            else:
                x = int(rand() * rural_cells)
                x, d = divmod(x, nd)
                x, t = divmod(x, nt)
                x, a = divmod(x, na)
                x, b = divmod(x, nb)
                no, team = divmod(x, 12)
                append(
                    f"{city}{districts[d]}{towns[t]}镇{vil_a[a]}{vil_b[b]}村{team + 1}组{no + 1}号"
                )
        return out
