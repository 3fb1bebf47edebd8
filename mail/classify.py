"""Classify the new part of a reply to the renewal question (§2.6).

The cost of mistakes is lopsided: UNCLEAR only triggers a clarification mail,
KEEP keeps a file six more months, a wrong WITHDRAW erases someone's
application. Hence every doubt resolves to UNCLEAR, and WITHDRAW needs more
evidence than KEEP.

Decisions on the ambiguous cases:

* Explicit verb phrases beat bare answers. "Non, je maintiens" is KEEP (the
  "non" usually answers something else: "non, je n'ai pas changé d'avis").
  The mirror case is *not* symmetric: "Oui, je retire ma candidature" is
  UNCLEAR, because the "oui" answers "voulez-vous maintenir ?" the other way
  and a withdrawal must not be built on a contradiction.
* Negations flip the verb: "je ne souhaite pas maintenir" is WITHDRAW, "je ne
  souhaite pas retirer ma candidature" is KEEP. A negated "confirmer" counts
  for nothing. Negation is looked for inside one clause only, so "je ne sais
  pas, je maintiens" does not read as "ne … maintiens".
* Bare oui/non/ok/yes/no count only as the first word(s) (after a greeting)
  or in a short reply (≤ 12 words); "non" inside a long sentence decides
  nothing.
* Sentences ending with "?" are ignored: "Dois-je retirer ma candidature ?"
  is a question, not an answer.
* Hesitation ("je ne sais pas", "peut-être", "je vais réfléchir") makes the
  whole reply UNCLEAR. Conditionals ("si", "au cas où") only block WITHDRAW.
* A keep signal and a withdraw signal together are UNCLEAR.
* Verbs that have everyday meanings (annuler, supprimer, retirer) count only
  with an object (ma candidature, mon dossier…), a clitic ("la retirer"), or
  as the whole clause of a very short reply ("Annuler.", "Je souhaite
  retirer") — "je dois annuler mon rendez-vous" decides nothing. In a long
  reply (> 60 words) WITHDRAW additionally needs a clause that names the
  candidature/application.
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum

__all__ = ["Answer", "classify"]


class Answer(StrEnum):
    KEEP = "keep"
    WITHDRAW = "withdraw"
    UNCLEAR = "unclear"


_MAX_CHARS = 10_000
_SHORT_REPLY_WORDS = 12
_VERY_SHORT_REPLY_WORDS = 6
_LONG_REPLY_WORDS = 60

_GREETINGS = frozenset(
    {
        "bonjour",
        "bonsoir",
        "hello",
        "hi",
        "hey",
        "salut",
        "coucou",
        "madame",
        "monsieur",
        "mesdames",
        "messieurs",
        "mme",
        "mr",
        "mrs",
        "ms",
        "m",
        "dear",
        "cher",
        "chere",
        "chers",
        "cheres",
        "sir",
        "madam",
        "a",
        "tous",
        "toutes",
        "all",
        "service",
        "aesh",
    }
)
_BARE_KEEP = frozenset(
    {
        "oui",
        "ouais",
        "yes",
        "yep",
        "yeah",
        "ok",
        "okay",
        "oki",
        "daccord",
        "biensur",
        "volontiers",
        "absolument",
        "evidemment",
        "toutafait",
        "sure",
        "ofcourse",
        "certainement",
    }
)
_BARE_WITHDRAW = frozenset({"non", "no", "nope", "nan"})
# "no problem", "non seulement", "moi non plus": not an answer.
_BARE_EXCEPTIONS = {
    "no": frozenset(
        {"longer", "problem", "problems", "worries", "doubt", "need", "idea", "matter"}
    ),
    "non": frozenset({"seulement", "titulaire", "plus", "pas", "loin"}),
}
_MULTIWORD_BARE = (
    (re.compile(r"\bd accord\b"), "daccord"),
    (re.compile(r"\bbien sur\b"), "biensur"),
    (re.compile(r"\btout a fait\b"), "toutafait"),
    (re.compile(r"\bof course\b"), "ofcourse"),
)

_MODAL = (
    r"(?:souhaite|souhaites|souhaitais|souhaiterais|souhaitons|veux|voulais|voudrais"
    r"|voulons|desire|desirais|desirerais|compte|comptais|vais|peux|pense|envisage"
    r"|tiens|ai|aimerais|prefere|preferais|preferes)"
)
_FILL = (
    r"(?:du tout|vraiment|forcement|necessairement|l intention de|l intention d"
    r"|envie de|envie d|de|d|a|encore)"
)
_CLITIC = r"(?:(?:la|le|l|me|m|les) )"
_KEEP_VERB = (
    r"(?:maint(?:ien[st]?|enons|enez|enir|enu|enue|enus|enues|iendrai|iendrais)"
    r"|gard(?:e|es|er|ons|ez)|conserv(?:e|es|er|ons|ez)|renouvel(?:le|les|er|ons|ez)"
    r"|prolong(?:e|es|er|eons|ez))"
)
_WITHDRAW_VERB = (
    r"(?:retir(?:e|es|er|ons|ez)|annul(?:e|es|er|ons|ez)|supprim(?:e|es|er|ons|ez)"
    r"|effac(?:e|es|er|ons|ez)|renonc(?:e|es|er|ons|ez)|desist(?:e|es|er|ons|ez))"
)
_CONFIRM_VERB = r"(?:confirm(?:e|es|er|ons|ez))"


def _negated(verb_fr: str, verb_en: str) -> re.Pattern[str]:
    return re.compile(
        "|".join(
            (
                # je ne souhaite pas (du tout) la maintenir / je veux pas retirer
                rf"\b(?:(?:ne|n) )?{_MODAL} (?:pas|plus|point|jamais)(?: {_FILL})*"
                rf" {_CLITIC}?{verb_fr}\b",
                # merci de ne pas supprimer
                rf"\bne (?:pas|plus|jamais) {_CLITIC}?{verb_fr}\b",
                # je ne maintiens pas
                rf"\b(?:ne|n) {_CLITIC}?{verb_fr} (?:pas|plus|point|jamais)\b",
                # do not want to keep / please don't remove
                r"\b(?:not|never|no longer)"
                r"(?: (?:want|wish|like|plan|intend|need|going|choose|decide))?"
                rf"(?: to)? {verb_en}\b",
            )
        )
    )


_NEGATED_KEEP = _negated(_KEEP_VERB, r"(?:keep|maintain|renew)")
_NEGATED_WITHDRAW = _negated(_WITHDRAW_VERB, r"(?:withdraw|remove|delete|cancel)")
_NEGATED_CONFIRM = _negated(_CONFIRM_VERB, r"(?:confirm)")

# Phrases that carry their own negation and mean "withdraw".
_WITHDRAW_NEGATIVE_PHRASES = re.compile(
    "|".join(
        (
            # without "ne", "suis plus intéressée" may be a comparative: only
            # "pas" is unambiguous there (_PLUS_INTERESSE handles the rest).
            r"\b(?:(?:ne|n) (?:suis|sommes|serai|serais|etre|est) (?:plus|pas)"
            r"|(?:suis|sommes|serai|serais|etre|est) pas)(?: du tout)?"
            r" (?:interesse|interessee|interesses|interessees"
            r"|candidat|candidate|candidats|candidates)\b",
            rf"\b(?:ne|n) {_MODAL} (?:pas|plus)(?: {_FILL})*"
            r" (?:postuler|candidater|etre candidat\w*|donner suite)\b",
            r"\b(?:ne|n) (?:donne|donnerai|donnerons) pas suite\b",
            r"\bne pas donner suite\b",
            r"\b(?:not|no longer)(?: be)? interested\b",
        )
    )
)
# Spoken "plus intéressée" (no "ne"), but not "plus intéressée que jamais".
_PLUS_INTERESSE = re.compile(r"\b(?:plus|pas) (?:du tout )?interesse(?:e|s|es)?\b(?! que| par)")
_NOT_NEGATION_BEFORE_PLUS = re.compile(
    r"(?:de plus en|toujours|encore|d autant|bien|beaucoup|un peu|ne sais|sais)\s*$"
)

_KEEP_PATTERNS = tuple(
    re.compile(p)
    for p in (
        r"\bmaint(?:ien[st]?|enons|enez|enir|enu|enue|enus|enues|iendrai|iendrais)\b",
        r"\b(?:la|l) (?:garder|conserver|renouveler|prolonger)\b",
        r"\bje (?:la|l) (?:garde|conserve|renouvelle|prolonge)\b",
        r"\b(?:gard|conserv|renouvel|prolong)(?:e|es|er|ons|ez|le|les)\b(?: \w+){0,3}?"
        r" (?:candidature|dossier|inscription|demande)\b",
        r"\bje (?:vous )?(?:le )?confirme\b(?! (?:que|qu|mon souhait|ma decision|mon choix"
        r"|le retrait|mon retrait|ma demande|mon desistement|vouloir|souhaiter|ne|n|zz))",
        r"\bconfirm(?:e|er|ons|ez) (?:ma|la|mon|notre) (?:candidature|inscription|interet)\b",
        r"\bje reste (?:candidat|candidate|interesse\w*|disponible|partant|partante|motive\w*)\b",
        r"\b(?:toujours|encore) (?:tres )?"
        r"(?:interesse\w*|candidat\w*|disponible|partant\w*|motive\w*)\b",
        r"\bje souhaite (?:continuer|poursuivre)\b",
        r"\bstill (?:very )?interested\b",
        r"\b(?:keep|maintain|renew)\b(?! (?:in touch|me|you|us|posted|informed|updated))",
        r"\bi (?:still )?confirm\b(?! (?:that|zz))",
        r"\bzzkeep\b",
    )
)
_CANDIDATURE = r"(?:candidature|candidatures|dossier|inscription|demande|candidacy|application)"
# Withdraw phrases anywhere in a reply.
_WITHDRAW_PATTERNS = tuple(
    re.compile(p)
    for p in (
        rf"\b{_WITHDRAW_VERB}\b(?: \w+){{0,3}}? {_CANDIDATURE}\b",
        r"\b(?:la|l|me|m) (?:retir|annul|supprim|effac)(?:e|er|ez)\b",
        r"\bje (?:souhaite|veux|voudrais|prefere|prefererais|desire)"
        r" (?:me )?(?:retirer|renoncer)\b(?! (?:mon|ma|mes|le|la|les|un|une|des|du|de) )",
        r"\b(?:je|j) renonce\b",
        r"\bdesist\w*\b",
        r"\bj ai (?:deja |finalement |enfin )?(?:trouve|obtenu|accepte|decroche|signe)"
        r"(?: \w+){0,4}?"
        r" (?:emploi|poste|travail|job|cdi|cdd|contrat|boulot)\b",
        r"\bj ai ete (?:recrute|recrutee|embauche|embauchee|titularise|titularisee)\b",
        r"\bi (?:have |ve )?(?:found|got|accepted|taken)(?: \w+){0,3}?"
        r" (?:job|position|post|offer)\b",
        r"\bwithdraw\w*\b",
        rf"\b(?:remove|delete|cancel)\b(?: \w+){{0,3}}? {_CANDIDATURE}\b",
        r"\bzzwd\b",
    )
)
# Everyday verbs that count alone only as the whole clause of a very short
# reply ("Retirer.", "Annulez svp"), never with another object ("annuler mon
# rendez-vous").
_WITHDRAW_SHORT_ONLY = re.compile(
    r"^(?:(?:je|j) (?:souhaite|veux|voudrais|prefere|desire) )?(?:(?:me|la|l) )?"
    r"(?:(?:retir|annul|supprim|effac)(?:e|er|ez)|remove|delete|cancel|remove it|delete it)"
    r"(?: (?:svp|stp|merci|please|s il vous plait|s il te plait|moi))*$"
)
_ANCHOR = re.compile(rf"\b{_CANDIDATURE}\b|\bdesist")

_HESITATION = re.compile(
    r"\b(?:pas (?:encore )?sure?|hesite\w*|not sure|unsure|ne sais pas|sais pas|do not know"
    r"|peut etre|maybe|perhaps|reflechir|reflechis|reflexion|think about it|je verrai"
    r"|not yet decided|pas encore decide\w*)\b"
)
_HYPOTHETICAL = re.compile(
    r"\b(?:si|if|au cas ou|sauf|unless|probablement|probably|sans doute|bientot|soon"
    r"|eventuellement|possiblement)\b"
)

_CLAUSE_SPLIT = re.compile(
    r"[,;:\"«»]|\s[-–—]\s|\b(?:mais|but|cependant|toutefois|however|par contre|sinon|otherwise)\b"
)


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.replace("œ", "oe").replace("Œ", "OE").replace("æ", "ae").replace("Æ", "AE")
    # Blank lines and a line starting with a capital end a sentence; other
    # newlines are just wrapping ("je ne souhaite pas\nmaintenir").
    text = re.sub(r"\r\n?", "\n", text)
    text = re.sub(r"\n\s*\n", " . ", text)
    text = re.sub(r"\n[ \t]*(?=[A-Z])", " . ", text)
    text = text.replace("\n", " ").lower()
    return re.sub(r"n['’`´]t\b", " not", text)


def _clauses(text: str) -> list[str]:
    """Normalised clauses of the non-question sentences, in order."""
    clauses: list[str] = []
    for match in re.finditer(r"[^.!?…]+([.!?…]*)", text):
        if "?" in match.group(1):
            continue
        sentence = match.group(0).rstrip(".!…")
        for clause in _CLAUSE_SPLIT.split(sentence):
            norm = re.sub(r"[^a-z0-9]+", " ", clause).strip()
            if norm:
                clauses.append(norm)
    return clauses


def _drop_greeting(clauses: list[str]) -> list[str]:
    if not clauses:
        return clauses
    tokens = clauses[0].split()
    if tokens[0] not in _GREETINGS or tokens[0] in ("a", "m"):
        return clauses
    while tokens and tokens[0] in _GREETINGS:
        tokens.pop(0)
    signal = any(t in _BARE_KEEP or t in _BARE_WITHDRAW for t in tokens)
    if len(tokens) <= 2 and not signal:
        # "Bonjour Madame Dupont," — a name, not an answer.
        return clauses[1:]
    return [" ".join(tokens), *clauses[1:]] if tokens else clauses[1:]


def _rewrite_negations(clause: str) -> str:
    clause = _WITHDRAW_NEGATIVE_PHRASES.sub(" zzwd ", clause)

    def plus_interesse(match: re.Match[str]) -> str:
        before = clause[: match.start()]
        if _NOT_NEGATION_BEFORE_PLUS.search(before):
            return match.group(0)
        return " zzwd "

    clause = _PLUS_INTERESSE.sub(plus_interesse, clause)
    clause = _NEGATED_KEEP.sub(" zzwd ", clause)
    clause = _NEGATED_WITHDRAW.sub(" zzkeep ", clause)
    clause = _NEGATED_CONFIRM.sub(" zzneutral ", clause)
    for pattern, token in _MULTIWORD_BARE:
        clause = pattern.sub(token, clause)
    return re.sub(r"\s+", " ", clause).strip()


def classify(reply_text: str) -> Answer:
    clauses = _drop_greeting(_clauses(_fold(reply_text[:_MAX_CHARS])))
    if not clauses:
        return Answer.UNCLEAR
    joined = " . ".join(clauses)
    n_words = sum(len(c.split()) for c in clauses)
    if _HESITATION.search(joined):
        return Answer.UNCLEAR

    keep = withdraw = anchored = bare_keep = bare_withdraw = False
    leading = True  # still in the run of first words
    for original in clauses:
        clause = _rewrite_negations(original)
        if any(p.search(clause) for p in _KEEP_PATTERNS):
            keep = True
        clause_withdraw = any(p.search(clause) for p in _WITHDRAW_PATTERNS) or (
            n_words <= _VERY_SHORT_REPLY_WORDS and bool(_WITHDRAW_SHORT_ONLY.match(clause))
        )
        if clause_withdraw:
            withdraw = True
            anchored = anchored or bool(_ANCHOR.search(original))
        tokens = clause.split()
        for i, token in enumerate(tokens):
            is_keep = token in _BARE_KEEP
            is_withdraw = token in _BARE_WITHDRAW
            if is_withdraw:
                following = tokens[i + 1] if i + 1 < len(tokens) else ""
                if following in _BARE_EXCEPTIONS.get(token, frozenset()):
                    is_withdraw = False
            counts = leading or n_words <= _SHORT_REPLY_WORDS
            if is_keep and counts:
                bare_keep = True
            if is_withdraw and counts:
                bare_withdraw = True
            if not (is_keep or is_withdraw):
                leading = False

    if keep and withdraw:
        return Answer.UNCLEAR
    if keep:
        return Answer.KEEP
    if withdraw:
        if bare_keep or _HYPOTHETICAL.search(joined):
            return Answer.UNCLEAR
        if n_words > _LONG_REPLY_WORDS and not anchored:
            return Answer.UNCLEAR
        return Answer.WITHDRAW
    if bare_keep and bare_withdraw:
        return Answer.UNCLEAR
    if bare_keep:
        return Answer.KEEP
    if bare_withdraw:
        return Answer.UNCLEAR if _HYPOTHETICAL.search(joined) else Answer.WITHDRAW
    return Answer.UNCLEAR
