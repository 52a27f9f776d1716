"""The age and sex structure of the synthetic city's residents.

Targets (NBS year-end 2023, `reference/statistics.md` §7): aged 0-15 17.6 %, 16-59 61.3 %,
60+ 21.1 %, 65+ 15.4 %; sex ratio 104.49 males per 100 females.

How the band weights are derived (computed at import from the tables below, so the
derivation is the code):

1. Shape: the 2020 census share of each 5-year band (`CENSUS_2020_SHARES`, % of the
   population; 0-14 17.95 %, 60+ 18.70 %, 65+ 13.50 % in the census, census source in
   statistics.md §7). The per-band values are approximate readings of the census table; they
   only give the shape, the totals come from step 3.
2. Ageing to 2023: three years move 3/5 of each band into the next one (uniform ages inside
   a band), and the 0-4 band gains the 2021-2023 births (1062 + 956 + 902 万, NBS) as a
   share of the 2020 population (141 178 万).
3. Calibration: the 15-19 band is split at 16 (1/5 to age 15, 4/5 to 16-19) so that the NBS
   boundaries 16, 60 and 65 fall on band edges, then each segment (0-15, 16-59, 60-64, 65+)
   is scaled to its 2023 target (17.6, 61.3, 21.1 - 15.4 = 5.7, 15.4). Inside a segment the
   census shape is kept.
4. Sex: approximate 2020 census sex ratios by band (`CENSUS_2020_SEX_RATIOS`: boys
   outnumber girls among children and young adults, women outnumber men from about 65 and
   by far at 85+), all multiplied by one factor so that the whole population has 104.49
   males per 100 females.

Ages are uniform within a band (day resolution); the oldest band is 100-104.

`sample_birth_dates` draws one random number per person: it picks the (band, sex) cell by
bisection over cumulative weights and reuses the remainder inside the cell as the uniform
position of the birth day, so a million people take about a second.
"""

from __future__ import annotations

import random
from bisect import bisect
from dataclasses import dataclass
from datetime import date

# 5-year bands 0-4 ... 95-99 and 100+ (treated as 100-104), 2020 census, % of population.
CENSUS_2020_SHARES: tuple[float, ...] = (
    5.52, 6.40, 6.04, 5.15, 5.31, 6.51, 8.80, 7.02, 6.61, 8.10, 8.59,
    7.19, 5.20, 5.25, 3.52, 2.13, 1.45, 0.76, 0.23, 0.05, 0.01,
)  # fmt: skip
# Males per 100 females in the same bands (approximate, 2020 census).
CENSUS_2020_SEX_RATIOS: tuple[float, ...] = (
    110.9, 113.6, 116.2, 116.8, 111.5, 107.8, 106.5, 105.0, 104.6, 103.2, 102.2,
    101.5, 100.6, 97.8, 95.3, 90.2, 81.3, 68.5, 54.9, 44.6, 35.0,
)  # fmt: skip
BIRTHS_2021_2023_SHARE = (1062 + 956 + 902) / 141178 * 100

TARGET_0_15 = 17.6
TARGET_16_59 = 61.3
TARGET_60_PLUS = 21.1
TARGET_65_PLUS = 15.4
TARGET_SEX_RATIO = 104.49


@dataclass(frozen=True)
class AgeBand:
    """Ages `low` <= age < `high` (completed years) with their share of the population (%)
    and the share of males among them."""

    low: int
    high: int
    share: float
    male_share: float


def _aged_to_2023() -> list[float]:
    shares = list(CENSUS_2020_SHARES)
    aged = [0.4 * shares[0] + BIRTHS_2021_2023_SHARE]
    aged += [0.4 * shares[k] + 0.6 * shares[k - 1] for k in range(1, len(shares))]
    return aged


def _bands() -> tuple[AgeBand, ...]:
    aged = _aged_to_2023()
    ratios = list(CENSUS_2020_SEX_RATIOS)
    # (low, high, raw share, raw sex ratio) with 15-19 split at 16.
    cells: list[tuple[int, int, float, float]] = []
    for k, share in enumerate(aged):
        low, high = 5 * k, 5 * k + 5
        if low == 15:
            cells.append((15, 16, share / 5, ratios[k]))
            cells.append((16, 20, share * 4 / 5, ratios[k]))
        else:
            cells.append((low, high, share, ratios[k]))
    segments: list[tuple[int, int, float]] = [
        (0, 16, TARGET_0_15),
        (16, 60, TARGET_16_59),
        (60, 65, TARGET_60_PLUS - TARGET_65_PLUS),
        (65, 200, TARGET_65_PLUS),
    ]
    scaled: list[tuple[int, int, float, float]] = []
    for seg_low, seg_high, target in segments:
        inside = [c for c in cells if seg_low <= c[0] and c[1] <= seg_high]
        total = sum(c[2] for c in inside)
        scaled += [(lo, hi, share * target / total, r) for lo, hi, share, r in inside]
    # One factor on every band's sex ratio so the population ratio is TARGET_SEX_RATIO;
    # the male share grows monotonically with the factor, so bisection finds it.
    goal = TARGET_SEX_RATIO / (100 + TARGET_SEX_RATIO)
    total_share = sum(c[2] for c in scaled)

    def male_share(factor: float) -> float:
        return sum(s * (r * factor) / (100 + r * factor) for _, _, s, r in scaled) / total_share

    lo_f, hi_f = 0.5, 2.0
    for _ in range(60):
        mid = (lo_f + hi_f) / 2
        lo_f, hi_f = (mid, hi_f) if male_share(mid) < goal else (lo_f, mid)
    factor = (lo_f + hi_f) / 2
    return tuple(
        AgeBand(lo, hi, share, (r * factor) / (100 + r * factor)) for lo, hi, share, r in scaled
    )


AGE_BANDS: tuple[AgeBand, ...] = _bands()


def share_between(low: int, high: int) -> float:
    """Expected % of residents aged `low` <= age < `high` (band edges only)."""
    return sum(b.share for b in AGE_BANDS if low <= b.low and b.high <= high)


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a non-leap year
        return day.replace(year=day.year - years, day=28)


def age_on(birth: date, day: date) -> int:
    """Completed years of age on `day`."""
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def sample_birth_dates(
    rng: random.Random, n: int, *, reference_date: date
) -> list[tuple[date, str]]:
    """`n` (birth_date, sex) pairs, sex "male" or "female", with the 2023 age/sex structure at
    `reference_date` (ages in completed years, uniform day within an age band; nobody is
    born after `reference_date`). Deterministic for the state of `rng`."""
    if n <= 0:
        return []
    starts: list[int] = []
    spans: list[int] = []
    sexes: list[str] = []
    weights: list[float] = []
    for band in AGE_BANDS:
        # Born after (reference - high years) and on or before (reference - low years).
        first = _years_before(reference_date, band.high).toordinal() + 1
        last = _years_before(reference_date, band.low).toordinal()
        for sex, part in (("male", band.male_share), ("female", 1 - band.male_share)):
            starts.append(first)
            spans.append(last - first + 1)
            sexes.append(sex)
            weights.append(band.share * part)
    cum: list[float] = []
    running = 0.0
    for w in weights:
        running += w
        cum.append(running)
    total = cum[-1]
    lows = [0.0, *cum[:-1]]
    widths = [high - low for low, high in zip(lows, cum, strict=True)]
    last_cell = len(cum) - 1
    fromordinal = date.fromordinal
    rand = rng.random
    out: list[tuple[date, str]] = []
    append = out.append
    for _ in range(n):
        x = rand() * total
        k = bisect(cum, x)
        if k > last_cell:  # x == total cannot happen with random() < 1, but be safe
            k = last_cell
        # The remainder of x inside cell k is uniform on [0, 1): the birth day's position.
        offset = int((x - lows[k]) / widths[k] * spans[k])
        if offset >= spans[k]:  # rounding at the cell's upper edge
            offset = spans[k] - 1
        append((fromordinal(starts[k] + offset), sexes[k]))
    return out
