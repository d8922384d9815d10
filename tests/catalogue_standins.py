"""Small stand-in datasets for lmms-eval catalogue tasks, with each task's real columns, and scripted answers.

Each stand-in is written where the task's own `dataset_path` (a hub name such as ``lmms-lab-encoder/MME``)
resolves when it is a local folder: ``<root>/<dataset_path>/`` holding parquet files (and a README whose
`configs` name the dataset_name, when the task has one). Run from `root`, lmms-eval's and lmms-nb's loaders
both read it through `datasets.load_dataset(dataset_path, dataset_name)`, the tasks' own loading path.

Two scripted models per task: "oracle" answers each doc's target in the form the task expects, "constant"
always gives the same answer. Both tools get the same answers by (task, doc_id).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import datasets
from PIL import Image, ImageDraw


def _image(seed: int, text: str = "") -> Image.Image:
    img = Image.new("RGB", (48, 32), ((seed * 53) % 255, (seed * 97) % 255, (seed * 29) % 255))
    if text:
        ImageDraw.Draw(img).text((2, 10), text[:8], fill=(255, 255, 255))
    return img


@dataclass
class StandIn:
    task: str
    dataset_path: str
    split: str
    rows: dict[str, list]
    features: datasets.Features
    oracle: Callable[[dict], str]
    constant: str
    dataset_name: str | None = None

    def write(self, root: Path) -> None:
        folder = root / self.dataset_path
        ds = datasets.Dataset.from_dict(self.rows, features=self.features)
        sub = folder / (self.dataset_name or "default")
        sub.mkdir(parents=True, exist_ok=True)
        ds.to_parquet(str(sub / f"{self.split}-00000-of-00001.parquet"))
        configs = [c.name for c in folder.iterdir() if c.is_dir()]
        lines = ["---", "configs:"]
        for name in sorted(configs):
            lines += [f"- config_name: {name}", "  data_files:"]
            for f in sorted((folder / name).glob("*.parquet")):
                lines += [f"  - split: {f.name.split('-')[0]}", f"    path: {name}/{f.name}"]
        (folder / "README.md").write_text("\n".join(lines + ["---", ""]))

    def answers(self) -> dict[str, list[str]]:
        n = len(next(iter(self.rows.values())))
        docs = [{k: v[i] for k, v in self.rows.items()} for i in range(n)]
        return {"oracle": [self.oracle(d) for d in docs], "constant": [self.constant] * n}


_S = datasets.Value("string")
_I = datasets.Value("int64")
_IMG = datasets.Image()


def mme() -> StandIn:
    # pairs of questions per image (MME scores acc and acc+ per question_id pair); perception and cognition
    cats = ["color", "color", "code_reasoning", "code_reasoning", "OCR", "OCR", "numerical_calculation",
            "numerical_calculation"]
    rows = {"question_id": [f"{c}/{i // 2:04d}.png" for i, c in enumerate(cats)],
            "image": [_image(i // 2) for i in range(8)],
            "question": [f"Is this question {i}? Please answer yes or no." for i in range(8)],
            "answer": ["Yes", "No"] * 4, "category": cats}
    feats = datasets.Features({"question_id": _S, "image": _IMG, "question": _S, "answer": _S, "category": _S})
    return StandIn("mme", "lmms-lab-encoder/MME", "test", rows, feats, lambda d: d["answer"], "Yes")


def pope() -> StandIn:
    rows = {"id": [str(i) for i in range(6)], "question_id": [str(100 + i) for i in range(6)],
            "question": [f"Is there a thing {i} in the image?" for i in range(6)],
            "answer": ["yes", "no", "yes", "no", "no", "yes"], "image_source": [f"COCO_{i}" for i in range(6)],
            "image": [_image(i) for i in range(6)], "category": ["adversarial"] * 3 + ["random"] * 3}
    feats = datasets.Features({"id": _S, "question_id": _S, "question": _S, "answer": _S, "image_source": _S,
                               "image": _IMG, "category": _S})
    return StandIn("pope", "lmms-lab-encoder/POPE", "test", rows, feats, lambda d: d["answer"], "yes")


def scienceqa_img() -> StandIn:
    choices = [["cat", "dog"], ["red", "green", "blue"], ["1", "2", "3", "4"], ["yes", "no"], ["up", "down"]]
    rows = {"image": [_image(i) for i in range(5)], "question": [f"Which one {i}?" for i in range(5)],
            "choices": choices, "answer": [1, 2, 0, 0, 1], "hint": ["", "A hint.", "", "Context here", ""],
            "task": ["closed choice"] * 5, "grade": ["grade2"] * 5, "subject": ["natural science"] * 5,
            "topic": ["biology"] * 5, "category": ["c"] * 5, "skill": ["s"] * 5, "lecture": [""] * 5,
            "solution": [""] * 5}
    feats = datasets.Features({"image": _IMG, "question": _S, "choices": datasets.Sequence(_S), "answer": _I,
                               "hint": _S, "task": _S, "grade": _S, "subject": _S, "topic": _S, "category": _S,
                               "skill": _S, "lecture": _S, "solution": _S})
    return StandIn("scienceqa_img", "lmms-lab-encoder/ScienceQA", "test", rows, feats,
                   lambda d: "ABCD"[d["answer"]], "A", dataset_name="ScienceQA-IMG")


def textvqa_val() -> StandIn:
    answers = [["stop"] * 10, ["coca cola"] * 6 + ["coke"] * 4, ["3"] * 5 + ["three"] * 5,
               ["nike"] * 2 + ["adidas"] * 8, ["yes"] * 10]
    rows = {"image_id": [f"img{i}" for i in range(5)], "question_id": list(range(5)),
            "question": [f"What does sign {i} say?" for i in range(5)], "question_tokens": [["w"]] * 5,
            "image": [_image(i) for i in range(5)], "image_width": [48] * 5, "image_height": [32] * 5,
            "flickr_original_url": [""] * 5, "flickr_300k_url": [""] * 5, "answers": answers,
            "image_classes": [["sign"]] * 5, "set_name": ["val"] * 5, "ocr_tokens": [["stop", "cola"]] * 5}
    feats = datasets.Features({"image_id": _S, "question_id": _I, "question": _S,
                               "question_tokens": datasets.Sequence(_S), "image": _IMG, "image_width": _I,
                               "image_height": _I, "flickr_original_url": _S, "flickr_300k_url": _S,
                               "answers": datasets.Sequence(_S), "image_classes": datasets.Sequence(_S),
                               "set_name": _S, "ocr_tokens": datasets.Sequence(_S)})
    return StandIn("textvqa_val", "lmms-lab-encoder/textvqa", "validation", rows, feats,
                   lambda d: d["answers"][0], "yes")


def mmbench_en_dev() -> StandIn:
    # two circular groups (index % 1e6 shared): MMBench counts a question right only if every rotation is
    n = 6
    idx = [0, 1000000, 1, 1000001, 2, 3]
    opts = {"A": ["red", "blue", "cat", "dog", "1", "up"], "B": ["blue", "red", "dog", "cat", "2", "down"],
            "C": ["green", "green", "cow", "cow", "3", "left"], "D": ["nan"] * n}
    rows = {"index": idx, "question": [f"Question {i}?" for i in range(n)], "hint": ["nan"] * n,
            "A": opts["A"], "B": opts["B"], "C": opts["C"], "D": opts["D"],
            "answer": ["A", "B", "B", "A", "C", "A"], "category": ["attribute_recognition"] * 3 + ["ocr"] * 3,
            "image": [_image(i) for i in range(n)], "source": ["src"] * n,
            "L2-category": ["finegrained_perception (instance-level)"] * 3 + ["coarse_perception"] * 3,
            "comment": ["nan"] * n, "split": ["dev"] * n}
    feats = datasets.Features({"index": _I, "question": _S, "hint": _S, "A": _S, "B": _S, "C": _S, "D": _S,
                               "answer": _S, "category": _S, "image": _IMG, "source": _S, "L2-category": _S,
                               "comment": _S, "split": _S})
    return StandIn("mmbench_en_dev", "lmms-lab-encoder/MMBench", "dev", rows, feats, lambda d: d["answer"], "A",
                   dataset_name="en")


def ocrbench() -> StandIn:
    rows = {"dataset": ["IIIT5K", "HME100k", "docVQA", "IIIT5K", "ChartQA"],
            "question": ["what is written in the image?", "Please write out the expression of the formula.",
                         "What is the title?", "what is written in the image?", "What is the peak value?"],
            "question_type": ["Regular Text Recognition", "Handwritten Mathematical Expression Recognition",
                              "Doc-oriented VQA", "Regular Text Recognition", "Key Information Extraction"],
            "answer": [["STOP"], ["x ^ { 2 } + 1"], ["Annual Report", "annual report 2020"], ["cafe"], ["42"]],
            "image": [_image(i, "t") for i in range(5)]}
    feats = datasets.Features({"dataset": _S, "question": _S, "question_type": _S,
                               "answer": datasets.Sequence(_S), "image": _IMG})
    return StandIn("ocrbench", "echo840/OCRBench", "test", rows, feats, lambda d: d["answer"][0], "cafe")


def chartqa() -> StandIn:
    rows = {"type": ["human_test", "augmented_test", "human_test", "augmented_test", "human_test"],
            "question": [f"What is value {i}?" for i in range(5)],
            "answer": ["42", "3.5", "Yes", "17%", "1000"], "image": [_image(i) for i in range(5)]}
    feats = datasets.Features({"type": _S, "question": _S, "answer": _S, "image": _IMG})
    return StandIn("chartqa", "lmms-lab-encoder/ChartQA", "test", rows, feats, lambda d: d["answer"], "42")


def mmmu_val() -> StandIn:
    n = 5
    rows = {"id": ["validation_Accounting_1", "validation_Art_2", "validation_Physics_3", "validation_Math_4",
                   "validation_Art_5"],
            "question": ["<image 1> Which is the asset?", "What colour is <image 1>?", "Speed of <image 1>?",
                         "How much is 2+2? <image 1>", "Which style is <image 1>?"],
            "options": ["['cash', 'debt', 'loss', 'fee']", "['red', 'blue']", "[]", "[]", "['baroque', 'modern']"],
            "explanation": [""] * n,
            **{f"image_{k}": [_image(10 * k + i) if k == 1 else None for i in range(n)] for k in range(1, 8)},
            "img_type": ["['Diagrams']"] * n, "answer": ["A", "B", "3.0", "4", "A"],
            "topic_difficulty": ["Easy"] * n,
            "question_type": ["multiple-choice", "multiple-choice", "open", "open", "multiple-choice"],
            "subfield": ["s"] * n}
    feats = datasets.Features({"id": _S, "question": _S, "options": _S, "explanation": _S,
                               **{f"image_{k}": _IMG for k in range(1, 8)}, "img_type": _S, "answer": _S,
                               "topic_difficulty": _S, "question_type": _S, "subfield": _S})
    return StandIn("mmmu_val", "lmms-lab-encoder/MMMU", "validation", rows, feats, lambda d: d["answer"], "A")


def seedbench_ppl() -> StandIn:
    # multiple_choice: the scripted "answers" are each choice's loss (lowest wins), in choice order
    rows = {"answer": ["A", "C", "B", "D", "A"], "choice_a": ["a cat", "red", "one", "up", "yes"],
            "choice_b": ["a dog", "green", "two", "down", "no"], "choice_c": ["a cow", "blue", "three", "left", "maybe"],
            "choice_d": ["a pig", "white", "four", "right", "never"], "data_id": [f"d{i}" for i in range(5)],
            "data_type": ["image"] * 5, "question": [f"What is shown {i}?" for i in range(5)],
            "question_id": [str(i) for i in range(5)], "question_type_id": [1, 1, 2, 2, 3],
            "image": [[_image(i)] for i in range(5)], "segment": [None] * 5}
    feats = datasets.Features({"answer": _S, "choice_a": _S, "choice_b": _S, "choice_c": _S, "choice_d": _S,
                               "data_id": _S, "data_type": _S, "question": _S, "question_id": _S,
                               "question_type_id": _I, "image": datasets.Sequence(_IMG),
                               "segment": datasets.Sequence(_I)})

    def oracle(doc: dict) -> list[float]:
        gold = "ABCD".index(doc["answer"])
        return [0.5 if k == gold else 2.0 + k for k in range(4)]

    return StandIn("seedbench_ppl", "lmms-lab-encoder/SEED-Bench", "test", rows, feats, oracle,
                   [1.5, 1.0, 3.0, 1.0])  # type: ignore[arg-type]


STANDINS: dict[str, Callable[[], StandIn]] = {f.__name__: f for f in (
    mme, pope, scienceqa_img, textvqa_val, mmbench_en_dev, ocrbench, chartqa, mmmu_val, seedbench_ppl)}


def write_standins(root: Path, tasks: list[str]) -> dict[str, Any]:
    """Write the stand-in datasets under `root` and return {task: {"oracle": [...], "constant": [...]}}."""
    answers = {}
    for name in tasks:
        standin = STANDINS[name]()
        standin.write(root)
        answers[name] = standin.answers()
    (root / "answers.json").write_text(json.dumps(answers))
    return answers


#: a group of two catalogue tasks, as a user writes one in an include_path folder: lmms-eval's group score
GROUP_YAML = """\
group: sqa_and_textvqa
task:
  - scienceqa_img
  - textvqa_val
aggregate_metric_list:
  - metric: exact_match
    weight_by_size: true
"""
