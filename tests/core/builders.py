"""A small fluent builder of AGESH data for tests (ORM rows, flushed in dependency order)."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core.models import (
    Accompagnement,
    AccompagnementDecision,
    Aesh,
    Affectation,
    Decision,
    Eleve,
    Etablissement,
    Mission,
    Pial,
    Scolarisation,
    Secteur,
)

ORDER = (
    Pial,
    Etablissement,
    Secteur,
    Eleve,
    Scolarisation,
    Decision,
    Aesh,
    Mission,
    Affectation,
    Accompagnement,
    AccompagnementDecision,
)


class _Pending:
    def __init__(self) -> None:
        self.objects: list[Any] = []

    def add(self, obj: Any) -> None:
        self.objects.append(obj)


def d(text: str) -> date:
    """`d("05/04/2019")` or `d("2019-04-05")`."""
    if "/" in text:
        day, month, year = text.split("/")
        return date(int(year), int(month), int(day))
    return date.fromisoformat(text)


class World:
    def __init__(self, session: AsyncSession, dep: str = "062") -> None:
        self.s = _Pending()
        self.session = session
        self.dep = dep
        self._n = 0

    async def flush(self) -> None:
        """Insert what was built, parents first (the models declare no ORM relationships)."""
        for model in ORDER:
            batch = [o for o in self.s.objects if type(o) is model]
            if batch:
                self.session.add_all(batch)
                await self.session.flush()
        self.s.objects.clear()

    def pial(self, rne: str) -> str:
        self.s.add(Pial(rne=rne, departement=rne[:3]))
        return rne

    def etab(self, rne: str, pial: str | None = None, **kw: Any) -> str:
        self.s.add(
            Etablissement(
                rne=rne, nom=kw.pop("nom", f"École {rne}"), pial_rne=pial, departement=rne[:3], **kw
            )
        )
        return rne

    def secteur(self, code: str) -> str:
        self.s.add(Secteur(departement=self.dep, code=code))
        return code

    def eleve(
        self,
        id: str,
        secteur: str = "Arras 1",
        etat: str = "actif",
        dep: str | None = None,
        **kw: Any,
    ) -> str:
        self.s.add(
            Eleve(
                id=id,
                nom=kw.pop("nom", "Durand"),
                prenom=kw.pop("prenom", "Émilie"),
                secteur=secteur,
                dossier_etat=etat,
                departement=dep or self.dep,
                **kw,
            )
        )
        return id

    def scol(self, eleve_id: str, rne: str, debut: str, fin: str | None) -> None:
        self._n += 1
        self.s.add(
            Scolarisation(
                id=f"SC{self._n}",
                eleve_id=eleve_id,
                rne=rne,
                debut=d(debut),
                fin=d(fin) if fin else None,
            )
        )

    def decision(
        self,
        id: str,
        eleve_id: str,
        debut: str,
        fin: str,
        heures: float | None = None,
        type: str | None = None,
    ) -> str:
        kind = type or ("individuelle" if heures is not None else "mutualisee")
        self.s.add(
            Decision(id=id, eleve_id=eleve_id, type=kind, heures=heures, debut=d(debut), fin=d(fin))
        )
        return id

    def aesh(self, id: str, actif: bool = True, source: str = "EPP") -> str:
        self.s.add(
            Aesh(
                id=id, source=source, nom="Martin", prenom="Léa", actif=actif, departement=self.dep
            )
        )
        return id

    def mission(
        self,
        id: str,
        aesh_id: str,
        debut: str,
        fin: str | None,
        heures: float = 24,
        nature: str = "HP1D",
        contrat: str | None = None,
        actif: bool = True,
        previsionnel: bool = False,
        **kw: Any,
    ) -> str:
        self.s.add(
            Mission(
                id=id,
                aesh_id=aesh_id,
                nature=nature,
                contrat=contrat or ("T2-CDI" if fin is None else "T2-CDD"),
                debut=d(debut),
                fin=d(fin) if fin else None,
                heures=heures,
                heures_rh=heures,
                quotite=kw.pop("quotite", 100.0),
                actif=actif,
                previsionnel=previsionnel,
                departement=self.dep,
                **kw,
            )
        )
        return id

    def affectation(
        self, mission_id: str, pial: str, annee: str, heures: float | None = None
    ) -> None:
        self.s.add(Affectation(mission_id=mission_id, pial_rne=pial, annee=annee, heures=heures))

    def acc(
        self,
        id: str,
        mission_id: str,
        decisions: list[str] | str,
        rne: str,
        debut: str,
        fin: str,
        heures: float,
        maintien: bool = False,
        previsionnel: bool = False,
    ) -> str:
        self.s.add(
            Accompagnement(
                id=id,
                mission_id=mission_id,
                rne=rne,
                debut=d(debut),
                fin=d(fin),
                heures=heures,
                maintien=maintien,
                previsionnel=previsionnel,
            )
        )
        for dec in [decisions] if isinstance(decisions, str) else decisions:
            self.s.add(AccompagnementDecision(accompagnement_id=id, decision_id=dec))
        return id
