"""Video requests for the transformers backend: which families take video, and how a request's videos load.

A video task's doc_to_visual gives file paths (lmms-eval's convention); the backend turns each into the frames
its family's lmms-eval class would give the processor (`lmms_nb.models._qwen_video`, `lmms_nb.video`). Families
with a video processor and a loader here: Qwen2-VL, Qwen2.5-VL (qwen_vl_utils' sampling and resize) and
LLaVA-OneVision (32 uniform frames). A model of any other family has no `video_loader`, so `accepts_video` is False
and the runner refuses a video task before generating.

Example:
    >>> default_video_loader("llava") is None, callable(default_video_loader("qwen2_5_vl"))
    (True, True)
"""

from __future__ import annotations

import functools
from typing import Any, Callable

from lmms_nb.models.base import Request
from lmms_nb.video import is_video_path, load_video_uniform

__all__ = ["VIDEO_FAMILIES", "default_video_loader", "llava_onevision_video_loader", "load_request_videos",
           "visual_kinds"]

#: model_type of the checkpoints whose processor takes `videos` and for which a loader is written here
VIDEO_FAMILIES = ("qwen2_vl", "qwen2_5_vl", "llava_onevision")


def _load_uniform(path: str, *, max_frames_num: int) -> tuple[Any, None]:
    return load_video_uniform(path, max_frames_num), None


def llava_onevision_video_loader(*, max_frames_num: int = 32) -> Callable[[str], tuple[Any, None]]:
    """A video file -> (``(N, H, W, 3)`` uint8 frames, None): `max_frames_num` uniform frames, as lmms-eval's
    llava_onevision and llava_hf classes load a video (``load_video_decord``)."""
    return functools.partial(_load_uniform, max_frames_num=int(max_frames_num))


def default_video_loader(model_type: str | None) -> Callable[[str], tuple[Any, Any]] | None:
    """The loader for a family when the model was built without one (the plain "hf" backend): lmms-eval's class
    defaults (Qwen2-VL: its `qwen2_vl` class; Qwen2.5-VL: its `qwen2_5_vl` class), or None for no video."""
    from lmms_nb.models._qwen_video import qwen2_5_vl_video_loader, qwen2_vl_video_loader

    if model_type == "qwen2_vl":
        return qwen2_vl_video_loader()
    if model_type == "qwen2_5_vl":
        return qwen2_5_vl_video_loader()
    if model_type == "llava_onevision":
        return llava_onevision_video_loader()
    return None


def visual_kinds(req: Request) -> list[str]:
    """"video" or "image" for each visual of the request, in order (a path that is no image file is a video)."""
    return ["video" if is_video_path(v) else "image" for v in req.images]


def load_request_videos(req: Request, loader: Callable[[str], tuple[Any, Any]] | None) -> list[tuple[Any, Any]]:
    """(frames, metadata) for each video of the request; an error names the doc, task and file."""
    paths = [str(v) for v in req.images if is_video_path(v)]
    if paths and loader is None:
        raise ValueError(f"doc {req.doc_id} of task {req.task!r} gives a video and this model takes none")
    out = []
    for k, path in enumerate(paths):
        try:
            out.append(loader(path))  # type: ignore[misc]
        except Exception as e:
            raise ValueError(f"doc {req.doc_id} of task {req.task!r}, video {k} ({path}): {e}") from e
    return out
