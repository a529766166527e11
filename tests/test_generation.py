"""Cached greedy generation under every variant equals generation that recomputes the whole sequence."""

import pytest
import torch
from tiny import DECODERS, NUM_LAYERS, VOCAB, tiny_model

from painters import PaintersError, Plan, apply_plan
from painters.core.variants import VARIANTS, options_of
from painters.core.versions import output_cache

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
        cache = output_cache(model(input_ids=ids, use_cache=True))
    assert len(cache.layers) == len(plan.layers()) == 11
    types = model.config.layer_types
    expected_sliding = [types[i] == "sliding_attention" for i in plan.layers()]
    assert [getattr(layer, "is_sliding", False) for layer in cache.layers] == expected_sliding


class IdTokenizer:
    """Decodes each token id as `<id>`, so texts compare token for token (the end-of-sequence token is special)."""

    def __init__(self, eos: int | None):
        self.eos = self.eos_token_id = eos

    def encode(self, text, add_special_tokens=True):
        return [int(part) for part in text.replace(">", "").split("<")[1:]]

    def decode(self, ids, skip_special_tokens=False):
        return "".join(f"<{i}>" for i in ids if not (skip_special_tokens and i == self.eos))


def alone(model, prompts, new, ends):
    """Each prompt's greedy tokens as `generate` makes them for the prompt alone, up to an end token."""
    generated = []
    for prompt in prompts:
        ids = torch.tensor([prompt])
        with torch.no_grad():
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=new, do_sample=False,
                                 pad_token_id=0)  # fmt: skip
        tokens = out[0, len(prompt) :].tolist()
        generated.append(tokens[: tokens.index(ends) + 1] if ends in tokens else tokens)  # then padding
    return generated


def as_text(prompts):
    return ["".join(f"<{i}>" for i in prompt) for prompt in prompts]


@pytest.mark.parametrize("name", DECODERS)
def test_batched_generation_from_a_shared_prefix_equals_each_prompt_alone(name, monkeypatch):
    """Six prompts sharing ten tokens, two rows at a time: rows end (the end token, a stop, or the limit),
    leave the batch and are replaced, and every text is what `generate` gives each prompt alone, under
    every plan (plans share the prefix's first steps), through shared-prefix attention or not. gemma3's
    sliding window takes the path without a shared prefix or refills."""
    from painters.tasks.generation import cut_at_stop, greedy_texts, plan_greedy_texts

    model = tiny_model(name, seed=2)
    ends = model.generation_config.eos_token_id
    tokenizer, torch_generator = IdTokenizer(ends), torch.Generator().manual_seed(0)
    shared = torch.randint(3, VOCAB, (10,), generator=torch_generator).tolist()
    prompts = [shared + torch.randint(3, VOCAB, (k,), generator=torch_generator).tolist() for k in (1, 5, 2, 9, 3, 4)]
    new, plans = 12, [variant_plan("parallel"), Plan.full(NUM_LAYERS)]
    expected, stops = {}, ()
    for plan in plans:
        with apply_plan(model, plan):
            generated = alone(model, prompts, new, ends)
        stops = stops or (f"<{generated[0][2]}>",)  # the first prompt's third token: that row ends early
        expected[plan] = [cut_at_stop(tokenizer.decode(tokens, True), stops) for tokens in generated]
    with apply_plan(model, plans[0]):
        assert greedy_texts(model, tokenizer, prompts, new, stops, batch_size=2) == expected[plans[0]]
    assert expected[plans[0]][0].count("<") <= 2  # a row ended early: the refill was exercised
    monkeypatch.setattr("painters.tasks.generation.encode", lambda tokenizer, prompt: tokenizer.encode(prompt))
    for exact in (False, True):  # shared-prefix attention, and each row with its own copy of the prefix
        found = plan_greedy_texts(model, tokenizer, as_text(prompts), plans, new, stops, 2, exact_attention=exact)
        assert found == expected


@pytest.mark.parametrize(
    "prompts, new",
    [([[5, 6, 7]], 4), ([[5, 6, 7, 8]] * 3, 3), ([[5, 6], [5, 6, 7, 9], [8]], 1), ([], 4)],
    ids=["one prompt", "identical prompts", "one new token", "no prompts"],
)
def test_generation_edge_cases_equal_each_prompt_alone(prompts, new, monkeypatch):
    from painters.tasks.generation import plan_greedy_texts

    model = tiny_model("llama", seed=2)
    ends = model.generation_config.eos_token_id
    tokenizer, plan = IdTokenizer(ends), Plan.full(NUM_LAYERS)
    expected = [tokenizer.decode(tokens, True) for tokens in alone(model, prompts, new, ends)]
    monkeypatch.setattr("painters.tasks.generation.encode", lambda tokenizer, prompt: tokenizer.encode(prompt))
    assert plan_greedy_texts(model, tokenizer, as_text(prompts), [plan], new, batch_size=2) == {plan: expected}


def test_generation_needs_room_in_the_context(monkeypatch):
    from painters.tasks.generation import plan_greedy_texts

    model = tiny_model("llama", seed=2)
    monkeypatch.setattr("painters.tasks.generation.encode", lambda tokenizer, prompt: tokenizer.encode(prompt))
    with pytest.raises(PaintersError, match="exceed the model's context of 128 tokens"):
        plan_greedy_texts(model, IdTokenizer(2), ["<5>"], [Plan.full(NUM_LAYERS)], 128)
