"""Every table of the product; importing this module registers them all on `Base.metadata`."""

from core.models.accompagnements import Accompagnement, AccompagnementDecision
from core.models.base import Base
from core.models.bot import BotFsm, BotInbox, BotUpdate
from core.models.candidats import Candidat, Candidature, Diplome, Piece
from core.models.eleves import Decision, Eleve, Scolarisation
from core.models.journal import BotNotification, JournalEntry, OutboxMail
from core.models.mailbox import ImapState, ProcessedMail
from core.models.parametres import Cartouche, ParametreAnnee, ParametreDepartement
from core.models.referentiel import CoordonnateurPial, Etablissement, Pial, Secteur
from core.models.rh import Aesh, Affectation, Mission, NatureSupport
from core.models.sessions import ServiceSession
from core.models.users import Invitation, ServiceRole, ServiceUser

__all__ = [
    "Accompagnement",
    "AccompagnementDecision",
    "Aesh",
    "Affectation",
    "Base",
    "BotFsm",
    "BotInbox",
    "BotNotification",
    "BotUpdate",
    "Candidat",
    "Candidature",
    "Cartouche",
    "CoordonnateurPial",
    "Decision",
    "Diplome",
    "Eleve",
    "Etablissement",
    "ImapState",
    "Invitation",
    "JournalEntry",
    "Mission",
    "NatureSupport",
    "OutboxMail",
    "ParametreAnnee",
    "ParametreDepartement",
    "Pial",
    "Piece",
    "ProcessedMail",
    "Scolarisation",
    "Secteur",
    "ServiceRole",
    "ServiceSession",
    "ServiceUser",
]
