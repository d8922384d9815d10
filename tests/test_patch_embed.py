"""The grid form of Qwen's conv3d patch embedding (`lmms_nb.models._patch_embed`): real oneDNN convolutions on CPU,
compared bit for bit with the plain conv3d that lmms-eval runs; and a tiny Qwen2.5-VL in bfloat16 generating the
same tokens with it as without it."""

from __future__ import annotations

import pytest
import torch

from lmms_nb.models._patch_embed import MIN_PATCHES, grid_conv3d, speed_up_patch_embeddings
from _tiny_qwen_pair import tiny_qwen_pair


def _conv(out_channels: int, bias: bool, dtype: torch.dtype, patch: int = 14) -> torch.nn.Conv3d:
    torch.manual_seed(out_channels)
    kernel = (2, patch, patch)
    return torch.nn.Conv3d(3, out_channels, kernel, stride=kernel, bias=bias).to(dtype).eval()


@pytest.mark.parametrize("n", [1, 5, 32, 33, 1000])
def test_the_grid_is_the_same_convolution(n):
    conv = _conv(16, bias=True, dtype=torch.float64)
    patches = torch.rand(n, 3, 2, 14, 14, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(grid_conv3d(conv, patches), conv(patches), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("out_channels, bias, patch", [(64, False, 14), (256, False, 14), (96, True, 16)])
def test_outputs_are_bit_identical_to_the_plain_conv3d_whatever_the_batch(out_channels, bias, patch):
    conv = _conv(out_channels, bias, torch.bfloat16, patch)
    plain = _conv(out_channels, bias, torch.bfloat16, patch)
    assert speed_up_patch_embeddings(conv) == 1 and speed_up_patch_embeddings(conv) == 0  # installed once
    with torch.no_grad():
        for n in (MIN_PATCHES, MIN_PATCHES, 7, 2 * MIN_PATCHES + 5, MIN_PATCHES):
            patches = (torch.rand(n, 3, 2, patch, patch) * 4 - 2).to(torch.bfloat16)
            assert torch.equal(conv(patches), plain(patches)), n
    # the first large call of each size bucket decided, on its real input and a random one, whether the grid form
    # gives the same numbers here
    checked = conv._lmms_nb_grid_checked
    assert set(checked) == {(torch.get_num_threads(), torch.bfloat16, 1024), (torch.get_num_threads(), torch.bfloat16, 4096)}
    assert all(isinstance(same, bool) for same in checked.values())


def test_the_grid_form_is_taken_where_it_is_identical():
    """float32 on CPU: the grid form measured identical, so the check must pass and the grid form be used; a broken
    grid (wrong layout) would fail the check and leave the plain form, failing here."""
    conv = _conv(64, bias=True, dtype=torch.float32)
    plain = _conv(64, bias=True, dtype=torch.float32)
    speed_up_patch_embeddings(conv)
    with torch.no_grad():
        blank = torch.zeros(MIN_PATCHES, 3, 2, 14, 14)  # a flat first input: the random tensor still checks kernels
        assert torch.equal(conv(blank), plain(blank))
        varied = torch.rand(MIN_PATCHES + 100, 3, 2, 14, 14)
        assert torch.equal(conv(varied), plain(varied))
        # a non-contiguous input (a strided view) goes through the grid form too
        strided = torch.rand(MIN_PATCHES, 3, 2, 14, 28)[..., ::2]
        assert not strided.is_contiguous()
        assert torch.equal(conv(strided), plain(strided))
        assert torch.equal(grid_conv3d(conv, strided), plain(strided))
    threads = torch.get_num_threads()
    assert conv._lmms_nb_grid_checked == {(threads, torch.float32, 1024): True, (threads, torch.float32, 2048): True}


def test_other_convolutions_are_left_alone():
    overlapping = torch.nn.Conv3d(3, 8, (2, 14, 14), stride=(1, 7, 7))
    padded = torch.nn.Conv3d(3, 8, (2, 14, 14), stride=(2, 14, 14), padding=1)
    flat = torch.nn.Conv2d(3, 8, 14, stride=14)
    assert speed_up_patch_embeddings(torch.nn.Sequential(overlapping, padded, flat)) == 0


def test_tiny_qwen2_5_vl_generates_the_same_tokens_with_and_without_it(tmp_path):
    fast, plain, requests = tiny_qwen_pair(tmp_path / "qwen", seed=3, size_step=(16, 0),
                                           checked_attr="_lmms_nb_grid_checked")
    assert fast.model.dtype == torch.bfloat16
    for _ in range(2):  # the first call checks, the second uses the grid form where the check passed
        assert [r.text for r in fast.generate(requests)] == [r.text for r in plain.generate(requests)]
    assert any(getattr(m, "_lmms_nb_grid_checked", None) for m in fast.model.modules())


def test_verdicts_learnt_under_other_kernel_switches_are_checked_again():
    """oneDNN's float32 precision (a process-wide switch) changes which conv kernel runs: the verdicts found before
    the switch are dropped, the check runs again, and the answers stay those of the plain conv3d under the switch."""
    conv = _conv(64, bias=True, dtype=torch.float32)
    plain = _conv(64, bias=True, dtype=torch.float32)
    speed_up_patch_embeddings(conv)
    patches = torch.rand(MIN_PATCHES, 3, 2, 14, 14)
    key = (torch.get_num_threads(), torch.float32, 1024)
    with torch.no_grad():
        conv(patches)
        before = conv._lmms_nb_kernel_settings
        assert key in conv._lmms_nb_grid_checked
        old = torch.backends.mkldnn.conv.fp32_precision
        try:
            torch.backends.mkldnn.conv.fp32_precision = "bf16"
            conv._lmms_nb_grid_checked[key] = "stale"  # a marker that only a re-check replaces
            assert torch.equal(conv(patches), plain(patches))
            assert conv._lmms_nb_kernel_settings != before and isinstance(conv._lmms_nb_grid_checked[key], bool)
        finally:
            torch.backends.mkldnn.conv.fp32_precision = old
