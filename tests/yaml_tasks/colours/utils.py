"""Functions of the `colours` fixture tasks, written for these tests in lmms-eval's task format."""

from __future__ import annotations


def colours_doc_to_visual(doc):
    return [doc["image"].convert("RGB")]


def colours_doc_to_text(doc, lmms_eval_specific_kwargs=None):
    kwargs = lmms_eval_specific_kwargs or {}
    return f"{kwargs.get('pre_prompt', '')}{doc['question']}{kwargs.get('post_prompt', '')}"


def colours_mcq_doc_to_text(doc, lmms_eval_specific_kwargs=None):
    kwargs = lmms_eval_specific_kwargs or {}
    options = "\n".join(f"({chr(ord('A') + i)}) {choice}" for i, choice in enumerate(doc["choices"]))
    return f"{doc['question']}\n{options}{kwargs.get('post_prompt', '')}"


def keep_warm(dataset):
    """process_docs: only the warm colours."""
    return dataset.filter(lambda doc: doc["category"] == "warm")


def colours_process_results(doc, results):
    prediction = results[0].lower().strip(" .")
    return {"colour_acc": float(prediction == doc["answer"]), "answer_chars": len(prediction)}


def colours_percent(items):
    return 100.0 * sum(items) / len(items)


class FirstWordFilter:
    """A custom filter in lmms-eval's protocol: apply(resps, docs) on lists of responses per doc."""

    def __init__(self, lowercase: bool = False) -> None:
        self.lowercase = lowercase

    def apply(self, resps, docs):
        out = []
        for responses in resps:
            words = [(r.split() or [""])[0] for r in responses]
            out.append([w.lower() for w in words] if self.lowercase else words)
        return out
