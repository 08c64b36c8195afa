"""The one argument check the data loaders share: a whole number at or above a minimum."""

import numbers


def positive_int(value, name, minimum):
    """``value`` as an int when it is a whole number (not a bool) >= ``minimum``; else a
    ValueError naming the argument ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}.")
    return int(value)
