"""Yes / no settings of bundle configs as the command line hands them over."""

from __future__ import annotations

from typing import Any

__all__ = ["config_flag"]

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off", "none", "")


def config_flag(value: Any, name: str = "setting") -> bool:
    """``value`` as a bool: ``True`` / ``False`` as they are, and the words a user types for them.

    ``python -m monai.bundle run ... --resume false`` hands ``"false"`` over as a string (python-fire keeps words
    that are not Python literals as text), which a plain truth test reads as on. MONAI's bundle tooling does not
    convert such values, so the configs pass their yes / no keys through this.

    Raises:
        ValueError: a value that is neither (named by ``name``).

    Examples:
        >>> config_flag("false"), config_flag("True"), config_flag(True), config_flag(0)
        (False, True, True, False)
    """
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{name} must be true or false, got {value!r}")
