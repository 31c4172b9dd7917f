"""Type-exact equality of JSON values, stricter than ==."""

import math


def same(a, b):
    """Type-exact deep equality: types, values, dict key order, the sign of 0.0; NaN is
    equal to NaN. Iterative, for documents nested hundreds of levels deep."""
    pending = [(a, b)]
    while pending:
        x, y = pending.pop()
        if type(x) is not type(y):
            return False
        if type(x) is float:
            if not (x != x and y != y or x == y and math.copysign(1.0, x) == math.copysign(1.0, y)):
                return False
        elif type(x) is dict:
            if len(x) != len(y):
                return False
            pending.extend(zip(x, y, strict=True))  # the keys, in order
            pending.extend(zip(x.values(), y.values(), strict=True))
        elif type(x) in (list, tuple):
            if len(x) != len(y):
                return False
            pending.extend(zip(x, y, strict=True))
        elif x != y:
            return False
    return True
