"""painters' benchmarks against lm-eval-harness itself: same prompts, same predictions, same numbers."""

import math
import random

import pytest

pytest.importorskip("lm_eval", reason="lm-eval is optional (painters[lm-eval]); the locked CI run has it")

import lm_eval_reference
from lm_eval.api.metrics import bootstrap_stderr, mean_stderr, perplexity
from lm_eval.tasks import TaskManager

from painters import evaluate, load_model
from painters.tasks import gsm8k
from painters.tasks.catalog import TASKS
from painters.tasks.data import SPLITS, load_docs
from painters.tasks.metrics import aggregate, perplexity_stderr


def close(ours: float, theirs: float) -> bool:
    """Within 1e-4, or one part in a million where |LL| is so large (>= 100, as under damaging plans) that
    float32 sums, ours and lm-eval's alike, cannot be closer: their spacing is 1.2e-4 at |LL| >= 1024."""
    return math.isclose(ours, theirs, rel_tol=1e-6, abs_tol=1e-4)


OLMES_TASKS = [name for name in SPLITS if SPLITS[name].requests]  # lm-eval runs them as `lm_eval_reference.OLMES`
SCORED = ("multiple_choice", "loglikelihood")
LOGLIKELIHOOD_TASKS = [name for name, task in TASKS.items() if task.kind in SCORED and name not in OLMES_TASKS]
DOCS = 30


@pytest.fixture(scope="module")
def lm_eval_tasks(tmp_path_factory):
    configs = lm_eval_reference.task_configs(
        [*lm_eval_reference.CONFIGS, *OLMES_TASKS], tmp_path_factory.mktemp("lm-eval-data"), DOCS
    )
    loaded = TaskManager().load(configs)
    tasks = {name.removeprefix("local_"): task for name, task in loaded["tasks"].items()}
    for task in tasks.values():
        task.build_all_requests(limit=DOCS, rank=0, world_size=1)
    return tasks


@pytest.mark.parametrize("name", LOGLIKELIHOOD_TASKS + OLMES_TASKS)
def test_requests_equal_lm_eval_requests(lm_eval_tasks, name):
    """Every (context, continuation) pair of the first documents, character for character."""
    theirs: dict[int, list[tuple[str, str]]] = {}
    for instance in lm_eval_tasks[name].instances:
        theirs.setdefault(instance.doc_id, []).append(tuple(instance.arguments))
    ours = [list(TASKS[name].build(row).pairs) for row in load_docs(name)[:DOCS]]
    assert ours == [theirs[i] for i in range(DOCS)]


def test_gsm8k_prompt_and_stops_equal_lm_eval(lm_eval_tasks):
    instances = sorted(lm_eval_tasks["gsm8k"].instances, key=lambda instance: instance.doc_id)
    for instance, row in zip(instances, load_docs("gsm8k")[:DOCS], strict=True):
        context, generation_kwargs = instance.arguments
        assert context == gsm8k.prompt(row["question"])
        assert tuple(generation_kwargs["until"]) == gsm8k.STOP


def test_standard_errors_equal_lm_eval():
    rng = random.Random(3)
    accs = [float(rng.random() < 0.4) for _ in range(57)]
    lls = [-rng.random() * 6 for _ in range(41)]
    assert aggregate("acc", accs)[1] == mean_stderr(accs)
    assert perplexity_stderr(lls, iters=4000) == bootstrap_stderr(perplexity, lls, iters=4000)
    assert aggregate("perplexity", lls)[0] == perplexity(lls)


@pytest.mark.parametrize(
    "text, strict, flexible",
    [("So 5 + 4 = 9. The answer is 9.", "9", "9."), ("It costs $1,234. The answer is 1,234.\n", "1,234", "1,234."),
     ("no number here", "[invalid]", "[invalid]"), ("We get 18 and then -3", "[invalid]", "-3")],
)  # fmt: skip
def test_gsm8k_answer_extraction_equals_lm_eval_filters(lm_eval_tasks, text, strict, flexible):
    ensembles = {f.name: f for f in lm_eval_tasks["gsm8k"]._filters}
    theirs = {name: list(ensemble.filters[0]().apply([[text]], [{}]))[0][0] for name, ensemble in ensembles.items()}
    assert (gsm8k.strict_answer(text), gsm8k.flexible_answer(text)) == (
        theirs["strict-match"],
        theirs["flexible-extract"],
    )
    assert (strict, flexible) == (theirs["strict-match"], theirs["flexible-extract"])


@pytest.mark.slow
@pytest.mark.parametrize("plan", [None, "0-11,18-29"])
def test_scores_equal_lm_eval_on_smollm(plan, tmp_path, painters_cache):
    model, tokenizer = load_model("smollm2-135m", cache_dir=painters_cache)
    ours = evaluate(model, tokenizer, plan, LOGLIKELIHOOD_TASKS, limit=DOCS, progress=False)
    theirs = lm_eval_reference.run(model, tokenizer, plan or "0-29", LOGLIKELIHOOD_TASKS, tmp_path, DOCS, batch_size=8)
    for name in LOGLIKELIHOOD_TASKS:
        for mine, reference in zip(ours["samples"][name], theirs["samples"][name], strict=True):
            their_lls = [ll for ll, _ in reference["filtered_resps"]]
            assert all(close(a, b) for a, b in zip(mine["lls"], their_lls, strict=True)), (name, mine["lls"], their_lls)
            for metric in TASKS[name].metrics:
                if metric != "perplexity":
                    assert mine[metric] == reference[metric], (name, metric, reference["doc_id"])
        for metric in TASKS[name].metrics:
            assert ours["results"][name][metric] == pytest.approx(theirs["results"][name][metric], rel=1e-4)
            their_stderr = theirs["results"][name][f"{metric}_stderr"]
            assert ours["results"][name][f"{metric}_stderr"] == pytest.approx(their_stderr, rel=1e-3)


OLMES_DOCS = 20


@pytest.mark.slow
@pytest.mark.parametrize("plan", [None, "0-11,17-12,18-29"])
def test_olmes_scores_equal_lm_eval_and_olmes_ranking(plan, tmp_path, painters_cache):
    """Each request's log-likelihood is lm-eval's; acc and acc_per_char are lm-eval's acc and acc_norm (whose
    characters are the continuation's, its space included: OLMES's); acc_per_token ranks lm-eval's
    log-likelihoods per continuation token, as OLMES does."""
    from lm_eval.models.huggingface import HFLM

    model, tokenizer = load_model("smollm2-135m", cache_dir=painters_cache)
    ours = evaluate(model, tokenizer, plan, OLMES_TASKS, limit=OLMES_DOCS, progress=False)
    theirs = lm_eval_reference.run(model, tokenizer, plan or "0-29", OLMES_TASKS, tmp_path, OLMES_DOCS, batch_size=8)
    harness = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=1)
    for name in OLMES_TASKS:
        rows = load_docs(name)[:OLMES_DOCS]
        for mine, reference, row in zip(ours["samples"][name], theirs["samples"][name], rows, strict=True):
            their_lls = [ll for ll, _ in reference["filtered_resps"]]
            assert all(close(a, b) for a, b in zip(mine["lls"], their_lls, strict=True)), (name, mine["lls"], their_lls)
            assert (mine["acc"], mine["acc_per_char"]) == (reference["acc"], reference["acc_norm"]), name
            tokens = [len(harness._encode_pair(row["context"], c)[1]) for c in row["continuations"]]
            per_token = [ll / n for ll, n in zip(their_lls, tokens, strict=True)]
            assert mine["acc_per_token"] == float(per_token.index(max(per_token)) == row["gold"]), name
        for metric, their_metric in (("acc", "acc"), ("acc_per_char", "acc_norm")):
            assert ours["results"][name][metric] == pytest.approx(theirs["results"][name][their_metric], rel=1e-4)


GSM8K_PLANS = [None, "0-11,18-29"]


def same_generations(ours: list[dict], theirs: list[dict]) -> None:
    """Each document's generation, extracted answers and exact matches equal lm-eval's samples."""
    by_filter = {(s["doc_id"], s["filter"]): s for s in theirs}
    assert len(by_filter) == 2 * len(ours)
    for doc, mine in enumerate(ours):
        strict, flexible = by_filter[doc, "strict-match"], by_filter[doc, "flexible-extract"]
        assert mine["generation"] == strict["resps"][0][0]
        assert (mine["answer"], mine["answer_flexible"]) == (strict["filtered_resps"][0], flexible["filtered_resps"][0])
        assert (mine["exact_match"], mine["exact_match_flexible"]) == (strict["exact_match"], flexible["exact_match"])


@pytest.mark.slow
@pytest.mark.parametrize("plan", GSM8K_PLANS)
def test_gsm8k_generations_and_answers_equal_lm_eval(tmp_path, painters_cache, plan):
    """The first 5 documents, batched 4 at a time, so that the fifth joins as the first ones finish."""
    model, tokenizer = load_model("smollm2-135m", cache_dir=painters_cache)
    ours = evaluate(model, tokenizer, plan, ["gsm8k"], limit=5, batch_size=4, progress=False)["samples"]["gsm8k"]
    theirs = lm_eval_reference.run(model, tokenizer, plan or "0-29", ["gsm8k"], tmp_path, 5, batch_size=5)
    same_generations(ours, theirs["samples"]["gsm8k"])


@pytest.mark.slow
def test_gsm8k_generations_of_more_documents_equal_lm_eval(tmp_path, painters_cache):
    """16 documents, 8 rows at a time against lm-eval's 16: rows stopping at different lengths, many refills;
    through shared-prefix attention and through the model's own (`--exact-attention`)."""
    model, tokenizer = load_model("smollm2-135m", cache_dir=painters_cache)
    theirs = lm_eval_reference.run(model, tokenizer, "0-29", ["gsm8k"], tmp_path, 16, batch_size=16)
    for exact in (False, True):
        found = evaluate(
            model, tokenizer, None, ["gsm8k"], limit=16, batch_size=8, progress=False, exact_attention=exact
        )  # fmt: skip
        same_generations(found["samples"]["gsm8k"], theirs["samples"]["gsm8k"])


BF16_DOCS = 20


@pytest.mark.slow
@pytest.mark.parametrize("plan", [None, "0-11,18-29"])
def test_bfloat16_scores_equal_lm_eval_on_smollm(plan, tmp_path, painters_cache):
    """In bfloat16 padding a sequence changes its rounding, so lm-eval's own numbers depend on its batch
    size; at batch size 1 (each request alone) painters' log-likelihoods and predictions are its, exactly."""
    model, tokenizer = load_model("smollm2-135m", dtype="bfloat16", cache_dir=painters_cache)
    ours = evaluate(model, tokenizer, plan, LOGLIKELIHOOD_TASKS, limit=BF16_DOCS, progress=False)
    theirs = lm_eval_reference.run(model, tokenizer, plan or "0-29", LOGLIKELIHOOD_TASKS, tmp_path, BF16_DOCS, 1)
    for name in LOGLIKELIHOOD_TASKS:
        for mine, reference in zip(ours["samples"][name], theirs["samples"][name], strict=True):
            assert mine["lls"] == [ll for ll, _ in reference["filtered_resps"]], (name, reference["doc_id"])
            for metric in TASKS[name].metrics:
                if metric != "perplexity":
                    assert mine[metric] == reference[metric], (name, metric, reference["doc_id"])


BOS_DOCS = 3


@pytest.fixture(scope="module")
def bos_tokenizer(painters_cache):
    """The embedded tokenizer made to add a BOS token, as Llama-2's and Gemma's do."""
    model, tokenizer = load_model("smollm2-135m", cache_dir=painters_cache)
    tokenizer.add_bos_token = True
    assert tokenizer.encode("Hi")[0] == tokenizer.bos_token_id
    return model, tokenizer


def test_a_bos_tokenizer_encodes_every_request_as_lm_eval_does(lm_eval_tasks, bos_tokenizer):
    from lm_eval.models.huggingface import HFLM

    from painters.tasks.scoring import encode_pair

    model, tokenizer = bos_tokenizer
    harness = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=1)
    for name in LOGLIKELIHOOD_TASKS + OLMES_TASKS:
        for instance in lm_eval_tasks[name].instances:
            context, continuation = instance.arguments
            theirs = (
                ([harness.prefix_token_id], harness.tok_encode(continuation, add_special_tokens=False))
                if context == ""
                else harness._encode_pair(context, continuation)
            )
            assert encode_pair(tokenizer, context, continuation) == tuple(theirs), (name, context[-40:])
    prompts = [instance.arguments[0] for instance in lm_eval_tasks["gsm8k"].instances[:BOS_DOCS]]
    theirs, _ = harness.tok_batch_encode(prompts[:1])
    assert theirs[0].tolist()[0] == tokenizer.bos_token_id
    from painters.tasks.scoring import encode

    assert encode(tokenizer, prompts[0]) == theirs[0].tolist()


@pytest.mark.slow
def test_a_bos_tokenizer_scores_equal_lm_eval(bos_tokenizer, tmp_path):
    model, tokenizer = bos_tokenizer
    ours = evaluate(model, tokenizer, None, LOGLIKELIHOOD_TASKS, limit=BOS_DOCS, progress=False)
    theirs = lm_eval_reference.run(model, tokenizer, "0-29", LOGLIKELIHOOD_TASKS, tmp_path, BOS_DOCS, batch_size=8)
    for name in LOGLIKELIHOOD_TASKS:
        for mine, reference in zip(ours["samples"][name], theirs["samples"][name], strict=True):
            their_lls = [ll for ll, _ in reference["filtered_resps"]]
            assert all(close(a, b) for a, b in zip(mine["lls"], their_lls, strict=True)), (name, mine["lls"], their_lls)
