"""Stand-in datasets for the rest of issue 13's end-to-end list, and the deterministic GPT judge they use.

Same scheme as tests/catalogue_standins.py (whose `StandIn` writes them): each task's real columns, a few
generated rows and images, written where the task's `dataset_path` resolves as a local folder, and two
scripted models, "oracle" (the target, in the forms the task's parsers accept: bare letters, "B. text",
"The answer is 42.") and "constant" (always the same answer).

`judge_answer` is what the local OpenAI-compatible server (tests/_servers.py) replies to the prompts of the
two GPT-judged tasks: MathVista's answer extraction (everything after "The answer is", else the response)
and MM-Vet's correctness score (1.0 when every ground-truth part is in the prediction, 0.5 when some are,
else 0.0). Both tools call the judge through lmms-eval's own client code, pointed at that server.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable

import datasets

from catalogue_standins import StandIn, _image

_S = datasets.Value("string")
_I = datasets.Value("int64")
_F = datasets.Value("float64")
_B = datasets.Value("bool")
_IMG = datasets.Image()
_SEQ = datasets.Sequence(_S)


def ai2d() -> StandIn:
    options = [["cat", "dog", "cow", "pig"], ["sun", "moon"], ["leaf", "root", "stem"], ["1", "2", "3", "4"],
               ["up", "down", "left"]]
    rows = {"question": [f"Which label {i} is right?" for i in range(5)], "options": options,
            "answer": ["1", "0", "2", "3", "1"], "image": [_image(i) for i in range(5)]}
    feats = datasets.Features({"question": _S, "options": _SEQ, "answer": _S, "image": _IMG})
    forms = ["{L}", "{L}. {T}", " {L}.", "{L}", "The answer is {L}"]  # the filter takes "X." at the start only

    def oracle(doc: dict) -> str:
        k = int(doc["answer"])
        return forms[rows["question"].index(doc["question"])].format(L="ABCD"[k], T=doc["options"][k])

    return StandIn("ai2d", "lmms-lab-encoder/ai2d", "test", rows, feats, oracle, "A.")


def docvqa_val() -> StandIn:
    n = 5
    rows = {"questionId": [str(300 + i) for i in range(n)], "question": [f"What is the date {i}?" for i in range(n)],
            "question_types": [["form"]] * n, "image": [_image(i, "doc") for i in range(n)],
            "docId": list(range(n)), "ucsf_document_id": [f"u{i}" for i in range(n)],
            "ucsf_document_page_no": ["1"] * n,
            "answers": [["March 3, 1999"], ["ITC Limited", "ITC"], ["$ 1,000"], ["yes"], ["Dr. John Smith"]],
            "data_split": ["val"] * n}
    feats = datasets.Features({"questionId": _S, "question": _S, "question_types": _SEQ, "image": _IMG,
                               "docId": _I, "ucsf_document_id": _S, "ucsf_document_page_no": _S, "answers": _SEQ,
                               "data_split": _S})
    # ANLS: case and surrounding spaces ignored, near misses (edit distance) score partially
    oracle = {"300": "march 3, 1999", "301": "ITC", "302": "$1,000", "303": "Yes ", "304": "Dr. John Smith"}
    return StandIn("docvqa_val", "lmms-lab-encoder/DocVQA", "validation", rows, feats,
                   lambda d: oracle[d["questionId"]], "yes", dataset_name="DocVQA")


def infovqa_val() -> StandIn:
    n = 4
    rows = {"questionId": [str(70 + i) for i in range(n)], "question": [f"How many in chart {i}?" for i in range(n)],
            "answers": [["12"], ["45%", "45 %"], ["asia"], ["2 million", "2m"]],
            "answer_type": [["single span"]] * n, "image": [_image(i, "info") for i in range(n)],
            "image_url": [""] * n, "operation/reasoning": [["counting"]] * n, "ocr": ["{}"] * n,
            "data_split": ["val"] * n}
    feats = datasets.Features({"questionId": _S, "question": _S, "answers": _SEQ, "answer_type": _SEQ,
                               "image": _IMG, "image_url": _S, "operation/reasoning": _SEQ, "ocr": _S,
                               "data_split": _S})
    oracle = {"70": "12", "71": "45 %", "72": "Asia", "73": "2 millions"}
    return StandIn("infovqa_val", "lmms-lab-encoder/DocVQA", "validation", rows, feats,
                   lambda d: oracle[d["questionId"]], "12", dataset_name="InfographicVQA")


_MMSTAR_CATS = [("coarse perception", "image scene and topic"), ("fine-grained perception", "object counting"),
                ("math", "geometry"), ("math", "statistical reasoning"), ("logical reasoning", "diagram reasoning"),
                ("fine-grained perception", "localization")]


def mmstar() -> StandIn:
    n = len(_MMSTAR_CATS)
    rows = {"index": list(range(n)),
            "question": [f"Which is shown {i}?\nOptions: A: cat, B: dog, C: cow, D: pig" for i in range(n)],
            "image": [_image(i) for i in range(n)], "answer": ["A", "B", "C", "D", "B", "A"],
            "category": [c for c, _ in _MMSTAR_CATS], "l2_category": [c for _, c in _MMSTAR_CATS],
            "meta_info": [{"source": "MMBench", "split": "val", "image_path": f"images/{i}.jpg"} for i in range(n)]}
    feats = datasets.Features({"index": _I, "question": _S, "image": _IMG, "answer": _S, "category": _S,
                               "l2_category": _S, "meta_info": {"source": _S, "split": _S, "image_path": _S}})
    forms = ["{L}", "({L})", "The answer is {L}.", "{L}: pig", "Answer: {L}", "{L}"]
    return StandIn("mmstar", "Lin-Chen/MMStar", "val", rows, feats,
                   lambda d: forms[d["index"]].format(L=d["answer"]), "A")


def realworldqa() -> StandIn:
    rows = {"image": [_image(i) for i in range(5)],
            "question": ["Which way is the car going?\nA. left\nB. right\nC. straight\nPlease answer directly with "
                         "only the letter of the correct option and nothing else.",
                         "How many lanes are there?", "Is the road going uphill or downhill?",
                         "What colour is the light?\nA. red\nB. green\nC. yellow",
                         "How many cars are there?"],
            "answer": ["B", "3", "Downhill", "A", "0"]}
    feats = datasets.Features({"image": _IMG, "question": _S, "answer": _S})
    oracle = {"B": "B", "3": "3.", "Downhill": "downhill", "A": "A. red", "0": "0"}
    return StandIn("realworldqa", "lmms-lab-encoder/RealWorldQA", "test", rows, feats,
                   lambda d: oracle[d["answer"]], "A")


def seedbench() -> StandIn:
    # seed_image / seed_video / seed_all: an image row has one image, a video row a few frames
    n = 5
    rows = {"answer": ["A", "C", "B", "D", "A"], "choice_a": ["a cat", "red", "one", "up", "yes"],
            "choice_b": ["a dog", "green", "two", "down", "no"], "choice_c": ["a cow", "blue", "three", "left", "maybe"],
            "choice_d": ["a pig", "white", "four", "right", "never"], "data_id": [f"d{i}" for i in range(n)],
            "data_type": ["image", "image", "video", "image", "video"],
            "question": [f"What is shown {i}?" for i in range(n)], "question_id": [str(i) for i in range(n)],
            "question_type_id": [1, 1, 10, 2, 11],
            "image": [[_image(i)] if i not in (2, 4) else [_image(i), _image(i + 20), _image(i + 40)]
                      for i in range(n)],
            "segment": [None, None, [0, 2], None, [1, 3]]}
    feats = datasets.Features({"answer": _S, "choice_a": _S, "choice_b": _S, "choice_c": _S, "choice_d": _S,
                               "data_id": _S, "data_type": _S, "question": _S, "question_id": _S,
                               "question_type_id": _I, "image": datasets.Sequence(_IMG),
                               "segment": datasets.Sequence(_I)})
    forms = ["{L}", "{L}. blue", " {L}", "{L}", "{L}"]
    return StandIn("seedbench", "lmms-lab-encoder/SEED-Bench", "test", rows, feats,
                   lambda d: forms[int(d["question_id"])].format(L=d["answer"]), "A")


def gqa() -> StandIn:
    n = 5
    answers = ["yes", "left", "red", "no", "table"]
    rows = {"id": [f"2019{i}" for i in range(n)], "imageId": [f"n{100 + i % 3}" for i in range(n)],
            "question": [f"Is the thing {i} there?" for i in range(n)], "answer": answers,
            "fullAnswer": [f"The answer is {a}." for a in answers], "isBalanced": [True] * n,
            "groups": [{"global": "", "local": "10c-x"}] * n, "entailed": [[]] * n, "equivalent": [[f"2019{i}"]
                                                                                            for i in range(n)],
            "types": [{"structural": "verify", "semantic": "rel", "detailed": "existRelS"}] * n,
            "annotations": [{"answer": [], "question": [], "fullAnswer": []}] * n,
            "semantic": [[{"operation": "select", "argument": "thing", "dependencies": []}]] * n,
            "semanticStr": ["select: thing"] * n}
    feats = datasets.Features({
        "id": _S, "imageId": _S, "question": _S, "answer": _S, "fullAnswer": _S, "isBalanced": _B,
        "groups": {"global": _S, "local": _S}, "entailed": _SEQ, "equivalent": _SEQ,
        "types": {"structural": _S, "semantic": _S, "detailed": _S},
        "annotations": {"answer": _SEQ, "question": _SEQ, "fullAnswer": _SEQ},
        "semantic": [{"operation": _S, "argument": _S, "dependencies": datasets.Sequence(_I)}],
        "semanticStr": _S})
    oracle = {"yes": "Yes", "left": "left.", "red": "red", "no": "No!", "table": "table"}
    return StandIn("gqa", "lmms-lab-encoder/GQA", "testdev", rows, feats, lambda d: oracle[d["answer"]], "yes",
                   dataset_name="testdev_balanced_instructions")


def _gqa_images() -> StandIn:
    """GQA's images live in another config; gqa's process_docs joins them by imageId."""
    rows = {"id": [f"n{100 + i}" for i in range(3)], "image": [_image(70 + i) for i in range(3)]}
    feats = datasets.Features({"id": _S, "image": _IMG})
    return StandIn("gqa_images", "lmms-lab-encoder/GQA", "testdev", rows, feats, lambda d: "", "",
                   dataset_name="testdev_balanced_images")


def vqav2_val() -> StandIn:
    gts = [["2"] * 10, ["two"] * 4 + ["2"] * 3 + ["3"] * 3, ["a dog"] * 2 + ["dog"] * 8,
           ["red"] * 2 + ["blue"] * 8, ["yes"] * 10]
    rows = {"question_type": ["how many"] * 2 + ["what"] * 2 + ["is"],
            "multiple_choice_answer": ["2", "2", "dog", "blue", "yes"],
            "answers": [[{"answer": a, "answer_confidence": "yes", "answer_id": k + 1} for k, a in enumerate(g)]
                        for g in gts],
            "image_id": list(range(5)), "answer_type": ["number"] * 2 + ["other"] * 2 + ["yes/no"],
            "question_id": [1000 + i for i in range(5)], "question": [f"What is it {i}?" for i in range(5)],
            "image": [_image(i) for i in range(5)]}
    feats = datasets.Features({"question_type": _S, "multiple_choice_answer": _S,
                               "answers": [{"answer": _S, "answer_confidence": _S, "answer_id": _I}],
                               "image_id": _I, "answer_type": _S, "question_id": _I, "question": _S,
                               "image": _IMG})
    # VQA accuracy: min(1, matches / 3) averaged over the ten leave-one-out subsets; "two" -> "2", "a dog" -> "dog"
    oracle = {1000: "two", 1001: "Two.", 1002: "a dog", 1003: "red", 1004: "Yes"}
    return StandIn("vqav2_val", "lmms-lab-encoder/VQAv2", "validation", rows, feats,
                   lambda d: oracle[d["question_id"]], "2")


def ok_vqa_val2014() -> StandIn:
    gts = [["racing"] * 6 + ["race"] * 4, ["tennis"] * 10, ["10"] * 4 + ["ten"] * 6, ["pizza"] * 2 + ["food"] * 8]
    rows = {"answer_type": ["other"] * 4, "img_id": list(range(4)), "question_type": ["four"] * 4,
            "confidence": [3] * 4, "answers": gts, "image": [_image(i) for i in range(4)],
            "question_id": [5000 + i for i in range(4)], "question": [f"What sport {i}?" for i in range(4)]}
    feats = datasets.Features({"answer_type": _S, "img_id": _I, "question_type": _S, "confidence": _I,
                               "answers": _SEQ, "image": _IMG, "question_id": _I, "question": _S})
    oracle = {5000: "Racing.", 5001: "tennis", 5002: "ten", 5003: "pizza"}
    return StandIn("ok_vqa_val2014", "lmms-lab-encoder/OK-VQA", "val2014", rows, feats,
                   lambda d: oracle[d["question_id"]], "tennis")


#: MathVista: the group mathvista_testmini is three tasks (cot, solution, format) on one testmini split
MATHVISTA_TASKS = ("mathvista_testmini_cot", "mathvista_testmini_solution", "mathvista_testmini_format")


def mathvista_testmini() -> StandIn:
    n = 5
    qtype = ["multi_choice", "free_form", "free_form", "multi_choice", "free_form"]
    atype = ["text", "integer", "float", "text", "list"]
    choices = [["3", "5", "7", "9"], None, None, ["red", "blue"], None]
    answer = ["5", "42", "1.5", "red", "[1, 2]"]
    questions = ["How many sides?", "What is the total?", "What is the ratio?", "Which colour is the ball?",
                 "Which two years peak?"]
    rows = {"pid": [str(i + 1) for i in range(n)], "question": questions, "image": [f"images/{i + 1}.jpg"
                                                                                    for i in range(n)],
            "decoded_image": [_image(i) for i in range(n)], "choices": choices,
            "unit": [None, "$", None, None, None], "precision": [None, None, 1.0, None, None], "answer": answer,
            "question_type": qtype, "answer_type": atype,
            "metadata": [{"category": "math-targeted-vqa" if i % 2 else "general-vqa", "context": "scientific figure",
                          "grade": "high school", "img_height": 32, "img_width": 48,
                          "language": "english", "skills": ["arithmetic reasoning", "statistical reasoning"][: 1 + i % 2],
                          "source": "IQTest", "split": "testmini", "task": "figure question answering"}
                         for i in range(n)],
            "query": [f"Hint: answer it.\nQuestion: {q}" for q in questions]}
    feats = datasets.Features({
        "pid": _S, "question": _S, "image": _S, "decoded_image": _IMG, "choices": _SEQ, "unit": _S,
        "precision": _F, "answer": _S, "question_type": _S, "answer_type": _S,
        "metadata": {"category": _S, "context": _S, "grade": _S, "img_height": _I, "img_width": _I, "language": _S,
                     "skills": _SEQ, "source": _S, "split": _S, "task": _S},
        "query": _S})
    # answers a quick path takes (a choice, a bare number) and answers the judge has to extract
    oracle = {"1": "5", "2": "The answer is 42.", "3": "1.5", "4": "(A) red", "5": "The answer is [1, 2]."}
    return StandIn("mathvista_testmini", "AI4Math/MathVista", "testmini", rows, feats,
                   lambda d: oracle[d["pid"]], "The answer is (A).")


def mmvet() -> StandIn:
    n = 5
    rows = {"question_id": [f"v1_{i}" for i in range(n)], "image": [_image(i, "vet") for i in range(n)],
            "question": ["What is x in the equation?", "What is written on the sign?", "How many apples?",
                         "Which city is this?", "What is the total price?"],
            "answer": ["-1<AND>-5", "STOP", "3<OR>three", "Paris", "$13"],
            "image_source": ["mmvet"] * n,
            "capability": ["ocr,math", "ocr,rec", "rec", "rec,know", "ocr,spat,math"]}
    feats = datasets.Features({"question_id": _S, "image": _IMG, "question": _S, "answer": _S, "image_source": _S,
                               "capability": _S})
    oracle = {"v1_0": "x = -1 or x = -5", "v1_1": "It says STOP.", "v1_2": "There are three apples.",
              "v1_3": "This is Rome.", "v1_4": "The total is $13"}
    return StandIn("mmvet", "lmms-lab-encoder/MMVet", "test", rows, feats, lambda d: oracle[d["question_id"]],
                   "I think it is 3")


#: the names evaluated (a task, or a group: ok_vqa, mathvista_testmini) -> its stand-in
STANDINS: dict[str, Callable[[], StandIn]] = {
    "ai2d": ai2d, "docvqa_val": docvqa_val, "mmstar": mmstar, "realworldqa": realworldqa, "seedbench": seedbench,
    "gqa": gqa, "infovqa_val": infovqa_val, "vqav2_val": vqav2_val, "ok_vqa": ok_vqa_val2014,
    "mathvista_testmini": mathvista_testmini, "mmvet": mmvet}
#: the tasks a group name runs (lmms-eval's groups in its catalogue)
SUBTASKS: dict[str, tuple[str, ...]] = {"ok_vqa": ("ok_vqa_val2014",), "mathvista_testmini": MATHVISTA_TASKS}


def write_standins(root: Path, tasks: list[str]) -> dict[str, Any]:
    """Write the stand-ins of `tasks` under `root`; return {task: {"oracle": [...], "constant": [...]}}, keyed by
    the tasks that run (a group's subtasks), and write it to ``root/answers.json``."""
    answers: dict[str, Any] = {}
    for name in tasks:
        standin = STANDINS[name]()
        standin.write(root)
        for task in SUBTASKS.get(name, (name,)):
            answers[task] = standin.answers()
        if name == "gqa":
            _gqa_images().write(root)
    (root / "answers.json").write_text(json.dumps(answers))
    return answers


# -- the judge ------------------------------------------------------------------------------------------------

def _mathvista_extraction(prompt: str) -> str:
    # MathVista's create_test_prompt: demo prompt, query, then the model's response, then "Extracted answer: "
    response = prompt.rsplit("\n\nExtracted answer:", 1)[0].rsplit("\n\n", 1)[-1].strip()
    found = re.search(r"The answer is (.*?)\.?$", response)
    return found.group(1) if found else response


def _mmvet_score(prompt: str) -> str:
    # MM-Vet's prompt ends with "question | ground truth (with spaced <AND>/<OR>) | prediction |"
    _question, truth, prediction = prompt.rstrip().rstrip("|").splitlines()[-1].split(" | ")[:3]
    parts = [p.strip().lower() for p in re.split(r"<AND>|<OR>", truth) if p.strip()]
    found = [p in prediction.lower() for p in parts]
    if "<OR>" in truth:
        score = 1.0 if any(found) else 0.0
    else:
        score = 1.0 if all(found) else 0.5 if any(found) else 0.0
    return f"{score} (compared the parts of the ground truth)"  # MM-Vet reads the first word


def judge_answer(prompt: str, n_images: int) -> str:
    """The local judge's deterministic reply to a MathVista extraction or an MM-Vet grading prompt."""
    if prompt.rstrip().endswith("Extracted answer:"):
        return _mathvista_extraction(prompt)
    if "Correctness\n--- | --- | --- | ---" in prompt:
        return _mmvet_score(prompt)
    raise ValueError(f"the test judge got a prompt it does not know: {prompt[-200:]!r}")
