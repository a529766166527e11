"""Speed per plan: the measurements' arithmetic, what a sweep records, and the report's trade-off view.

No test asserts a timing (they depend on the machine): the numbers checked are the ones that do not.
"""

import html
import io
import json
import math

import numpy as np
import pandas as pd
import pytest
from tiny import CharTokenizer, tiny_model

import painters.study.units as units_module
from painters import PaintersError
from painters.report.page import report
from painters.report.tradeoff import pareto_front
from painters.study.fingerprints import model_fingerprint
from painters.study.grid import grid
from painters.study.store import Cell, Label, Store
from painters.study.sweep import sweep
from painters.tools.bench import FIGURES, SPEEDUP_SHAPE, Shape, _row, bench, format_table, summary_json

SHAPE = Shape(batch_size=2, prompt_tokens=8, new_tokens=3)


@pytest.mark.parametrize("model_type", ["llama", "gpt2", "bert"])
def test_bench_measures_every_plan_against_the_full_model(model_type):
    model = tiny_model(model_type)
    rows = bench(model, ["0-2", "0-5", "0-1,[2-3]x2,4-5"], SHAPE, rounds=2)
    assert [row["plan"] for row in rows] == ["0-5", "0-2", "0-1,[2-3]x2,4-5"]  # the full model once, first
    assert [row["layer_calls"] for row in rows] == [6, 3, 8]
    assert all(rows[0][f"{f}_ratio"] == 1.0 or math.isnan(rows[0][f"{f}_ratio"]) for f in FIGURES)
    assert all(row["prefill_tokens_per_s"] > 0 and row["peak_mib"] > 0 for row in rows)
    decodes = [row["decode_ms_batch_1"] for row in rows] + [row["decode_ms_batch_b"] for row in rows]
    if model_type == "bert":
        assert all(math.isnan(value) for value in decodes)  # an encoder does not decode
        assert json.loads(summary_json(rows, "tiny", "cpu", SHAPE, 2))["rows"][1]["decode_ms_batch_1"] is None
    else:
        assert all(value > 0 for value in decodes)
    assert model.config.num_hidden_layers == 6  # every plan was restored


def test_ratios_are_speed_ups_and_memory_fractions():
    full = {"prefill_tokens_per_s": [100, 100, 100], "decode_ms_batch_1": [10, 12, 14],
            "decode_ms_batch_b": [20, 20, 20], "peak_mib": [1000, 1000, 1000]}  # fmt: skip
    plan = {"prefill_tokens_per_s": [150, 100, 200], "decode_ms_batch_1": [6, 5, 7],
            "decode_ms_batch_b": [40, 40, 40], "peak_mib": [900, 900, 900]}  # fmt: skip
    row = _row("0-2", 3, plan, full)
    assert row["prefill_tokens_per_s"] == 150 and row["prefill_tokens_per_s_ratio"] == 1.5
    assert row["prefill_tokens_per_s_spread"] == (200 - 100) / 150
    assert row["decode_ms_batch_1"] == 6 and row["decode_ms_batch_1_ratio"] == 2.0  # twice as fast
    assert row["decode_ms_batch_b_ratio"] == 0.5  # half as fast
    assert row["peak_mib_ratio"] == 0.9  # memory: the plan's share of the full model's
    text = format_table([row], SHAPE, "cpu")
    assert text.splitlines()[0].split() == ["plan", "calls", "prefill", "tok/s", "decode", "ms/tok", "b=1",
                                            "decode", "ms/tok", "b=2", "peak", "MiB"]  # fmt: skip
    assert text.splitlines()[1].split() == ["0-2", "3", "150.0", "x1.50", "±67%", "6.0", "x2.00", "±33%",
                                            "40.0", "x0.50", "±0%", "900.0", "x0.90", "±0%"]  # fmt: skip


@pytest.mark.parametrize(
    "shape, rounds, message",
    [
        (Shape(0, 8, 3), 1, "--batch-size 0 is out of range: give a whole number >= 1"),
        (Shape(1, 0, 3), 1, "--prompt-tokens 0 is out of range"),
        (Shape(1, 8, -1), 1, "--new-tokens -1 is out of range: give a whole number >= 0"),
        (Shape(1, 8, 3), 0, "--rounds 0 is out of range"),
        (Shape(1, 120, 9), 1, "--prompt-tokens 120 plus --new-tokens 9 exceed the model's 128 positions"),
    ],
)
def test_bad_shapes_are_one_line_errors(shape, rounds, message):
    with pytest.raises(PaintersError, match=message.replace("+", r"\+")):
        bench(tiny_model("llama"), ["0-2"], shape, rounds)


def test_decode_runs_through_the_kv_cache_one_token_per_step():
    model = tiny_model("llama")
    seen = []
    hook = model.model.layers[0].register_forward_pre_hook(lambda _, args: seen.append(args[0].shape[1]))
    with hook:
        bench(model, ["0-5"], Shape(batch_size=2, prompt_tokens=8, new_tokens=3), rounds=1)
    # per round: the prefill, then for batch 1 and batch 2 a cached prefill and 3 single-token steps
    assert seen == [8, 8, 1, 1, 1, 8, 1, 1, 1] * 2


def test_pareto_front_keeps_the_plans_no_other_beats_on_both():
    speed = pd.Series([1.0, 1.2, 1.1, 1.5, 1.5, 0.9])
    score = pd.Series([1.0, 0.8, 0.7, 0.3, 0.2, 1.1])
    assert pareto_front(speed, score).tolist() == [True, True, False, True, False, True]


def test_a_sweep_records_each_plans_speed_up_once(tmp_path, monkeypatch):
    model = tiny_model("llama")
    points = grid(6, ["skip", "parallel"], [2, 4])
    with Store(tmp_path / "r.db") as store:
        sweep(model, CharTokenizer(), "tiny", points, ["arc_easy"], store, limit=3, progress=False)
        speeds = {row["plan"]: row for row in store.query("SELECT * FROM speeds")}
        assert sorted(speeds) == sorted(str(point.plan) for point in points)
        assert speeds["0-5"]["speedup"] == 1.0
        assert json.loads(speeds["0-1,4-5"]["shape"]) == vars(SPEEDUP_SHAPE)
        assert all(row["speedup"] > 0 for row in speeds.values())
        monkeypatch.setattr(units_module, "speedups", lambda *_, **__: pytest.fail("measured a plan again"))
        sweep(model, CharTokenizer(), "tiny", points, ["arc_easy", "winogrande"], store, limit=3, progress=False)


# plan: (label, speed-up, arc_easy acc, winogrande acc); chance is 0.25 and 0.5
POINTS = {
    "0-5": (Label("full"), 1.0, 0.75, 0.7),
    "0-1,4-5": (Label("skip", n=2), 1.4, 0.5, 0.6),
    "0,5": (Label("skip", n=4), 2.5, 0.25, 0.5),
    "0-1,[2-3],4-5": (Label("parallel", n=2), 0.9, 0.5, 0.6),
    "0-1,3-2,4-5": (Label("reverse", n=2), 1.0, 0.75, 0.65),
}


def test_the_report_draws_score_against_speed_up_with_the_pareto_front(tmp_path):
    with Store(tmp_path / "r.db") as store:
        for plan, (label, speed, arc, wino) in POINTS.items():
            store.label("fp", plan, label)
            store.put_speed("fp", plan, speed, json.dumps(vars(SPEEDUP_SHAPE)), "cpu, 2 threads")
            for task, score, chance in (("arc_easy", arc, 0.25), ("winogrande", wino, 0.5)):
                metrics = {"acc": score, "acc_stderr": 0.01, "gold_ll": -score, "chance": chance}
                store.put(Cell("fp", plan, task, 8, "data"), "tiny", metrics, 8, 0.1)
        page = report(store, tmp_path / "report").read_text()
    assert (tmp_path / "report" / "tradeoff.png").stat().st_size > 10_000
    section = page.split("<h2>Accuracy against speed</h2>")[1]
    assert "(cpu, 2 threads; one forward of batch x prompt tokens 1 x 64" in section
    front = pd.read_html(io.StringIO(section.split("</table>")[0] + "</table>"), index_col=0, thousands=None)[0]
    assert front.score.str.contains(" ± ").all()  # every score with its standard error
    front["score"] = front.score.str.split(" ± ").str[0].astype(float)
    # normalised: full 1, skip n=2 (0.5 + 0.5) / 2, skip n=4 0; parallel 0.5 but slower; reverse 0.875 at 1.0
    assert front.to_dict("index") == {
        "full": {"plan": "0-5", "speedup": 1.0, "score": 1.0},
        "skip n=2": {"plan": "0-1,4-5", "speedup": 1.4, "score": 0.5},
        "skip n=4": {"plan": "0,5", "speedup": 2.5, "score": 0.0},
    }


def test_the_weight_split_says_how_much_skipping_can_buy():
    from painters.tools.bench import format_split, weight_split

    model = tiny_model("llama")
    layers = sum(p.numel() for p in model.model.layers.parameters())
    head = model.lm_head.weight.numel()
    split = weight_split(model)
    assert split == {"layers": layers / (layers + head), "output_layer": head / (layers + head)}
    assert format_split(split).startswith("per token, the layers do 95% of the multiply-adds with weights and the")


def test_the_sweep_records_the_attention_kinds_and_weight_split_and_the_report_shows_them(tmp_path):
    model = tiny_model("gemma3_text")  # layers 1, 3, 5 full attention, the others a window of 4
    layers = sum(p.numel() for p in model.model.layers.parameters())
    head = model.lm_head.weight.numel()
    points = grid(6, ["skip_layer", "skip"], [2])
    with Store(tmp_path / "r.db") as store:
        sweep(model, CharTokenizer(), "tiny", points, ["arc_easy"], store, limit=3, progress=False)
        assert store.model_facts() == {
            "num_layers": 6, "full_attention_layers": [1, 3, 5], "sliding_window": 4,
            "weight_split": {"layers": layers / (layers + head), "output_layer": head / (layers + head)},
        }  # fmt: skip
        states = ["embeddings", *map(str, range(6))]
        matrix = pd.DataFrame(np.eye(7), index=pd.Index(states, name="state"), columns=states)
        store.put_matrix(model_fingerprint(model), "0-5", "cosine", "tiny, 3 documents", matrix.to_csv())
        page = report(store, tmp_path / "report").read_text()
    note = "Layers 1, 3, 5 (marked full) attend to the whole context; the other layers only to the last 4 tokens"
    assert note in page.split('id="layer-similarity"')[1].split("</section>")[0]
    single = page.split('id="single-layers"')[1].split("</section>")[0]
    assert note in single and "shaded: full-attention layer (1, 3, 5)." in single
    share = layers / (layers + head)  # skipping 3 of 6 layers removes half the layers' share
    assert (
        f"the 6 layers do {share:.0%} of the multiply-adds with weights, the output layer {1 - share:.0%}. Leaving "
        f"out k of the 6 layer calls removes k/6 of the layers' share: skipping 3 layers removes {share / 2:.0%} of "
        f"those multiply-adds ({1 / (1 - share / 2):.2f}x if they were all the time;"
    ) in html.unescape(page.split('id="accuracy-against-speed"')[1])


def test_a_model_of_one_attention_kind_marks_no_layers():
    from painters.core.adapters import full_attention_layers

    assert full_attention_layers(tiny_model("llama").config) is None
    assert full_attention_layers(tiny_model("gemma3_text").config) == [1, 3, 5]
