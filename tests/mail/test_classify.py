"""Classification of the new part of renewal replies."""

from __future__ import annotations

import pytest

from mail.classify import Answer, classify

K, W, U = Answer.KEEP, Answer.WITHDRAW, Answer.UNCLEAR

CASES: list[tuple[str, Answer]] = [
    # --- KEEP, French
    ("oui", K),
    ("Oui", K),
    ("OUI !", K),
    ("Oui merci", K),
    ("oui, merci beaucoup", K),
    ("Oui je maintiens", K),
    ("Je maintiens.", K),
    ("je maintiens ma candidature", K),
    ("Je souhaite maintenir ma candidature.", K),
    ("Maintenir", K),
    ("Je confirme", K),
    ("je confirme ma candidature", K),
    ("Je reste candidate", K),
    ("je reste candidat.", K),
    ("Toujours intéressé(e)", K),
    ("toujours interessee", K),
    ("Je suis toujours intéressée par un poste d'AESH.", K),
    ("D'accord", K),
    ("d’accord, merci", K),
    ("Ok", K),
    ("OK 👍", K),
    ("Bonjour,\n\nOui, je maintiens ma candidature.\n\nCordialement,\nLéa Martin", K),
    ("Bonjour Madame,\nje souhaite maintenir ma candidature pour la rentrée prochaine.", K),
    ("Je ne souhaite pas retirer ma candidature", K),
    ("Je ne retire pas ma candidature.", K),
    ("Merci de ne pas supprimer ma candidature, je suis toujours disponible.", K),
    ("Non, je maintiens !", K),  # explicit verb beats the bare "non"
    ("Non non, je maintiens ma candidature", K),
    ("Je ne sais pas trop quoi dire mais je maintiens", U),  # hesitation
    ("Bonjour, je voudrais la garder s'il vous plaît", K),
    ("Je souhaite renouveler ma candidature", K),
    ("MAINTIEN DE MA CANDIDATURE", K),
    ("Bonjour\nOui\nEnvoyé de mon iPhone", K),
    # --- KEEP, English
    ("yes", K),
    ("Yes please", K),
    ("Keep", K),
    ("I want to keep my application.", K),
    ("Still interested, thanks!", K),
    ("I don't want to withdraw my application", K),
    ("Hello, yes I am still interested.\nBest regards,\nJohn", K),
    # --- WITHDRAW, French
    ("non", W),
    ("Non.", W),
    ("Non merci", W),
    ("NON MERCI", W),
    ("Retirer", W),
    ("Je retire ma candidature", W),
    ("je retire ma candidature.", W),
    ("Je souhaite retirer ma candidature", W),
    ("Je souhaite retirer", W),
    ("Je ne suis plus intéressée", W),
    ("je ne suis plus interesse", W),
    ("Plus intéressé, merci", W),
    ("Je renonce", W),
    ("Je renonce à ma candidature, merci pour tout.", W),
    ("Annuler", W),
    ("Merci de supprimer ma candidature", W),
    ("Supprimer ma candidature svp", W),
    ("Désistement", W),
    ("Je me désiste.", W),
    ("J'ai trouvé un emploi", W),
    ("j’ai trouvé un autre poste, merci", W),
    ("Je ne souhaite pas maintenir ma candidature", W),
    ("Je ne souhaite plus maintenir ma candidature.", W),
    ("je ne maintiens pas", W),
    ("Bonjour,\nNon merci, j'ai trouvé un CDI.\nBonne journée\nNadège", W),
    # --- WITHDRAW, English
    ("no", W),
    ("No thanks", W),
    ("Withdraw", W),
    ("Please remove my application", W),
    ("Not interested anymore", W),
    ("I'm no longer interested.", W),
    ("I do not want to keep my application", W),
    # --- UNCLEAR
    ("", U),
    ("   \n  ", U),
    ("Que dois-je faire ?", U),
    ("Dois-je retirer ma candidature ?", U),
    ("Merci", U),
    ("Bonjour", U),
    ("Oui ou non ?", U),
    ("oui non", U),
    ("Je maintiens ma candidature mais je retire mon dossier pour Lille", U),
    ("J'ai trouvé un emploi mais je maintiens ma candidature", U),
    ("Oui, je retire ma candidature", U),  # contradicts the question
    ("Je ne sais pas encore, je vous redis", U),
    ("Peut-être, je dois réfléchir", U),
    ("Si je trouve un emploi d'ici là, je retire ma candidature.", U),
    ("Je suis plus intéressée par le poste de Lille que par celui de Douai", U),
    ("je ne confirme pas", U),
    (
        "Bonjour, je vous écris au sujet de mon fils qui est scolarisé en CM2 à l'école "
        "Jean Jaurès. Non seulement il n'a pas d'accompagnant depuis la rentrée, mais "
        "l'équipe ne répond pas à mes messages. Pouvez-vous me dire qui contacter pour "
        "faire avancer la situation et savoir quand une personne sera affectée ? Je dois "
        "annuler mon rendez-vous de jeudi pour venir à la réunion, non pas par choix.",
        U,
    ),
    (
        "Bonjour, merci pour votre message. Je travaille actuellement en intérim dans une "
        "entreprise de logistique et mon contrat se termine en janvier, donc pour le moment "
        "je ne sais pas trop ce que je ferai ensuite ni si je serai disponible en journée, "
        "non vraiment, c'est compliqué avec les enfants et la garde le mercredi.",
        U,
    ),
    ("Thank you. What should I do?", U),
    ("Unsubscribe", U),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_classification_table(text: str, expected: Answer) -> None:
    assert classify(text) == expected


def test_table_is_large_enough() -> None:
    assert len(CASES) >= 60


@pytest.mark.parametrize(
    "text",
    [
        "Je ne sais pas, je maintiens",  # "ne … pas" belongs to another clause
        "Je ne sais pas. Je maintiens.",
    ],
)
def test_negation_does_not_leak_across_clauses(text: str) -> None:
    # Hesitation makes these UNCLEAR, but they must never read as a withdrawal.
    assert classify(text) != Answer.WITHDRAW


def test_wrapped_line_keeps_negation() -> None:
    assert classify("Bonjour,\nje ne souhaite pas\nmaintenir ma candidature") == W


def test_bare_non_only_counts_at_start_or_in_short_reply() -> None:
    long_text = (
        "Bonjour, je voulais vous dire que je suis en train de déménager à Lens et que "
        "je ne connais pas encore mes horaires, non plus que ceux de mon conjoint, "
        "alors que la rentrée approche et que tout se décide en ce moment, non ?"
    )
    assert classify(long_text) == U
    assert classify("Non. " + "Je vous remercie pour ce message et pour votre suivi. " * 3) == W


def test_accents_and_case_do_not_matter() -> None:
    texts = (
        "JE NE SUIS PLUS INTÉRESSÉE",
        "je ne suis plus interessee",
        "Je Ne Suis Plus Intéressée",
    )
    for text in texts:
        assert classify(text) == W


def test_signature_does_not_change_the_answer() -> None:
    text = "Oui je maintiens\n\n-- \nMarie Dupont\nAESH — non titulaire\n06 00 00 00 00"
    assert classify(text) == K
