"""Lite subsets: embed a task's docs, pick k-center greedy centers, estimate scores, check fidelity, export.

LMMs-Eval-Lite picked benchmark subsets by k-center greedy over concatenated CLIP image and BGE text
embeddings and scored them with a plain mean. This package does the same, exactly and fast, adds the
cell-size-weighted estimate, anchor points chosen from earlier models' answers (Vivek et al., 2023) and
gp-IRT estimates (tinyBenchmarks, Polo et al., 2024), difficulty-stratified subsets drawn from earlier models'
answers with a neighbour control-variate estimate (`build_difficulty_subset`), and measures on held-out models how well each keeps
the full set's scores and ranking against random and category-stratified subsets of the same size.

Example:
    >>> import numpy as np
    >>> from lmms_nb.lite_selection import kcenter_greedy
    >>> kcenter_greedy(np.array([[0.0], [1.0], [9.0]]), 2).picks.tolist()
    [0, 2]
"""

from lmms_nb.lite_selection._anchors import anchor_points
from lmms_nb.lite_selection._builder_choices import (
    budget_doc_count,
    default_filter,
    default_metric,
    metric_and_filter_choices,
    task_choices,
    task_log_rows,
)
from lmms_nb.lite_selection._difficulty_subset import (
    DifficultySubset,
    build_difficulty_subset,
    difficulty_estimates,
)
from lmms_nb.lite_selection._difficulty_subset_file import load_difficulty_subset, save_difficulty_subset
from lmms_nb.lite_selection._doc_map import doc_image_data_url, doc_prompt_and_images, doc_prompts, pca_2d
from lmms_nb.lite_selection._embeddings import (
    DEFAULT_IMAGE_MODEL,
    DEFAULT_IMAGE_PRETRAINED,
    DEFAULT_TEXT_MODEL,
    ImageEmbedder,
    TaskEmbeddings,
    TextEmbedder,
    build_tiny_clip,
    combine_embeddings,
    embed_task,
    local_embedding_models,
)
from lmms_nb.lite_selection._estimates import ScoreMatrix, lite_estimates, score_matrix
from lmms_nb.lite_selection._export_files import EXPORT_FORMATS, export_lite_files, lite_file_stem
from lmms_nb.lite_selection._export import (
    lite_task,
    load_lite_subset,
    save_lite_dataset,
    save_lite_subset,
    write_lmms_eval_yaml,
)
from lmms_nb.lite_selection._fidelity import BEATS_RANDOM_SHARE, DEFAULT_METHODS, METHODS, LiteFidelity, lite_fidelity
from lmms_nb.lite_selection._fidelity_plot import plot_fidelity
from lmms_nb.lite_selection._nested import EstimatorChoice, choose_estimator
from lmms_nb.lite_selection._irt import IRTModel, fit_irt
from lmms_nb.lite_selection._kcenter import KCenterResult, assign_to_nearest, kcenter_greedy
from lmms_nb.lite_selection._subset import LiteSubset, build_lite_subset, resolve_budget
from lmms_nb.lite_selection._subset_notes import pick_notes, subset_summary
from lmms_nb.lite_selection._verdict import fidelity_verdicts, subset_fidelity_verdicts, subset_vs_random, verdict_of

__all__ = [
    "BEATS_RANDOM_SHARE",
    "DEFAULT_IMAGE_MODEL",
    "DEFAULT_IMAGE_PRETRAINED",
    "DEFAULT_METHODS",
    "DEFAULT_TEXT_MODEL",
    "EXPORT_FORMATS",
    "METHODS",
    "DifficultySubset",
    "EstimatorChoice",
    "IRTModel",
    "ImageEmbedder",
    "KCenterResult",
    "LiteFidelity",
    "LiteSubset",
    "ScoreMatrix",
    "TaskEmbeddings",
    "TextEmbedder",
    "anchor_points",
    "assign_to_nearest",
    "budget_doc_count",
    "build_difficulty_subset",
    "build_lite_subset",
    "build_tiny_clip",
    "choose_estimator",
    "combine_embeddings",
    "default_filter",
    "default_metric",
    "difficulty_estimates",
    "doc_image_data_url",
    "doc_prompt_and_images",
    "doc_prompts",
    "embed_task",
    "export_lite_files",
    "fidelity_verdicts",
    "subset_fidelity_verdicts",
    "fit_irt",
    "kcenter_greedy",
    "lite_estimates",
    "lite_fidelity",
    "lite_file_stem",
    "lite_task",
    "load_difficulty_subset",
    "load_lite_subset",
    "local_embedding_models",
    "metric_and_filter_choices",
    "pca_2d",
    "pick_notes",
    "plot_fidelity",
    "resolve_budget",
    "save_difficulty_subset",
    "save_lite_dataset",
    "save_lite_subset",
    "score_matrix",
    "subset_summary",
    "subset_vs_random",
    "task_choices",
    "task_log_rows",
    "verdict_of",
    "write_lmms_eval_yaml",
]
