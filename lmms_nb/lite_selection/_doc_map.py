"""The data behind a map of a task's docs: 2-D coordinates of their embeddings, their prompts and images.

`LiteBuilder` draws these; they are plain functions so that a notebook (or a test) gets the same numbers and
texts without a widget.

Example:
    >>> import numpy as np
    >>> pca_2d(np.array([[0.0, 0.0], [2.0, 0.0], [4.0, 0.0]])).round(3).tolist()
    [[-2.0, 0.0], [0.0, 0.0], [2.0, 0.0]]
"""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np

from lmms_nb._image_input import as_pil_image

__all__ = ["doc_image_data_url", "doc_prompt_and_images", "doc_prompts", "pca_2d"]


def pca_2d(vectors: np.ndarray) -> np.ndarray:
    """The rows projected on their first two principal components (zeros where there are fewer).

    >>> pca_2d(np.ones((1, 4))).tolist()  # one doc: nothing to project
    [[0.0, 0.0]]
    """
    from sklearn.decomposition import PCA

    x = np.asarray(vectors, dtype=np.float64)
    out = np.zeros((x.shape[0], 2))
    n_comp = min(2, x.shape[0], x.shape[1])
    if n_comp >= 1 and x.shape[0] > 1:
        # many more docs than dimensions (the usual case): the d x d covariance's eigenvectors are exact and
        # ~20x faster than an SVD of the whole n x d matrix
        solver = "covariance_eigh" if x.shape[0] >= x.shape[1] else "full"
        out[:, :n_comp] = PCA(n_components=n_comp, svd_solver=solver).fit_transform(x)
    return out


def doc_prompts(task: Any, doc_ids: np.ndarray, *, max_chars: int = 300) -> list[str]:
    """Each doc's prompt (`task.doc_to_text`), cut to `max_chars` characters (then " …"); plain, unescaped text.

    A doc whose prompt fails gives the error's text instead, so one odd doc never hides the others.

    >>> from lmms_nb.tasks.synthbench import synthbench_task
    >>> task = synthbench_task("count", n_train=6, n_test=30)
    >>> doc_prompts(task, np.array([0, 2]))[1] == str(task.doc_to_text(task.dataset()[2]))
    True
    """
    import datasets

    full = task.dataset()
    column = task.image_column
    light = full
    if column in full.column_names and isinstance(full.features.get(column), datasets.Image):
        light = full.cast_column(column, datasets.Image(decode=False))  # a prompt rarely needs pixels: skip them
    out = []
    for doc_id in np.asarray(doc_ids).tolist():
        try:
            try:
                text = str(task.doc_to_text(light[int(doc_id)]))
            except Exception:  # noqa: BLE001 - this prompt does look at the image: give it the decoded row
                text = str(task.doc_to_text(full[int(doc_id)]))
        except Exception as e:  # noqa: BLE001 - one odd doc must not hide the map
            text = f"(doc_to_text failed: {type(e).__name__}: {e})"
        if len(text) > max_chars:
            text = text[:max_chars] + " …"
        out.append(text)
    return out


def doc_prompt_and_images(task: Any, doc_id: int) -> tuple[str, list[Any]]:
    """Doc `doc_id`'s prompt (`doc_to_text`) and images (`doc_to_visual`, possibly none).

    >>> from lmms_nb.tasks.synthbench import synthbench_task
    >>> prompt, images = doc_prompt_and_images(synthbench_task("count", n_train=6, n_test=30), 1)
    >>> isinstance(prompt, str), len(images)
    (True, 1)
    """
    doc = task.dataset()[int(doc_id)]
    images = task.doc_to_visual(doc) or []
    return str(task.doc_to_text(doc)), list(images)


def doc_image_data_url(image: Any, size: int = 256) -> str:
    """An image (PIL, path, array or {'bytes'|'path'} dict) as a base64 PNG data URL, at most `size` px a side.

    >>> from PIL import Image
    >>> doc_image_data_url(Image.new("RGB", (512, 8))).startswith("data:image/png;base64,")
    True
    """
    pic = as_pil_image(image, "doc image", mode="RGB")
    pic.thumbnail((size, size))
    buf = io.BytesIO()
    pic.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
