"""Demo data generator: determinism, CSV contract (interfaces 4), consistency, mix ratios."""

from __future__ import annotations

import csv
import re
from collections import Counter, defaultdict
from datetime import date, timedelta
from pathlib import Path

import pytest

from core.demo_data import generate

ANNEE = 2025
START, END = date(ANNEE, 9, 1), date(ANNEE + 1, 8, 31)

# interfaces.md section 4 (scolarisations: the optional `id` included)
SPEC_COLUMNS: dict[str, list[str]] = {
    "etablissements": [
        "rne",
        "nom",
        "commune",
        "code_postal",
        "latitude",
        "longitude",
        "pial_rne",
        "secteur",
        "email",
    ],
    "eleves": ["id", "nom", "prenom", "date_naissance", "secteur", "dossier_etat", "erseh_email"],
    "scolarisations": ["eleve_id", "rne", "debut", "fin", "classe", "id"],
    "decisions": ["id", "eleve_id", "type", "heures", "origine", "nature", "debut", "fin"],
    "aesh": [
        "id",
        "source",
        "nom",
        "prenom",
        "date_naissance",
        "commune",
        "code_postal",
        "latitude",
        "longitude",
        "email",
        "telephone",
        "transport",
        "rqth",
    ],
    "missions": [
        "id",
        "aesh_id",
        "contrat",
        "nature",
        "debut",
        "fin",
        "quotite",
        "heures",
        "employeur_rne",
        "pial_rne",
    ],
    "affectations": ["mission_id", "pial_rne", "annee", "heures"],
    "accompagnements": [
        "id",
        "mission_id",
        "decision_ids",
        "rne",
        "debut",
        "fin",
        "heures",
        "maintien",
        "previsionnel",
    ],
    "candidats": [
        "id",
        "nom",
        "prenom",
        "email",
        "telephone",
        "type",
        "zones",
        "statut",
        "depose_le",
        "valide_jusqu_au",
    ],
}
DATE_COLUMNS: dict[str, list[str]] = {
    "eleves": ["date_naissance"],
    "scolarisations": ["debut", "fin"],
    "decisions": ["debut", "fin"],
    "aesh": ["date_naissance"],
    "missions": ["debut", "fin"],
    "accompagnements": ["debut", "fin"],
    "candidats": ["depose_le", "valide_jusqu_au"],
}
NATURES_EPP_T2 = {
    "HI1D",
    "HI2D",
    "HM1D",
    "HM2D",
    "HP1D",
    "HP2D",
    "HPIN",
    "AHRE",
    "HC1D",
    "HC2D",
    "AE1D",
    "AE2D",
}
NATURES_ASSED = {"EI1D", "EI2D", "AM1D", "AM2D", "PI1D", "PI2D", "PIIN", "HC1O", "HC2O"}
ACCOMPANYING = {
    "HI1D",
    "HI2D",
    "HM1D",
    "HM2D",
    "HP1D",
    "HP2D",
    "HPIN",
    "EI1D",
    "EI2D",
    "AM1D",
    "AM2D",
    "PI1D",
    "PI2D",
    "PIIN",
}
PIAL_NATURES = {"HP1D", "HP2D", "HPIN", "PI1D", "PI2D", "PIIN"}
UAI_KEYS = "ABCDEFGHJKLMNPRSTUVWXYZ"
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}$")

Rows = list[dict[str, str]]


def _read(path: Path, kind: str) -> Rows:
    with (path / f"{kind}.csv").open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter=";"))


def _d(s: str) -> date:
    return date.fromisoformat(s)


class Data:
    def __init__(self, path: Path, counts: dict[str, int]) -> None:
        self.path = path
        self.counts = counts
        self.rows = {kind: _read(path, kind) for kind in SPEC_COLUMNS}
        self.etab = {r["rne"]: r for r in self.rows["etablissements"]}
        self.eleve = {r["id"]: r for r in self.rows["eleves"]}
        self.decision = {r["id"]: r for r in self.rows["decisions"]}
        self.aesh = {r["id"]: r for r in self.rows["aesh"]}
        self.mission = {r["id"]: r for r in self.rows["missions"]}
        self.scols: dict[str, list[tuple[str, date, date]]] = defaultdict(list)
        for r in self.rows["scolarisations"]:
            self.scols[r["eleve_id"]].append((r["rne"], _d(r["debut"]), _d(r["fin"])))
        self.acc_by_dec: dict[str, Rows] = defaultdict(list)
        for r in self.rows["accompagnements"]:
            for did in r["decision_ids"].split("|"):
                self.acc_by_dec[did].append(r)

    def mission_hours(self, mid: str) -> float:
        m = self.mission[mid]
        return float(m["heures"]) if m["heures"] else int(m["quotite"]) * 41 / 100


@pytest.fixture(scope="module")
def dep(tmp_path_factory: pytest.TempPathFactory) -> Data:
    out = tmp_path_factory.mktemp("dep_a")
    return Data(out, generate("departement", 7, out, annee=ANNEE))


@pytest.fixture(scope="module")
def nat(tmp_path_factory: pytest.TempPathFactory) -> Data:
    out = tmp_path_factory.mktemp("nat")
    counts = generate("national", 3, out, annee=ANNEE, departements=["062", "973"], volume=0.3)
    return Data(out, counts)


# ---- determinism ---------------------------------------------------------------------


def test_same_seed_gives_identical_bytes(dep: Data, tmp_path: Path) -> None:
    counts = generate("departement", 7, tmp_path / "again", annee=ANNEE)
    assert counts == dep.counts
    for kind in SPEC_COLUMNS:
        name = f"{kind}.csv"
        assert (tmp_path / "again" / name).read_bytes() == (dep.path / name).read_bytes(), kind


def test_other_seed_gives_other_data(dep: Data, tmp_path: Path) -> None:
    generate("departement", 8, tmp_path, annee=ANNEE)
    for kind in ("etablissements", "eleves", "decisions", "missions", "accompagnements"):
        name = f"{kind}.csv"
        assert (tmp_path / name).read_bytes() != (dep.path / name).read_bytes(), kind


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        generate("region", 1, tmp_path)
    with pytest.raises(ValueError):
        generate("departement", 1, tmp_path, departements=["999"])


def test_default_annee_is_the_current_school_year(tmp_path: Path) -> None:
    today = date.today()
    y = today.year if today.month >= 9 else today.year - 1
    generate("departement", 1, tmp_path, departements=["48"], volume=0.1)
    assert {r["annee"] for r in _read(tmp_path, "affectations")} == {f"{y}-{y + 1}"}
    etabs = _read(tmp_path, "etablissements")
    assert etabs and all(r["rne"].startswith("048") for r in etabs)


# ---- CSV contract ------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(SPEC_COLUMNS))
def test_headers_are_exactly_the_spec_columns(dep: Data, kind: str) -> None:
    raw = (dep.path / f"{kind}.csv").read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    header = raw.decode("utf-8").split("\n", 1)[0]
    assert header.split(";") == SPEC_COLUMNS[kind]


def test_returned_counts_are_the_row_counts(dep: Data) -> None:
    assert set(dep.counts) == set(SPEC_COLUMNS)
    for kind, rows in dep.rows.items():
        assert dep.counts[kind] == len(rows), kind
        assert all(None not in r and len(r) == len(SPEC_COLUMNS[kind]) for r in rows)


def test_dates_are_well_formed(dep: Data) -> None:
    for kind, cols in DATE_COLUMNS.items():
        for r in dep.rows[kind]:
            for c in cols:
                v = r[c]
                if kind == "missions" and c == "fin" and v == "":
                    continue  # open-ended CDI
                assert ISO.match(v), (kind, c, v)
                _d(v)
            if "debut" in cols and r["fin"]:
                assert r["debut"] <= r["fin"], (kind, r)


def test_decimals_use_a_dot(dep: Data) -> None:
    for kind, cols in (
        ("etablissements", ["latitude", "longitude"]),
        ("aesh", ["latitude", "longitude"]),
        ("decisions", ["heures"]),
        ("missions", ["heures"]),
        ("affectations", ["heures"]),
        ("accompagnements", ["heures"]),
    ):
        for r in dep.rows[kind]:
            for c in cols:
                assert "," not in r[c]
                if r[c]:
                    float(r[c])


# ---- identifiers and foreign keys -------------------------------------------------


@pytest.mark.parametrize("which", ["dep", "nat"])
def test_ids_unique_and_well_formed(which: str, request: pytest.FixtureRequest) -> None:
    data: Data = request.getfixturevalue(which)
    patterns = {
        "eleves": r"EL\d{7}",
        "scolarisations": r"SC\d{7}",
        "decisions": r"DE\d{7}",
        "aesh": r"AE\d{7}",
        "missions": r"MI\d{7}",
        "accompagnements": r"AC\d{7}",
        "candidats": r"CA\d{7}",
    }
    for kind, pattern in patterns.items():
        ids = [r["id"] for r in data.rows[kind]]
        assert len(ids) == len(set(ids)), kind
        assert all(re.fullmatch(pattern, i) for i in ids), kind
    rnes = [r["rne"] for r in data.rows["etablissements"]]
    assert len(rnes) == len(set(rnes))
    for rne in rnes:
        assert re.fullmatch(r"\d{7}[A-Z]", rne)
        assert rne[7] == UAI_KEYS[int(rne[:7]) % 23]
    keys = [(r["mission_id"], r["pial_rne"], r["annee"]) for r in data.rows["affectations"]]
    assert len(keys) == len(set(keys))
    for kind in ("aesh", "candidats"):
        mails = [r["email"] for r in data.rows[kind] if r["email"]]
        assert len(mails) == len(set(mails))
        assert all(m.endswith("@exemple.test") for m in mails)


@pytest.mark.parametrize("which", ["dep", "nat"])
def test_foreign_keys_resolve(which: str, request: pytest.FixtureRequest) -> None:
    d: Data = request.getfixturevalue(which)
    for r in d.rows["etablissements"]:
        if r["pial_rne"]:
            tete = d.etab[r["pial_rne"]]
            assert tete["pial_rne"] == tete["rne"]
            assert tete["rne"][:3] == r["rne"][:3]
    for r in d.rows["scolarisations"]:
        assert r["eleve_id"] in d.eleve and r["rne"] in d.etab
    for r in d.rows["decisions"]:
        assert r["eleve_id"] in d.eleve
    for r in d.rows["missions"]:
        assert r["aesh_id"] in d.aesh
        assert r["employeur_rne"] in d.etab
        if r["pial_rne"]:
            assert d.etab[r["pial_rne"]]["pial_rne"] == r["pial_rne"]
    for r in d.rows["affectations"]:
        assert r["mission_id"] in d.mission
        assert d.etab[r["pial_rne"]]["pial_rne"] == r["pial_rne"]
        assert r["annee"] == f"{ANNEE}-{ANNEE + 1}"
    for r in d.rows["accompagnements"]:
        assert r["mission_id"] in d.mission
        assert r["rne"] in d.etab
        assert all(x in d.decision for x in r["decision_ids"].split("|"))


def test_national_subset_spans_the_requested_departments(nat: Data) -> None:
    assert {r["rne"][:3] for r in nat.rows["etablissements"]} == {"062", "973"}
    for r in nat.rows["scolarisations"]:
        # a student stays in one department
        first = nat.scols[r["eleve_id"]][0][0]
        assert r["rne"][:3] == first[:3]
    guyane = [r for r in nat.rows["etablissements"] if r["rne"].startswith("973")]
    assert all(r["email"].endswith("@ac-guyane.fr") for r in guyane)
    assert all(r["code_postal"].startswith("973") for r in guyane)
    assert all(0 < float(r["latitude"]) < 7 and -55 < float(r["longitude"]) < -50 for r in guyane)
    # ids keep counting across departments
    assert nat.counts["decisions"] > 1000


# ---- volumes and mixes --------------------------------------------------------------


def test_department_scale_volumes(dep: Data) -> None:
    c = dep.counts
    assert 2700 <= c["decisions"] <= 3300
    assert c["aesh"] == 1400
    assert 3500 <= c["accompagnements"] <= 4500
    assert 1.2 <= c["accompagnements"] / c["decisions"] <= 1.45
    assert 40 <= c["candidats"] <= 80
    assert all(r["rne"].startswith("062") for r in dep.rows["etablissements"])


def test_etablissements_mix_pial_and_secteurs(dep: Data) -> None:
    rows = dep.rows["etablissements"]
    kinds = Counter(r["nom"].split()[0] for r in rows)
    n = len(rows)
    assert 0.68 <= kinds["École"] / n <= 0.82
    assert 0.13 <= kinds["Collège"] / n <= 0.23
    assert 0.04 <= kinds["Lycée"] / n <= 0.10
    hors = sum(1 for r in rows if not r["pial_rne"]) / n
    assert 0.06 <= hors <= 0.14
    sizes = Counter(r["pial_rne"] for r in rows if r["pial_rne"])
    assert all(10 <= s <= 40 for s in sizes.values())
    secteurs = {r["secteur"] for r in rows}
    assert 8 <= len(secteurs) <= 15
    assert all(re.fullmatch(r".+ \d+", s) for s in secteurs)
    communes = {r["commune"] for r in rows}
    assert {"Arras", "Lens"} & communes
    for r in rows:
        assert r["email"] == f"ce.{r['rne'].lower()}@ac-lille.fr"
        assert r["code_postal"].startswith("62")
        assert 50.0 < float(r["latitude"]) < 51.1 and 1.5 < float(r["longitude"]) < 3.2


def test_students_and_scolarisations(dep: Data) -> None:
    eleves = dep.rows["eleves"]
    n = len(eleves)
    etats = Counter(r["dossier_etat"] for r in eleves)
    assert etats["actif"] / n > 0.94
    assert 0.01 <= etats["gele"] / n <= 0.035
    assert 0.003 <= etats["cloture"] / n <= 0.02
    secteurs = {r["secteur"] for r in dep.rows["etablissements"]}
    referents: dict[str, set[str]] = defaultdict(set)
    for r in eleves:
        assert r["secteur"] in secteurs
        referents[r["secteur"]].add(r["erseh_email"])
        age = ANNEE - _d(r["date_naissance"]).year
        assert 3 <= age <= 20
    assert all(len(v) == 1 for v in referents.values())  # one référent per secteur
    gaps = 0
    for sid in dep.eleve:
        scols = sorted(dep.scols[sid], key=lambda s: s[1])
        assert 1 <= len(scols) <= 2
        if len(scols) == 2:
            assert scols[1][1] > scols[0][2]
            if scols[1][1] - scols[0][2] > timedelta(days=1):
                gaps += 1
        # the scolarisations start before and end after the current school year
        assert scols[0][1] <= START + timedelta(days=300) and scols[-1][2] >= END
    assert 0.01 <= gaps / n <= 0.06
    classes = Counter(r["classe"] for r in dep.rows["scolarisations"])
    assert {"CE2", "6e", "ULIS"} <= set(classes)


def test_decisions(dep: Data) -> None:
    decs = dep.rows["decisions"]
    n = len(decs)
    types = Counter(r["type"] for r in decs)
    assert 0.54 <= types["individuelle"] / n <= 0.66
    for r in decs:
        a, b = _d(r["debut"]), _d(r["fin"])
        assert a <= b and a <= END and b >= START  # overlaps the current school year
        sy_a = a.year if a.month >= 9 else a.year - 1
        sy_b = b.year if b.month >= 9 else b.year - 1
        assert sy_b - sy_a + 1 <= 3
        assert r["origine"] in {"premiere_demande", "reexamen"}
        assert r["nature"] in {"projet_cible", "alternatif"}
        if r["type"] == "individuelle":
            h = float(r["heures"])
            assert 6 <= h <= 24 and h * 2 == int(h * 2)
        else:
            assert r["type"] == "mutualisee" and r["heures"] == ""
    by_student: dict[str, Rows] = defaultdict(list)
    for r in decs:
        by_student[r["eleve_id"]].append(r)
    pairs = [v for v in by_student.values() if len(v) == 2]
    assert 0.11 <= len(pairs) / len(by_student) <= 0.19
    for first, second in pairs:
        assert _d(second["debut"]) == _d(first["fin"]) + timedelta(days=1)
    firsts = {v[0]["id"] for v in pairs}
    ending = [r for r in decs if _d(r["fin"]) < END and r["id"] not in firsts]
    assert 0.03 <= len(ending) / n <= 0.08


def test_aesh_and_missions(dep: Data) -> None:
    aesh = dep.rows["aesh"]
    sources = Counter(r["source"] for r in aesh)
    assert 0.74 <= sources["EPP"] / len(aesh) <= 0.86
    for r in aesh:
        assert 20 <= ANNEE - _d(r["date_naissance"]).year <= 62
        assert re.fullmatch(r"06( \d\d){4}", r["telephone"])
        assert r["transport"] in {"voiture", "transports en commun", ""}
        assert r["rqth"] in {"oui", "non"}
    missions = dep.rows["missions"]
    per_aesh = Counter(r["aesh_id"] for r in missions)
    assert set(per_aesh) == set(dep.aesh)
    assert max(per_aesh.values()) <= 2
    assert 0.04 <= sum(1 for v in per_aesh.values() if v == 2) / len(aesh) <= 0.12
    for r in missions:
        source = dep.aesh[r["aesh_id"]]["source"]
        if source == "EPP":
            assert r["contrat"] in {"T2-CDD", "T2-CDI"} and r["nature"] in NATURES_EPP_T2
        else:
            assert r["contrat"] == "HT2-CDD" and r["nature"] in NATURES_ASSED
        q = int(r["quotite"])
        assert 50 <= q <= 100 and (q % 5 == 0 or q == 62)
        if r["contrat"] == "T2-CDI" and r["fin"] == "" and per_aesh[r["aesh_id"]] == 1:
            assert _d(r["debut"]) < START  # a CDI began years ago
        if r["contrat"].endswith("CDD"):
            assert r["fin"] and _d(r["fin"]) <= END and _d(r["debut"]) >= START
        if r["pial_rne"] and r["nature"] in PIAL_NATURES:
            assert dep.etab[r["employeur_rne"]]["pial_rne"] == r["pial_rne"]
    natures = Counter(r["nature"] for r in missions)
    n = len(missions)
    assert sum(natures[x] for x in PIAL_NATURES) / n > 0.7
    assert 0.02 <= sum(v for k, v in natures.items() if k not in ACCOMPANYING) / n <= 0.09
    assert 0.62 <= sum(1 for r in missions if r["heures"]) / n <= 0.78
    pial_acc = [r for r in missions if r["pial_rne"] and r["nature"] in ACCOMPANYING]
    affected = {r["mission_id"] for r in dep.rows["affectations"]}
    assert affected <= {r["id"] for r in pial_acc}
    assert 0.78 <= len(affected) / len(pial_acc) <= 0.92
    for r in dep.rows["affectations"]:
        m = dep.mission[r["mission_id"]]
        assert r["pial_rne"] == m["pial_rne"]
        assert r["heures"] in ("", m["heures"])


def test_accompagnements_are_consistent(dep: Data) -> None:
    accs = dep.rows["accompagnements"]
    n = len(accs)
    individual = 0
    for r in accs:
        a, b = _d(r["debut"]), _d(r["fin"])
        assert START <= a <= b <= END  # inside the current school year: never crosses 31/08
        ids = r["decision_ids"].split("|")
        assert 1 <= len(ids) <= 4 and len(ids) == len(set(ids))
        types = {dep.decision[i]["type"] for i in ids}
        if types == {"individuelle"}:
            assert len(ids) == 1
            individual += 1
        else:
            assert types == {"mutualisee"}
        assert dep.mission[r["mission_id"]]["nature"] in ACCOMPANYING
        assert r["maintien"] in {"0", "1"} and r["previsionnel"] in {"0", "1"}
        assert float(r["heures"]) > 0
        etab = dep.etab[r["rne"]]
        mission = dep.mission[r["mission_id"]]
        if etab["pial_rne"]:  # a PIAL établissement uses missions affected to its PIAL
            assert mission["pial_rne"] == etab["pial_rne"]
    assert 0.66 <= individual / n <= 0.8
    mutual_multi = sum(1 for r in accs if "|" in r["decision_ids"])
    assert mutual_multi / (n - individual) > 0.2
    decs = dep.rows["decisions"]
    uncovered = sum(1 for r in decs if r["id"] not in dep.acc_by_dec) / len(decs)
    assert 0.22 <= uncovered <= 0.36
    assert sum(r["maintien"] == "1" for r in accs) / n < 0.03
    assert 0.01 <= sum(r["previsionnel"] == "1" for r in accs) / n <= 0.05
    over_notified = sum(
        1
        for r in accs
        if "|" not in r["decision_ids"]
        and dep.decision[r["decision_ids"]]["type"] == "individuelle"
        and float(r["heures"]) > float(dep.decision[r["decision_ids"]]["heures"])
    )
    assert over_notified / n < 0.03


def test_current_year_coverage_mix(dep: Data) -> None:
    """~30 % of decisions without accompaniment, ~20 % partially covered this year."""
    none = partial = complete = 0
    for did, r in dep.decision.items():
        a, b = max(START, _d(r["debut"])), min(END, _d(r["fin"]))
        accs = [
            (_d(x["debut"]), _d(x["fin"]), float(x["heures"]))
            for x in dep.acc_by_dec.get(did, [])
            if x["maintien"] == "0"
        ]
        need_h = float(r["heures"]) if r["type"] == "individuelle" else 1.0
        need = got = 0.0
        day = a
        while day <= b:
            if any(s[1] <= day <= s[2] for s in dep.scols[r["eleve_id"]]):
                p = sum(h for x0, x1, h in accs if x0 <= day <= x1)
                if r["type"] == "mutualisee":
                    p = 1.0 if p else 0.0
                need += need_h
                got += min(p, need_h)
            day += timedelta(days=7)
        if need == 0 or got == 0:
            none += 1
        elif got < need - 1e-9:
            partial += 1
        else:
            complete += 1
    total = none + partial + complete
    assert 0.2 <= none / total <= 0.38
    assert 0.12 <= partial / total <= 0.35
    assert complete / total >= 0.35


def test_each_anomaly_type_is_present(dep: Data) -> None:
    """Domain 3.8 types 1-6 and 8 each concern roughly 1-2 % of the accompaniments."""
    found: Counter[int] = Counter()
    by_mission: dict[str, Rows] = defaultdict(list)
    for r in dep.rows["accompagnements"]:
        by_mission[r["mission_id"]].append(r)
    type6_days: set[str] = set()
    for mid, accs in by_mission.items():
        cap = dep.mission_hours(mid)
        for r in accs:
            day = _d(r["debut"])
            on = [x for x in accs if _d(x["debut"]) <= day <= _d(x["fin"])]
            if sum(float(x["heures"]) for x in on) > cap + 1e-9:
                type6_days.update(x["id"] for x in on)
    for r in dep.rows["accompagnements"]:
        a, b = _d(r["debut"]), _d(r["fin"])
        m = dep.mission[r["mission_id"]]
        decs = [dep.decision[i] for i in r["decision_ids"].split("|")]
        if a < _d(m["debut"]):
            found[1] += 1
        if m["fin"] and b > _d(m["fin"]):
            found[2] += 1
        if any(a < _d(d["debut"]) for d in decs):
            found[3] += 1
        for d in decs:
            spans = sorted((s[1], s[2]) for s in dep.scols[d["eleve_id"]] if s[0] == r["rne"])
            cur = a
            for s0, s1 in spans:
                if s0 <= cur <= s1:
                    cur = s1 + timedelta(days=1)
            if cur <= b:
                found[4] += 1
                break
        if any(dep.eleve[d["eleve_id"]]["dossier_etat"] != "actif" for d in decs):
            found[5] += 1
        if r["id"] in type6_days:
            found[6] += 1
        if r["maintien"] == "0" and any(b > _d(d["fin"]) for d in decs):
            found[8] += 1
    n = len(dep.rows["accompagnements"])
    for t in (1, 2, 3, 4, 5, 6, 8):
        assert 0.005 <= found[t] / n <= 0.03, (t, found[t], n)


def test_candidats(dep: Data) -> None:
    rows = dep.rows["candidats"]
    zones = {r["secteur"].rsplit(" ", 1)[0] for r in dep.rows["etablissements"]}
    statuts = Counter(r["statut"] for r in rows)
    assert set(statuts) <= {
        "brouillon",
        "incomplete",
        "complete",
        "en_examen",
        "retenue",
        "non_retenue",
        "retiree",
        "supprimee",
    }
    assert (statuts["incomplete"] + statuts["complete"] + statuts["en_examen"]) / len(rows) > 0.5
    types = Counter(r["type"] for r in rows)
    assert types["AESH"] / len(rows) > 0.7
    assert set(types) <= {"AESH", "M2_1D_NORD", "M2_1D_PDC", "M2_2D_LILLE"}
    as_of = date(ANNEE, 11, 15)
    for r in rows:
        zs = r["zones"].split("|")
        assert 1 <= len(zs) <= 3 and len(set(zs)) == len(zs) and set(zs) <= zones
        depose = _d(r["depose_le"])
        assert as_of - timedelta(days=366) <= depose <= as_of
        valide = _d(r["valide_jusqu_au"])
        month = depose.month + 6
        year = depose.year + (month > 12)
        month = (month - 1) % 12 + 1
        assert (valide.year, valide.month) == (year, month)
        assert valide.day == depose.day or (valide.day < depose.day and valide.day >= 28)
        personal = [r["nom"], r["prenom"], r["email"], r["telephone"]]
        if r["statut"] in {"retiree", "supprimee"}:
            assert personal == ["", "", "", ""]
        else:
            assert all(personal)
