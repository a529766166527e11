"""The log-likelihood engine against a naive one-sequence-at-a-time computation, under plans, on tiny models."""

import pytest
import torch
import torch.nn.functional as F
from tiny import DECODERS, CharTokenizer, tiny_model

from painters import PaintersError, Plan, apply_plan
from painters.core.adapters import has_sliding_window
from painters.tasks.catalog import Doc
from painters.tasks.scoring import batching, encode_pair, loglikelihoods, plan_loglikelihoods, truncate


def naive(model, tokenizer, doc):
    """Each pair alone: the whole sequence through the model, no cache, no batching."""
    scores = []
    for context, continuation in doc.pairs:
        context_tokens, continuation_tokens = encode_pair(tokenizer, context, continuation)
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([context_tokens + continuation_tokens[:-1]])).logits[0]
        logprobs = F.log_softmax(logits.float(), -1)[len(context_tokens) - 1 :]
        target = torch.tensor(continuation_tokens)
        scores.append((logprobs.gather(-1, target[:, None]).sum().item(), bool((logprobs.argmax(-1) == target).all())))
    return scores


DOCS = [
    Doc((("Question: what is red?\nAnswer:", " a rose"), ("Question: what is red?\nAnswer:", " the sky at noon"),
         ("Question: what is red?\nAnswer:", " x"))),
    Doc((("Short ", "continuation"), ("Short ", "c"))),  # trailing space moves into the continuation
    Doc((("The cat sat on the", " mat"),)),
    Doc((("Option one fills the blank", " and the rest"), ("Option two", " and the rest"))),
    Doc((("A much longer context that needs more padding than the others in its batch", " end"),)),
]  # fmt: skip


def test_encode_pair_moves_trailing_spaces_like_lm_eval():
    tokenizer = CharTokenizer()
    assert encode_pair(tokenizer, "Answer: ", "yes") == (tokenizer.encode("Answer:"), tokenizer.encode(" yes"))


@pytest.mark.parametrize("model_type", DECODERS)
@pytest.mark.parametrize("plan", ["0-5", "0,[1-4]x2,5", "0-1,4-2,5"])
def test_batched_shared_context_scores_equal_naive_scores(model_type, plan):
    model, tokenizer = tiny_model(model_type), CharTokenizer()
    with apply_plan(model, plan):
        expected = [naive(model, tokenizer, doc) for doc in DOCS]
        for batch_size, max_tokens in ((1, 1024), (2, 1024), (8, 1024), (8, 24)):  # 24: many passes and chunks
            got = loglikelihoods(model, tokenizer, DOCS, batch_size=batch_size, max_tokens=max_tokens)
            for mine, reference in zip(got, expected, strict=True):
                assert [greedy for _, greedy in mine] == [greedy for _, greedy in reference]
                assert max(abs(a - b) for (a, _), (b, _) in zip(mine, reference, strict=True)) <= 1e-4


FEW_SHOT = "Q: two and two?\nA: four.\n\nQ: three and one?\nA: four.\n\n"
FEW_SHOT_DOCS = [Doc(((f"{FEW_SHOT}Q: {q}\nA:", f" {a}"),)) for q, a in
                 (("one and one?", "two."), ("five and five?", "ten, I think."), ("x?", "y"), ("a longer one?", "z"))]  # fmt: skip


@pytest.mark.parametrize("model_type", DECODERS)
def test_a_shared_few_shot_prefix_runs_once_and_changes_no_score(model_type):
    model, tokenizer = tiny_model(model_type), CharTokenizer()
    with apply_plan(model, "0,[1-4]x2,5"):
        expected = [naive(model, tokenizer, doc) for doc in FEW_SHOT_DOCS]
        widths = []
        hook = model.get_input_embeddings().register_forward_hook(lambda _, args, __: widths.append(args[0].shape))
        got = loglikelihoods(model, tokenizer, FEW_SHOT_DOCS, batch_size=2, max_tokens=64, shared_prefix=True)
        hook.remove()
    for mine, reference in zip(got, expected, strict=True):
        assert mine[0][1] == reference[0][1] and abs(mine[0][0] - reference[0][0]) <= 1e-4
    prefix = (1, len(FEW_SHOT) + len("Q: "))  # the shared tokens, once per batch (of 2 docs), for one row
    if has_sliding_window(model.config):  # padding after the prefix would take places in the window
        assert prefix not in widths
    else:
        assert widths.count(prefix) == 2 and all(width[1] < len(FEW_SHOT) for width in widths if width != prefix)


OTHER_SHOTS = "Q: one and three?\nA: four.\n\n"
MIXED_DOCS = [  # OLMES gives the documents that are themselves shots other shots: they share no prefix
    Doc(((f"{FEW_SHOT}Q: {q}\nA:", f" {a}"), (f"{FEW_SHOT}Q: {q}\nA:", " no")), 0, (), FEW_SHOT) for q, a in
    (("one and one?", "two."), ("five?", "five"), ("x?", "y"))
] + [Doc(((f"{OTHER_SHOTS}Q: two and two?\nA:", " four."), (f"{OTHER_SHOTS}Q: two and two?\nA:", " no")), 0, (),
         OTHER_SHOTS)]  # fmt: skip


@pytest.mark.parametrize("model_type", ["llama", "gpt2"])
def test_documents_with_another_few_shot_prompt_run_without_the_shared_prefix(model_type):
    model, tokenizer = tiny_model(model_type), CharTokenizer()
    batched = batching(model, tokenizer, MIXED_DOCS, batch_size=2, max_tokens=256, shared_prefix=True)
    assert batched.prefix == tokenizer.encode(FEW_SHOT + "Q: ")  # the three sharing documents' common tokens
    assert batched.prefixed == 2 and len(batched.batches) == 3  # their 2 batches; the other doc's batch afresh
    assert batched.prefix_of(2) == [] and [g.targets[0][0] for g in batched.batches[2]] == [3]
    expected = [naive(model, tokenizer, doc) for doc in MIXED_DOCS]
    got = loglikelihoods(model, tokenizer, MIXED_DOCS, batch_size=2, max_tokens=256, shared_prefix=True)
    for mine, reference in zip(got, expected, strict=True):
        assert [greedy for _, greedy in mine] == [greedy for _, greedy in reference]
        assert max(abs(a - b) for (a, _), (b, _) in zip(mine, reference, strict=True)) <= 1e-4


def test_shared_prefix_under_plans_sharing_steps_is_bitwise_each_plan_alone():
    model, tokenizer = tiny_model("llama"), CharTokenizer()
    plans = [Plan.parse(text) for text in ("0-5", "0-2,5", "0-1,[2-3]x2,4-5")]
    shared = plan_loglikelihoods(model, tokenizer, FEW_SHOT_DOCS, plans, batch_size=2, max_tokens=64,
                                 shared_prefix=True)  # fmt: skip
    for plan in plans:
        with apply_plan(model, plan):
            alone = loglikelihoods(model, tokenizer, FEW_SHOT_DOCS, batch_size=2, max_tokens=64, shared_prefix=True)
        assert shared[plan] == alone


def test_progress_counts_every_pair():
    counted = []
    loglikelihoods(tiny_model("llama"), CharTokenizer(), DOCS, batch_size=2, progress=counted.append)
    assert sum(counted) == sum(len(doc.pairs) for doc in DOCS)


class SpecialTokenizer(CharTokenizer):
    bos_token_id, eos_token_id = None, 2


def test_empty_context_is_the_prefix_token_and_empty_continuations_are_refused():
    tokenizer = SpecialTokenizer()
    assert encode_pair(tokenizer, "", " word") == ([2], tokenizer.encode(" word"))
    with pytest.raises(PaintersError, match="continuation '' encodes to no tokens"):
        encode_pair(tokenizer, "context", "")


def test_long_inputs_are_cut_from_the_left_to_fit_the_model():
    assert truncate(list(range(10)), [7, 8, 9], max_length=8) == [4, 5, 6, 7, 8, 9]
    assert truncate([1, 2], [3], max_length=8) == [1, 2]
    model = tiny_model("gpt2")  # 128 positions
    doc = Doc((("x" * 300, " abc"),))
    (score,) = loglikelihoods(model, CharTokenizer(), [doc])[0]
    context, continuation = encode_pair(CharTokenizer(), "x" * 300, " abc")
    inputs = (context + continuation)[-(128 + 1) :][:-1]
    with torch.no_grad():
        logprobs = F.log_softmax(model(input_ids=torch.tensor([inputs])).logits[0].float(), -1)[-len(continuation) :]
    expected = logprobs.gather(-1, torch.tensor(continuation)[:, None]).sum().item()
    assert abs(score[0] - expected) <= 1e-4
