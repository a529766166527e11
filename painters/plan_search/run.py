"""`painters.plan_search`: the plan that keeps the most quality within a budget of layer calls, found by a
method, compared with the one-shot baselines on the same calibration objective, and judged on held-out
benchmark documents (a sweep into the same store, so it resumes and runs as sweeps run).

Everything lands in the results store: every candidate's calibration scores (`objective`), each method's
record per budget (`searches`), the held-out cells (labelled `search:<method>`, budget as n). A search
run again reads all of it back and scores no candidate twice (only the baselines' reading of hidden
states, seconds, is done again).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from transformers import PreTrainedModel

from painters.core.errors import PaintersError
from painters.models.devices import input_device, tokens_per_pass
from painters.plan_search.calibration import Source, calibration, check_disjoint, parse_source
from painters.plan_search.held_out import judge
from painters.plan_search.methods import SEARCHES, Found, Method, beam_search, one_shot_plans
from painters.plan_search.objective import OBJECTIVES, ZERO, Evaluator, Totals
from painters.plan_search.spaces import check_space
from painters.study.store import Store, check_model
from painters.study.units import Worker

GREEDY = Method("greedy")
DEFAULT_BASELINES = (Method("block_influence"), Method("angular"), Method("middle"), Method("random", 3))
DEFAULT_EVAL = ("lambada_openai", "arc_easy", "hellaswag")


@dataclass(frozen=True)
class SearchOptions:
    """What to search for and how: budgets (layer calls removed), the method and the baselines it is compared
    with, the space and objective, calibration length, and the held-out evaluation (no tasks: none)."""

    removes: tuple[int, ...]
    method: Method = GREEDY
    baselines: tuple[Method, ...] = DEFAULT_BASELINES
    space: str = "skip"
    objective: str = "ppl"
    max_length: int = 256
    eval_tasks: tuple[str, ...] = DEFAULT_EVAL
    limit: int | None = 100
    batch_size: int = 32
    max_tokens: int | None = None
    memo_bytes: int | None = None
    methods: tuple[Method, ...] = field(init=False)

    def __post_init__(self) -> None:
        check_space(self.space)
        if self.objective not in OBJECTIVES:
            raise PaintersError(f"unknown --objective '{self.objective}': valid objectives are {', '.join(OBJECTIVES)}")
        if not self.removes or min(self.removes) < 1:
            raise PaintersError("--remove needs layer counts of at least 1, e.g. --remove 3,6,9")
        object.__setattr__(self, "methods", tuple(dict.fromkeys((self.method, *self.baselines))))

    def check(self, num_layers: int) -> None:
        if max(self.removes) >= num_layers:
            raise PaintersError(f"--remove {max(self.removes)} leaves no layer: the model has {num_layers}; "
                                f"give 1 to {num_layers - 1}")  # fmt: skip


def search(model: PreTrainedModel, tokenizer, store: Store | str | Path, source: Source | str | None,
           options: SearchOptions, name: str = "", data_dir=None, progress: bool = True) -> list[dict]:  # fmt: skip
    """Run every method of `options` on the calibration text of `source` (a `Source`, or `--calibration`'s
    text; None: the default); one record per (budget, method), the chosen method's first at each budget.
    `store` is an open store or the path of one. See the module docstring."""
    if not isinstance(store, Store):
        with Store(store) as opened:
            return search(model, tokenizer, opened, source, options, name, data_dir, progress)
    source = source if isinstance(source, Source) else parse_source(source, None, data_dir)
    num_layers = model.config.num_hidden_layers
    options.check(num_layers)
    check_disjoint(source, list(options.eval_tasks), options.limit)
    facts = Worker(model, tokenizer).describe()
    check_model(store, facts["fingerprint"])
    store.put_model(facts["fingerprint"], facts["facts"])
    max_tokens = options.max_tokens or tokens_per_pass(input_device(model))
    cal = calibration(source, tokenizer, options.max_length, max_tokens, data_dir)
    evaluator = Evaluator(model, store, facts["fingerprint"], cal, options.memo_bytes, progress)
    searches = [method for method in options.methods if method.name in SEARCHES]
    found = {
        m: beam_search(evaluator, list(options.removes), m.size, options.space, options.objective) for m in searches
    }
    baselines = [method for method in options.methods if method not in searches]
    found.update(_baselines(baselines, evaluator, model, tokenizer, options, source, data_dir, progress))
    records = [_record(method, removed, found[method][removed], evaluator, options, cal.key)
               for removed in sorted(options.removes) for method in options.methods]  # fmt: skip
    if options.eval_tasks:
        judge(model, tokenizer, store, records, options, name or model.config.name_or_path, data_dir, progress)
    held_out = f"{','.join(options.eval_tasks)} limit={options.limit}" if options.eval_tasks else "none"
    for record in records:
        key = (cal.key, options.objective, options.space, held_out, record["method"], record["remove"])
        store.put_search(facts["fingerprint"], key, record)
    return records


def _baselines(methods: list[Method], evaluator: Evaluator, model, tokenizer, options: SearchOptions, source: Source,
               data_dir, progress: bool) -> dict[Method, dict[int, Found]]:  # fmt: skip
    """The one-shot baselines' plans per budget, scored in one round; Block Influence and angular distance
    share one reading of the calibration text's hidden states, and each is charged its cost."""
    importance, cost = None, ZERO
    if {method.name for method in methods} & {"block_influence", "angular"}:
        importance, cost = _importance(model, tokenizer, source, options, data_dir, progress)
    found = {
        method: {removed: Found(one_shot_plans(method, model.config.num_hidden_layers, removed, importance),
                                cost if method.name in ("block_influence", "angular") else ZERO, 0)
                 for removed in options.removes}
        for method in methods
    }  # fmt: skip
    evaluator.totals([plan for per_budget in found.values() for one in per_budget.values() for plan in one.plans])
    return found


def _importance(model, tokenizer, source: Source, options: SearchOptions, data_dir, progress: bool):
    """The importance table of the calibration text's hidden states under the full model, and its cost."""
    from painters.analysis.importance import importance_table
    from painters.analysis.similarity import similarity

    start = time.perf_counter()
    result = similarity(model, tokenizer, source.texts(data_dir), None, batch_size=options.batch_size,
                        max_length=options.max_length, progress=progress)  # fmt: skip
    calls = result.tokens * model.config.num_hidden_layers
    return importance_table(result), Totals(0.0, 0.0, result.tokens, calls, calls, time.perf_counter() - start)


def _record(method: Method, removed: int, found: Found, evaluator: Evaluator, options: SearchOptions, key: str) -> dict:
    """The JSON-ready record of a method at a budget (random: its plans' mean, and each plan's numbers);
    `versus` names the method the held-out paired differences are taken from."""
    scored = [evaluator.plan_totals(plan).summary() for plan in found.plans]
    calibration = {name: sum(s[name] for s in scored) / len(scored) for name in scored[0]}
    record = {
        "remove": removed, "method": str(method), "plan": str(found.plans[0]), "calls": len(found.plans[0].layers()),
        "objective": options.objective, "space": options.space if method.name in SEARCHES else "one-shot",
        "calibration": {"source": key, **calibration}, "versus": str(options.method),
        "cost": {"candidates": found.candidates, "layer_call_tokens": found.cost.computed,
                 "unshared_layer_call_tokens": found.cost.unshared, "seconds": round(found.cost.seconds, 3)},
    }  # fmt: skip
    if len(found.plans) > 1:
        record["plans"] = [{"plan": str(plan), **s} for plan, s in zip(found.plans, scored, strict=True)]
    return record
