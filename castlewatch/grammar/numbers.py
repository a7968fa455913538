"""Exact comparison of a pattern's number literal with the numbers of log events (spec §5.3,
§5.4, §6.4).

§5.4: "Numbers keep their source text", and ``= N`` is numeric equality: ``1``, ``1.0`` and
``1e0`` are equal, ``9007199254740993.0`` equals ``9007199254740993``, ``1e400`` is no
infinity.  So comparisons are exact, on the decimal value the text writes, and they never
build that value: ``Fraction("1e+999999999")`` computes ``10**999999999`` and never
finishes, and ``int(text)`` refuses more than 4,300 digits.  A text is read instead as a
*decimal key* ``(sign, exponent, digits)`` (value = sign x 0.DIGITS x 10**exponent), in time
linear in its length, and two keys compare by sign, then exponent, then digits.

Hot paths stay cheap: a log number is first compared as a correctly rounded double, which
decides every case but a tie with the literal's own double; only a tie reads the key.
"""

from __future__ import annotations

import math

# An exponent written with more digits than this is beyond every literal: a pattern has at
# most 1024 characters (§1), so a literal's exponent is below 10**1024 in magnitude, and the
# digits before the exponent (at most the length of a log line) cannot bridge the gap.
_EXPONENT_DIGITS = 1100
# A literal whose decimal exponent is at most this is also held as an exact int bound for
# integer nodes (at most ~400 digits: cheap); beyond it, no 64-bit JSON integer comes near.
_MATERIALISE = 400
_INT_CHUNK = 256  # digits per int() call, far below Python's int-size limit (640 at the least)

Key = tuple[int, "int | float", str]


def _digits_value(digits: str) -> int:
    """``int(digits)`` for a run of ASCII digits, in chunks under Python's int-size limit.

    Only called on texts of at most :data:`_EXPONENT_DIGITS` or :data:`_MATERIALISE` digits.
    """
    value = 0
    for start in range(0, len(digits), _INT_CHUNK):
        chunk = digits[start : start + _INT_CHUNK]
        value = value * 10 ** len(chunk) + int(chunk)
    return value


def _exponent(text: str) -> int | float:
    """The exponent written after ``e``/``E`` (``""`` is 0); ``±inf`` when it has more than
    :data:`_EXPONENT_DIGITS` digits (larger or smaller than any literal can reach)."""
    if not text:
        return 0
    negative = text[0] == "-"
    digits = text.lstrip("+-").lstrip("0")
    if len(digits) > _EXPONENT_DIGITS:
        return -math.inf if negative else math.inf
    value = _digits_value(digits) if digits else 0
    return -value if negative else value


def decimal_key(text: str) -> Key:
    """``(sign, exponent, digits)`` of a text matching ``ast.NUMBER_RE`` (§5.3).

    ``sign`` is -1, 0 or 1; for a non-zero number, ``digits`` are its significant digits (no
    leading or trailing zeros) and the value is ``sign x 0.digits x 10**exponent``; zero (in
    any writing: ``0``, ``-0.0``, ``0e999``) is ``(0, 0, "")``.  ``exponent`` is an ``int``,
    or ``±inf`` for an exponent written with more than 1,100 digits.  Linear time in
    ``len(text)``; never raises for a matching text.
    """
    sign = -1 if text[0] == "-" else 1
    body = text.lstrip("+-")
    cut = body.find("e")
    if cut < 0:
        cut = body.find("E")
    mantissa, exponent = (body, "") if cut < 0 else (body[:cut], body[cut + 1 :])
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    significant = digits.lstrip("0")
    if not significant:
        return (0, 0, "")
    leading_zeros = len(digits) - len(significant)
    scale = _exponent(exponent)
    position = len(whole) - leading_zeros
    return (sign, scale if isinstance(scale, float) else position + scale, significant.rstrip("0"))


def compare_keys(a: Key, b: Key) -> int:
    """-1, 0 or 1 as the number of key ``a`` is below, equal to or above that of ``b``.

    Exact, except that two exponents both beyond 1,100 digits (two log numbers, never a
    literal) tie by sign.
    """
    sign_a, exp_a, digits_a = a
    sign_b, exp_b, digits_b = b
    if sign_a != sign_b:
        return -1 if sign_a < sign_b else 1
    if sign_a == 0:
        return 0
    if exp_a != exp_b:
        order = -1 if exp_a < exp_b else 1
    elif digits_a != digits_b:  # same exponent: 0.DIGITS compare as strings
        order = -1 if digits_a < digits_b else 1
    else:
        return 0
    return order * sign_a


class NumberLiteral:
    """A pattern's number literal (§5.3), compared exactly with log numbers (§5.4, §6.4).

    Attributes:
        text: the literal as written, e.g. ``500``, ``-1.5``, ``1e+3``.
        key: its :func:`decimal_key`.
        double: ``float(text)``, correctly rounded (``±inf`` beyond the double range).
        integer: the exact value as an ``int`` when it is a whole number of at most ~400
            digits, else None (the fast path for JSON integers).

    Every ``compare_*`` method returns -1, 0 or 1 as the log number is below, equal to or
    above the literal; building one costs time linear in the literal's length.
    """

    __slots__ = ("text", "key", "double", "integer", "_below", "_above", "_floor", "_whole")

    def __init__(self, text: str) -> None:
        self.text = text
        self.key = decimal_key(text)
        self.double = float(text)
        self._below = math.nextafter(self.double, -math.inf)
        self._above = math.nextafter(self.double, math.inf)
        sign, exponent, digits = self.key
        # floor(literal) as an int (None beyond 10**400) and whether the literal is whole
        self._whole = sign == 0 or exponent >= len(digits)
        if sign == 0:
            self._floor: int | None = 0
        elif exponent <= 0:  # 0 < |literal| < 1
            self._floor = 0 if sign > 0 else -1
        elif exponent <= _MATERIALISE:
            whole = _digits_value(digits[:exponent].ljust(exponent, "0"))
            self._floor = whole if sign > 0 else -whole - (0 if self._whole else 1)
        else:
            self._floor = None
        self.integer = self._floor if self._whole else None

    def __repr__(self) -> str:
        return f"NumberLiteral({self.text!r})"

    def compare_int(self, node: int) -> int:
        """Compare a JSON integer (any size) with the literal, exactly."""
        floor = self._floor
        if floor is not None:
            if node > floor:
                return 1
            return -1 if node < floor or not self._whole else 0
        # |literal| >= 10**400: an integer of fewer digits is decided by the literal's sign
        sign, exponent, digits = self.key
        if node.bit_length() * 0.30103 + 2 < exponent - 1:
            return -sign
        # an integer about as large as the literal: materialising the literal costs as much
        value = _digits_value(digits) * 10 ** (exponent - len(digits))  # type: ignore[operator]
        value = value if sign > 0 else -value
        return (node > value) - (node < value)

    def compare_float(self, node: float) -> int | None:
        """Compare a double a JSON decoder made of a number's text, or None when undecided.

        The double is the text rounded (to nearest, or at worst one unit in the last place
        off), and rounding keeps order: a double below the literal's own rounded neighbours
        comes from a smaller number, one above them from a larger one.  Within one unit of
        the literal's double, only the source text can tell (None).
        """
        if node < self._below:
            return -1
        if node > self._above:
            return 1
        return None

    def compare_text(self, text: str) -> int:
        """Compare a number's text (matching ``ast.NUMBER_RE``: a JSON number's source text,
        a numeric space-delimited field) with the literal, exactly, in linear time."""
        integer = self.integer
        if integer is not None and len(text) <= 18 and text.isdigit():  # the usual field: 0 to 10**18
            value = int(text)
            return (value > integer) - (value < integer)
        rounded = float(text)  # correctly rounded (monotonic), linear time, never raises here
        if rounded < self.double:
            return -1
        if rounded > self.double:
            return 1
        return compare_keys(decimal_key(text), self.key)
