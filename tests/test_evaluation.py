"""`painters.evaluate` and `painters eval`: results in lm-eval's names, plans applied and restored, bad input."""

import json
import math

import pytest
from tiny import CharTokenizer, tiny_model

from painters import PaintersError, apply_plan, evaluate, load_model
from painters.cli import app
from painters.core.adapters import adapter_for
from painters.tasks import gsm8k
from painters.tasks.catalog import TASKS
from painters.tasks.data import load_docs
from painters.tasks.metrics import mean_stderr
from painters.tasks.scoring import encode_pair


def test_evaluate_reports_lm_eval_metrics_with_standard_errors():
    model = tiny_model("llama")
    layers = adapter_for("llama").layer_list(model)
    result = evaluate(
        model, CharTokenizer(), "0-1,[2-3]x2,4-5", ["arc_easy", "lambada_openai"], limit=5, progress=False
    )
    assert adapter_for("llama").layer_list(model) is layers  # restored
    assert result["plan"] == "0-1,[2-3]x2,4-5" and result["limit"] == 5
    arc = result["results"]["arc_easy"]
    assert set(arc) == {
        "acc",
        "acc_stderr",
        "acc_norm",
        "acc_norm_stderr",
        "gold_ll",
        "gold_ll_stderr",
        "gold_ll_per_token",
        "gold_ll_per_token_stderr",
        "chance",
        "docs",
    }
    assert arc["docs"] == 5 and arc["chance"] == sum(1 / len(r["lls"]) for r in result["samples"]["arc_easy"]) / 5
    golds = [record["lls"][record["gold"]] for record in result["samples"]["arc_easy"]]
    assert arc["gold_ll"] == sum(golds) / 5 and arc["gold_ll_stderr"] == mean_stderr(golds)
    accs = [record["acc"] for record in result["samples"]["arc_easy"]]
    assert arc["acc"] == sum(accs) / 5 and (arc["acc_stderr"] == mean_stderr(accs) or math.isnan(arc["acc_stderr"]))
    for record in result["samples"]["arc_easy"]:
        assert record["acc"] == float(max(range(len(record["lls"])), key=record["lls"].__getitem__) == record["gold"])
    lambada = result["results"]["lambada_openai"]
    lls = [record["lls"][0] for record in result["samples"]["lambada_openai"]]
    assert lambada["perplexity"] == pytest.approx(math.exp(-sum(lls) / 5))
    assert set(lambada) == {"perplexity", "perplexity_stderr", "acc", "acc_stderr", "gold_ll", "gold_ll_stderr",
                            "gold_ll_per_token", "gold_ll_per_token_stderr", "chance", "docs"}  # fmt: skip
    assert lambada["gold_ll"] == sum(lls) / 5 and lambada["chance"] == 0


def test_gold_ll_per_token_divides_by_the_gold_answers_tokens():
    """Per token: the gold continuation's log-likelihood over its token count, as lm-eval tokenizes it."""
    model, tokenizer = tiny_model("llama", seed=1), CharTokenizer()
    result = evaluate(model, tokenizer, None, ["arc_easy", "lambada_openai"], limit=4, progress=False)
    for name in ("arc_easy", "lambada_openai"):
        per_token = []
        for record, row in zip(result["samples"][name], load_docs(name)[:4], strict=True):
            doc = TASKS[name].build(row)
            tokens = len(encode_pair(tokenizer, *doc.pairs[doc.gold])[1])
            assert tokens == len(doc.pairs[doc.gold][1])  # one token a character, the leading space included
            assert record["gold_ll_per_token"] == record["gold_ll"] / tokens
            per_token.append(record["gold_ll"] / tokens)
        assert result["results"][name]["gold_ll_per_token"] == sum(per_token) / 4


def test_olmes_ranks_choices_by_log_likelihood_in_total_per_token_and_per_character():
    from painters.tasks.metrics import choice_scores

    lls, chars, tokens = [-4.0, -6.0, -4.0], (2, 6, 4), [2, 2, 1]
    # totals: choice 0 and 2 tie (the first wins); per token -2, -3, -4; per character -2, -1, -1
    assert choice_scores(("acc", "acc_per_token", "acc_per_char"), lls, 1, chars, tokens) == {
        "acc": 0.0, "acc_per_token": 0.0, "acc_per_char": 1.0,
    }  # fmt: skip
    assert choice_scores(("acc", "acc_norm"), lls, 0, chars, tokens) == {"acc": 1.0, "acc_norm": 0.0}


def test_an_olmes_task_scores_per_token_with_the_continuations_own_tokens():
    model, tokenizer = tiny_model("llama", seed=1), CharTokenizer()
    result = evaluate(model, tokenizer, None, ["arithmetic"], limit=6, progress=False)
    for record, row in zip(result["samples"]["arithmetic"], load_docs("arithmetic")[:6], strict=True):
        per_token = [ll / len(c) for ll, c in zip(record["lls"], row["continuations"], strict=True)]  # 1 a char
        assert record["acc_per_token"] == float(per_token.index(max(per_token)) == row["gold"])
        assert record["chance"] == 1 / len(row["continuations"]) == 0.1
    assert set(result["results"]["arithmetic"]) >= {"acc", "acc_per_token", "acc_per_char", "gold_ll_per_token"}


def test_summary_json_is_strict_json_with_null_for_undefined_stderr():
    from painters.tasks.evaluation import summary_json

    result = evaluate(tiny_model("llama"), CharTokenizer(), None, ["boolq"], limit=1, progress=False)
    written = json.loads(summary_json(result))
    assert written["results"]["boolq"]["acc_stderr"] is None and written["results"]["boolq"]["docs"] == 1
    assert set(written) == {"model", "plan", "limit", "results"}


def test_full_plan_equals_no_plan():
    model = tiny_model("qwen2")
    unplanned = evaluate(model, CharTokenizer(), None, ["piqa"], limit=4, progress=False)
    full = evaluate(model, CharTokenizer(), "0-5", ["piqa"], limit=4, progress=False)
    assert unplanned["results"] == full["results"] and unplanned["plan"] == "0-5"


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m: evaluate(m, CharTokenizer(), None, ["mmlu"]), "unknown task 'mmlu': valid tasks are arc_easy"),
        (lambda m: evaluate(m, CharTokenizer(), None, ["piqa"], limit=0), "limit=0 is out of range"),
        (lambda m: evaluate(tiny_model("bert"), CharTokenizer(), None, ["piqa"]), "'bert' is an encoder"),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(PaintersError, match=message):
        call(tiny_model("llama"))


@pytest.mark.slow
def test_gsm8k_generates_under_the_plan_and_scores_exact_match(painters_cache):
    model, tokenizer = load_model("smollm2-135m", cache_dir=painters_cache)
    result = evaluate(model, tokenizer, "0-29", ["gsm8k"], limit=2, batch_size=2, progress=False)
    summary = result["results"]["gsm8k"]
    assert set(summary) == {"exact_match", "exact_match_stderr", "exact_match_flexible", "exact_match_flexible_stderr",
                            "gold_ll", "gold_ll_stderr", "gold_ll_per_token", "gold_ll_per_token_stderr",
                            "chance", "docs"}  # fmt: skip
    assert summary["chance"] == 0
    for record in result["samples"]["gsm8k"]:
        assert "Q:" not in record["generation"] and record["generation"].strip()
        assert record["exact_match"] == float(record["answer"].replace(",", "") == record["gold"].replace(",", ""))
    assert result["samples"]["gsm8k"][0]["gold"] == "18"


def test_the_gsm8k_reference_solution_is_written_like_the_exemplars():
    answer = "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips altogether " \
             "in April and May.\n#### 72"  # fmt: skip
    assert gsm8k.solution(answer) == (
        "Natalia sold 48/2 = 24 clips in May. Natalia sold 48+24 = 72 clips altogether in April and May. "
        "The answer is 72."
    )


@pytest.mark.slow
def test_gsm8k_gold_ll_is_lm_eval_loglikelihood_of_the_solution_after_the_prompt(painters_cache):
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    model, tokenizer = load_model("smollm2-135m", cache_dir=painters_cache)
    for plan in (None, "0-11,18-29"):
        result = evaluate(model, tokenizer, plan, ["gsm8k"], limit=3, progress=False, generate=False)
        rows = load_docs("gsm8k")[:3]
        requests = [Instance("loglikelihood", row, (gsm8k.prompt(row["question"]), " " + gsm8k.solution(row["answer"])),
                             i) for i, row in enumerate(rows)]  # fmt: skip
        with apply_plan(model, plan):
            theirs = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=3).loglikelihood(requests)
        for record, (ll, _), request in zip(result["samples"]["gsm8k"], theirs, requests, strict=True):
            assert record["gold_ll"] == pytest.approx(ll, abs=1e-3)
            tokens = len(tokenizer.encode(request.arguments[0] + request.arguments[1])) - len(
                tokenizer.encode(request.arguments[0]))  # fmt: skip
            assert record["gold_ll_per_token"] == pytest.approx(ll / tokens, abs=1e-5)
        summary = result["results"]["gsm8k"]
        assert set(summary) == {"gold_ll", "gold_ll_stderr", "gold_ll_per_token", "gold_ll_per_token_stderr",
                                "chance", "docs"}  # fmt: skip


@pytest.mark.slow
def test_eval_command_prints_a_table_and_writes_json(tmp_path, painters_cache, monkeypatch):
    from typer.testing import CliRunner

    monkeypatch.setenv("PAINTERS_CACHE", str(painters_cache))
    out = tmp_path / "scores.json"
    args = ["eval", "--plan", "skip:n=6", "--tasks", "arc_easy,winogrande", "--limit", "4", "--json", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "plan: 0-11,18-29" in result.output and "arc_easy" in result.output
    written = json.loads(out.read_text())
    assert written["model"] == "smollm2-135m" and written["plan"] == "0-11,18-29" and written["limit"] == 4
    model, tokenizer = load_model("smollm2-135m", cache_dir=painters_cache)
    direct = evaluate(model, tokenizer, "0-11,18-29", ["arc_easy", "winogrande"], limit=4, progress=False)
    assert written["results"] == json.loads(json.dumps(direct["results"]))
    assert set(written["results"]["arc_easy"]) >= {
        f"{m}{s}" for m in TASKS["arc_easy"].metrics for s in ("", "_stderr")
    }


@pytest.mark.slow
def test_lm_eval_harness_passthrough_runs_the_planned_model(tmp_path, painters_cache):
    import lm_eval_reference

    from painters.tasks.harness import evaluate_with_lm_eval

    model, tokenizer = load_model("smollm2-135m", cache_dir=painters_cache)
    configs = lm_eval_reference.task_configs(["arc_easy"], tmp_path, 6)
    theirs = evaluate_with_lm_eval(model, tokenizer, "0-11,18-29", configs, limit=6)
    ours = evaluate(model, tokenizer, "0-11,18-29", ["arc_easy"], limit=6, progress=False)
    assert theirs["plan"] == "0-11,18-29"
    assert theirs["results"]["local_arc_easy"]["acc"] == ours["results"]["arc_easy"]["acc"]
    assert theirs["results"]["local_arc_easy"]["acc_norm"] == ours["results"]["arc_easy"]["acc_norm"]
    assert adapter_for("llama").layer_list(model).__class__.__name__ == "ModuleList"  # restored
