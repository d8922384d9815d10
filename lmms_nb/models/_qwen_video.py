"""Qwen-VL video input as `qwen_vl_utils` (0.0.14) builds it, and as lmms-eval 0.7.3's Qwen classes ask for it.

`fetch_video` is ``qwen_vl_utils.fetch_video`` for a file path: the frame count (`smart_nframes`: a given `nframes`
rounded to even, or ``fps`` frames per second of video within [min_frames, max_frames]), frames at
``linspace(0, total - 1, n).round()``, every frame resized with `smart_resize` (bicubic, antialiased, as
torchvision) so its pixel count lies within the video bounds. It returns the float ``(T, C, H, W)`` tensor and the
metadata dict that the Qwen processors take as ``video_metadata``. Written here so lmms-nb needs no qwen_vl_utils;
the tests compare both.

The loaders are what lmms-eval's classes pass it:

- `qwen2_5_vl_video_loader`: lmms-eval's ``qwen2_5_vl`` chat class: with ``fps`` set, that rate; else
  ``nframes = min(max_num_frames, frame count)`` floored to even (at least 2); `min_pixels` / `max_pixels` bound
  each frame; the metadata goes to the processor;
- `qwen2_vl_video_loader`: lmms-eval's ``qwen2_vl`` class: qwen_vl_utils' default 2 fps, then (first video of a
  request) at most `max_num_frames` of those frames, no metadata.
- `qwen3_vl_video_loader`: lmms-eval's ``qwen3_vl`` class: 16 px patches (resize factor 32); with ``fps``, that rate
  up to `max_num_frames`; with ``total_pixels``, 2 fps up to `max_num_frames` within that pixel budget; else
  ``nframes = min(max_num_frames, frame count)`` rounded to even as qwen_vl_utils rounds it (so a 7-frame clip
  asks for 8 and fails, as there); the processor then takes the frames as they are (`QWEN3_VL_PROCESSOR_KWARGS`).

Example:
    >>> smart_nframes(total_frames=100, video_fps=25.0, nframes=7)
    8
    >>> smart_nframes(total_frames=100, video_fps=25.0, fps=2.0)  # 4 s at 2 fps
    8
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any, Callable

import numpy as np

from lmms_nb.models._qwen_resize import SPATIAL_MERGE_SIZE, smart_resize
from lmms_nb.video import VideoError, _has_decord, probe_video, read_frames

__all__ = ["QWEN3_VL_PROCESSOR_KWARGS", "fetch_video", "qwen2_5_vl_video_loader", "qwen2_vl_video_loader",
           "qwen3_vl_video_loader", "smart_nframes"]

FPS = 2.0
FRAME_FACTOR = 2
FPS_MIN_FRAMES = 4
FPS_MAX_FRAMES = 768
VIDEO_MIN_TOKEN_NUM = 128
VIDEO_MAX_TOKEN_NUM = 768
MODEL_SEQ_LEN = 128000

#: (video, metadata or None) for one video file: what the Qwen processors take as `videos` / `video_metadata`
VideoLoader = Callable[[str], tuple[Any, "dict | None"]]


def smart_nframes(*, total_frames: int, video_fps: float, nframes: int | None = None, fps: float | None = None,
                  min_frames: int | None = None, max_frames: int | None = None) -> int:
    """qwen_vl_utils' frame count: `nframes` rounded to even, or `fps` (default 2) frames per second within
    [min_frames, max_frames] floored to even; it must lie within [2, total_frames]."""
    if nframes is not None and fps is not None:
        raise ValueError("give nframes or fps, not both")
    if nframes is not None:
        count = round(nframes / FRAME_FACTOR) * FRAME_FACTOR
    else:
        fps = FPS if fps is None else fps
        low = math.ceil((FPS_MIN_FRAMES if min_frames is None else min_frames) / FRAME_FACTOR) * FRAME_FACTOR
        high = min(FPS_MAX_FRAMES, total_frames) if max_frames is None else max_frames
        high = math.floor(high / FRAME_FACTOR) * FRAME_FACTOR
        wanted = total_frames / video_fps * fps
        count = min(min(max(wanted, low), high), total_frames)
        count = math.floor(count / FRAME_FACTOR) * FRAME_FACTOR
    if not FRAME_FACTOR <= count <= total_frames:
        raise VideoError(f"nframes should be in [{FRAME_FACTOR}, {total_frames}], got {count}")
    return int(count)


def fetch_video(path: str | Path, *, nframes: int | None = None, fps: float | None = None,
                min_pixels: int | None = None, max_pixels: int | None = None, total_pixels: float | None = None,
                min_frames: int | None = None, max_frames: int | None = None,
                image_patch_size: int = 14) -> tuple[Any, dict]:
    """``qwen_vl_utils.fetch_video({"video": path, ...}, return_video_metadata=True)`` for a local file:
    (float tensor ``(T, C, H, W)``, metadata dict with fps, frames_indices, total_num_frames, video_backend)."""
    import torch
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as tvf

    path = str(path)
    total, video_fps = probe_video(path)
    if video_fps <= 0:
        raise VideoError(f"video {path!r} reports no frame rate")
    count = smart_nframes(total_frames=total, video_fps=video_fps, nframes=nframes, fps=fps,
                          min_frames=min_frames, max_frames=max_frames)
    indices = torch.linspace(0, total - 1, count).round().long().tolist()
    frames = torch.from_numpy(read_frames(path, indices)).permute(0, 3, 1, 2)

    factor = image_patch_size * SPATIAL_MERGE_SIZE
    low = VIDEO_MIN_TOKEN_NUM * factor * factor if min_pixels is None else min_pixels
    total_pixels = MODEL_SEQ_LEN * factor * factor * 0.9 if total_pixels is None else total_pixels
    high = max(min(VIDEO_MAX_TOKEN_NUM * factor * factor, total_pixels / count * FRAME_FACTOR), int(low * 1.05))
    high = min(max_pixels, high) if max_pixels is not None else high
    height, width = frames.shape[2:]
    new_height, new_width = smart_resize(height, width, factor=factor, min_pixels=low, max_pixels=high)
    video = tvf.resize(frames, [new_height, new_width], interpolation=InterpolationMode.BICUBIC,
                       antialias=True).float()
    backend = "decord" if _has_decord() else "pyav"
    return video, {"fps": video_fps, "frames_indices": indices, "total_num_frames": total, "video_backend": backend}


def _load_qwen2_5_vl(path: str, *, max_num_frames: int, fps: float | None, min_pixels: int, max_pixels: int,
                     image_patch_size: int) -> tuple[Any, dict]:
    bounds = {"min_pixels": min_pixels, "max_pixels": max_pixels, "image_patch_size": image_patch_size}
    if fps is not None:
        return fetch_video(path, fps=fps, **bounds)
    # lmms-eval probes the frame count so that a short video is not asked for more frames than it has
    total, _ = probe_video(path)
    return fetch_video(path, nframes=max(2, (min(max_num_frames, total) // 2) * 2), **bounds)


def qwen2_5_vl_video_loader(*, max_num_frames: int = 32, fps: float | None = None, min_pixels: int = 256 * 28 * 28,
                            max_pixels: int = 1605632, image_patch_size: int = 14) -> VideoLoader:
    """A video file -> (frames, metadata), as lmms-eval's ``qwen2_5_vl`` (chat) class prepares it (its defaults)."""
    return functools.partial(_load_qwen2_5_vl, max_num_frames=int(max_num_frames), fps=fps,
                             min_pixels=int(min_pixels), max_pixels=int(max_pixels), image_patch_size=image_patch_size)


def _load_qwen2_vl(path: str, *, max_num_frames: int, min_pixels: int, max_pixels: int) -> tuple[Any, None]:
    video, _ = fetch_video(path, min_pixels=min_pixels, max_pixels=max_pixels)
    # lmms-eval then keeps at most max_num_frames of the fetched frames (evenly spread, each once)
    indices = np.unique(np.linspace(0, video.shape[0] - 1, max_num_frames, dtype=int))
    return video[indices], None


def qwen2_vl_video_loader(*, max_num_frames: int = 32, min_pixels: int = 3136,
                          max_pixels: int = 602112) -> VideoLoader:
    """A video file -> (frames, None), as lmms-eval's ``qwen2_vl`` class prepares it (its defaults)."""
    return functools.partial(_load_qwen2_vl, max_num_frames=int(max_num_frames), min_pixels=int(min_pixels),
                             max_pixels=int(max_pixels))


#: what lmms-eval's qwen3_vl passes the processor with the frames: qwen_vl_utils' `do_sample_frames=False` (the
#: frames are already sampled) and `do_resize=False` (already resized); Qwen3-VL's video processor would otherwise
#: sample 2 fps again and resize within its own bounds
QWEN3_VL_PROCESSOR_KWARGS = {"do_sample_frames": False, "do_resize": False}


def _load_qwen3_vl(path: str, *, max_num_frames: int, fps: float | None, total_pixels: int | None,
                   min_pixels: int, max_pixels: int) -> tuple[Any, dict]:
    # lmms-eval's Qwen3_VL._build_video_kwargs, then nframes capped at the clip's frame count (decord's len)
    bounds: dict[str, Any] = {"min_pixels": min_pixels, "image_patch_size": 16}
    if total_pixels is not None:
        bounds["total_pixels"] = total_pixels
    else:
        bounds["max_pixels"] = max_pixels
    if fps is not None:
        return fetch_video(path, fps=fps, max_frames=max_num_frames, **bounds)
    if total_pixels is not None:
        return fetch_video(path, max_frames=max_num_frames, **bounds)
    total, _ = probe_video(path)
    return fetch_video(path, nframes=min(max_num_frames, total), **bounds)


def qwen3_vl_video_loader(*, max_num_frames: int = 32, fps: float | None = None, total_pixels: int | None = None,
                          min_pixels: int = 256 * 28 * 28, max_pixels: int = 1605632) -> VideoLoader:
    """A video file -> (frames, metadata), as lmms-eval's ``qwen3_vl`` class prepares it (its defaults)."""
    return functools.partial(_load_qwen3_vl, max_num_frames=int(max_num_frames), fps=fps,
                             total_pixels=None if total_pixels is None else int(total_pixels),
                             min_pixels=int(min_pixels), max_pixels=int(max_pixels))
