"""The report's numbers: one run per figure and task, standard errors carried through, stars above the noise."""

import re

import numpy as np
import pandas as pd
import pytest

from painters.report.numbers import NO_GOLD
from painters.report.page import report
from painters.report.variants import _clear_best
from painters.study.store import Cell, Label, Store, open_existing

FULL, REVERSE, SKIP = "0-29", "0-13,15-14,16-29", "0-13,16-29"  # reverse n=2 is also swap layer=14


def put(store, plan, limit, acc, gold, task="arc_easy", stderr=0.05):
    data = f"data-{task}-{limit}"
    metrics = {"acc": acc, "acc_stderr": stderr, "gold_ll": gold, "gold_ll_stderr": 0.5, "chance": 0.25}
    if gold is not None:  # answers of 4 tokens
        metrics.update(gold_ll_per_token=gold / 4, gold_ll_per_token_stderr=0.125)
    if task == "sst2":
        metrics = {"acc": acc, "acc_stderr": stderr, "chance": 0.5}
    store.put(Cell("fp", plan, task, limit, data), "tiny", metrics, limit, 1.0)


@pytest.fixture
def written(tmp_path):
    """A store holding arc_easy at 32 documents (full, reverse, skip) and at 16 (full, swap 14 = reverse n=2)."""
    with Store(tmp_path / "r.db") as store:
        store.label("fp", FULL, Label("full"))
        store.label("fp", REVERSE, Label("reverse", n=2))
        store.label("fp", SKIP, Label("skip", n=2))
        store.label("fp", REVERSE, Label("swap", layer=14))
        put(store, FULL, 32, 0.75, -10.0)
        put(store, REVERSE, 32, 0.50, -12.0)
        put(store, SKIP, 32, 0.25, -20.0)
        put(store, FULL, 16, 0.5, -11.0)
        put(store, REVERSE, 16, 0.125, -15.0)
    with open_existing(tmp_path / "r.db") as store:
        index = report(store, tmp_path / "out")
    return index.read_text(), tmp_path / "out"


def cells_of(page: str, section: str) -> str:
    return page.split(f'<section id="{section}">')[1].split("</section>")[0]


def test_a_figure_takes_one_run_per_task_and_says_what_it_left_out(written):
    page, _ = written
    variants = cells_of(page, "all-variants")
    # normalised: (0.5 - 0.25) / (0.75 - 0.25) = 0.5, stderr 0.05 / 0.5 = 0.1; the 16-document run is not mixed in
    assert re.search(r"<th>reverse</th>\s*<td>0\.500 ± 0\.100</td>", variants)
    assert re.search(r"<th>skip</th>\s*<td>0\.000 ± 0\.100</td>", variants)
    assert "Runs: arc_easy: the first 32 documents (32 scored), data data-arc_easy-32." in variants
    assert (
        "Left out (other runs): arc_easy: the first 16 documents (16 scored), data data-arc_easy-16, 2 plans."
        in variants
    )
    assert "Normalised means include arc_easy." in variants
    single = cells_of(page, "single-layers")  # swap 14 exists at 16 documents with its full model, and at 32
    assert "Runs: arc_easy: the first 32 documents" in single  # both runs hold every plan: the larger wins
    # swap at 32: (0.5 - 0.25) / 0.5 = 0.5; the gold change -2 nats ± 0.5
    assert re.search(r"<th>swap</th>\s*<td>0\.500 ± 0\.100</td>", single)


def test_the_page_says_what_produced_it_and_how_to_redraw_it(written):
    page, out = written
    facts = cells_of(page, "what-produced-it")
    assert "<th>model</th><td>tiny (fingerprint fp)</td>" in facts
    assert "arc_easy (16 documents, data data-arc_easy-16); arc_easy (32 documents, data data-arc_easy-32)" in facts
    assert f"painters report --db {out.parent / 'r.db'} --out {out}" in facts
    assert "not recorded (written before painters recorded it)" in facts  # put() alone records no run
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert "<code>0-11,[12-17]x3,18-29</code>" in cells_of(page, "glossary")
    assert page.count('<img src="data:image/png;base64,') == len(list(out.glob("*.png")))
    assert all(alt.strip() for alt in re.findall(r'alt="([^"]*)"', page))


def test_an_encoder_store_draws_no_empty_gold_figure(tmp_path):
    with Store(tmp_path / "r.db") as store:
        store.label("fp", FULL, Label("full"))
        store.label("fp", REVERSE, Label("reverse", n=2))
        put(store, FULL, 100, 0.9, None, task="sst2")
        put(store, REVERSE, 100, 0.8, None, task="sst2")
    with open_existing(tmp_path / "r.db") as store:
        page = report(store, tmp_path / "out").read_text()
    assert NO_GOLD in page
    assert not list((tmp_path / "out").glob("*gold*.png"))
    absent = "Not in this store, so not drawn: Layer similarity, Single layers, Looped parallel, Reasoning against"
    assert absent in page


def test_stars_mark_a_best_loop_count_only_above_the_noise():
    grid = pd.DataFrame([[0.50, 0.60, 0.55], [0.50, 0.52, 0.51]], index=[2, 6], columns=[1, 2, 3])
    noise = pd.DataFrame(np.full((2, 3), 0.02), index=grid.index, columns=grid.columns)
    # row 0: 0.60 - 0.55 = 0.05 is not above 2 * hypot(0.02, 0.02) = 0.057; row 1: 0.01 is not either
    assert _clear_best(grid, noise) == []
    assert _clear_best(grid, noise / 2) == [(0, 1)]  # 0.05 > 0.028


PARALLEL = "0-13,[14-15],16-29"


def test_gsm8k_scored_by_gold_alone_compares_per_token_with_the_semantic_tasks(tmp_path):
    """GSM8K without generation has no exact_match: the page draws its gold curve, leaves it out of the
    normalised means saying why, and the order section compares the gold log-likelihood per token."""
    with Store(tmp_path / "r.db") as store:
        for plan, label in (
            (FULL, Label("full")),
            (REVERSE, Label("reverse", n=2)),
            (PARALLEL, Label("parallel", n=2)),
        ):
            store.label("fp", plan, label)
        for plan, math_token, word_token in ((FULL, -1.0, -2.0), (REVERSE, -1.5, -2.1), (PARALLEL, -1.25, -2.2)):
            gold = {"gold_ll": 50 * math_token, "gold_ll_stderr": 2.0, "gold_ll_per_token": math_token,
                    "gold_ll_per_token_stderr": 0.04, "chance": 0.0}  # fmt: skip
            store.put(Cell("fp", plan, "gsm8k", 8, "data-gsm8k"), "tiny", gold, 8, 1.0)
            word = {"acc": 0.5, "acc_stderr": 0.1, "perplexity": 9.0, "gold_ll": 2 * word_token, "gold_ll_stderr": 0.2,
                    "gold_ll_per_token": word_token, "gold_ll_per_token_stderr": 0.03, "chance": 0.0}  # fmt: skip
            store.put(Cell("fp", plan, "lambada_openai", 8, "data-lambada"), "tiny", word, 8, 1.0)
    with open_existing(tmp_path / "r.db") as store:
        index = report(store, tmp_path / "out")
    page, out = index.read_text(), tmp_path / "out"
    assert not (out / "variants_gsm8k.png").exists() and (out / "variants_gsm8k_gold.png").exists()
    assert "left out: gsm8k (no exact_match scored: gold log-likelihood only)" in cells_of(page, "all-variants")
    order = cells_of(page, "layer-order")
    assert (out / "order_sensitivity_gold.png").exists()
    # per token, against the full model: gsm8k reverse -0.5 ± 0.04, parallel -0.25; lambada -0.1 and -0.2 ± 0.03
    gold = order.split("gold per token</th>")[1]
    assert re.search(r"<th>parallel</th>\s*<td>-0\.250 ± 0\.040</td>\s*<td>-0\.200 ± 0\.030</td>", gold)
    assert re.search(r"<th>reverse</th>\s*<td>-0\.500 ± 0\.040</td>\s*<td>-0\.100 ± 0\.030</td>", gold)


PAIRED = {  # per-document primary metric (acc_per_token) under each plan, 8 documents
    "arithmetic": {FULL: [1, 1, 1, 1, 1, 0, 0, 0], SKIP: [1, 1, 1, 0, 0, 0, 0, 0], REVERSE: [1, 0, 0, 0, 0, 0, 0, 0]},
    "knowledge": {FULL: [1, 1, 1, 1, 1, 1, 0, 0], SKIP: [1, 1, 1, 1, 0, 0, 0, 0], REVERSE: [1, 1, 1, 1, 1, 0, 0, 0]},
}


def test_the_order_claim_is_a_paired_bootstrap_over_documents(tmp_path):
    import json
    import sqlite3

    from painters import __version__
    from painters.report.numbers import score_rows
    from painters.report.paired import paired_losses
    from painters.study.results import results_frame

    chance = {"arithmetic": 0.1, "knowledge": 0.25}
    with Store(tmp_path / "r.db") as store:
        for plan, label in ((FULL, Label("full")), (SKIP, Label("skip", n=2)), (REVERSE, Label("reverse", n=2))):
            store.label("fp", plan, label)
        for task, plans in PAIRED.items():
            for plan, values in plans.items():
                mean = sum(values) / 8
                metrics = {"acc_per_token": mean, "acc_per_token_stderr": 0.1, "gold_ll": -1.0, "gold_ll_stderr": 0.1,
                           "chance": chance[task]}  # fmt: skip
                store.put(Cell("fp", plan, task, 8, "d"), "tiny", metrics, 8, 1.0)
                records = json.dumps([{"acc_per_token": float(v)} for v in values])
                with sqlite3.connect(tmp_path / "r.db") as db:
                    db.execute("INSERT INTO samples VALUES (?, ?, ?, ?, ?, ?, ?)",
                               ("fp", plan, task, 8, "d", __version__, records))  # fmt: skip
        table, used, _ = paired_losses(store, score_rows(results_frame(store, detail=True)))
        page = report(store, tmp_path / "out").read_text()
    means = table[table.n == "mean"].set_index("variant")  # over the one n: the same numbers
    table = table[table.n == 2].set_index("variant")
    assert means.excess.to_dict() == pytest.approx(table.excess.to_dict())
    # losses: arithmetic skip 0.25 / 0.525, reverse 0.5 / 0.525; knowledge skip 0.25 / 0.5, reverse 0.125 / 0.5
    assert table.reasoning.to_dict() == pytest.approx({"skip": 0.25 / 0.525, "reverse": 0.5 / 0.525})
    assert table.semantic.to_dict() == pytest.approx({"skip": 0.5, "reverse": 0.25})
    assert table.excess["reverse"] == pytest.approx((0.5 / 0.525 - 0.25) - (0.25 / 0.525 - 0.5))
    assert table.excess["skip"] == 0
    # the bootstrap's error of one task's paired loss is near the normal one: sd(diff) / sqrt(8) / margin
    diff = np.array(PAIRED["knowledge"][FULL]) - np.array(PAIRED["knowledge"][REVERSE])
    assert table.semantic_stderr["reverse"] == pytest.approx(diff.std() / np.sqrt(8) / 0.5, rel=0.15)
    assert used[-2:] == ["reasoning: arithmetic", "semantic: knowledge"]
    assert (tmp_path / "out" / "order_paired.png").stat().st_size > 10_000
    assert "<h2>Reasoning against semantics</h2>" in page


def test_layer_order_averages_only_the_n_every_task_has(tmp_path):
    """ARC-Easy swept at n = 2 and 4, arithmetic at n = 2 only: both tasks are shown, each averaged over n = 2."""
    reverse4 = "0-12,16-13,17-29"
    with Store(tmp_path / "r.db") as store:
        store.label("fp", FULL, Label("full"))
        store.label("fp", REVERSE, Label("reverse", n=2))
        store.label("fp", reverse4, Label("reverse", n=4))
        for task, metric, chance, plans in (("arc_easy", "acc", 0.25, {FULL: 0.75, REVERSE: 0.5, reverse4: 0.25}),
                                            ("arithmetic", "acc_per_token", 0.1, {FULL: 0.6, REVERSE: 0.35})):  # fmt: skip
            for plan, value in plans.items():
                metrics = {metric: value, f"{metric}_stderr": 0.05, "gold_ll": -1.0, "gold_ll_stderr": 0.1,
                           "chance": chance}  # fmt: skip
                store.put(Cell("fp", plan, task, 16, f"d-{task}"), "tiny", metrics, 16, 1.0)
        page = report(store, tmp_path / "out").read_text()
    order = cells_of(page, "layer-order")
    assert "Means over n = 2: the n every task has." in order
    # loss of normalised score: arc_easy 1 - (0.5 - 0.25) / 0.5 = 0.5 (n = 4 left out), arithmetic 1 - 0.25 / 0.5
    assert re.search(r"<th>arc_easy \(reasoning\)</th>\s*<th>arithmetic \(reasoning\)</th>", order)
    both = r"<td>0\.500 ± 0\.100</td>\s*<td>0\.500 ± 0\.100</td>"
    assert re.search(r"<th>score loss</th>\s*<th>reverse</th>\s*" + both, order)
