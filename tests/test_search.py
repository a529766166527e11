"""Plan search: candidates' scores are exact and shared, greedy keeps the best move, the budget holds,
a killed search resumes without recomputing, and the calibration never overlaps the held-out documents."""

import math

import pytest
import torch
import torch.nn.functional as F
from tiny import NUM_LAYERS, CharTokenizer, tiny_model

import painters.plan_search.objective as objective_module
from painters import Plan
from painters.core.errors import PaintersError
from painters.plan_search.calibration import Batch, Calibration, Source, _batch, check_disjoint, parse_source
from painters.plan_search.methods import Method, beam_search, one_shot_plans, parse_method
from painters.plan_search.objective import Evaluator, batch_totals
from painters.plan_search.spaces import drops, edits
from painters.study.store import Store

TEXTS = ["the cat sat on the mat and looked", "a rose is red, the sky is blue", "one two three four five six seven"]


def _calibration(width=40) -> Calibration:
    rows = sorted(([1, *CharTokenizer().encode(text)][:width] for text in TEXTS * 2), key=len, reverse=True)
    batches = (_batch(rows[:3]), _batch(rows[3:]))
    return Calibration(Source("test"), batches, "test 0")


def test_every_plan_of_a_round_scores_as_it_does_alone_bit_for_bit():
    model, batch = tiny_model("llama"), _calibration().batches[0]
    plans = drops(Plan.full(NUM_LAYERS)) + [Plan.parse("0-1,[2-3],4-5"), Plan.parse("0-2,2,4-5")]
    shared = batch_totals(model, batch, plans, None)
    for plan in plans:
        alone = batch_totals(model, batch, [plan], None)[plan]
        assert (shared[plan].loglik, shared[plan].kl) == (alone.loglik, alone.kl), plan


def test_the_objectives_are_the_log_likelihood_and_the_kl_from_the_full_model():
    model, batch = tiny_model("llama"), _calibration().batches[0]
    plan = Plan.parse("0-2,4-5")
    found = batch_totals(model, batch, [plan], None)
    with torch.no_grad():
        full = F.log_softmax(model(input_ids=batch.ids, attention_mask=batch.mask).logits[:, :-1].float(), -1)
        from painters import apply_plan

        with apply_plan(model, plan):
            planned = F.log_softmax(model(input_ids=batch.ids, attention_mask=batch.mask).logits[:, :-1].float(), -1)
    scored = batch.mask[:, 1:].bool()
    loglik = planned.gather(-1, batch.ids[:, 1:, None]).squeeze(-1)[scored].double().sum()
    kl = (full.exp() * (full - planned)).sum(-1)[scored].double().sum()
    assert found[plan].loglik == pytest.approx(float(loglik), rel=1e-9)
    assert found[plan].kl == pytest.approx(float(kl), rel=1e-4)
    assert found[Plan.full(NUM_LAYERS)].kl == 0.0 and found[plan].tokens == int(scored.sum())


def test_a_round_of_drops_computes_each_shared_step_once():
    """Full model first, then the drops of its last step to its first: L + (0 + 1 + ... + L-1) layer calls
    per token instead of L + L (L - 1)."""
    model, batch = tiny_model("llama"), _calibration().batches[0]
    found = batch_totals(model, batch, drops(Plan.full(NUM_LAYERS)), None)
    computed, unshared = sum(t.computed for t in found.values()), sum(t.unshared for t in found.values())
    L, tokens = NUM_LAYERS, batch.ids.numel()
    assert (computed, unshared) == ((L + L * (L - 1) // 2) * tokens, (L + L * (L - 1)) * tokens)


def test_greedy_keeps_the_best_drop_each_round_within_the_budget(tmp_path):
    model = tiny_model("llama")
    with Store(tmp_path / "s.db") as store:
        evaluator = Evaluator(model, store, "tiny", _calibration(), progress=False)
        found = beam_search(evaluator, [1, 3], 1, "skip", "ppl")
        first = evaluator.totals(drops(Plan.full(NUM_LAYERS)))
        best = min(first, key=lambda plan: (first[plan].value("ppl"), str(plan)))
        assert found[1].plans == (best,)
        assert len(found[3].plans[0].layers()) == NUM_LAYERS - 3
        assert found[3].candidates == 6 + 5 + 4
        again = evaluator.totals(drops(found[1].plans[0]))
        second = min(again, key=lambda plan: (again[plan].value("ppl"), str(plan)))
        assert set(second.layers()) >= set(found[3].plans[0].layers())  # the path is nested
        beam = beam_search(evaluator, [2], 3, "skip", "kl")[2].plans[0]
        totals = evaluator.totals([beam, beam_search(evaluator, [2], 1, "skip", "kl")[2].plans[0]])
        assert totals[beam].value("kl") <= min(t.value("kl") for t in totals.values())


def test_the_richer_space_swaps_and_repeats_within_the_same_calls(tmp_path):
    plan = Plan.parse("0-3")
    assert [str(p) for p in edits(plan)] == ["1-0,2-3", "0x2,2-3", "0,2-1,3", "0,1x2,3", "0-1,3-2", "0-1,2x2"]
    assert all(len(p.layers()) == 4 for p in edits(plan))
    with Store(tmp_path / "s.db") as store:
        evaluator = Evaluator(tiny_model("llama"), store, "tiny", _calibration(), progress=False)
        richer = beam_search(evaluator, [2], 1, "richer", "ppl")[2].plans[0]
        skip = beam_search(evaluator, [1], 1, "skip", "ppl")[1].plans[0]
        assert len(richer.layers()) <= NUM_LAYERS - 2
        round_two = evaluator.totals(drops(skip))
        assert evaluator.plan_totals(richer).value("ppl") <= min(t.value("ppl") for t in round_two.values())


def test_a_killed_search_resumes_without_recomputing_what_is_stored(tmp_path, monkeypatch):
    model, calibration = tiny_model("llama"), _calibration()
    with Store(tmp_path / "whole.db") as store:
        whole = beam_search(Evaluator(model, store, "tiny", calibration, progress=False), [3], 1, "skip", "ppl")[3]
    real, computed = objective_module.batch_totals, []

    def dies_after_four(model, batch, plans, memo_bytes):
        if len(computed) == 4:
            raise KeyboardInterrupt  # as a kill between two batches' transactions
        computed.append(len(plans))
        return real(model, batch, plans, memo_bytes)

    monkeypatch.setattr(objective_module, "batch_totals", dies_after_four)
    with Store(tmp_path / "s.db") as store, pytest.raises(KeyboardInterrupt):
        beam_search(Evaluator(model, store, "tiny", calibration, progress=False), [3], 1, "skip", "ppl")
    stored = sum(computed)
    computed.clear()
    monkeypatch.setattr(objective_module, "batch_totals", lambda *a: computed.append(len(a[2])) or real(*a))
    with Store(tmp_path / "s.db") as store:
        resumed = beam_search(Evaluator(model, store, "tiny", calibration, progress=False), [3], 1, "skip", "ppl")[3]
    assert resumed.plans == whole.plans and resumed.cost.values()[:5] == whole.cost.values()[:5]  # seconds aside
    assert stored + sum(computed) == 2 * (6 + 5 + 4)  # every (candidate, batch) computed once in all


def test_one_shot_baselines():
    assert one_shot_plans(Method("middle"), 30, 6) == (Plan.parse("0-11,18-29"),)
    draws = one_shot_plans(Method("random", 3), 30, 6)
    assert len(set(draws)) == 3 and all(len(p.layers()) == 24 for p in draws)
    assert draws == one_shot_plans(Method("random", 3), 30, 6)  # seeded
    assert parse_method("beam:4") == Method("beam", 4) and str(parse_method("random:5")) == "random:5"


@pytest.mark.parametrize("text", ["beam", "greedy:2", "random:0", "random:x", "sleb", ""])
def test_bad_methods_are_refused(text):
    with pytest.raises(PaintersError, match="--method"):
        parse_method(text)


def test_calibration_takes_the_last_documents_and_never_the_held_out_ones():
    source = parse_source("lambada_openai:64", None)
    assert (source.task, source.first, source.last) == ("lambada_openai", 5153 - 64, 5152)
    assert len(source.texts()) == 64
    check_disjoint(source, ["lambada_openai", "arc_easy"], 100)
    check_disjoint(parse_source("lambada_openai:0-9", None), ["arc_easy"], None)
    with pytest.raises(PaintersError, match=r"overlaps the held-out evaluation of lambada_openai \(documents 0-99\)"):
        check_disjoint(parse_source("lambada_openai:50-80", None), ["lambada_openai"], 100)
    with pytest.raises(PaintersError, match="every document"):
        check_disjoint(source, ["lambada_openai"], None)


@pytest.mark.parametrize("spec, message", [
    ("lambada_openai", "bad --calibration 'lambada_openai': give TASK:N"),
    ("lambada_openai:0", "give N from 1 to 5153"),
    ("lambada_openai:9-3", "give A <= B within them"),
    ("lambada_openai:1-6000", "has documents 0-5152"),
    ("nosuch:4", "unknown task 'nosuch'"),
    ("sst2:4", "sst2 is a GLUE task"),
])  # fmt: skip
def test_bad_calibration_sources_are_refused(spec, message):
    with pytest.raises(PaintersError, match=message):
        parse_source(spec, None)


def test_a_batch_scores_every_token_after_a_rows_first():
    batch = _batch([[5, 6, 7], [8, 9]])
    assert isinstance(batch, Batch) and batch.tokens == 3 and batch.ids.tolist() == [[5, 6, 7], [8, 9, 0]]
    assert math.isclose(float(batch.mask.sum()), 5)


def test_the_command_finds_stores_and_resumes_a_plan_within_the_budget(tmp_path, tiny_folder, monkeypatch, capsys):
    """End to end on a tiny model folder: the chosen plan is printed and written first, within the budget; a
    second run computes no candidate again and gives the same records."""
    import json
    import sys

    from painters.cli import main

    def run(*args):
        monkeypatch.setattr(sys, "argv", ["painters", *args])
        with pytest.raises(SystemExit) as exit:
            main()
        assert exit.value.code == 0, capsys.readouterr().err
        return capsys.readouterr().out

    monkeypatch.chdir(tmp_path)
    args = ["search", "-m", str(tiny_folder), "--remove", "1,2", "--db", "s.db", "--calibration", "lambada_openai:6",
            "--max-length", "24", "--eval-tasks", "arc_easy", "--limit", "4", "--baselines", "middle,random:2"]  # fmt: skip
    out = run(*args, "--json", "out.json")
    records = json.loads((tmp_path / "out.json").read_text())
    assert [(r["remove"], r["method"]) for r in records] == [
        (k, m) for k in (1, 2) for m in ("greedy", "middle", "random:2")
    ]
    assert out.split() == [records[0]["plan"], records[3]["plan"]]
    assert [r["calls"] for r in records[::3]] == [5, 4] and records[3]["cost"]["candidates"] == 6 + 5
    assert all(set(r["held_out"]) == {"arc_easy"} for r in records) and len(records[2]["plans"]) == 2
    monkeypatch.setattr(objective_module, "batch_totals", lambda *a: pytest.fail("a stored candidate was recomputed"))
    run(*args, "--json", "again.json")
    assert json.loads((tmp_path / "again.json").read_text()) == records


def test_paired_differences_are_taken_document_by_document():
    from painters.plan_search.held_out import paired

    documents = {"a": {("t", 0): -1.0, ("t", 1): -2.0, ("t", 2): -3.0}, "b": {("t", 0): -1.5, ("t", 1): -2.0, ("t", 2): -4.0},
                 "c": {("t", 0): -1.0, ("t", 1): -3.0, ("t", 2): -3.0}}  # fmt: skip
    mean, stderr, count = paired(documents, ["b"], ["a"])
    assert (count, mean) == (3, pytest.approx(-0.5)) and stderr == pytest.approx(math.sqrt(0.25 / 3))
    assert paired(documents, ["b", "c"], ["a"])[0] == pytest.approx((-0.25 - 0.5 - 0.5) / 3)  # draws: their mean
    assert paired(documents, ["a"], ["nothing"]) is None


def test_the_report_draws_one_figure_per_search_run(tmp_path):
    from painters.report.search import search_frame, search_section

    def record(remove, method, source, value, space="skip"):
        held = {"arc_easy": {"acc": [0.5, 0.05], "gold_ll_per_token": [value, 0.1]}}
        return {"remove": remove, "method": method, "plan": "0-3", "calls": 4, "objective": "ppl", "space": space,
                "calibration": {"source": source, "perplexity": 9.0, "kl_per_token": 0.5}, "held_out": held,
                "full_held_out": {"arc_easy": {"gold_ll_per_token": [-1.0, 0.1]}}, "held_out_limit": 10,
                "cost": {"candidates": 6, "layer_call_tokens": 50, "unshared_layer_call_tokens": 100, "seconds": 1.0},
                "versus_first": [0.0, 0.0, 10]}  # fmt: skip

    with Store(tmp_path / "s.db") as store:
        for key, r in [(("a", "greedy"), record(1, "greedy", "a", -2.0)), (("a", "middle"), record(1, "middle", "a", -2.5, "one-shot")),
                       (("b", "greedy"), record(1, "greedy", "b", -3.0))]:  # fmt: skip
            store.put_search("model", (key[0], "ppl", "skip", "arc_easy limit=10", key[1], 1), r)
        frame = search_frame(store.searches())
        assert list(frame.search_space) == ["skip"] * 3 and list(frame.held_out) == [-2.0, -2.5, -3.0]
        assert list(frame.sharing.dropna()) == [0.5, 0.5, 0.5]
        section = search_section(store, tmp_path)
    assert section.title == "Plan search" and len(section.figures) == 2  # sources a and b are never drawn together
    assert all(path.exists() for path, _ in section.figures) and len(section.table) == 3
