"""form_model_args: what a form holds becomes checked model arguments, with one-line errors naming the field.

Runs on the real registry's `hf` model (its signature and docstring), not on hand-made specs alone.
"""

import pytest

from lmms_nb.models.arguments import ModelArgument, form_model_args, model_arguments

HF = {a.name: a for a in model_arguments("hf")}
FLAG = ModelArgument("use_cache", False, True, "bool", "")


@pytest.mark.parametrize(("text", "expected"), [("false", False), (" No ", False), ("0", False)])
def test_bool_text_is_parsed_not_passed_as_a_truthy_string(text, expected):
    assert form_model_args("x", [FLAG], {"use_cache": text}) == {"use_cache": expected}
    assert form_model_args("x", [FLAG], {"use_cache": "TRUE"}) == {}  # equal to the default: left out


def test_bad_bool_names_the_field():
    with pytest.raises(ValueError, match=r"^use_cache: 'maybe' is not a valid bool$"):
        form_model_args("x", [FLAG], {"use_cache": "maybe"})


def test_unknown_field_is_a_value_error_naming_it_and_the_accepted_ones():
    with pytest.raises(ValueError, match=r"^nope: not an argument of hf; it takes .*pretrained"):
        form_model_args("hf", HF.values(), {"pretrained": "m", "nope": "1"})


@pytest.mark.parametrize(("extra", "message"), [("{oops", "not valid JSON"), ("[1, 2]", "expected a JSON object")])
def test_extra_json_errors(extra, message):
    with pytest.raises(ValueError, match=message):
        form_model_args("hf", HF.values(), {"pretrained": "m"}, extra)


def test_missing_required_and_int_parsing():
    with pytest.raises(ValueError, match=r"^hf needs pretrained"):
        form_model_args("hf", HF.values(), {"pretrained": "  "})
    with pytest.raises(ValueError, match=r"^max_new_tokens: 'seven' is not a valid int$"):
        form_model_args("hf", HF.values(), {"pretrained": "m", "max_new_tokens": "seven"})
    assert form_model_args("hf", HF.values(), {"pretrained": "m", "max_new_tokens": "9"}) == {
        "pretrained": "m", "max_new_tokens": 9}
