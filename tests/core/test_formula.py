"""The besoin formula: parsing, C integer semantics, refusals and properties."""

from __future__ import annotations

import builtins
import dataclasses
import operator
import pickle
from collections.abc import Callable
from fractions import Fraction
from typing import Any, NoReturn

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from core.rules.formula import (
    DEFAULT_FORMULA,
    MAX_DEPTH,
    MAX_LENGTH,
    Formula,
    FormulaError,
    memoized,
    parse_formula,
)

# ---------------------------------------------------------------- default formula


def test_default_formula_is_the_manual_text() -> None:
    assert DEFAULT_FORMULA == "intdiv(cM, 5) * 32 + (cM % 5 > 0 ? 24 : 0)"


@pytest.mark.parametrize(
    ("cm", "besoin"),
    [(0, 0), (1, 24), (4, 24), (5, 32), (6, 56), (10, 64), (11, 88)],
)
def test_default_formula_values(cm: int, besoin: int) -> None:
    assert parse_formula(DEFAULT_FORMULA)(cm) == besoin


def test_default_formula_matches_its_definition_on_a_range() -> None:
    formula = parse_formula(DEFAULT_FORMULA)
    for cm in range(500):
        assert formula(cm) == cm // 5 * 32 + (24 if cm % 5 else 0)


# ------------------------------------------------------------ precedence & assoc


@pytest.mark.parametrize(
    ("source", "cm", "expected"),
    [
        ("1 + 2 * 3", 0, 7),
        ("(1 + 2) * 3", 0, 9),
        ("10 - 3 - 2", 0, 5),  # left-associative, not 10 - (3 - 2)
        ("2 * 3 % 4", 0, 2),  # (2 * 3) % 4, not 2 * (3 % 4)
        ("17 % 5 * 2", 0, 4),
        ("cM - 1 + 1", 7, 7),
        ("-2 * 3", 0, -6),
        ("-cM * 2 + 1", 3, -5),
        ("1 - -1", 0, 2),
        ("--3", 0, 3),
        ("---cM", 4, -4),
        ("-(cM + 1)", 4, -5),
        ("2 * -cM", 4, -8),
        ("3 > 1 + 1", 0, 1),  # 3 > 2, not (3 > 1) + 1
        ("0 == 1 - 1", 0, 1),  # 0 == 0, not (0 == 1) - 1
        ("(1 < 2) + (3 < 4)", 0, 2),
        ("1 ? 2 : 3 + 4", 0, 2),  # the ternary binds loosest
        ("1 + 1 ? 5 : 6", 0, 5),
        ("0 < 1 ? 10 : 20", 0, 10),
        ("1 ? 2 : 0 ? 3 : 4", 0, 2),  # right-associative: 1 ? 2 : (0 ? 3 : 4)
        ("0 ? 1 : 0 ? 2 : 3", 0, 3),
        ("(1 ? 0 : 1) ? 3 : 4", 0, 4),
        ("intdiv(cM, 2) * 2 + cM % 2", 9, 9),
        ("intdiv(1 + 2 * 3, 2)", 0, 3),
    ],
)
def test_precedence_and_associativity(source: str, cm: int, expected: int) -> None:
    assert parse_formula(source)(cm) == expected


@pytest.mark.parametrize(
    ("op", "python_op"),
    [
        ("<", operator.lt),
        ("<=", operator.le),
        (">", operator.gt),
        (">=", operator.ge),
        ("==", operator.eq),
        ("!=", operator.ne),
    ],
)
def test_comparisons_yield_ints(op: str, python_op: Callable[[int, int], bool]) -> None:
    variable = parse_formula(f"cM {op} 3")
    constant = parse_formula(f"3 {op} 3")
    for cm in range(7):
        result = variable(cm)
        # Plain ints, not bools: results get stored and serialised.
        assert type(result) is int
        assert result == (1 if python_op(cm, 3) else 0)
    assert type(constant(0)) is int


def test_chained_comparison_is_refused() -> None:
    with pytest.raises(FormulaError) as info:
        parse_formula("1 < 2 < 3")
    assert info.value.position == 6
    assert "enchaînées" in info.value.message
    assert parse_formula("(1 < 2) < 3")(0) == 1


# ------------------------------------------------------------- C truncation


@pytest.mark.parametrize(
    ("source", "cm", "expected"),
    [
        ("intdiv(7, 2)", 0, 3),
        ("intdiv(-7, 2)", 0, -3),
        ("intdiv(7, -2)", 0, -3),
        ("intdiv(-7, -2)", 0, 3),
        ("intdiv(-1, 5)", 0, 0),
        ("7 % 2", 0, 1),
        ("-7 % 2", 0, -1),  # (-7) % 2: unary minus binds tighter
        ("7 % -2", 0, 1),
        ("-7 % -2", 0, -1),
        # Same with cM so that the runtime closures, not constant folding, compute.
        ("intdiv(cM - 7, 2)", 0, -3),
        ("intdiv(cM + 7, -2)", 0, -3),
        ("intdiv(cM - 7, cM - 2)", 0, 3),
        ("(cM - 7) % 2", 0, -1),
        ("(cM + 7) % (cM - 2)", 0, 1),
        ("-cM % 5", 7, -2),
        ("intdiv(-cM, 5)", 7, -1),
        ("intdiv(cM, -5)", 7, -1),
    ],
)
def test_division_truncates_toward_zero(source: str, cm: int, expected: int) -> None:
    assert parse_formula(source)(cm) == expected


@given(a=st.integers(-(10**12), 10**12), b=st.integers(-(10**6), 10**6).filter(bool))
def test_intdiv_and_remainder_identity(a: int, b: int) -> None:
    # cM carries |a| so that the division is evaluated at run time.
    sign = "-" if a < 0 else ""
    quotient = parse_formula(f"intdiv({sign}cM, {b})")(abs(a))
    remainder = parse_formula(f"{sign}cM % {b}")(abs(a))
    assert quotient * b + remainder == a
    assert abs(remainder) < abs(b)
    assert remainder == 0 or (remainder < 0) == (a < 0)


# ------------------------------------------------------------------- ternary


@pytest.mark.parametrize(
    ("cm", "expected"),
    [(0, 100), (1, 10), (2, 20), (3, 30), (9, 30)],
)
def test_nested_ternary(cm: int, expected: int) -> None:
    formula = parse_formula("cM == 0 ? 100 : cM < 2 ? 10 : cM < 3 ? 20 : 30")
    assert formula(cm) == expected


def test_ternary_in_the_middle_branch_and_condition() -> None:
    formula = parse_formula("cM > 1 ? cM > 5 ? 2 : 1 : (cM ? 7 : 8)")
    assert [formula(cm) for cm in (0, 1, 2, 6)] == [8, 7, 1, 2]


def test_ternary_condition_is_any_non_zero_value() -> None:
    formula = parse_formula("cM - 3 ? 1 : 0")
    assert [formula(cm) for cm in range(5)] == [1, 1, 1, 0, 1]
    assert parse_formula("-1 ? 5 : 6")(0) == 5


# ------------------------------------------------------------------ whitespace


@pytest.mark.parametrize(
    "source",
    [
        "intdiv(cM,5)*32+(cM%5>0?24:0)",
        "  intdiv ( cM , 5 )\t*\n32 +( cM % 5 > 0 ? 24 : 0 )  ",
        # Non-breaking spaces, as French typography puts before ? and :.
        "intdiv(cM,\u00a05)\u00a0*\u00a032 + (cM % 5 > 0\u202f? 24\u202f: 0)",
    ],
)
def test_whitespace_is_free(source: str) -> None:
    formula = parse_formula(source)
    assert [formula(cm) for cm in (0, 1, 5, 6, 11)] == [0, 24, 32, 56, 88]


# --------------------------------------------------------------------- refusals


def refusal(source: str) -> FormulaError:
    with pytest.raises(FormulaError) as info:
        parse_formula(source)
    return info.value


@pytest.mark.parametrize(
    ("source", "position", "fragment"),
    [
        ("", 0, "formule vide"),
        ("   ", 0, "formule vide"),
        ("cM +", 4, "fin de formule inattendue"),
        ("cM + ", 5, "fin de formule inattendue"),
        ("intdiv(cM 5)", 10, "virgule attendue"),
        ("(cM", 3, "parenthèse fermante attendue"),
        ("cM)", 2, "parenthèse fermante sans parenthèse ouvrante"),
        ("foo(cM)", 0, "identifiant inconnu « foo »"),
        ("x * 2", 0, "identifiant inconnu « x »"),
        ("cM $ 2", 3, "caractère inattendu « $ »"),
        ("1 ? 2", 5, "« : » attendu"),
        ('eval("1")', 0, "identifiant inconnu « eval »"),
        ("__import__('os')", 0, "identifiant inconnu « __import__ »"),
        ("cm + 1", 0, "« cM »"),
        ("CM", 0, "« cM »"),
        ("cM2", 0, "identifiant inconnu « cM2 »"),
        ("intdiv", 6, "parenthèse ouvrante attendue"),
        ("intdiv 1", 7, "parenthèse ouvrante attendue"),
        ("intdiv(1)", 8, "virgule attendue"),
        ("intdiv(1, 2, 3)", 11, "exactement deux arguments"),
        ("intdiv(1, 2", 11, "parenthèse fermante attendue"),
        ("+1", 0, "expression attendue"),
        ("2 ** 3", 3, "expression attendue"),
        ("1 ?: 2", 3, "expression attendue"),
        ("()", 1, "expression attendue"),
        ("cM cM", 3, "opérateur attendu"),
        ("5cM", 1, "opérateur attendu"),
        ("cM = 1", 3, "« == »"),
        ("!cM", 0, "« != »"),
        ("1 / 2", 2, "intdiv"),
        ("cM && 1", 3, "caractère inattendu « & »"),
        ("cM || 1", 3, "caractère inattendu « | »"),
        ("1.5", 1, "caractère inattendu « . »"),
        ("cM\x00", 2, "U+0000"),
        ("\u0663", 0, "caractère inattendu"),  # Arabic-Indic digit three
        ("cM \u2212 1", 3, "caractère inattendu « \u2212 »"),  # typographic minus
        ("1 < 2 < 3", 6, "enchaînées"),
        ("cM + + $", 5, "expression attendue"),  # the leftmost error wins
    ],
)
def test_refused_formulas(source: str, position: int, fragment: str) -> None:
    error = refusal(source)
    assert error.position == position
    assert fragment in error.message
    assert error.source == source


def test_refused_formula_error_is_a_value_error_with_french_str() -> None:
    error = refusal("cM $ 2")
    assert isinstance(error, ValueError)
    assert str(error) == "caractère inattendu « $ » (position 4)"


def test_caret_points_at_the_error() -> None:
    assert refusal("cM $ 2").caret() == "cM $ 2\n   ^"
    assert refusal("cM +").caret() == "cM +\n    ^"
    # Tabs and newlines are shown as spaces so that the caret stays aligned.
    assert refusal("cM\t+\n$").caret() == "cM + $\n     ^"


def test_caret_of_a_long_source_shows_a_window() -> None:
    source = "cM + " * 30 + "$ + 1"
    error = refusal(source)
    line, caret = error.caret().split("\n")
    assert len(line) < 70
    assert line[caret.index("^")] == "$"


def test_formula_error_pickles() -> None:
    error = refusal("cM $ 2")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.message, copy.position, copy.source) == (error.message, 3, "cM $ 2")


# ------------------------------------------------------------------ hostile input


def test_length_limit() -> None:
    longest = "cM+" * ((MAX_LENGTH - 2) // 3) + "cM"
    assert len(longest) == MAX_LENGTH
    assert parse_formula(longest)(2) == 2 * (MAX_LENGTH // 3 + 1)

    error = refusal("1+" * 250 + "1")
    assert error.position == MAX_LENGTH
    assert "trop longue" in error.message
    assert refusal("(" * 100_000).position == MAX_LENGTH


def test_depth_limit_with_parentheses() -> None:
    deepest = "(" * (MAX_DEPTH - 1) + "cM" + ")" * (MAX_DEPTH - 1)
    assert parse_formula(deepest)(3) == 3

    error = refusal("(" * 60 + "cM" + ")" * 60)
    # The top level counts as one, so the 50th parenthesis is one too many.
    assert error.position == MAX_DEPTH - 1
    assert "imbriquée" in error.message


def test_depth_limit_with_intdiv() -> None:
    # Unbalanced on purpose: balanced, it would hit the length limit first.
    source = "intdiv(" * 60 + "cM"
    assert refusal(source).position == (MAX_DEPTH - 1) * len("intdiv(")


def test_depth_limit_with_ternaries() -> None:
    source = "0?0:" * 60 + "cM"
    # The 50th ternary's branches would sit one level too deep: refused at its "?".
    assert refusal(source).position == (MAX_DEPTH - 1) * 4 + 1
    assert parse_formula("0?0:" * 20 + "cM")(5) == 5


def test_long_runs_of_unary_minus_are_fine() -> None:
    assert parse_formula("-" * 499 + "1")(0) == -1
    assert parse_formula("-" * 498 + "cM")(4) == 4


def test_no_eval_exec_or_compile_involved(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: Any, **kwargs: Any) -> NoReturn:
        raise AssertionError("eval/exec/compile must not be used")

    for name in ("eval", "exec", "compile"):
        monkeypatch.setattr(builtins, name, forbidden)
    # A source not seen before, so that the parse cache cannot hide anything.
    formula = Formula("intdiv(cM, 7) * 3 + (cM % 7 >= 4 ? 2 : 1) - 0")
    assert formula(11) == 5


# -------------------------------------------------------------- evaluation errors


def test_division_by_zero_at_evaluation() -> None:
    formula = parse_formula("intdiv(10, cM)")
    assert formula(3) == 3
    with pytest.raises(FormulaError) as info:
        formula(0)
    assert info.value.message == "division par zéro"
    assert info.value.position == 0
    assert str(info.value) == "division par zéro (position 1)"


def test_remainder_by_zero_at_evaluation() -> None:
    with pytest.raises(FormulaError) as info:
        parse_formula("1 + 10 % (cM - 2)")(2)
    assert info.value.position == 7
    assert info.value.caret() == "1 + 10 % (cM - 2)\n       ^"


def test_constant_division_by_zero_only_fails_when_reached() -> None:
    formula = parse_formula("cM > 0 ? intdiv(1, 1 - 1) : 0")
    assert formula(0) == 0
    with pytest.raises(FormulaError, match="division par zéro"):
        formula(1)


def test_cm_must_be_a_non_negative_int() -> None:
    formula = parse_formula(DEFAULT_FORMULA)
    with pytest.raises(ValueError, match="positif"):
        formula(-1)
    with pytest.raises(TypeError):
        formula(1.5)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- the API


def test_formula_is_a_frozen_value() -> None:
    formula = Formula(DEFAULT_FORMULA)
    assert formula == parse_formula(DEFAULT_FORMULA)
    assert hash(formula) == hash(Formula(DEFAULT_FORMULA))
    assert formula != Formula("cM")
    assert repr(formula) == f"Formula(source={DEFAULT_FORMULA!r})"
    with pytest.raises(dataclasses.FrozenInstanceError):
        formula.source = "cM"  # type: ignore[misc]


def test_constructing_an_invalid_formula_raises() -> None:
    with pytest.raises(FormulaError):
        Formula("cM +")
    with pytest.raises(TypeError):
        parse_formula(None)  # type: ignore[arg-type]


def test_parse_formula_is_cached() -> None:
    assert parse_formula("cM * 3") is parse_formula("cM * 3")


def test_memoized() -> None:
    formula = parse_formula("intdiv(12, cM) + cM")
    fast = memoized(formula, maxsize=8)
    assert [fast(cm) for cm in (1, 2, 3, 1, 2, 3)] == [13, 8, 7, 13, 8, 7]
    for _ in range(2):  # errors are raised each time, never cached
        with pytest.raises(FormulaError):
            fast(0)
    with pytest.raises(ValueError):
        fast(-1)


# ------------------------------------------------------------------- properties

FORMULA_ALPHABET = "cM0123456789 +-*%()<>=!?:,intdv$_x\t"


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    source=st.one_of(
        st.text(max_size=60),
        st.text(alphabet=FORMULA_ALPHABET, max_size=80),
        st.text(max_size=MAX_LENGTH + 20),
    ),
    cm=st.integers(0, 1000),
)
def test_random_text_only_ever_raises_formula_error(source: str, cm: int) -> None:
    try:
        formula = parse_formula(source)
    except FormulaError as error:
        assert 0 <= error.position <= len(source)
        assert str(error).endswith(f"(position {error.position + 1})")
        assert error.caret().count("\n") == 1
        return
    try:
        assert type(formula(cm)) is int
    except FormulaError as error:
        assert error.message == "division par zéro"


# A tiny expression language of our own, printed to source text with the fewest
# parentheses the grammar allows (plus random redundant ones), and evaluated
# independently with Fraction-based C semantics.

Expr = tuple[Any, ...]

LEVEL = {"cond": 0, "cmp": 1, "add": 2, "mul": 3, "neg": 4, "atom": 5}
KIND = {
    "+": "add",
    "-": "add",
    "*": "mul",
    "%": "mul",
    "<": "cmp",
    "<=": "cmp",
    ">": "cmp",
    ">=": "cmp",
    "==": "cmp",
    "!=": "cmp",
}


def level(expr: Expr) -> int:
    tag = expr[0]
    if tag == "bin":
        return LEVEL[KIND[expr[1]]]
    if tag in ("cond", "neg"):
        return LEVEL[tag]
    return LEVEL["atom"]  # num, var, intdiv, paren


def render(expr: Expr, sep: str) -> str:
    def at_least(sub: Expr, minimum: int) -> str:
        text = render(sub, sep)
        return text if level(sub) >= minimum else f"({text})"

    tag = expr[0]
    if tag == "num":
        return str(expr[1])
    if tag == "var":
        return "cM"
    if tag == "paren":
        return f"({render(expr[1], sep)})"
    if tag == "neg":
        return "-" + at_least(expr[1], LEVEL["neg"])
    if tag == "intdiv":
        return f"intdiv({render(expr[1], sep)},{sep}{render(expr[2], sep)})"
    if tag == "cond":
        test = at_least(expr[1], LEVEL["cmp"])
        return f"{test}{sep}?{sep}{render(expr[2], sep)}{sep}:{sep}{render(expr[3], sep)}"
    _, op, left, right = expr
    own = LEVEL[KIND[op]]
    # Left-associative operators need parentheses for an equal-level right
    # operand; comparisons are non-associative so need them on both sides.
    left_min = own + 1 if KIND[op] == "cmp" else own
    return f"{at_least(left, left_min)}{sep}{op}{sep}{at_least(right, own + 1)}"


def nesting(expr: Expr) -> int:
    """Nesting as counted by the parser: parentheses, intdiv arguments, ternaries."""
    tag = expr[0]
    if tag in ("num", "var"):
        return 0
    if tag == "neg":
        return nesting(expr[1]) + (0 if level(expr[1]) >= LEVEL["neg"] else 1)
    if tag == "paren":
        return 1 + nesting(expr[1])
    if tag == "intdiv":
        return 1 + max(nesting(expr[1]), nesting(expr[2]))
    if tag == "cond":
        return max(nesting(expr[1]) + 1, 1 + nesting(expr[2]), 1 + nesting(expr[3]))
    return 1 + max(nesting(expr[2]), nesting(expr[3]))  # generous for implicit parens


def c_intdiv(a: int, b: int) -> int:
    return int(Fraction(a, b))  # int() of a Fraction truncates toward zero


def reference(expr: Expr, cm: int) -> int:
    tag = expr[0]
    if tag == "num":
        return int(expr[1])
    if tag == "var":
        return cm
    if tag == "paren":
        return reference(expr[1], cm)
    if tag == "neg":
        return -reference(expr[1], cm)
    if tag == "intdiv":
        return c_intdiv(reference(expr[1], cm), reference(expr[2], cm))
    if tag == "cond":
        branch = expr[2] if reference(expr[1], cm) != 0 else expr[3]
        return reference(branch, cm)
    _, op, left_expr, right_expr = expr
    a, b = reference(left_expr, cm), reference(right_expr, cm)
    if op == "%":
        return a - b * c_intdiv(a, b)
    results: dict[str, Callable[[], int | bool]] = {
        "+": lambda: a + b,
        "-": lambda: a - b,
        "*": lambda: a * b,
        "<": lambda: a < b,
        "<=": lambda: a <= b,
        ">": lambda: a > b,
        ">=": lambda: a >= b,
        "==": lambda: a == b,
        "!=": lambda: a != b,
    }
    return int(results[op]())


leaves: st.SearchStrategy[Expr] = st.one_of(
    st.just(("var",)),
    st.tuples(st.just("num"), st.integers(0, 12)),
    st.tuples(st.just("num"), st.integers(0, 10**15)),
)


def extend(children: st.SearchStrategy[Expr]) -> st.SearchStrategy[Expr]:
    return st.one_of(
        st.tuples(st.just("neg"), children),
        st.tuples(st.just("paren"), children),
        st.tuples(st.just("intdiv"), children, children),
        st.tuples(st.just("bin"), st.sampled_from(sorted(KIND)), children, children),
        st.tuples(st.just("cond"), children, children, children),
    )


expressions = st.recursive(leaves, extend, max_leaves=24)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(
    expr=expressions,
    sep=st.sampled_from(["", " ", "  "]),
    cms=st.lists(st.integers(0, 10**6) | st.integers(0, 6), min_size=1, max_size=5),
)
def test_evaluation_matches_reference(expr: Expr, sep: str, cms: list[int]) -> None:
    source = render(expr, sep)
    assume(len(source) <= MAX_LENGTH and nesting(expr) < MAX_DEPTH)
    formula = parse_formula(source)
    for cm in cms:
        try:
            expected = reference(expr, cm)
        except ZeroDivisionError:
            with pytest.raises(FormulaError, match="division par zéro"):
                formula(cm)
        else:
            result = formula(cm)
            assert type(result) is int
            assert result == expected, source
