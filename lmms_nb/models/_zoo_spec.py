"""`ZooSpec`: everything that determines one zoo member's trained weights, and the `ZOO` registry of specs.

Example:
    >>> spec = ZooSpec("x", "a test member", steps=10, curriculum_family=None)
    >>> spec.total_steps, len(spec.config_hash())
    (10, 10)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace

__all__ = ["RECIPE_VERSION", "ZOO", "ZOO_FAMILIES", "ZooSpec"]

#: bump when the training recipe or synthbench's data changes, so cached members are retrained (4: synthbench v2)
RECIPE_VERSION = 4
ZOO_FAMILIES = ("count", "mcq", "ocr", "chart", "yesno")


@dataclass(frozen=True)
class ZooSpec:
    """How to build and train one zoo member."""

    name: str
    description: str
    hidden_size: int = 64
    num_layers: int = 2
    #: steps on the training families mixed, after the curriculum
    steps: int = 350
    #: first train this many steps on this family alone (None: no curriculum)
    curriculum_family: str | None = "count"
    curriculum_steps: int = 150
    batch_size: int = 32
    lr: float = 3e-3
    warmup_steps: int = 20
    #: the CLIP tower's learning rate as a multiple of `lr`; 0 keeps it frozen at its random init
    vision_lr_mult: float = 0.0
    #: image embeddings fixed at zero (in training and in the saved model): a language-prior-only model
    blind: bool = False
    #: synthbench families left out of training (the model never learns their answer format)
    exclude_families: tuple[str, ...] = ()
    #: use at most this many training rows per family (None: the whole train split)
    train_rows_per_family: int | None = None
    #: the size of the synthbench whose train split the member learns from
    synthbench_n_train: int = 2000
    #: the tokenizer's largest vocabulary; it stops earlier once every training word is one token
    vocab_size: int = 768
    #: the CLIP tower's patch size in px (64 px images: 16 -> 16 image tokens, 8 -> 64)
    patch_size: int = 16
    #: re-draw the CLIP tower's position embeddings with this standard deviation (None: CLIP's init, 0.02, which
    #: is ~25x smaller than a patch's embedding: the random tower then hands over a nearly position-free bag
    #: of patches)
    vision_position_std: float | None = None
    #: start the vision tower from the synthbench CLIP (`lmms_nb.lite_selection._clip_training`, trained
    #: contrastively on synthbench images and captions naming the answers) instead of random weights, and hand
    #: the language model its CLS token too (the embedding the contrastive loss trained)
    clip_init: bool = False
    #: that CLIP's training steps and train rows per family (the defaults: the Lite image encoder itself)
    clip_steps: int = 250
    clip_n_train: int = 400
    #: the prompt puts the question before the image ("USER: <question>\n<image>\nASSISTANT:", in the member's own
    #: chat template): each image token then sees the question's words, so whether a patch shows what the
    #: question names can be decided at the patch (tried for yes/no, no gain: `lmms_nb.models._zoo_train`)
    question_first: bool = False
    #: besides each yes/no training image's two questions, one that asks for the property they name ("What color are
    #: the shapes in the image?" -> "red", from the pair's "yes" question): the member learns to read what it
    #: has to compare (`lmms_nb.models._zoo_data._yes_no_attribute_doc`; tried for yes/no, no gain)
    yesno_attribute_rows: bool = False
    #: the two questions of a yes/no image always in the same batch (with `yesno_attribute_rows`, a unit of 3 can
    #: straddle two batches): the gradient parts
    #: that follow the image alone or the question alone cancel there, leaving the comparison's
    paired_yesno: bool = False
    #: a language-modelling loss on the yes/no rows' prompt text too (not only on the answer; the image tokens
    #: and BOS stay out, the chat template and instruction are in, being constant): predicting "red"
    #: after "Is there a" from the picture reads the property at the question's words, where the answer's
    #: comparison needs it (half the pairs' questions name what the image shows)
    question_loss: bool = False
    #: a checkpoint along another member's training: the weights after this many steps (curriculum included)
    #: of the run described by the other fields; 0 means the end of training
    snapshot_step: int = 0
    #: for a snapshot: the name of the member whose run it is taken from (its cache folder is named after it)
    run_name: str = ""

    def __post_init__(self) -> None:
        unknown = [f for f in (*self.exclude_families, self.curriculum_family) if f and f not in ZOO_FAMILIES]
        if unknown:
            raise ValueError(f"ZooSpec {self.name!r}: unknown families {unknown}; families: {ZOO_FAMILIES}")
        if self.curriculum_family in self.exclude_families and self.curriculum_steps:
            raise ValueError(f"ZooSpec {self.name!r}: curriculum family {self.curriculum_family!r} is excluded")
        if min(self.steps, self.curriculum_steps) < 0 or self.total_steps < 1 or self.batch_size < 1:
            raise ValueError(f"ZooSpec {self.name!r}: needs at least one step and batch_size >= 1")
        if not 0 <= self.snapshot_step < self.total_steps:
            raise ValueError(f"ZooSpec {self.name!r}: snapshot_step must be in [0, {self.total_steps}), "
                             f"got {self.snapshot_step}")
        if self.clip_init and (self.patch_size != 16 or self.vision_position_std is not None):
            raise ValueError(f"ZooSpec {self.name!r}: clip_init takes the CLIP's 16 px patches and positions")
        if 64 % self.patch_size:
            raise ValueError(f"ZooSpec {self.name!r}: patch_size must divide the 64 px image, got {self.patch_size}")

    @property
    def run(self) -> ZooSpec:
        """The training run this member comes from: itself, or for a snapshot the full run (snapshot_step 0)."""
        if not self.snapshot_step:
            return self
        return replace(self, name=self.run_name or f"{self.name}-run", snapshot_step=0, run_name="",
                       description=f"the run {self.name} is a snapshot of")

    @property
    def total_steps(self) -> int:
        return self.steps + (self.curriculum_steps if self.curriculum_family else 0)

    def config_hash(self, seed: int = 0) -> str:
        """A short hash of everything that determines the trained weights (not the name or description)."""
        parts = {k: v for k, v in asdict(self).items() if k not in ("name", "description", "run_name")}
        if not self.snapshot_step:
            parts.pop("snapshot_step")
        for name in ("clip_init", "clip_steps", "clip_n_train"):  # a random tower's hash as before these fields
            parts.pop(name)
        # switched off, these fields leave a member's key as it was before they existed
        for name in ("question_first", "yesno_attribute_rows", "paired_yesno", "question_loss"):
            if not parts[name]:
                parts.pop(name)
        if self.clip_init:  # the CLIP's folder name holds its own settings' hash (recipe and synthbench version)
            from lmms_nb.lite_selection._clip_training import synthbench_clip_dir

            parts["clip"] = synthbench_clip_dir(seed=seed, steps=self.clip_steps, n_train=self.clip_n_train).name
        # synthbench's data version too: a member trained on other data is never reused (imported here, not at
        # the top, so that reading the zoo's specs does not load synthbench's image generators)
        from lmms_nb.tasks import synthbench

        parts.update(seed=seed, recipe=RECIPE_VERSION, synthbench=synthbench.VERSION)
        return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:10]


#: every registered member by name (filled by `lmms_nb.models.zoo.register_zoo_member`)
ZOO: dict[str, ZooSpec] = {}
