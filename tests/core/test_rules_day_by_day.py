"""The report rules against their definitions read literally, one day at a time.

Coverage (domain 3.5), type 6 overloads (3.8) and PIAL figures (3.7) are computed from change
points or in closed form for speed; these properties hold them to the day-by-day reading.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from core.dates import SchoolYear
from core.rules import anomalies, coverage
from core.rules import pial as pial_rules
from core.rules.formula import DEFAULT_FORMULA, parse_formula
from core.rules.natures import accompanies
from core.rules.records import FAR

BASE = date(2020, 9, 1).toordinal()
day = st.integers(min_value=0, max_value=500)


@st.composite
def span(draw: st.DrawFn, open_end: bool = False) -> tuple[int, int]:
    a, b = sorted((draw(day), draw(day)))
    if open_end and draw(st.integers(0, 4)) == 0:
        return BASE + a, FAR
    return BASE + a, BASE + b


@st.composite
def tiled(draw: st.DrawFn, n: int) -> list[tuple[int, int]]:
    """Up to n spans that follow one another (apart, adjacent, or meeting on a day or
    three): the usual shapes, and the edges of the closed forms."""
    out: list[tuple[int, int]] = []
    start = draw(st.integers(0, 100))
    for _ in range(draw(st.integers(0, n))):
        length = draw(st.integers(0, 150))
        out.append((BASE + start, BASE + start + length))
        start += length + draw(st.integers(-2, 40))
    return out


# --- coverage -----------------------------------------------------------------------------


@st.composite
def decision_case(
    draw: st.DrawFn,
) -> tuple[int, int, float, bool, list[tuple[int, int]], list[tuple[int, int, float]], int]:
    lo, hi = draw(span())
    indiv = draw(st.booleans())
    need = draw(st.sampled_from([0.0, 6.0, 12.5, 24.0])) if indiv else 1.0
    scols = draw(st.one_of(tiled(3), st.lists(span(open_end=True), max_size=3)))
    acc_spans = draw(st.one_of(tiled(4), st.lists(span(), max_size=4)))
    accs = [(s, e, draw(st.sampled_from([2.0, 6.0, 12.5, 30.0]))) for s, e in acc_spans]
    on = BASE + draw(st.integers(-20, 520))
    return lo, hi, need, indiv, scols, accs, on


@settings(max_examples=1000, deadline=None)
@given(decision_case())
def test_coverage_matches_day_by_day(
    case: tuple[int, int, float, bool, list[tuple[int, int]], list[tuple[int, int, float]], int],
) -> None:
    lo, hi, need_h, indiv, scols, accs, on = case
    got = total = 0.0
    over = False
    etat = coverage.HORS_PERIODE
    for d in range(lo, hi + 1):
        need = need_h if any(s <= d <= e for s, e in scols) else 0.0
        live = [h for s, e, h in accs if s <= d <= e]
        provided = sum(live) if indiv else (1.0 if live else 0.0)
        got += min(need, provided)
        total += need
        over = over or (need > 0 and provided > need + coverage.EPS)
        if d == on:
            etat = coverage._etat(need, provided)
    couverture, depassement, state = coverage.assess(lo, hi, need_h, indiv, scols, accs, on)
    assert abs(couverture - (got / total if total else 0.0)) < 1e-9
    assert depassement == over
    assert state == etat


# --- anomalies, type 6 --------------------------------------------------------------------


@st.composite
def mission_accs(draw: st.DrawFn) -> tuple[float, list[tuple[str, int, int, float]]]:
    heures = draw(st.sampled_from([12.0, 24.0, 41.0]))
    spans = draw(st.one_of(tiled(5), st.lists(span(), max_size=6)))
    hours = st.sampled_from([3.0, 6.0, 12.0, 20.0, 24.0])
    return heures, [(f"A{i}", s, e, draw(hours)) for i, (s, e) in enumerate(spans)]


@settings(max_examples=1000, deadline=None)
@given(mission_accs())
def test_overload_matches_day_by_day(case: tuple[float, list[tuple[str, int, int, float]]]) -> None:
    heures, accs = case
    expected: dict[str, int] = {}
    if accs:
        for d in range(min(a[1] for a in accs), max(a[2] for a in accs) + 1):
            present = [a for a in accs if a[1] <= d <= a[2]]
            if len(present) > 1 and sum(a[3] for a in present) > heures + anomalies.EPS:
                for a in present:
                    expected.setdefault(a[0], d)
    assert anomalies.overloaded(heures, accs) == expected


# --- PIAL ---------------------------------------------------------------------------------

YEAR = SchoolYear(2020)
PIALS = ["P1", "P2"]
IN_YEAR = st.integers(min_value=-60, max_value=420)


@st.composite
def pial_case(draw: st.DrawFn) -> tuple[list, dict, list, dict]:  # type: ignore[type-arg]
    def span_around_year() -> tuple[int, int]:
        a, b = sorted((draw(IN_YEAR), draw(IN_YEAR)))
        return BASE + a, BASE + b

    decisions = []
    spans: dict[str, list[tuple[str, int, int]]] = {}
    for i in range(draw(st.integers(0, 8))):
        eleve = f"E{draw(st.integers(0, 4))}"
        kind = draw(st.sampled_from(["individuelle", "mutualisee"]))
        heures = draw(st.sampled_from([6.0, 12.5, 24.0])) if kind == "individuelle" else None
        decisions.append((f"D{i}", eleve, kind, heures, *span_around_year()))
    for e in range(5):
        for _ in range(draw(st.integers(0, 3))):
            pial = draw(st.sampled_from([*PIALS, "P9"]))  # P9: another perimeter's
            spans.setdefault(f"E{e}", []).append((pial, *span_around_year()))
    missions = {}
    affectations = []
    for i in range(draw(st.integers(0, 4))):
        s, e = span_around_year()
        nature = draw(st.sampled_from(["HP1D", "AHRE"]))
        missions[f"M{i}"] = (s, e, draw(st.sampled_from([20.0, 41.0])), draw(st.booleans()), nature)
        volume = draw(st.sampled_from([None, 10.0, 50.0]))
        affectations.append((f"M{i}", draw(st.sampled_from(PIALS)), volume))
    return decisions, spans, affectations, missions


def pial_day_by_day(
    decisions: list,  # type: ignore[type-arg]
    spans: dict[str, list[tuple[str, int, int]]],
    affectations: list[tuple[str, str, float | None]],
    missions: dict[str, tuple[int, int, float, bool, str]],
    f: Callable[[int], int],
    pial: str | None,
) -> tuple[int, int, float, float]:
    """(nb_individuelles, nb_mutualisees, Σ besoin, Σ moyens) of one PIAL (None: all)."""
    wanted = set(PIALS) if pial is None else {pial}
    y0, y1 = YEAR.debut.toordinal(), YEAR.fin.toordinal()
    seen_i: set[str] = set()
    seen_m: set[str] = set()
    besoin = moyens = 0.0
    for d in range(y0, y1 + 1):
        c_i = c_m = 0
        h_i = 0.0
        for did, eleve, kind, heures, debut, fin in decisions:
            if not debut <= d <= fin:
                continue
            if any(p in wanted and s <= d <= e for p, s, e in spans.get(eleve, [])):
                if kind == "individuelle":
                    c_i += 1
                    h_i += heures or 0.0
                    seen_i.add(did)
                else:
                    c_m += 1
                    seen_m.add(did)
        besoin += h_i + f(c_m)
        for mid, p, volume in affectations:
            s, e, h, actif, nature = missions[mid]
            if p in wanted and actif and accompanies(nature) and s <= d <= e:
                moyens += h if volume is None else min(volume, h)
    return len(seen_i), len(seen_m), besoin, moyens


@settings(max_examples=150, deadline=None)
@given(pial_case())
def test_pial_matches_day_by_day(case: tuple[list, dict, list, dict]) -> None:  # type: ignore[type-arg]
    decisions, spans, affectations, missions = case
    f = parse_formula(DEFAULT_FORMULA)
    rows, dep = pial_rules.compute(YEAR, PIALS, decisions, spans, affectations, missions, f)
    n = YEAR.fin.toordinal() - YEAR.debut.toordinal() + 1
    for fig, pial in [*zip(rows, PIALS, strict=True), (dep, None)]:
        nb_i, nb_m, besoin, moyens = pial_day_by_day(
            decisions, spans, affectations, missions, f, pial
        )
        assert (fig.nb_individuelles, fig.nb_mutualisees) == (nb_i, nb_m)
        assert fig.besoin_moyen == round(besoin / n, 4)
        assert fig.moyens_moyen == round(moyens / n, 4)
