"""Logs: the canonical sample table, our writer, and readers for every log format."""

from lmms_nb.logs.schema import ALIGN_KEY, FIXED_COLUMNS, SAMPLE_KEY, conform, empty_samples, metric_columns

__all__ = ["FIXED_COLUMNS", "SAMPLE_KEY", "ALIGN_KEY", "conform", "empty_samples", "metric_columns", "load_logs",
           "scan_logs", "load_scores", "rescore", "LogFormatError"]


def __getattr__(name: str):
    # load_logs / scan_logs live in lmms_nb.logs.readers, rescore in lmms_nb.logs._rescore (private, so the
    # submodule can never shadow the function as an attribute of lmms_nb.logs)
    if name in ("load_logs", "scan_logs", "load_scores", "LogFormatError"):
        from lmms_nb.logs import readers

        return getattr(readers, name)
    if name == "rescore":
        from lmms_nb.logs._rescore import rescore

        return rescore
    raise AttributeError(name)
