"""The department's "besoin" formula for mutualised decisions.

A formula is an integer expression over one variable, ``cM`` (the number of
mutualised decisions on a day). The AESH manual writes the default one as::

    intdiv(cM, 5) * 32 + (cM % 5 > 0 ? 24 : 0)

Grammar (lowest precedence first)::

    expression     := comparison [ "?" expression ":" expression ]
    comparison     := additive [ ("<" | "<=" | ">" | ">=" | "==" | "!=") additive ]
    additive       := multiplicative { ("+" | "-") multiplicative }
    multiplicative := unary { ("*" | "%") unary }
    unary          := { "-" } primary
    primary        := INTEGER | "cM" | "intdiv" "(" expression "," expression ")"
                    | "(" expression ")"

* ``+ - * %`` are left-associative; the ternary is right-associative and its
  condition is true when non-zero.
* Comparisons yield 1 or 0 and are *non-associative*: ``1 < cM < 5`` is
  refused rather than silently meaning ``(1 < cM) < 5`` as in C, because
  someone copying a manual would expect the mathematical reading.
* ``intdiv`` and ``%`` truncate toward zero (C semantics), so that formulas
  copied from the manual behave as their authors intended:
  ``intdiv(-7, 2) == -3`` and ``-7 % 2 == -1``.
* Integer literals are decimal digits only (``007`` is seven, never octal).
* Any Unicode whitespace is ignored: French typography puts non-breaking
  spaces before ``?`` and ``:``, and such text gets pasted here.

The source is parsed by hand and compiled into nested closures; nothing here
goes through ``eval``/``exec``/``compile``, so the text of a formula can never
run anything but arithmetic. Length and nesting are bounded so that hostile
input is refused with a :class:`FormulaError` instead of exhausting the stack.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, NamedTuple, TypeAlias, TypeVar

__all__ = [
    "DEFAULT_FORMULA",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "Formula",
    "FormulaError",
    "memoized",
    "parse_formula",
]

DEFAULT_FORMULA: Final[str] = "intdiv(cM, 5) * 32 + (cM % 5 > 0 ? 24 : 0)"

MAX_LENGTH: Final = 500
"""Longest accepted source, in characters."""

MAX_DEPTH: Final = 50
"""Deepest accepted nesting of parentheses, ``intdiv`` calls and ternaries."""

# Wide enough for any realistic formula, narrow enough for a Telegram message.
_CARET_WIDTH: Final = 60

_R = TypeVar("_R")
_Fn: TypeAlias = Callable[[int], int]


class FormulaError(ValueError):
    """A formula that cannot be parsed, or that failed while being evaluated."""

    position: int
    message: str
    source: str

    def __init__(self, message: str, position: int, source: str = "") -> None:
        # Passing everything to ValueError keeps the exception picklable.
        super().__init__(message, position, source)
        self.message = message
        self.position = position
        self.source = source

    def __str__(self) -> str:
        return f"{self.message} (position {self.position + 1})"

    def caret(self) -> str:
        """The source on one line and a ``^`` under the offending character."""
        # Tabs and newlines would break the column alignment of the caret.
        shown = "".join(
            " " if ch.isspace() else (ch if ch.isprintable() else "?") for ch in self.source
        )
        column = self.position
        if len(shown) > _CARET_WIDTH:
            start = max(0, min(self.position - _CARET_WIDTH // 2, len(shown) - _CARET_WIDTH))
            end = start + _CARET_WIDTH
            prefix = "…" if start > 0 else ""
            suffix = "…" if end < len(shown) else ""
            shown = prefix + shown[start:end] + suffix
            column = len(prefix) + self.position - start
        return f"{shown}\n{' ' * column}^"


# --------------------------------------------------------------------------- AST


@dataclass(frozen=True, slots=True)
class _Num:
    value: int


@dataclass(frozen=True, slots=True)
class _Var:
    pass


@dataclass(frozen=True, slots=True)
class _Neg:
    operand: _Node


@dataclass(frozen=True, slots=True)
class _Binary:
    op: str  # "+", "-", "*", "%", "intdiv" or a comparison
    left: _Node
    right: _Node
    position: int  # where a division by zero is reported


@dataclass(frozen=True, slots=True)
class _Cond:
    test: _Node
    then: _Node
    other: _Node


_Node: TypeAlias = "_Num | _Var | _Neg | _Binary | _Cond"

_VAR: Final = _Var()


# --------------------------------------------------------- C integer semantics


def _c_intdiv(a: int, b: int) -> int:
    if a >= 0 and b > 0:
        return a // b
    quotient = abs(a) // abs(b)
    return quotient if (a < 0) == (b < 0) else -quotient


def _c_mod(a: int, b: int) -> int:
    if a >= 0 and b > 0:
        return a % b
    remainder = abs(a) % abs(b)
    return remainder if a >= 0 else -remainder


_ARITHMETIC: Final[dict[str, Callable[[int, int], int]]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
}
_COMPARISONS: Final[dict[str, Callable[[int, int], bool]]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
_DIVISIONS: Final[dict[str, Callable[[int, int], int]]] = {"intdiv": _c_intdiv, "%": _c_mod}


def _apply(op: str, a: int, b: int) -> int:
    if op in _COMPARISONS:
        return 1 if _COMPARISONS[op](a, b) else 0
    if op in _DIVISIONS:
        return _DIVISIONS[op](a, b)
    return _ARITHMETIC[op](a, b)


# ------------------------------------------------------------------- tokenizer

_DIGITS: Final = frozenset("0123456789")
_IDENT_START: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_IDENT_REST: Final = _IDENT_START | _DIGITS
_TWO_CHAR_OPS: Final = frozenset({"<=", ">=", "==", "!="})
_ONE_CHAR_OPS: Final = frozenset("+-*%()<>?:,")


class _Token(NamedTuple):
    kind: str  # "num", "var", "intdiv", "op" or "end"
    text: str
    position: int


def _shown(ch: str) -> str:
    return ch if ch.isprintable() and not ch.isspace() else f"U+{ord(ch):04X}"


def _scan(source: str, position: int) -> _Token:
    """The token starting at or after ``position``."""
    length = len(source)
    while position < length and source[position].isspace():
        position += 1
    if position >= length:
        return _Token("end", "", length)
    ch = source[position]
    if ch in _DIGITS:
        end = position + 1
        while end < length and source[end] in _DIGITS:
            end += 1
        return _Token("num", source[position:end], position)
    if ch in _IDENT_START:
        end = position + 1
        while end < length and source[end] in _IDENT_REST:
            end += 1
        word = source[position:end]
        if word == "cM":
            return _Token("var", word, position)
        if word == "intdiv":
            return _Token("intdiv", word, position)
        hint = " (la variable s'écrit « cM »)" if word.lower() == "cm" else ""
        raise FormulaError(f"identifiant inconnu « {word} »{hint}", position, source)
    if source[position : position + 2] in _TWO_CHAR_OPS:
        return _Token("op", source[position : position + 2], position)
    if ch in _ONE_CHAR_OPS:
        return _Token("op", ch, position)
    if ch in "=!":
        # A lone "=" or "!" is almost always a mistyped comparison.
        raise FormulaError(
            f"caractère inattendu « {ch} » (comparer avec « == » ou « != »)", position, source
        )
    if ch == "/":
        # "/" would have to pick between floor and truncation; intdiv states it.
        raise FormulaError(
            "caractère inattendu « / » (diviser avec intdiv(a, b))", position, source
        )
    raise FormulaError(f"caractère inattendu « {_shown(ch)} »", position, source)


# ---------------------------------------------------------------------- parser


class _Parser:
    """Recursive descent with one token of look-ahead.

    Tokens are scanned on demand, so the error reported is always the leftmost
    one a reader would stumble on.
    """

    __slots__ = ("_depth", "_source", "_token")

    def __init__(self, source: str) -> None:
        self._source = source
        self._depth = 0
        self._token = _scan(source, 0)

    def parse(self) -> _Node:
        node = self._expression(0)
        token = self._token
        if token.kind != "end":
            if token.text == ")":
                raise self._error("parenthèse fermante sans parenthèse ouvrante", token)
            raise self._error("opérateur attendu", token)
        return node

    def _error(self, message: str, token: _Token) -> FormulaError:
        if token.kind == "end" and message == "expression attendue":
            message = "fin de formule inattendue"
        return FormulaError(message, token.position, self._source)

    def _advance(self) -> _Token:
        token = self._token
        self._token = _scan(self._source, token.position + len(token.text))
        return token

    def _expect(self, text: str, message: str) -> _Token:
        if self._token.kind != "op" or self._token.text != text:
            raise self._error(message, self._token)
        return self._advance()

    def _expression(self, opened_at: int) -> _Node:
        # Every recursion of the grammar goes through here, so this one check
        # bounds both the parser's stack and the depth of the compiled closures.
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise FormulaError(
                f"formule trop imbriquée (au plus {MAX_DEPTH} niveaux)", opened_at, self._source
            )
        node = self._comparison()
        if self._token.text == "?":
            question = self._advance()
            then = self._expression(question.position)
            colon = self._expect(":", "« : » attendu pour compléter « ? »")
            other = self._expression(colon.position)
            node = _Cond(node, then, other)
        self._depth -= 1
        return node

    def _comparison(self) -> _Node:
        left = self._additive()
        operator_token = self._token
        if operator_token.kind == "op" and operator_token.text in _COMPARISONS:
            self._advance()
            right = self._additive()
            if self._token.kind == "op" and self._token.text in _COMPARISONS:
                raise self._error(
                    "comparaisons enchaînées interdites : ajouter des parenthèses", self._token
                )
            left = _Binary(operator_token.text, left, right, operator_token.position)
        return left

    def _additive(self) -> _Node:
        node = self._multiplicative()
        while self._token.kind == "op" and self._token.text in ("+", "-"):
            operator_token = self._advance()
            right = self._multiplicative()
            node = _Binary(operator_token.text, node, right, operator_token.position)
        return node

    def _multiplicative(self) -> _Node:
        node = self._unary()
        while self._token.kind == "op" and self._token.text in ("*", "%"):
            operator_token = self._advance()
            right = self._unary()
            node = _Binary(operator_token.text, node, right, operator_token.position)
        return node

    def _unary(self) -> _Node:
        # A loop rather than recursion, and only the parity kept, so that a run
        # of 500 minus signs neither deepens the stack nor the closures.
        negations = 0
        while self._token.kind == "op" and self._token.text == "-":
            self._advance()
            negations += 1
        node = self._primary()
        return _Neg(node) if negations % 2 else node

    def _primary(self) -> _Node:
        token = self._token
        if token.kind == "num":
            self._advance()
            return _Num(int(token.text))
        if token.kind == "var":
            self._advance()
            return _VAR
        if token.kind == "intdiv":
            self._advance()
            self._expect("(", "parenthèse ouvrante attendue après « intdiv »")
            dividend = self._expression(token.position)
            self._expect(",", "virgule attendue : intdiv(a, b) prend deux arguments")
            divisor = self._expression(token.position)
            if self._token.text == ",":
                raise self._error("intdiv(a, b) prend exactement deux arguments", self._token)
            self._expect(")", "parenthèse fermante attendue")
            return _Binary("intdiv", dividend, divisor, token.position)
        if token.kind == "op" and token.text == "(":
            self._advance()
            inner = self._expression(token.position)
            self._expect(")", "parenthèse fermante attendue")
            return inner
        raise self._error("expression attendue", token)


# ------------------------------------------------------------------- compiler


def _fold(node: _Node) -> _Node:
    """Precompute constant sub-expressions.

    A constant division by zero is left in place: it must only fail if the
    evaluation actually reaches it (it may sit in a branch never taken).
    """
    if isinstance(node, _Neg):
        operand = _fold(node.operand)
        return _Num(-operand.value) if isinstance(operand, _Num) else _Neg(operand)
    if isinstance(node, _Binary):
        left, right = _fold(node.left), _fold(node.right)
        if (
            isinstance(left, _Num)
            and isinstance(right, _Num)
            and not (node.op in _DIVISIONS and right.value == 0)
        ):
            return _Num(_apply(node.op, left.value, right.value))
        return _Binary(node.op, left, right, node.position)
    if isinstance(node, _Cond):
        test = _fold(node.test)
        if isinstance(test, _Num):
            return _fold(node.then if test.value else node.other)
        return _Cond(test, _fold(node.then), _fold(node.other))
    return node


def _identity(cm: int) -> int:
    return cm


def _constant(value: int) -> _Fn:
    return lambda _cm: value


def _combine(
    fn: Callable[[int, int], _R], left: _Node, right: _Node, lf: _Fn, rf: _Fn
) -> Callable[[int], _R]:
    # Specialising on constant and variable operands saves one closure call per
    # operand; "cM % 5" and "… * 32" are the common shapes.
    if isinstance(right, _Num):
        k = right.value
        if isinstance(left, _Var):
            return lambda cm: fn(cm, k)
        return lambda cm: fn(lf(cm), k)
    if isinstance(left, _Num):
        k = left.value
        if isinstance(right, _Var):
            return lambda cm: fn(k, cm)
        return lambda cm: fn(k, rf(cm))
    if isinstance(left, _Var):
        return lambda cm: fn(cm, rf(cm))
    if isinstance(right, _Var):
        return lambda cm: fn(lf(cm), cm)
    return lambda cm: fn(lf(cm), rf(cm))


def _checked_division(op: str, position: int, source: str) -> Callable[[int, int], int]:
    divide = _DIVISIONS[op]

    def checked(a: int, b: int) -> int:
        if b == 0:
            raise FormulaError("division par zéro", position, source)
        return divide(a, b)

    return checked


def _division(node: _Binary, lf: _Fn, rf: _Fn, source: str) -> _Fn:
    right = node.right
    if isinstance(right, _Num) and right.value != 0:
        if isinstance(node.left, _Var) and right.value > 0:
            # Formula.__call__ refuses negative cM, and on non-negative operands
            # floor and truncation agree, so the C-level operator is exact.
            fast = operator.floordiv if node.op == "intdiv" else operator.mod
            return _combine(fast, node.left, right, lf, rf)
        return _combine(_DIVISIONS[node.op], node.left, right, lf, rf)
    return _combine(_checked_division(node.op, node.position, source), node.left, right, lf, rf)


def _test(node: _Node, source: str) -> Callable[[int], object]:
    """A closure whose truthiness is the node's, skipping the bool → 1/0 step."""
    if isinstance(node, _Binary) and node.op in _COMPARISONS:
        lf, rf = _compile(node.left, source), _compile(node.right, source)
        return _combine(_COMPARISONS[node.op], node.left, node.right, lf, rf)
    return _compile(node, source)


def _compile(node: _Node, source: str) -> _Fn:
    if isinstance(node, _Num):
        return _constant(node.value)
    if isinstance(node, _Var):
        return _identity
    if isinstance(node, _Neg):
        operand = _compile(node.operand, source)
        return lambda cm: -operand(cm)
    if isinstance(node, _Cond):
        test = _test(node.test, source)
        if isinstance(node.then, _Num) and isinstance(node.other, _Num):
            then_value, other_value = node.then.value, node.other.value
            return lambda cm: then_value if test(cm) else other_value
        then, other = _compile(node.then, source), _compile(node.other, source)
        return lambda cm: then(cm) if test(cm) else other(cm)
    if node.op in _COMPARISONS:
        # Comparisons must yield the ints 1/0, not bools, since results end up
        # stored and serialised.
        predicate = _test(node, source)
        return lambda cm: 1 if predicate(cm) else 0
    lf, rf = _compile(node.left, source), _compile(node.right, source)
    if node.op in _DIVISIONS:
        return _division(node, lf, rf, source)
    return _combine(_ARITHMETIC[node.op], node.left, node.right, lf, rf)


def _build(source: str) -> _Fn:
    if len(source) > MAX_LENGTH:
        raise FormulaError(
            f"formule trop longue ({len(source)} caractères, au plus {MAX_LENGTH})",
            MAX_LENGTH,
            source,
        )
    if not source.strip():
        raise FormulaError("formule vide", 0, source)
    return _compile(_fold(_Parser(source).parse()), source)


# --------------------------------------------------------------------- public


@dataclass(frozen=True)
class Formula:
    """A parsed formula; call it with ``cM`` to get the besoin.

    Constructing one parses ``source`` and raises :class:`FormulaError` when it
    is invalid, so a ``Formula`` instance is always usable. Equality and hashing
    only consider the source text.
    """

    source: str
    _fn: _Fn = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.source, str):
            raise TypeError("la formule doit être une chaîne de caractères")
        object.__setattr__(self, "_fn", _build(self.source))

    def __call__(self, cM: int) -> int:
        """Evaluate; raises :class:`FormulaError` on a division by zero."""
        if not isinstance(cM, int):
            raise TypeError("cM doit être un entier")
        if cM < 0:
            raise ValueError(f"cM doit être positif ou nul, pas {cM}")
        return self._fn(cM)


@functools.lru_cache(maxsize=256)
def _parse_cached(source: str) -> Formula:
    return Formula(source)


def parse_formula(source: str) -> Formula:
    """Parse ``source``; raises :class:`FormulaError` (French message) if invalid.

    Results are cached, since the same few department formulas get parsed over
    and over; failures are not.
    """
    if not isinstance(source, str):
        raise TypeError("la formule doit être une chaîne de caractères")
    return _parse_cached(source)


def memoized(formula: Formula, maxsize: int | None = 1024) -> Callable[[int], int]:
    """``formula`` behind an LRU cache, for hot loops over the same few cM values.

    Errors (division by zero, invalid cM) are raised again on every call, not cached.
    """
    return functools.lru_cache(maxsize=maxsize)(formula.__call__)
