"""lmms-eval task YAMLs: loading, prompts, filters, metrics, groups, errors, and full runs through evaluate().

The fixture tasks under tests/yaml_tasks/ are written for these tests in lmms-eval's format; their dataset
is generated here. Expected scores are worked out by hand in the comments next to them, following lmms-eval
0.7.3's semantics (predictions stripped, targets not; ANLS over raw lengths; median = middle element).
"""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
from pathlib import Path

import datasets
import polars as pl
import pytest
from PIL import Image

from lmms_nb.models.baselines import FunctionModel
from lmms_nb.runner import evaluate
from lmms_nb.tasks import get_task
from lmms_nb.tasks._yaml_metrics import AGGREGATIONS, anls_lmms, exact_match_lmms
from lmms_nb.tasks.filters import build_filter_pipeline
from lmms_nb.tasks.yaml_loader import (
    TaskYamlError,
    group_scores,
    load_task,
    load_tasks,
    metric_number,
    resolve_tasks,
)

FIXTURES = Path(__file__).parent / "yaml_tasks"
COLOURS = ["red", "green", "blue", "yellow", "red", "blue", "green", "yellow"]
RGB = {"red": (255, 0, 0), "green": (0, 128, 0), "blue": (0, 0, 255), "yellow": (255, 255, 0)}
BASE_CHOICES = ["red", "green", "blue", "yellow"]


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMMS_NB_CACHE", str(tmp_path / "cache"))
    # load_dataset on local csv files writes its arrow cache here, not into ~/.cache
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf_datasets")


def colours_rows() -> dict[str, list]:
    rows: dict[str, list] = {k: [] for k in ("image", "question", "answer", "choices", "answer_idx", "category")}
    for i, colour in enumerate(COLOURS):
        choices = BASE_CHOICES[i % 4:] + BASE_CHOICES[: i % 4]
        rows["image"].append(Image.new("RGB", (16, 16), RGB[colour]))
        rows["question"].append(f"What colour is square {i}?")
        rows["answer"].append(colour)
        rows["choices"].append(choices)
        rows["answer_idx"].append(choices.index(colour))
        rows["category"].append("warm" if colour in ("red", "yellow") else "cool")
    return rows


@pytest.fixture()
def colours_dir(tmp_path) -> Path:
    """The colours fixture folder copied next to a freshly generated dataset (a DatasetDict on disk)."""
    folder = tmp_path / "colours"
    shutil.copytree(FIXTURES / "colours", folder)
    features = datasets.Features({
        "image": datasets.Image(), "question": datasets.Value("string"), "answer": datasets.Value("string"),
        "choices": datasets.Sequence(datasets.Value("string")), "answer_idx": datasets.Value("int64"),
        "category": datasets.Value("string"),
    })
    test = datasets.Dataset.from_dict(colours_rows(), features=features)
    datasets.DatasetDict({"test": test, "train": test.select(range(4))}).save_to_disk(str(folder / "data"))
    return folder


def pixel_colour(images) -> str:
    rgb = images[0].convert("RGB").getpixel((0, 0))
    return {v: k for k, v in RGB.items()}[rgb]


# Scripted answers: the model reads the colour from the image it is given, then answers in a form chosen
# by doc id, so every filter and metric branch is hit with a known outcome.
OPEN_ANSWERS = ["{C}.", "It is {c}", "{c}", "  {U}  ", "crimson", "{C}, I think", "", "yelow"]
MCQ_ANSWERS = ["({L})", "The answer is {l}", "{c}", "Answer: {L}", "({W})", "I'd say {U}!", "(E)", "{L}"]
CUSTOM_ANSWERS = ["Red.", "yellow", "no idea", "YELLOW."]


def scripted(req) -> str:
    c = pixel_colour(req.images)
    if req.task == "colours_custom":
        return CUSTOM_ANSWERS[req.doc_id]
    if req.task == "colours_mcq":
        letter = "ABCD"[req.doc["choices"].index(c)]
        wrong = "ABCD"[(req.doc["choices"].index(c) + 1) % 4]
        return MCQ_ANSWERS[req.doc_id].format(L=letter, l=letter.lower(), c=c, U=c.upper(), W=wrong)
    return OPEN_ANSWERS[req.doc_id].format(c=c, C=c.capitalize(), U=c.upper())


# -- loading and prompts ---------------------------------------------------------------------------------------

def test_include_function_and_specific_kwargs_build_the_prompt(colours_dir):
    task = load_task(colours_dir / "colours_open.yaml")
    doc = task.dataset()[0]
    # default block (no model type): pre_prompt "" + question + post_prompt
    assert task.doc_to_text(doc) == "What colour is square 0?\nAnswer with one word."
    assert task.doc_to_target(doc) == "red"
    [image] = task.doc_to_visual(doc)
    assert image.getpixel((0, 0)) == (255, 0, 0)
    # from the included template
    assert task.split == "test" and task.version == "0.2"
    assert task.generation_kwargs == {"max_new_tokens": 16, "temperature": 0.0, "do_sample": False, "until": ["\n\n"]}
    assert list(task.filters) == ["raw", "first_word"]
    assert [m.name for m in task.metrics] == ["exact_match", "anls"]
    assert task.image_column == "image" and task.category_column == "category"
    assert task.config["tag"] == ["colours_all"]

    llava = load_task(colours_dir / "colours_open.yaml", model_type="llava_hf")
    assert llava.doc_to_text(doc) == "Look at the image. What colour is square 0? One word:"
    assert llava.fingerprint() != task.fingerprint()


@pytest.mark.parametrize("model_type", ["llava_hf", "qwen2_5_vl"])
def test_results_configs_show_specific_kwargs_as_lmms_evals_task_leaves_them(colours_dir, model_type):
    """A block named after the model is read without touching the mapping (every block stays in `configs`);
    the default block is merged into the mapping in place. lmms-eval's own code decides the expected value."""
    import copy
    from types import SimpleNamespace

    from lmms_eval.api.task import ConfigurableTask, TaskConfig
    from lmms_eval.utils import load_yaml_config

    # the YAML as lmms-eval's loader reads it (its `include` resolved)
    raw = load_yaml_config(str(colours_dir / "colours_open.yaml"))["lmms_eval_specific_kwargs"]
    task = load_task(colours_dir / "colours_open.yaml", model_type=model_type)
    upstream = TaskConfig(task="colours_open", lmms_eval_specific_kwargs=copy.deepcopy(raw))
    ConfigurableTask._prepare_model_specific_config(SimpleNamespace(config=upstream, model_name=model_type))
    assert task.config["lmms_eval_specific_kwargs"] == upstream.to_dict()["lmms_eval_specific_kwargs"]
    # every block stays; only the default path merges its keys into the top level
    assert {"default", "llava_hf"} <= set(task.config["lmms_eval_specific_kwargs"])
    assert ("pre_prompt" in task.config["lmms_eval_specific_kwargs"]) == (model_type != "llava_hf")


def test_default_block_is_merged_into_the_whole_mapping_as_lmms_eval_does(tmp_path):
    # lmms-eval updates the full mapping with `default`, so a function also sees the other blocks
    (tmp_path / "utils.py").write_text("def text(doc, kw):\n    return repr(sorted(kw))\n")
    (tmp_path / "t.yaml").write_text(textwrap.dedent("""\
        task: t
        dataset_path: csv
        dataset_kwargs: {data_files: {test: d.csv}}
        test_split: test
        doc_to_text: !function utils.text
        doc_to_target: a
        lmms_eval_specific_kwargs:
          default: {pre_prompt: "P"}
          qwen: {pre_prompt: "Q"}
        """))
    (tmp_path / "d.csv").write_text("q,a\nx,y\n")
    task = load_task(tmp_path / "t.yaml")
    assert task.doc_to_text(task.dataset()[0]) == "['default', 'pre_prompt', 'qwen']"
    assert load_task(tmp_path / "t.yaml", model_type="qwen").doc_to_text({"q": "x"}) == "['pre_prompt']"


def test_template_doc_to_text_list_target_and_data_files_relative_to_the_yaml(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # data_files must resolve next to the YAML, not the working directory
    task = load_task(FIXTURES / "trivia" / "trivia_csv.yaml")
    doc = task.dataset()[0]
    assert task.doc_to_text(doc) == "Q: What is the capital of France?\nA:"
    assert task.doc_to_target(doc) == ["Paris", "paris city"]  # a rendered "[...]" becomes a list
    assert task.image_column is None and task.doc_to_visual(doc) == []
    # several targets: right when any matches (ignore_case from the YAML)
    assert task.score(doc, "PARIS CITY") == {"exact_match": 1.0}
    assert task.score(doc, "Lyon") == {"exact_match": 0.0}
    # a generation_kwargs block without `until` gets lmms-eval's default
    assert task.generation_kwargs == {"max_new_tokens": 8, "until": ["\n\n"]}


def test_local_folder_dataset_path_field_name_prompt_and_default_metric():
    task = load_task(FIXTURES / "trivia" / "trivia_folder.yaml")
    docs = task.dataset()
    assert len(docs) == 4 and task.doc_to_text(docs[1]) == "How many legs has a spider?"
    # no generation_kwargs: greedy until the few-shot delimiter, as lmms-eval
    assert task.generation_kwargs == {"until": ["\n\n"], "do_sample": False}
    assert [m.name for m in task.metrics] == ["exact_match"]
    assert task.score(docs[1], " 8 ") == {"exact_match": 1.0}


def test_folder_tags_groups_and_group_overrides(colours_dir):
    all_tasks = load_tasks(colours_dir)
    assert [t.name for t in all_tasks] == ["colours_custom", "colours_mcq", "colours_open"]
    # a tag's tasks in the order their files are found (sorted paths)
    assert [t.name for t in load_tasks(colours_dir, ["colours_all"])] == ["colours_mcq", "colours_open"]
    group = load_tasks(colours_dir / "colours_group.yaml")
    assert [t.name for t in group] == ["colours_open", "colours_mcq"]
    assert group[0].generation_kwargs["max_new_tokens"] == 16
    # the group's override replaces the key as a whole (a shallow merge, as lmms-eval), so `until` is the default
    assert group[1].generation_kwargs == {"max_new_tokens": 4, "until": ["\n\n"]}
    assert load_task(colours_dir / "colours_mcq.yaml").generation_kwargs["until"] == ["\n"]
    assert all(t.config["group"] == ["colours"] for t in group)
    assert load_tasks(colours_dir, ["colours"])[1].generation_kwargs["max_new_tokens"] == 4
    with pytest.raises(TaskYamlError, match="colours_opn.*Did you mean colours_open"):
        load_tasks(colours_dir, ["colours_opn"])


def test_resolve_tasks_mixes_registered_names_yaml_files_and_folders(colours_dir):
    tasks = resolve_tasks(["synthbench_count", str(colours_dir / "colours_mcq.yaml"), FIXTURES / "trivia"],
                          model_type="llava_hf")
    assert [t.name for t in tasks] == ["synthbench_count", "colours_mcq", "trivia_csv", "trivia_folder"]
    assert tasks[1].config["model_type"] == "llava_hf"
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        resolve_tasks(str(colours_dir / "missing.yaml"))
    assert get_task("synthbench_count").name == "synthbench_count"


# -- filters ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("response, expected", [
    ("(B) blue", "(B)"),           # the regex
    ("I pick green", "(B)"),       # the text of an option, case and punctuation ignored
    ("GREEN!", "(B)"),
    ("final answer: C", "(C)"),    # a letter after a colon
    ("no idea", "[invalid]"),
    ("dark red or green", "(A)"),  # the first option text found, as lmms-eval's findall()[0]
])
def test_multi_choice_regex_follows_lmms_eval_order(response, expected):
    pipeline = build_filter_pipeline([("multi_choice_regex", {"regex_pattern": r"(\([A-D]\))", "ignore_case": True,
                                                              "ignore_punctuation": True}), ("take_first", None)])
    assert pipeline(response, {"choices": ["red", "green", "blue"]}) == expected


def test_regex_filter_group_select_tuple_groups_and_fallback():
    last_number = build_filter_pipeline([("regex", {"regex_pattern": r"(\d+)", "group_select": -1}), ("take_first", None)])
    assert last_number("3 apples and 12 pears", {}) == "12"
    assert last_number("none", {}) == "[invalid]"
    two_groups = build_filter_pipeline([("regex", {"regex_pattern": r"answer is (\d+)|=\s*(\d+)", "fallback": "?"})])
    assert two_groups("x = 42", {}) == "42"  # the first non-empty group of the first match
    assert two_groups("nothing", {}) == "?"
    chain = build_filter_pipeline([("lowercase", None), ("map", {"mapping_dict": {"yes": "1"}, "default_value": "0"}),
                                   ("take_first", None)])
    assert [chain("YES", {}), chain("no", {})] == ["1", "0"]
    assert build_filter_pipeline([("strip_thinking", None)])("<think>B? no</think> C", {}) == "C"


def test_reasoning_blocks_are_removed_after_filters_as_the_lmms_eval_cli_does(tmp_path):
    path = write_task(tmp_path, "filter_list:\n  - {name: f, filter: [{function: take_first}]}\n")
    keep = write_task(tmp_path / "off", "reasoning_tags: none\n")
    own = write_task(tmp_path / "own", 'reasoning_tags: \'[["<r>", "</r>"]]\'\n')
    answer = " <think>maybe red</think> <analysis>or blue</analysis> green "
    assert load_task(path).filters["f"](answer, {}) == "green"
    assert load_task(keep).filters["none"](answer, {}) == answer
    assert load_task(own).filters["none"]("<r>x</r> y <think>z</think>", {}) == "y <think>z</think>"
    # the chat template put the opening tag in the prompt: keep what follows the last closing tag
    assert load_task(path).filters["f"]("reasoning ...</think>B", {}) == "B"


# -- metrics ---------------------------------------------------------------------------------------------------

def test_metrics_keep_lmms_eval_semantics():
    assert exact_match_lmms("a", ["a "]) == 0.0  # the target is not stripped
    assert exact_match_lmms("The Cat!", ["the cat"], ignore_case=True, ignore_punctuation=True) == 1.0
    assert exact_match_lmms("answer: 4", ["4"], regexes_to_ignore=["^answer: "]) == 1.0
    # ANLS over raw lengths: "hello  " vs "helo": dist 1 over max(7, 4) -> 1 - 1/7
    assert anls_lmms("helo", ["hello  "]) == pytest.approx(1 - 1 / 7)
    assert anls_lmms("helo", ["hello"], thresh_hold=0.9) == 0.0
    # lmms-eval's median is the middle element in doc order, not of the sorted values
    assert AGGREGATIONS["median"]([3, 6, 7, 6], []) == (7.0, None)
    value, stderr = AGGREGATIONS["mean"]([1, 0, 0, 1, 1], [])
    assert value == 0.6 and stderr == pytest.approx((0.3 ** 0.5) / 5 ** 0.5)  # sample var 0.3, n 5


def test_doc_to_choice_maps_the_target_index_to_the_option(colours_dir):
    task = load_task(colours_dir / "colours_mcq.yaml")
    doc = task.dataset()[1]  # green; choices rotated by one: [green, blue, yellow, red] -> index 0
    assert doc["answer_idx"] == 0 and task.doc_to_choice(doc) == ["(A)", "(B)", "(C)", "(D)"]
    assert task.doc_to_text(doc) == ("What colour is square 1?\n(A) green\n(B) blue\n(C) yellow\n(D) red"
                                     "\nAnswer with the option's letter.")
    mc = task.filters["mc"]
    assert task.score(doc, mc("green", doc)) == {"exact_match": 1.0}
    assert task.score(doc, mc("(B)", doc)) == {"exact_match": 0.0}


def test_process_results_and_function_aggregations(colours_dir):
    task = load_task(colours_dir / "colours_custom.yaml")
    docs = task.dataset()
    assert docs["answer"] == ["red", "yellow", "red", "yellow"]  # process_docs kept the warm colours
    assert task.dataset_path is None  # rows no longer match the files on disk
    assert task.doc_to_text(docs[0]) == "Look carefully. What colour is square 0? Answer:"  # description + template
    assert task.score(docs[0], "  Red. ") == {"colour_acc": 1.0, "answer_chars": 3.0}
    percent = next(m for m in task.metrics if m.name == "colour_acc")
    assert percent.aggregate([1.0, 0.0, 1.0, 1.0], []) == (75.0, None)
    assert next(m for m in task.metrics if m.name == "answer_chars").higher_is_better is False


def test_dict_valued_process_results_reach_a_function_aggregation(tmp_path):
    # MME-style: each doc gives {question_id, category, score}; the aggregation needs the dicts
    (tmp_path / "d.csv").write_text("qid,cat,q,a\n1,colour,x,yes\n2,colour,y,no\n3,count,z,yes\n")
    (tmp_path / "utils.py").write_text(textwrap.dedent("""\
        def process(doc, results):
            return {"cat_score": {"qid": doc["qid"], "category": doc["cat"], "score": float(results[0] == doc["a"])}}

        def per_category(items):
            cats = {}
            for item in items:
                cats.setdefault(item["category"], []).append(item["score"])
            return sum(sum(v) / len(v) for v in cats.values()) / len(cats)
        """))
    (tmp_path / "t.yaml").write_text(textwrap.dedent("""\
        task: dict_metric
        dataset_path: csv
        dataset_kwargs: {data_files: {test: d.csv}}
        test_split: test
        doc_to_text: q
        doc_to_target: a
        process_results: !function utils.process
        metric_list:
          - {metric: cat_score, aggregation: !function utils.per_category, higher_is_better: true}
        """))
    task = load_task(tmp_path / "t.yaml")
    docs = task.dataset()
    values = [task.process_results(d, p)["cat_score"] for d, p in zip(docs, ["yes", "yes", "yes"])]
    assert values[0] == {"qid": 1, "category": "colour", "score": 1.0}
    # colour: (1 + 0) / 2, count: 1 -> mean over categories 0.75
    assert task.metrics[0].aggregate(values, list(docs)) == (0.75, None)
    # the number for the canonical table's float column
    assert [metric_number(v) for v in values] == [1.0, 0.0, 1.0]
    assert metric_number({"rating": 4, "note": "ok"}) == 4.0 and metric_number({"text": "x"}) is None
    assert metric_number({"points": 2, "score": 9}, score_key="points") == 2.0


def test_fingerprint_follows_the_yaml_files_and_the_functions_they_name(colours_dir):
    before = load_task(colours_dir / "colours_open.yaml").fingerprint()
    assert load_task(colours_dir / "colours_open.yaml").fingerprint() == before
    utils = colours_dir / "utils.py"
    utils.write_text(utils.read_text() + "\n# an edit\n")
    after_utils = load_task(colours_dir / "colours_open.yaml").fingerprint()
    template = colours_dir / "_default_template_yaml"
    template.write_text(template.read_text() + "\n# an edit\n")
    after_template = load_task(colours_dir / "colours_open.yaml").fingerprint()
    assert len({before, after_utils, after_template}) == 3


# -- full runs through evaluate() ------------------------------------------------------------------------------

def test_evaluate_yaml_tasks_scores_by_hand(colours_dir, tmp_path):
    tasks = load_tasks(colours_dir, ["colours_open", "colours_mcq", "colours_custom"])
    model = FunctionModel(scripted, name="scripted")
    run = evaluate(model, tasks, output_dir=tmp_path / "out", batch_size=3, progress=False)
    assert run.completed and run.n_errors == 0
    scores = {(r["task"], r["metric"], r["filter"]): r["value"] for r in run.scores.iter_rows(named=True)}
    # colours_open, raw: Red.(1) It is green(0) blue(1) YELLOW(1) crimson(0) "Blue, I think"(0) ""(0) yelow(0)
    assert scores[("colours_open", "exact_match", "raw")] == 3 / 8
    # first_word (lowercased): red.(1) it(0) blue(1) yellow(1) crimson(0) blue,(1) ""(0) yelow(0)
    assert scores[("colours_open", "exact_match", "first_word")] == 4 / 8
    # ANLS raw: 1-1/4, 0 (1-6/11 < .5), 1, 1, 0, 0 (1-9/13), 0, 1-1/6
    assert scores[("colours_open", "anls", "raw")] == pytest.approx((0.75 + 1 + 1 + 5 / 6) / 8)
    # first_word: .75, 0, 1, 1, 0, 1-1/5, 0, 1-1/6
    assert scores[("colours_open", "anls", "first_word")] == pytest.approx((0.75 + 1 + 1 + 0.8 + 5 / 6) / 8)
    # mcq: (L) ok, "answer is b" invalid, colour text ok, "Answer: L" ok, wrong letter, colour upper ok, (E), bare L
    assert scores[("colours_mcq", "exact_match", "mc")] == 4 / 8
    # custom (warm docs only): Red.(1, 3 chars) yellow(1, 6) "no idea"(0, 7) YELLOW.(1, 6)
    assert scores[("colours_custom", "colour_acc", "none")] == 75.0
    assert scores[("colours_custom", "answer_chars", "none")] == 7.0
    assert run.scores.filter(pl.col("task") == "colours_custom")["n"].to_list() == [4, 4]

    # the logs: one line per doc and filter, the prompt as the YAML composed it, filtered and raw answers
    lines = [json.loads(x) for x in run.sample_files["colours_open"].read_text().splitlines()]
    assert len(lines) == 16 and {x["filter"] for x in lines} == {"raw", "first_word"}
    doc5 = {x["filter"]: x for x in lines if x["doc_id"] == 5}
    assert doc5["first_word"]["filtered_resps"] == "blue," and doc5["first_word"]["exact_match"] == 1.0
    assert doc5["raw"]["input"] == "What colour is square 5?\nAnswer with one word."
    assert doc5["raw"]["raw_response"] == "Blue, I think"
    mcq = [json.loads(x) for x in run.sample_files["colours_mcq"].read_text().splitlines()]
    assert [x["filtered_resps"] for x in mcq][:2] == ["(A)", "[invalid]"]  # doc 0: red is option A

    # group scores from the subtask scores (each filter name belongs to one subtask here)
    groups = group_scores(run.scores, load_tasks(colours_dir / "colours_group.yaml"))
    assert sorted(groups.select("metric", "filter", "value").rows()) == [
        ("exact_match", "first_word", 0.5), ("exact_match", "mc", 0.5), ("exact_match", "raw", 0.375)]


def test_group_scores_weight_by_size_and_pool_stderr(colours_dir):
    tasks = load_tasks(colours_dir / "colours_group.yaml")
    scores = pl.DataFrame({"task": ["colours_open", "colours_mcq"], "metric": ["exact_match"] * 2,
                           "filter": ["none"] * 2, "value": [0.5, 0.25], "stderr": [0.1, 0.2], "n": [2, 6]})
    [row] = group_scores(scores, tasks).rows(named=True)
    assert row["value"] == pytest.approx((0.5 * 2 + 0.25 * 6) / 8)
    # pooled: sqrt(((2-1)*.01*2 + (6-1)*.04*6) / (8-2) / 8)
    assert row["stderr"] == pytest.approx((((1 * 0.01 * 2) + (5 * 0.04 * 6)) / 6 / 8) ** 0.5)
    assert row["n"] == 8 and row["task"] == "colours"


def test_evaluate_a_yaml_task_with_a_real_tiny_llava(colours_dir, tmp_path):
    import torch

    from lmms_nb.models import get_model
    from lmms_nb.models.tiny import build_tiny_llava

    torch.set_num_threads(1)
    path = build_tiny_llava(tmp_path / "llava", vocab_texts=[q for q in colours_rows()["question"]] + COLOURS)
    model = get_model("hf", pretrained=path, max_new_tokens=4)
    task = load_task(colours_dir / "colours_open.yaml", model_type="llava_hf")
    run = evaluate(model, task, output_dir=tmp_path / "out", batch_size=4, progress=False)
    assert run.completed and run.n_errors == 0 and run.samples.height == 16
    rows = run.samples.filter(pl.col("filter") == "first_word").sort("doc_id")
    assert rows["input"][0] == "Look at the image. What colour is square 0? One word:"
    for raw, pred, target, em in rows.select("raw_response", "prediction", "target", "exact_match").iter_rows():
        assert pred == ((raw.split() or [""])[0]).lower()
        assert em == exact_match_lmms(pred.strip(), [target], ignore_case=True, ignore_punctuation=True)


# -- errors name the file, the line and the key ----------------------------------------------------------------

GOOD = """\
task: t
dataset_path: csv
dataset_kwargs: {data_files: {test: d.csv}}
test_split: test
doc_to_text: q
doc_to_target: a
"""


def write_task(folder: Path, extra: str, base: str = GOOD) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "d.csv").write_text("q,a\nx,y\n")
    path = folder / "bad.yaml"
    path.write_text(base + textwrap.dedent(extra))
    return path


@pytest.mark.parametrize("extra, message", [
    ("doc_to_txt: q\n", r"bad.yaml:7: unsupported task key 'doc_to_txt' \(did you mean 'doc_to_text'\?\)"),
    ("output_type: generate_visual_cot\n", r"bad.yaml:7: output_type 'generate_visual_cot' is not supported by "
     r"lmms-nb: it needs a model that generates images"),
    ("output_type: multiple_choice\n", r"bad.yaml:7: output_type multiple_choice needs doc_to_choice"),
    ("num_fewshot: -1\n", r"bad.yaml:7: num_fewshot must be a whole number >= 0, got -1"),
    ("num_fewshot: 2\nfewshot_config: {sampler: balanced}\n",
     r"bad.yaml:8: fewshot_config sampler 'balanced' is not supported"),
    ("repeats: 2.5\n", r"bad.yaml:7: repeats must be a whole number >= 1, got 2.5"),
    ("metric_list:\n  - metric: bleurt\n", r"bad.yaml:8: unknown metric 'bleurt'"),
    ("metric_list:\n  - metric: exact_match\n    ignore_cases: true\n",
     r"bad.yaml:9: metric exact_match: unsupported option\(s\) \['ignore_cases'\]"),
    ("metric_list:\n  - metric: exact_match\n    aggregation: harmonic\n",
     r"bad.yaml:9: unsupported aggregation 'harmonic'"),
    ("process_results: !function utils.pr\nmetric_list:\n  - metric: my_score\n",
     r"bad.yaml:9: metric 'my_score' has no default aggregation"),
    ("filter_list:\n  - name: f\n    filter:\n      - function: regexx\n",
     r"bad.yaml:10: unknown filter 'regexx' \(did you mean 'regex'\?\)"),
    ("filter_list:\n  - name: f\n    filter:\n      - function: regex\n        regex_pattern: '(unclosed'\n",
     r"bad.yaml:8: filter 'f': .*invalid regex"),
    ("doc_to_visual: !function utils.nothing_here\n", r"bad.yaml:7: !function utils.nothing_here: utils.py has no"),
    ("doc_to_visual: !function no_such_pkg.mod.fn\n",
     r"bad.yaml:7: !function no_such_pkg.mod.fn: no file mod.py next to bad.yaml and no installed module"),
    ("generation_kwargs:\n  until: 5\n", r"bad.yaml:8: until must be a string or a list of strings"),
    ("lmms_eval_specific_kwargs: [1]\n", r"bad.yaml:7: lmms_eval_specific_kwargs must be a mapping"),
    ("dataset_kwargs: {video: true}\n", r"bad.yaml:7: dataset_kwargs.video needs a cache_dir"),
    ("dataset_kwargs: {From_YouTube: true}\n", r"bad.yaml:7: dataset_kwargs.From_YouTube: lmms-eval downloads"),
    ("class: !function utils.pr\n", r"bad.yaml:7: Python-class tasks"),
])
def test_unsupported_or_wrong_keys_fail_with_file_line_and_key(tmp_path, extra, message):
    path = write_task(tmp_path, extra)
    (tmp_path / "utils.py").write_text("def pr(doc, results):\n    return {}\n")
    with pytest.raises(TaskYamlError, match=message):
        load_task(path)


def test_yaml_syntax_include_cycle_and_import_errors(tmp_path):
    (tmp_path / "broken.yaml").write_text("task: t\ndoc_to_text: [unclosed\n")
    with pytest.raises(TaskYamlError, match=r"broken.yaml:3: invalid YAML"):
        load_task(tmp_path / "broken.yaml")
    (tmp_path / "a.yaml").write_text("include: b.yaml\ntask: a\n")
    (tmp_path / "b.yaml").write_text("include: a.yaml\n")
    with pytest.raises(TaskYamlError, match="include cycle"):
        load_task(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("include: nowhere.yaml\ntask: c\n")
    with pytest.raises(TaskYamlError, match=r"c.yaml:1: include 'nowhere.yaml'"):
        load_task(tmp_path / "c.yaml")
    sub = tmp_path / "importfail"
    path = write_task(sub, "doc_to_visual: !function helpers.visual\n")
    (sub / "helpers.py").write_text("raise RuntimeError('boom at import')\n")
    with pytest.raises(TaskYamlError, match=r"bad.yaml:7: .*importing .*helpers.py failed: RuntimeError: boom"):
        load_task(path)


def test_dataset_errors_name_the_yaml(tmp_path):
    path = write_task(tmp_path, "", base=GOOD.replace("test_split: test", "test_split: validation"))
    task = load_task(path)  # the dataset is read lazily ...
    with pytest.raises(TaskYamlError, match=r"bad.yaml:4: task 't': dataset has no split 'validation' \(splits: test\)"):
        task.dataset()  # ... and a wrong split names the key that chose it
    missing = write_task(tmp_path / "hub", "", base=GOOD.replace("dataset_path: csv", "dataset_path: nobody/no-such-set")
                         .replace("dataset_kwargs: {data_files: {test: d.csv}}\n", ""))
    with pytest.raises(TaskYamlError, match=r"bad.yaml:2: task 't': load_dataset\('nobody/no-such-set'\) failed"):
        load_task(missing).dataset()


def test_functions_import_only_from_the_task_folder_and_lazily(tmp_path, colours_dir):
    before, utils_before = list(sys.path), sys.modules.get("utils")  # another test may have imported a `utils`
    task = load_task(colours_dir / "colours_open.yaml")
    # imported by file path, under a private name: neither sys.path nor a top-level `utils` module changes
    assert sys.path == before and sys.modules.get("utils") is utils_before
    assert task.doc_to_text.__module__ is not None
    # a task whose utils cannot import does not stop the others of its folder from loading
    shutil.copy(colours_dir / "colours_open.yaml", colours_dir / "broken_task.yaml")
    text = (colours_dir / "broken_task.yaml").read_text().replace("task: colours_open", "task: broken_task")
    (colours_dir / "broken_task.yaml").write_text(text.replace("utils.colours_doc_to_text", "broken.fn"))
    (colours_dir / "broken.py").write_text("import no_such_module_anywhere\n")
    assert [t.name for t in load_tasks(colours_dir, ["colours_mcq"])] == ["colours_mcq"]
    with pytest.raises(TaskYamlError, match="broken_task.yaml:4: !function broken.fn: importing"):
        load_tasks(colours_dir, ["broken_task"])


def test_duplicate_task_names_warn_and_the_last_walked_wins_as_in_lmms_eval(colours_dir):
    import os

    (colours_dir / "copy_of_mcq.yaml").write_text(
        (colours_dir / "colours_mcq.yaml").read_text().replace("task: colours_mcq", "task: colours_mcq\ntask_alias: copy"))
    walked = [f for _, _, files in os.walk(colours_dir) for f in files if f in ("colours_mcq.yaml", "copy_of_mcq.yaml")]
    with pytest.warns(UserWarning, match="task 'colours_mcq' is defined in .* and "):
        tasks = load_tasks(colours_dir)
    names = [t.name for t in tasks]
    assert names.count("colours_mcq") == 1
    kept = next(t for t in tasks if t.name == "colours_mcq")
    assert Path(kept.config["yaml_path"]).name == walked[-1]  # lmms-eval's index (a dict) keeps the last one seen


def test_dict_valued_metric_end_to_end_through_evaluate(tmp_path):
    """MME-style dict metrics: logged as dicts like lmms-eval, numbers in the table, dicts to the aggregation."""
    import lmms_nb
    from lmms_nb.models.baselines import FunctionModel

    (tmp_path / "d.csv").write_text("qid,cat,q,a\n1,colour,x,yes\n2,colour,y,no\n3,count,z,yes\n4,count,w,no\n")
    (tmp_path / "utils.py").write_text(textwrap.dedent("""\
        def process(doc, results):
            return {"cat_score": {"qid": doc["qid"], "category": doc["cat"], "score": float(results[0] == doc["a"])}}

        def per_category(items):
            cats = {}
            for item in items:
                cats.setdefault(item["category"], []).append(item["score"])
            return 100 * sum(sum(v) / len(v) for v in cats.values()) / len(cats)
        """))
    (tmp_path / "t.yaml").write_text(textwrap.dedent("""\
        task: dict_metric_e2e
        dataset_path: csv
        dataset_kwargs: {data_files: {test: d.csv}}
        test_split: test
        doc_to_text: q
        doc_to_target: a
        process_results: !function utils.process
        metric_list:
          - {metric: cat_score, aggregation: !function utils.per_category, higher_is_better: true}
        """))
    # answers "yes" always: colour 1/2 right, count 1/2 right -> 50.0
    def yes(req):
        return "yes"

    run = lmms_nb.evaluate(FunctionModel(yes, name="yes-man"), tmp_path / "t.yaml",
                           output_dir=tmp_path / "out", progress=False)
    assert run.score("dict_metric_e2e", "cat_score") == 50.0
    assert run.samples["cat_score"].to_list() == [1.0, 0.0, 1.0, 0.0]
    line = json.loads(run.sample_files["dict_metric_e2e"].read_text().splitlines()[0])
    assert line["cat_score"] == {"qid": 1, "category": "colour", "score": 1.0}
    # and a resumed call re-aggregates from the logged dicts
    again = lmms_nb.evaluate(FunctionModel(yes, name="yes-man"), tmp_path / "t.yaml", output_dir=tmp_path / "out",
                             progress=False)
    assert again.run_id == run.run_id and again.score("dict_metric_e2e", "cat_score") == 50.0
