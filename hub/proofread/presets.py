"""The lexicon files that come with the policy presets (``hub/policies/lexicons/<preset>/``).

Each preset may bring one CSV file per category (``serious.csv``, ``sensitive.csv``,
``typo.csv``, ``wording.csv``); the presets in force (``GOVHUB_POLICY``) are read left to right,
so a local preset's entry replaces a national one with the same term.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from hub.proofread.rules import TERM_CATEGORIES, Entry, merge_entries, parse_csv


@lru_cache(maxsize=8)
def preset_entries(names: tuple[str, ...]) -> tuple[Entry, ...]:
    root = resources.files("hub.policies") / "lexicons"
    base: list[Entry] = []
    layers: list[list[tuple[Entry, bool]]] = []
    for name in names:
        folder = root / name
        layer: list[tuple[Entry, bool]] = []
        for category in TERM_CATEGORIES:
            path = folder / f"{category.value}.csv"
            if path.is_file():
                text = path.read_text(encoding="utf-8")
                layer += [(e, True) for e in parse_csv(f"{name}/{path.name}", text, category)]
        layers.append(layer)
    return tuple(merge_entries(base, layers))
