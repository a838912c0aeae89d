"""The known-answer vectors shipped with the suite (a copy of the project's known-answers.json)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any


@cache
def known_answers() -> dict[str, Any]:
    """The whole known-answer file: Random123 vectors and mask stream v1 cases."""
    text = resources.files(__package__).joinpath("known_answers.json").read_text(encoding="utf-8")
    answers: dict[str, Any] = json.loads(text)
    return answers


def known_stream_cases() -> list[dict[str, Any]]:
    """The mask stream v1 cases: seed, stream, p, mask_shape, threshold, words, keep."""
    return list(known_answers()["stream_v1"])


def known_philox_vectors() -> list[dict[str, Any]]:
    """The Random123 Philox4x32-10 vectors (hex strings)."""
    return list(known_answers()["philox4x32_10"])
