"""config_flag: the yes / no words a user types on the command line, read as a bool."""

from __future__ import annotations

import pytest

from lungcad_transforms.utils import config_flag


def test_words_and_bools():
    for value in (True, "true", "True", "1", 1, "yes", "on"):
        assert config_flag(value) is True
    for value in (False, "false", "False", "0", 0, "no", "off", None, ""):
        assert config_flag(value) is False


def test_anything_else_is_refused_with_the_setting_named():
    with pytest.raises(ValueError, match="resume must be true or false, got 'maybe'"):
        config_flag("maybe", "resume")
