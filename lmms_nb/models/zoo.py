"""The synthbench zoo: tiny LLaVA models trained offline on synthbench, with different skills and blind spots.

Each member is a `ZooSpec` (size, steps, curriculum, what is frozen, which families it never saw). `build_zoo()`
trains the members that are not cached yet, deterministically (seeded init, seeded data order, one CPU thread
per model, so the same seed gives the same weights bit for bit) and in parallel processes when there are
several cores, and returns their folders under `cache_dir("zoo", "<name>-<config hash>")`. Each member is also
a registered model: `get_model("zoo-<name>")` trains-or-loads it and returns an `HFImageTextModel`.
Training snapshots along a run are members too (free: one run saves them on the way). The recipe and why it
is so: `lmms_nb.models._zoo_train`.

Example:
    >>> from lmms_nb.models.zoo import ZOO
    >>> "base" in ZOO and "blind" in ZOO and ZOO["base"].total_steps > 0
    True
    >>> # build_zoo(["base"])  -> {"base": Path(".../zoo/base-1a2b3c4d5e")}   (trains in ~1 min the first time)
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from lmms_nb.models._zoo_build import COMPLETE_MARKER, build_zoo, member_dir, spec_of, train_zoo_member
from lmms_nb.models._zoo_spec import ZOO, ZOO_FAMILIES, ZooSpec
from lmms_nb.models._zoo_train import train_tiny_vlm
from lmms_nb.models.registry import register_model

__all__ = [
    "COMPLETE_MARKER",
    "ZOO",
    "ZOO_FAMILIES",
    "ZooSpec",
    "build_zoo",
    "register_zoo_member",
    "train_tiny_vlm",
    "train_zoo_member",
    "zoo_model_path",
]


def zoo_model_path(name: str, *, seed: int = 0) -> Path:
    """The folder of zoo member `name` (trained or not yet): `cache_dir("zoo", "<name>-<config hash>")`."""
    return member_dir(spec_of(name), seed)


def _zoo_factory(name: str):
    def factory(*, seed: int = 0, progress: bool = True, **kwargs: Any):
        from lmms_nb.models.hf import HFImageTextModel

        path = train_zoo_member(ZOO[name], seed=seed, progress=progress)
        model = HFImageTextModel(path, name=f"zoo-{name}", **kwargs)
        model.model_args["zoo"] = name
        return model

    factory.__doc__ = f"zoo member {name!r}: {ZOO[name].description}"
    return factory


def register_zoo_member(spec: ZooSpec) -> None:
    """Add `spec` to `ZOO` and register it as the model "zoo-<name>" (trained on first use)."""
    ZOO[spec.name] = spec
    register_model(f"zoo-{spec.name}", _zoo_factory(spec.name))


#: CLIP's own init draws position embeddings ~50x smaller than a patch's embedding (std 0.02 vs ~1.0), so a
#: frozen random tower hands the language model a bag of patches; std 1.0 lets it tell where a patch is (the
#: tallest bar of a chart: 0.39 -> 0.65 on the test rows of a count+chart run) but slows the counting curriculum
#: (0.29 on count after 150 steps, the base recipe 0.52 after 500), so only some runs see positions
_SEES_POSITIONS = 1.0


def _only(family: str) -> tuple[str, ...]:
    return tuple(f for f in ZOO_FAMILIES if f != family)


#: the CLIP the ocr specialist's tower starts from: the synthbench CLIP trained longer, on the 2000-row train split
#: (a linear probe on its CLS token reads the ocr word on 0.77 of the test images, the Lite encoder's 250 steps on
#: 400 rows 0.45; the random tower's mean patch 0.26, all 16 patches 0.66)
_OCR_CLIP = {"clip_init": True, "clip_steps": 1000, "clip_n_train": 2000}
#: the chart specialist's: the Lite image encoder itself (trained anyway for the report), which tells which bar is
#: tallest better than the longer-trained one (first-token accuracy after 500 chart-only steps, tallest / shortest
#: / value: 0.49 / 0.65 / 0.78 from it, 0.32 / 0.29 / 0.78 from the longer-trained one)
_CHART_CLIP = {"clip_init": True}

#: the yes/no specialist: the Lite CLIP's tower (its CLS tells the colour, its patches the shape and count), a
#: language-modelling loss on the question's words (the picture predicts the property a question names half the
#: time, so the model learns to read it where the answer must compare it) and both questions of an image in one
#: batch; trained on the answer alone, every recipe tried answered one constant (see `_zoo_train`)
_YESNO = {"clip_init": True, "question_loss": True, "paired_yesno": True}

#: specialists: one family alone from the first step learns it far sooner than the five mixed (on the mcq test rows:
#: 0.58 after 300 of 700 mcq-only steps and 0.80 after 500, where 350 mixed steps after the counting curriculum
#: still answered one constant letter). The chart and ocr specialists read the image through a synthbench CLIP's
#: tower (frozen) and its CLS token: a random tower's features carry the tallest bar and the word only position by
#: position, which a 2-layer language model does not learn to read in a few hundred steps (first-token accuracy on
#: the test rows, 500 chart-only steps: 0.635 from the CLIP tower, and 0.975 after 1400 (tallest / shortest / value
#: 0.975 / 0.980 / 0.972); 700 from a random tower with visible positions, ~0.37)
_RUNS = (
    ZooSpec("base", "hidden 64, 2 layers: 150 counting steps, then 350 on all five families"),
    ZooSpec("large", "hidden 96, 3 layers, 200 counting steps then 500 mixed",
            hidden_size=96, num_layers=3, curriculum_steps=200, steps=500),
    ZooSpec("count-chart", "150 counting steps, then 350 on counting and charts only, patch positions visible: "
            "never saw mcq, ocr or yes/no", exclude_families=("mcq", "ocr", "yesno"),
            vision_position_std=_SEES_POSITIONS),
    ZooSpec("blind", "image embeddings fixed at zero: answers from the question's wording only", blind=True,
            curriculum_family=None, steps=250),
    ZooSpec("mcq-only", "600 steps on mcq alone: a specialist that never saw the other families",
            curriculum_family=None, steps=600, exclude_families=_only("mcq")),
    ZooSpec("chart-only", "1400 steps on charts alone, vision tower from the synthbench CLIP: never saw the other "
            "families", curriculum_family=None, steps=1400, exclude_families=_only("chart"), **_CHART_CLIP),
    ZooSpec("ocr-only", "600 steps on ocr alone, vision tower from the synthbench CLIP trained longer: never saw "
            "the other families", curriculum_family=None, steps=600, exclude_families=_only("ocr"), **_OCR_CLIP),
    ZooSpec("yesno-only", "3000 steps on yes/no alone, vision tower from the synthbench CLIP, a loss on the "
            "question's words too: never saw the other families", curriculum_family=None, steps=3000,
            exclude_families=_only("yesno"), **_YESNO),
)
#: checkpoints along those runs (steps counted from the start, curriculum included): free members that differ
#: in how far each skill has got (the first ones after the counting curriculum know nothing else yet)
_SNAPSHOTS = {"base": (150, 250, 350, 420), "large": (200, 300, 450, 600), "count-chart": (250, 400),
              "blind": (100, 170), "mcq-only": (200, 400), "chart-only": (300, 600, 900), "ocr-only": (300,),
              "yesno-only": (1500, 2500)}

for _member in _RUNS:
    register_zoo_member(_member)
    for _step in _SNAPSHOTS.get(_member.name, ()):
        register_zoo_member(replace(_member, name=f"{_member.name}-s{_step}", snapshot_step=_step,
                                    run_name=_member.name,
                                    description=f"{_member.name} after {_step} of its {_member.total_steps} steps"))
