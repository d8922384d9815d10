"""Frames from video files, sampled the way lmms-eval 0.7.3 samples them.

lmms-eval's video tasks hand the model a file path (``doc_to_visual`` returns ``[path]``); each model class then
decodes it its own way. The rules written here are lmms-eval's:

- `uniform_indices` / `load_video_uniform`: ``np.linspace(0, total - 1, max_frames_num, dtype=int)`` over every
  frame, duplicates kept (``load_video_decord`` of ``lmms_eval.models.model_utils.load_video``; the llava_hf and
  llava_onevision classes, 32 frames by default);
- `read_video`: lmms-eval's PyAV ``read_video``: at most ``num_frm`` frames, capped at ``fps`` frames per second
  of video when given, optionally forcing the last frame, each frame once;
- Qwen-VL's ``qwen_vl_utils.fetch_video`` (frame count and resize) is in `lmms_nb.models._qwen_video`.

Frames are decoded with decord when it is installed (as lmms-eval's and qwen_vl_utils' default readers do), else
(or where decord fails, as it does on some frame widths) with PyAV; both give the same RGB frames (tested). A
missing or unreadable file raises `VideoError` naming it.

Example:
    >>> uniform_indices(10, 4).tolist(), uniform_indices(3, 5).tolist()
    ([0, 3, 6, 9], [0, 0, 1, 1, 2])
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["VideoError", "is_video_path", "load_video_uniform", "probe_video", "read_frames", "read_video",
           "uniform_indices"]

#: what lmms-eval treats as an image or audio file when a doc_to_visual entry is a path; any other path is a video
#: (``ConfigurableTask._visual_to_content``)
_IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff"}
_AUDIO_EXTS = {".wav", ".mp3", ".flac", ".ogg", ".m4a", ".aac"}


class VideoError(ValueError):
    """A video file that is missing or cannot be decoded (the message names the file)."""


def is_video_path(visual: Any) -> bool:
    """Whether a doc_to_visual entry is a video, as lmms-eval decides it: a path that is no image or audio file.

    >>> is_video_path("clips/a.mp4"), is_video_path("a.png"), is_video_path(3)
    (True, False, False)
    """
    if isinstance(visual, Path):
        visual = str(visual)
    if not isinstance(visual, str):
        return False
    ext = Path(visual).suffix.lower()
    return ext not in _IMAGE_EXTS and ext not in _AUDIO_EXTS


def _has_decord() -> bool:
    return importlib.util.find_spec("decord") is not None


def _check(path: str | Path) -> str:
    path = str(path)
    if not Path(path).is_file():
        raise VideoError(f"video file {path!r} does not exist")
    return path


def probe_video(path: str | Path) -> tuple[int, float]:
    """(frame count, average frames per second) of a video file, as decord (else PyAV) reports them."""
    path = _check(path)
    try:
        if _has_decord():
            import decord

            reader = decord.VideoReader(path)
            return len(reader), float(reader.get_avg_fps())
        import av

        with av.open(path) as container:
            stream = container.streams.video[0]
            total = int(stream.frames or 0) or sum(1 for _ in container.decode(video=0))
            rate = float(stream.average_rate) if stream.average_rate else 0.0
            return total, rate
    except Exception as e:  # noqa: BLE001 - any decoder failure is this file's
        raise VideoError(f"cannot read video {path!r}: {type(e).__name__}: {e}") from e


def read_frames(path: str | Path, indices: Any) -> np.ndarray:
    """The frames at `indices` (repeats allowed) as a ``(N, H, W, 3)`` uint8 RGB array."""
    path = _check(path)
    wanted = [int(i) for i in indices]
    if not wanted:
        raise VideoError(f"video {path!r}: no frame to read")
    if _has_decord():
        try:
            import decord

            reader = decord.VideoReader(path, ctx=decord.cpu(0))
            frames = reader.get_batch(wanted).asnumpy()
            del reader  # as lmms-eval: release the reader at once
            return frames
        except Exception:  # noqa: BLE001 - decord fails on some frame sizes (e.g. 48 px wide); PyAV reads them
            pass
    try:
        import av

        needed, last, decoded = set(wanted), max(wanted), {}
        with av.open(path) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i in needed:
                    decoded[i] = frame.to_ndarray(format="rgb24")
                if i >= last:
                    break
        missing = sorted(needed - decoded.keys())
        if missing:
            raise VideoError(f"video {path!r} has no frame {missing[0]} (it decodes to {len(decoded)} of them)")
        return np.stack([decoded[i] for i in wanted])
    except VideoError:
        raise
    except Exception as e:  # noqa: BLE001 - any decoder failure is this file's
        raise VideoError(f"cannot read video {path!r}: {type(e).__name__}: {e}") from e


def uniform_indices(total_frames: int, num_frames: int) -> np.ndarray:
    """``np.linspace(0, total - 1, num_frames, dtype=int)``: lmms-eval's uniform sampling, duplicates kept."""
    if total_frames <= 0:
        raise VideoError("the video has no frames")
    return np.linspace(0, total_frames - 1, num_frames, dtype=int)


def load_video_uniform(path: str | Path, max_frames_num: int = 32) -> np.ndarray:
    """`max_frames_num` frames spread evenly over the whole video, ``(N, H, W, 3)`` uint8: lmms-eval's
    ``load_video_decord`` (its llava_hf and llava_onevision classes); a shorter video repeats frames."""
    total, _ = probe_video(path)
    return read_frames(path, uniform_indices(total, int(max_frames_num)))


def read_video(path: str | Path, *, num_frm: int = 8, fps: float | None = None,
               force_include_last_frame: bool = False) -> np.ndarray:
    """lmms-eval's ``read_video`` (PyAV backend): at most `num_frm` frames (and ``duration * fps``) at uniform
    indices, each frame once, ``(N, H, W, 3)`` uint8; with `force_include_last_frame` the last frame replaces the
    last index; every frame when `fps` leaves none (as lmms-eval's fallback does)."""
    total, rate = probe_video(path)
    count = min(total, int(num_frm))
    if fps is not None and rate > 0:
        count = min(count, int(total / rate * fps))
    if count <= 0:
        # lmms-eval's stream reader fails on zero indices (fps too low for the clip's length) and falls back to
        # decoding every frame
        return read_frames(path, range(total))
    indices = uniform_indices(total, count)
    if force_include_last_frame and total - 1 not in indices:
        if count <= 1:
            indices = np.array([total - 1])
        else:
            indices = np.append(np.linspace(0, max(0, total - 2), count - 1, dtype=int), total - 1)
    # lmms-eval keeps a decoded frame when its index is in the set of indices: each frame once, in order
    return read_frames(path, np.unique(indices))
