"""Planned execution on the real embedded models: SmolLM2-135M (30 layers) and all-MiniLM-L6-v2 (6 layers)."""

import numpy as np
import pytest
import torch
from reference import output_of, parallel_error, sequential_error
from transformers import AutoModelForCausalLM

from painters import Plan, apply_plan, load_model
from painters.analysis.similarity import similarity
from painters.analysis.texts import load_texts
from painters.models import loading
from painters.models.embedded import embedded_path

pytestmark = pytest.mark.slow
TEXTS = ["The capital of France is Paris, and the capital of Italy is", "Two plus two is"]


@pytest.fixture(scope="module")
def smollm(painters_cache):
    return load_model("smollm2-135m", cache_dir=painters_cache)


@pytest.fixture(scope="module")
def minilm():
    return load_model("minilm-l6")


def batch(tokenizer, padding_side):
    tokenizer.padding_side = padding_side
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return dict(tokenizer(TEXTS, return_tensors="pt", padding=True))


def test_dequantized_cache_equals_the_gguf_and_is_reused(smollm, painters_cache, monkeypatch):
    model, tokenizer = smollm
    gguf = embedded_path("smollm2-135m")
    direct = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32).eval()
    inputs = batch(tokenizer, "left")
    assert torch.equal(output_of(model, **inputs), output_of(direct, **inputs))
    monkeypatch.setattr(loading, "_write_dequantized", lambda *_: pytest.fail("dequantized the GGUF again"))
    again, _ = load_model("smollm2-135m", cache_dir=painters_cache)
    assert [entry.name.startswith("SmolLM2-135M-Instruct.Q4_1-") for entry in painters_cache.iterdir()] == [True]
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), model.state_dict().values(), strict=True))


def test_smollm_shape(smollm):
    model, _ = smollm
    assert (model.config.model_type, model.config.num_hidden_layers, model.config.num_key_value_heads) == (
        "llama",
        30,
        3,
    )
    assert model.dtype == torch.float32


@pytest.mark.parametrize("name, padding_side, layers", [("smollm", "left", 30), ("minilm", "right", 6)])
def test_full_plan_is_bitwise_identical(request, name, padding_side, layers):
    model, tokenizer = request.getfixturevalue(name)
    inputs = batch(tokenizer, padding_side)
    plain = output_of(model, **inputs)
    with apply_plan(model, Plan.full(layers)):
        assert torch.equal(output_of(model, **inputs), plain)


@pytest.mark.parametrize("spec", ["skip:n=6", "reverse:n=6", "middle_repeat:n=6", "shuffle:n=8,seed=2", "swap:layer=4"])
def test_smollm_sequential_plans_equal_rebuilt_model(smollm, spec):

    model, tokenizer = smollm
    error, change = sequential_error(model, batch(tokenizer, "left"), Plan.resolve(spec, 30))
    assert error <= 1e-5
    assert change > 1e-2


def test_smollm_parallel_block_is_the_mean_of_its_members(smollm):
    model, tokenizer = smollm
    assert parallel_error(model, batch(tokenizer, "left"), "0-11,[12-17]x2,18-29", tuple(range(12, 18)), 12) <= 1e-5


@pytest.mark.parametrize("spec", ["skip:n=6", "parallel:n=6", "looped_parallel:n=4,loops=2", "reverse:n=6"])
def test_smollm_cached_generation_equals_recomputation(smollm, spec):

    model, tokenizer = smollm
    inputs = batch(tokenizer, "left")
    runs = []
    with apply_plan(model, Plan.resolve(spec, 30)), torch.no_grad():
        for use_cache in (True, False):
            out = model.generate(
                **inputs, max_new_tokens=8, do_sample=False, use_cache=use_cache, output_logits=True,
                return_dict_in_generate=True, pad_token_id=tokenizer.pad_token_id,
            )  # fmt: skip
            runs.append((out.sequences, torch.stack(out.logits)))
    (cached, cached_logits), (recomputed, recomputed_logits) = runs
    assert torch.equal(cached, recomputed)
    assert (cached_logits - recomputed_logits).abs().max().item() <= 1e-3


def test_smollm_weights_are_shared(smollm):
    model, _ = smollm
    pointers = {p.data_ptr() for p in model.parameters()}
    with apply_plan(model, "0-11,[12-17]x3,15x4,18-29"):
        assert {p.data_ptr() for p in model.parameters()} == pointers


@pytest.mark.parametrize("text", ["0-1,4-5", "0,4-1,5", "0-1,3x2,4-5", "0-2,4,3,5"])
def test_minilm_sequential_plans_equal_rebuilt_model(minilm, text):
    model, tokenizer = minilm
    error, change = sequential_error(model, batch(tokenizer, "right"), Plan.parse(text))
    assert error <= 1e-5
    assert change > 1e-2


def test_minilm_parallel_block_is_the_mean_of_its_members(minilm):
    model, tokenizer = minilm
    assert parallel_error(model, batch(tokenizer, "right"), "0,[1-4]x2,5", (1, 2, 3, 4), 1) <= 1e-5


@pytest.mark.slow
def test_smollm_cosine_matrix_has_the_papers_middle_band(smollm):
    """First layer and last layers apart, a middle band of near-identical directions (the paper's Figure 2)."""
    model, tokenizer = smollm
    cosine = similarity(model, tokenizer, load_texts("lambada_openai", limit=16)).cosine.to_numpy()
    after = {layer: layer + 1 for layer in range(30)}  # state index after each layer; 0 is the embeddings
    assert np.abs(cosine[0, 1:]).max() < 0.1
    assert cosine[after[0], after[1]] < 0.9
    assert min(cosine[after[k], after[k + 1]] for k in range(2, 23)) > 0.9
    assert max(cosine[after[29], after[k]] for k in range(2, 21)) < 0.25
