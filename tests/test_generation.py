"""Cached greedy generation under every variant equals generation that recomputes the whole sequence."""

import pytest
import torch
from tiny import DECODERS, NUM_LAYERS, VOCAB, tiny_model

from painters import Plan, apply_plan
from painters.variants import VARIANTS, options_of

PROMPT_LENGTH, NEW_TOKENS = 7, 10  # longer than gemma3's tiny sliding window (4), so the window matters


def variant_plan(name):
    options = {"n": 4, "seed": 1, "loops": 2, "layer": 2}
    return Plan.variant(name, num_layers=NUM_LAYERS, **{k: v for k, v in options.items() if k in options_of(name)})


def greedy(model, ids, use_cache):
    with torch.no_grad():
        out = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=NEW_TOKENS,
            min_new_tokens=NEW_TOKENS,
            do_sample=False,
            use_cache=use_cache,
            output_logits=True,
            return_dict_in_generate=True,
            pad_token_id=0,
        )
    return out.sequences, torch.stack(out.logits)


@pytest.fixture(scope="module", params=DECODERS)
def model(request):
    return tiny_model(request.param, seed=1)


@pytest.mark.parametrize("name", VARIANTS)
def test_cached_generation_equals_recomputation(model, name):
    torch.manual_seed(0)
    ids = torch.randint(3, VOCAB, (2, PROMPT_LENGTH))
    with apply_plan(model, variant_plan(name)):
        cached, cached_scores = greedy(model, ids, use_cache=True)
        recomputed, recomputed_scores = greedy(model, ids, use_cache=False)
    assert torch.equal(cached, recomputed)
    assert (cached_scores - recomputed_scores).abs().max().item() <= 1e-4


def test_looped_parallel_generation_differs_from_full(model):
    torch.manual_seed(0)
    ids = torch.randint(3, VOCAB, (2, PROMPT_LENGTH))
    _, full_scores = greedy(model, ids, use_cache=True)
    with apply_plan(model, variant_plan("looped_parallel")):
        _, planned_scores = greedy(model, ids, use_cache=True)
    assert (full_scores - planned_scores).abs().max().item() > 1e-3


def test_cache_has_one_slot_per_layer_call():
    model = tiny_model("gemma3_text")
    ids = torch.randint(3, VOCAB, (1, PROMPT_LENGTH))
    plan = Plan.parse("0,[1-4]x2,5x2")
    with apply_plan(model, plan), torch.no_grad():
        cache = model(input_ids=ids, use_cache=True).cache
    assert len(cache.layers) == len(plan.layers()) == 11
    types = model.config.layer_types
    expected_sliding = [types[i] == "sliding_attention" for i in plan.layers()]
    assert [getattr(layer, "is_sliding", False) for layer in cache.layers] == expected_sliding
