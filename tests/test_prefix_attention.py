"""Shared-prefix attention equals the model's own attention over the whole cache, up to float32 rounding."""

import pytest
import torch
from tiny import CONFIGS, DECODERS, NUM_LAYERS, VOCAB, tiny_model

from painters import PaintersError, Plan, apply_plan, load_model
from painters.core.adapters import has_sliding_window
from painters.core.prefix_attention import SharedPrefix, prefix_attention, shared_prefix_attention
from painters.core.versions import cache_argument, output_cache
from painters.tasks import gsm8k
from painters.tasks.data import load_docs
from painters.tasks.generation import plan_greedy_texts
from painters.tasks.scoring import expanded, prefix_cache

PREFIX, OWN = 20, (5, 3, 5, 2)  # a shared prefix, then each row's own tokens (left-padded to 5)
FULL_ATTENTION = [name for name in DECODERS if not has_sliding_window(CONFIGS[name]())]
PLAN = Plan.parse("0-2,2,[3,4],1,5", NUM_LAYERS)  # a repeat, a parallel block and a reorder


def rows_and_prefix(seed=1):
    generator = torch.Generator().manual_seed(seed)
    prefix = torch.randint(4, VOCAB, (PREFIX,), generator=generator).tolist()
    own = [torch.randint(4, VOCAB, (n,), generator=generator).tolist() for n in OWN]
    width = max(OWN)
    ids = torch.tensor([[0] * (width - len(tokens)) + tokens for tokens in own])
    mask = torch.tensor([[0] * (width - len(tokens)) + [1] * len(tokens) for tokens in own])
    return prefix, ids, mask


def both_paths(model, prefix, ids, mask):
    """The rows' prefill and one decoding step, each way: the model's attention with the prefix copied into
    every row's cache, and shared-prefix attention with only the rows' own tokens cached."""
    rows = len(ids)
    whole_mask = torch.cat([torch.ones(rows, PREFIX, dtype=mask.dtype), mask], -1)
    positions = (whole_mask.cumsum(-1) - 1).clamp(min=0)[:, -ids.shape[1] :]
    with torch.no_grad():
        kept = prefix_cache(model, prefix)
        out = model(
            input_ids=ids, attention_mask=whole_mask, position_ids=positions,
            **cache_argument(expanded(kept, rows)), use_cache=True,
        )  # fmt: skip
        token, step = out.logits[:, -1].argmax(-1, keepdim=True), whole_mask.sum(-1, keepdim=True)
        mine = model(
            input_ids=token, attention_mask=torch.cat([whole_mask, torch.ones_like(step)], -1), position_ids=step,
            **cache_argument(output_cache(out)), use_cache=True,
        ).logits[:, -1]  # fmt: skip
        with prefix_attention(model):
            apart = model(
                input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                shared_prefix=SharedPrefix(kept),
            )  # fmt: skip
            shared_step = model(
                input_ids=token, attention_mask=torch.cat([mask, torch.ones_like(step)], -1), position_ids=step,
                **cache_argument(output_cache(apart)), use_cache=True, shared_prefix=SharedPrefix(kept),
            ).logits[:, -1]  # fmt: skip
    assert output_cache(apart).get_seq_length() == ids.shape[1] + 1  # the rows' own tokens and the step's only
    return (out.logits, mine), (apart.logits, shared_step)


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
@pytest.mark.parametrize("name", FULL_ATTENTION)
def test_shared_prefix_attention_equals_the_models_own_up_to_rounding(name, attention):
    """Prefill and one decoding step of four left-padded rows under a plan with a repeat, a parallel
    block and a reorder: every logit within float32 rounding of the model's own attention, and the model
    runs its own attention again afterwards."""
    model = tiny_model(name)
    model.config._attn_implementation = attention
    prefix, ids, mask = rows_and_prefix()
    with apply_plan(model, PLAN):
        (prefill, step), (shared_prefill, shared_step) = both_paths(model, prefix, ids, mask)
    real = mask.bool()  # padding positions' outputs are never used
    assert (prefill[real] - shared_prefill[real]).abs().max() < 1e-5
    assert (step - shared_step).abs().max() < 1e-5
    assert torch.equal(step.argmax(-1), shared_step.argmax(-1))
    assert model.config._attn_implementation == attention


def test_shared_prefix_attention_in_bfloat16_stays_close():
    """In bfloat16 the two orders round differently, as two kernels do; the step's logits stay close."""
    model = tiny_model("llama").to(torch.bfloat16)
    model.config._attn_implementation = "sdpa"
    prefix, ids, mask = rows_and_prefix()
    (_, step), (_, shared_step) = both_paths(model, prefix, ids, mask)
    assert (step.float() - shared_step.float()).abs().max() < 0.05 * step.float().abs().max()


def test_shared_prefix_attention_refuses_what_it_does_not_compute():
    model = tiny_model("llama")
    attention = model.model.layers[0].self_attn
    query, key = torch.zeros(1, 4, 1, 8), torch.zeros(1, 2, 1, 8)
    with pytest.raises(PaintersError, match="needs the prefix"):
        shared_prefix_attention(attention, query, key, key, None, scaling=1.0)
    with torch.no_grad():
        prefix = SharedPrefix(prefix_cache(model, [5, 6, 7]))
    with pytest.raises(PaintersError, match="does not compute sliding_window"):
        shared_prefix_attention(attention, query, key, key, None, scaling=1.0, shared_prefix=prefix, sliding_window=4)


@pytest.mark.slow
def test_gsm8k_generations_are_the_same_through_shared_prefix_attention(painters_cache):
    """The embedded model's first 64 greedy tokens on 32 GSM8K documents, 8 rows at a time (rows stop
    at `Q:` and others take their place): through shared-prefix attention they are the exact path's."""
    model, tokenizer = load_model("smollm2-135m", cache_dir=painters_cache)
    prompts = [gsm8k.prompt(row["question"]) for row in load_docs("gsm8k")[:32]]
    plan = Plan.full(30)
    texts = [
        plan_greedy_texts(model, tokenizer, prompts, [plan], 64, gsm8k.STOP, 8, exact_attention=exact)[plan]
        for exact in (False, True)
    ]
    assert texts[0] == texts[1]
    assert len(set(texts[0])) > 30 and sum(map(len, texts[0])) > 32 * 60  # real, varied generations
