"""One model name across tools; lmms-eval's model names and their model args (nothing loads here)."""

from __future__ import annotations

import inspect

import polars as pl
import pytest

from lmms_nb.logs._model_names import canonical_model_name, unify_model_names
from lmms_nb.models import get_model, list_models
from lmms_nb.models.hf import lmms_eval_model_name


@pytest.mark.parametrize("name, canonical", [
    ("Qwen/Qwen2-VL-2B-Instruct", "Qwen__Qwen2-VL-2B-Instruct"),
    ("Qwen__Qwen2-VL-2B-Instruct", "Qwen__Qwen2-VL-2B-Instruct"),
    ("/data/ckpts/anchor/tiny_model/", "anchor__tiny_model"),  # lmms-eval: the last two parts of the path
    ("models/tiny_llava", "models__tiny_llava"),
    ("/home/someone/.cache/huggingface/hub/models--llava-hf--llava-1.5-7b-hf/snapshots/8c85e9a", "llava-hf__llava-1.5-7b-hf"),
    ("majority", "majority"),
])
def test_canonical_names(name, canonical):
    assert canonical_model_name(name) == canonical


def test_a_bare_name_joins_its_one_qualified_name_only():
    df = pl.DataFrame({"model": ["Qwen/Qwen2-VL-2B", "Qwen2-VL-2B", "tiny", "a/tiny", "b/tiny", "solo"]})
    assert unify_model_names(df)["model"].to_list() == [
        "Qwen__Qwen2-VL-2B", "Qwen__Qwen2-VL-2B", "tiny", "a__tiny", "b__tiny", "solo"]  # "tiny": two owners


def test_hf_models_are_named_as_lmms_eval_names_them():
    assert lmms_eval_model_name("/x/y/anchor/tiny_model") == "anchor/tiny_model"
    assert lmms_eval_model_name("llava-hf/llava-1.5-7b-hf") == "llava-hf/llava-1.5-7b-hf"
    assert lmms_eval_model_name("tiny") == "tiny"


def test_lmms_eval_model_names_are_registered_with_their_class_arguments():
    assert {"llava_hf", "llava_onevision", "qwen2_vl", "qwen2_5_vl", "qwen3_vl", "idefics2", "openai",
            "openai_compatible", "internvl_hf"} <= set(list_models())
    from lmms_nb.models import lmms_eval_aliases as aliases

    # lmms-eval 0.7.3's __init__ arguments (lmms_eval/models/simple/*.py), each accepted under its name
    expected = {
        aliases.llava_hf: {"pretrained", "revision", "device", "dtype", "batch_size", "trust_remote_code",
                           "attn_implementation", "device_map", "chat_template", "use_cache", "max_frames_num"},
        aliases.qwen2_5_vl: {"pretrained", "device", "device_map", "batch_size", "use_cache", "attn_implementation",
                             "min_pixels", "max_pixels", "max_num_frames", "fps", "system_prompt",
                             "interleave_visuals", "reasoning_prompt"},
        aliases.qwen2_vl: {"pretrained", "device", "device_map", "batch_size", "use_cache", "use_flash_attention_2",
                           "max_length", "max_pixels", "min_pixels", "max_num_frames", "system_prompt",
                           "interleave_visuals", "reasoning_prompt"},
        aliases.openai_compatible: {"model_version", "model", "base_url", "api_key", "timeout", "max_retries",
                                    "num_concurrent", "batch_size"},
        # lmms_eval/models/chat/internvl_hf.py
        aliases.internvl_hf: {"pretrained", "revision", "device", "device_map", "batch_size", "min_patches",
                              "max_patches", "num_frames", "fps", "trust_remote_code", "low_cpu_mem_usage",
                              "attn_implementation", "use_cache"},
    }
    for factory, names in expected.items():
        assert names <= set(inspect.signature(factory).parameters), factory.__name__
    defaults = inspect.signature(aliases.qwen2_5_vl).parameters
    assert (defaults["min_pixels"].default, defaults["max_pixels"].default) == (256 * 28 * 28, 1605632)


def test_an_unknown_model_arg_lists_the_accepted_ones():
    with pytest.raises(ValueError) as e:
        get_model("qwen2_5_vl", pretrained="x", max_pixel=10)
    assert "max_pixel (did you mean max_pixels" in str(e.value) and "min_pixels" in str(e.value)
    with pytest.raises(KeyError, match="Did you mean llava_hf"):
        get_model("llava_hff")


def test_openai_aliases_with_different_keys_read_their_own_key():
    """api_key= goes to the environment (never into recorded args); two models must not share one variable."""
    import os

    from lmms_nb.models import get_model

    a = get_model("openai_compatible", model_version="m", base_url="http://127.0.0.1:9/v1", api_key="key-a")
    b = get_model("openai_compatible", model_version="m", base_url="http://127.0.0.1:9/v1", api_key="key-b")
    try:
        assert a.api_key_env != b.api_key_env
        assert (os.environ[a.api_key_env], os.environ[b.api_key_env]) == ("key-a", "key-b")
        assert "key-a" not in repr(a.model_args) and "key-b" not in repr(b.model_args)
    finally:
        for model in (a, b):
            os.environ.pop(model.api_key_env, None)
