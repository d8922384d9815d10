"""k-center greedy: picks, radii and cells checked against an independent float64 reference (numpy/scipy)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import cdist

from lmms_nb.lite_selection import assign_to_nearest, kcenter_greedy

torch.set_num_threads(1)


def reference_kcenter(x: np.ndarray, k: int, start: int) -> tuple[list[int], list[float]]:
    """The published method in float64: distance to each new center (scipy cdist), min, np.argmax."""
    x = np.asarray(x, dtype=np.float64)
    picks = [start]
    min_d = cdist(x, x[start:start + 1]).ravel()
    radii = []
    for _ in range(k - 1):
        radii.append(float(min_d.max()))
        nxt = int(np.argmax(min_d))
        picks.append(nxt)
        min_d = np.minimum(min_d, cdist(x, x[nxt:nxt + 1]).ravel())
    radii.append(float(min_d.max()))
    return picks, radii


def reference_cells(x: np.ndarray, picks: list[int]) -> tuple[np.ndarray, np.ndarray]:
    d = cdist(np.asarray(x, dtype=np.float64), np.asarray(x, dtype=np.float64)[picks])
    assignment = np.argmin(d, axis=1)  # first minimum: the earliest pick on ties
    return assignment, np.bincount(assignment, minlength=len(picks))


def test_hand_computed_line() -> None:
    # points on a line; farthest-first from 0: 11 (d=11), then 5 (d=5 to both ends), then 1 or 10 (d=1)
    x = np.array([[0.0], [1.0], [10.0], [11.0], [5.0]])
    res = kcenter_greedy(x, 4, start=0)
    assert res.picks.tolist() == [0, 3, 4, 1]  # 1 and 10 tie at distance 1: lowest index wins
    assert res.radii.tolist() == [11.0, 5.0, 1.0, 1.0]
    # cells of picks [0, 11, 5, 1]: 0->{0}, 11->{11, 10}, 5->{5}, 1->{1}
    assert res.cell_sizes.tolist() == [1, 2, 1, 1]
    assert res.assignment.tolist() == [0, 3, 1, 1, 2]


@pytest.mark.parametrize("seed", range(6))
def test_matches_reference_on_gaussian_data(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, d = int(rng.integers(50, 600)), int(rng.integers(2, 300))
    x = rng.normal(size=(n, d)).astype(np.float32) * rng.uniform(0.1, 10)
    k = int(rng.integers(1, min(n, 80)))
    start = int(rng.integers(n))
    res = kcenter_greedy(x, k, start=start)
    picks, radii = reference_kcenter(x, k, start)
    assert res.picks.tolist() == picks
    np.testing.assert_allclose(res.radii, radii, rtol=1e-9, atol=1e-12)
    assignment, cells = reference_cells(x, picks)
    assert res.assignment.tolist() == assignment.tolist()
    assert res.cell_sizes.tolist() == cells.tolist()


def test_exact_ties_on_a_grid_go_to_the_lowest_index() -> None:
    # integer grid: many exactly equal distances, which float32 rounding could order either way
    g = np.stack(np.meshgrid(np.arange(7), np.arange(7), np.arange(3)), -1).reshape(-1, 3).astype(np.float32)
    rng = np.random.default_rng(1)
    x = g[rng.permutation(len(g))] * 3.0 + 100.0  # offset: the expanded formula cancels badly in float32
    res = kcenter_greedy(x, 40, start=5)
    picks, radii = reference_kcenter(x, 40, 5)
    assert res.picks.tolist() == picks
    np.testing.assert_allclose(res.radii, radii, rtol=1e-12)
    assignment, cells = reference_cells(x, picks)
    assert res.assignment.tolist() == assignment.tolist()
    assert res.cell_sizes.tolist() == cells.tolist()


def test_near_ties_that_float32_cannot_separate() -> None:
    # Rows 0-5 sit at x=1000; row 4 is 2^-10 farther from the start (row 7) than the others. In float32 the
    # squared distances all round to 1000001.0 (so a float32 argmax says row 0); the exact answer is row 4.
    x = np.zeros((8, 4), dtype=np.float32)
    x[:6, 0] = 1000.0
    x[4, 1] = -(2.0 ** -10)
    x[6] = [2000.0, 0.0, 0.0, 0.0]
    x[7] = [2000.0, 1.0, 0.0, 0.0]
    t = torch.from_numpy(x)
    sq = (t * t).sum(1)
    float32_dists = sq - 2 * t @ t[7] + sq[7]
    assert int(torch.argmax(float32_dists)) == 0  # what float32 alone would pick
    res = kcenter_greedy(x, 3, start=7)
    picks, _ = reference_kcenter(x, 3, 7)
    assert res.picks.tolist() == picks == [7, 4, 6]


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(2, 60),
    d=st.integers(1, 12),
    k_frac=st.floats(0.05, 1.0),
    seed=st.integers(0, 10_000),
    scale=st.sampled_from([1e-3, 1.0, 1e3]),
)
def test_property_equals_reference(n: int, d: int, k_frac: float, seed: int, scale: float) -> None:
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(n, d)) * scale).astype(np.float32)
    if len(np.unique(x, axis=0)) < n:  # duplicates are covered by their own test
        return
    k = max(1, round(k_frac * n))
    res = kcenter_greedy(x, k, start=0)
    picks, radii = reference_kcenter(x, k, 0)
    assert res.picks.tolist() == picks
    np.testing.assert_allclose(res.radii, radii, rtol=1e-9, atol=1e-12 * scale)
    assert int(res.cell_sizes.sum()) == n
    assert np.all(np.diff(res.radii) <= 1e-12 * scale)  # coverage radius never grows
    assert res.cell_sizes.tolist() == reference_cells(x, picks)[1].tolist()


def test_duplicates_keep_picks_distinct() -> None:
    x = np.array([[0.0, 0.0], [0.0, 0.0], [3.0, 4.0], [3.0, 4.0], [0.0, 0.0]], dtype=np.float32)
    res = kcenter_greedy(x, 5, start=0)
    # after rows 0 and 2 everything is covered (radius 0): then the lowest unpicked rows, in order
    assert res.picks.tolist() == [0, 2, 1, 3, 4]
    assert res.radii.tolist() == [5.0, 0.0, 0.0, 0.0, 0.0]
    assert sorted(res.picks.tolist()) == list(range(5))
    assert res.cell_sizes.tolist() == [3, 2, 0, 0, 0]  # equidistant duplicates go to the earliest pick


def test_start_options() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 16)).astype(np.float32)
    mean_row = int(np.argmin(((x.astype(np.float64) - x.astype(np.float64).mean(0)) ** 2).sum(1)))
    assert kcenter_greedy(x, 5, start="mean").picks[0] == mean_row
    a = kcenter_greedy(x, 5, start="random", seed=11).picks
    b = kcenter_greedy(x, 5, start="random", seed=11).picks
    assert a.tolist() == b.tolist()
    assert a[0] == np.random.default_rng(11).integers(300)
    assert kcenter_greedy(x, 7, start=42).picks.tolist() == reference_kcenter(x, 7, 42)[0]


def test_prefix_property_and_assign_to_nearest() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(400, 10)).astype(np.float32)
    big = kcenter_greedy(x, 60)
    small = kcenter_greedy(x, 25)
    assert big.picks[:25].tolist() == small.picks.tolist()
    assignment, sizes = assign_to_nearest(x, big.picks[:25])
    assert sizes.tolist() == small.cell_sizes.tolist()
    assert assignment.tolist() == reference_cells(x, big.picks[:25].tolist())[0].tolist()


def test_torch_input_and_float64_input() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(200, 6))
    a = kcenter_greedy(torch.from_numpy(x.astype(np.float32)), 20)
    b = kcenter_greedy(x.astype(np.float32), 20)
    assert a.picks.tolist() == b.picks.tolist()
    # float64 input is rounded to float32 first (documented): same picks as the float32 copy
    assert kcenter_greedy(x, 20).picks.tolist() == reference_kcenter(x.astype(np.float32), 20, 0)[0]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_matches_cpu() -> None:
    rng = np.random.default_rng(6)
    x = rng.normal(size=(5000, 256)).astype(np.float32)
    cpu = kcenter_greedy(x, 100)
    gpu = kcenter_greedy(x, 100, device="cuda")
    assert gpu.picks.tolist() == cpu.picks.tolist() == reference_kcenter(x, 100, 0)[0]
    np.testing.assert_allclose(gpu.radii, cpu.radii, rtol=1e-12)
    assert gpu.cell_sizes.tolist() == cpu.cell_sizes.tolist()


@pytest.mark.parametrize(
    ("x", "k", "kwargs", "message"),
    [
        (np.zeros((3, 2)), 4, {}, "between 1 and the number of rows"),
        (np.zeros((3, 2)), 0, {}, "between 1 and the number of rows"),
        (np.zeros(3), 1, {}, "2-d"),
        (np.zeros((0, 2)), 1, {}, "empty"),
        (np.array([[0.0, 1.0], [np.nan, 0.0]]), 1, {}, "rows [1]"),
        (np.array([["a", "b"]]), 1, {}, "numeric"),
        (np.zeros((3, 2)), 1, {"start": 3}, "row index"),
        (np.zeros((3, 2)), 1, {"start": "middle"}, "'random' or 'mean'"),
    ],
)
def test_bad_input_is_named(x, k, kwargs, message) -> None:
    with pytest.raises((ValueError, TypeError), match=__import__("re").escape(message)):
        kcenter_greedy(x, k, **kwargs)


def _farthest_first64(x: np.ndarray, k: int) -> list[int]:
    xd = x.astype(np.float64)
    picks, d = [0], np.sqrt(((xd - xd[0]) ** 2).sum(1))
    for _ in range(k - 1):
        picks.append(int(np.argmax(d)))
        d = np.minimum(d, np.sqrt(((xd - xd[picks[-1]]) ** 2).sum(1)))
    return picks


def test_tight_clusters_keep_the_exact_picks():
    # 40 tight, well-separated clusters: after one pick per cluster every bound is close to the radius
    rng = np.random.default_rng(7)
    centers = rng.normal(scale=10.0, size=(40, 16))
    x = (centers[rng.integers(40, size=4000)] + rng.normal(scale=0.3, size=(4000, 16))).astype(np.float32)
    res = kcenter_greedy(x, 120)
    assert res.picks.tolist() == _farthest_first64(x, 120)
    assert res.cell_sizes.tolist() == reference_cells(x, res.picks.tolist())[1].tolist()


def test_lazy_bounds_skip_most_distances_on_embedding_like_data():
    # unit vectors in topics of groups, items of log-normal spread (a few outliers), as real embeddings
    rng = np.random.default_rng(8)
    groups, topics = rng.normal(size=(6, 48)), rng.normal(size=(60, 48))
    topic = rng.integers(60, size=3000)
    spread = np.exp(0.8 * rng.normal(size=(3000, 1)))
    x = groups[topic // 10] + topics[topic] + 0.4 * spread * rng.normal(size=(3000, 48))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    res = kcenter_greedy(x, 150)
    assert res.picks.tolist() == _farthest_first64(x, 150)
    assignment, cells = reference_cells(x, res.picks.tolist())
    assert res.assignment.tolist() == assignment.tolist()
    # the eager method computes k N distances while picking; the lazy bounds skip most of them
    assert res.rows_measured < 0.75 * 150 * 3000
