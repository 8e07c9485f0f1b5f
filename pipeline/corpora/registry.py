"""The built-in corpora: one recipe per corpus module, registered here and nowhere else.

Adding a corpus: write `pipeline/corpora/<name>.py` with its `RECIPE` (see `pipeline.corpora.base`), add it
to `RECIPES` below, and give it a `corpora.<name>` section in params.yaml (the DVC stages follow that section).
"""
from __future__ import annotations

from typing import Any

from pipeline.config import ConfigError, Params, validate_section
from pipeline.corpora import grid, movie_sfx, sc09
from pipeline.corpora.base import CorpusRecipe

RECIPES: dict[str, CorpusRecipe] = {recipe.name: recipe for recipe in (sc09.RECIPE, grid.RECIPE, movie_sfx.RECIPE)}


def recipe(name: str) -> CorpusRecipe:
    """The recipe of built-in corpus `name` (folder corpora have none: they are read where they are)."""
    if name not in RECIPES:
        raise ValueError(f"unknown built-in corpus {name!r}; expected one of {sorted(RECIPES)} "
                         "(folder corpora need no fetch)")
    return RECIPES[name]


def corpus_config(params: Params, name: str) -> Any:
    """The validated `corpora.<name>` section (an instance of the recipe's schema); errors name the dotted key."""
    schema = recipe(name).schema
    if name not in params.corpora:
        raise ConfigError(f"corpora.{name}: missing (corpus {name!r} is used but has no params section)")
    return validate_section(schema, params.corpora[name], f"corpora.{name}")


def validate_corpora(params: Params) -> dict[str, Any]:
    """Validate every `corpora.<name>` section of `params` against its recipe's schema; name -> config.

    Call it where a stage loads its params, so that a bad corpus section fails every stage, not only the
    corpus's own fetch and prepare.
    """
    for name in params.corpora:
        if name not in RECIPES:
            raise ConfigError(f"corpora.{name}: unknown corpus (known: {', '.join(sorted(RECIPES))}; your own "
                              "audio goes under `folders`)")
    return {name: corpus_config(params, name) for name in params.corpora}
