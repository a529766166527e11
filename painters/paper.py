"""`painters paper`: the study of "Transformer Layers as Painters" as one job, sized for the machine at hand.

The study is the layer-similarity matrix, then sweeps: every variant of the paper over a range of
affected-layer counts n, the looped-parallel grid (n x loops), and skipping each single layer and
swapping each pair of neighbours; then the report. The CPU defaults keep the paper's design and shrink
its size (fewer n, a few documents per task); `--full` runs the paper's grid for a GPU.

The paper's central claim, that layer order matters most for math and reasoning, is measured where a small
model can show it: OLMES's arithmetic and logic problems (reasoning) against its common knowledge
(semantic), every variant but looping at the smaller n, on four times the documents of the other tasks
(they are short, and a paired test over documents needs them; see `painters.report.paired`). GSM8K,
which a small model solves almost none of whatever the plan, is left to `--full` (which generates),
as are ARC-Challenge and WinoGrande: a small model scores them at chance, so they say nothing about plans.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from painters.core.errors import PaintersError
from painters.models.placement import Placement
from painters.study.grid import grid
from painters.study.store import Store, check_model

PAPER_VARIANTS = ["skip", "middle_repeat", "reverse", "shuffle", "parallel", "looped_parallel"]
SIMILARITY_TASK = "lambada_openai"
REASONING_TASKS = ["arithmetic", "logic", "knowledge"]  # OLMES basic skills: two reasoning, one semantic control
CPU_LIMIT = 24  # documents per task by default: the study then takes under 20 minutes on 2 CPU cores


@dataclass(frozen=True)
class Part:
    """One sweep of the study: its variants, n values, seeds, loop counts, tasks and documents per task."""

    name: str
    variants: list[str]
    ns: list[int]
    tasks: list[str]
    limit: int | None
    seeds: int = 1
    loops: tuple[int, ...] = (3,)


@dataclass(frozen=True)
class Study:
    similarity_docs: int
    parts: list[Part]


def study(num_layers: int, full: bool, limit: int | None = None, encoder: bool = False) -> Study:
    """The paper's study for a model with `num_layers` layers; `limit` overrides the documents per task.

    Decoders run the paper's Llama benchmarks; encoders its BERT half, GLUE (whole validation splits:
    probing a small encoder is cheap).
    """
    if num_layers < 4:
        raise PaintersError(f"the paper's study needs a model with at least 4 layers, this one has {num_layers}")
    ns = list(range(2, num_layers - 1, 2)) if full else _spread(num_layers)
    if encoder:
        tasks, small, seeds = ["sst2", "mrpc", "rte"], limit, 3 if full else 2
        return Study(128, [
            Part("variants", PAPER_VARIANTS[:-1], ns, tasks, small, seeds=seeds),
            Part("looped", ["looped_parallel"], ns, tasks, small, loops=(1, 2, 3, 4)),
            Part("single layers", ["skip_layer", "swap"], [], tasks, small),
        ])  # fmt: skip
    if full:
        tasks = ["arc_easy", "arc_challenge", "hellaswag", "winogrande", "lambada_openai", "piqa", "gsm8k",
                 *REASONING_TASKS]  # fmt: skip
        return Study(1024, [
            Part("variants", PAPER_VARIANTS[:-1], ns, tasks, limit, seeds=3),
            Part("looped", ["looped_parallel"], ns, tasks, limit, loops=tuple(range(1, 7))),
            Part("single layers", ["skip_layer", "swap"], [], tasks, limit),
        ])  # fmt: skip
    tasks = ["arc_easy", "hellaswag", "lambada_openai"]
    small = CPU_LIMIT if limit is None else limit
    return Study(128, [
        Part("variants", PAPER_VARIANTS[:-1], ns, tasks, small, seeds=2),
        Part("reasoning", PAPER_VARIANTS[:-1], ns[:4], REASONING_TASKS, 4 * small, seeds=2),
        Part("looped", ["looped_parallel"], ns[:4], tasks, small, loops=(1, 2, 3, 4)),
        Part("single layers", ["skip_layer", "swap"], [], ["lambada_openai", "arc_easy"], max(1, small // 2)),
    ])  # fmt: skip


def _spread(num_layers: int) -> list[int]:
    """About six even n from 2 to num_layers - 4 (every n for small models): the shape of the paper's curves."""
    if num_layers < 12:
        return list(range(1, num_layers - 1))
    top = num_layers - 4
    step = max(2, (top - 2) // 5 // 2 * 2)
    return list(range(2, top + 1, step))


def run_paper(
    model_name: str,
    out: str | Path,
    full: bool = False,
    limit: int | None = None,
    batch_size: int = 32,
    data_dir: str | Path | None = None,
    max_tokens: int | None = None,
    memo_bytes: int | None = None,
    placement: Placement | None = None,
    exact_attention: bool = False,
) -> Path:
    """Run the study on `model_name` into `out` (results.db, similarity files, report); returns index.html.

    `data_dir` holds the <task>.jsonl files of every task, as for `painters eval`. The folder is made only once
    the model has loaded, so a bad model leaves nothing behind. `placement` says where and how to load the
    model (default: `auto`); `max_tokens` and `memo_bytes` bound a forward pass and the steps plans share
    (default: from the device); `exact_attention` makes GSM8K (`full` only) generate through the model's own
    attention (`painters.tasks.generation.greedy_texts`).
    """
    from painters.analysis.files import write_similarity
    from painters.analysis.importance import importance_table
    from painters.analysis.similarity import similarity
    from painters.analysis.texts import load_texts
    from painters.core.adapters import adapter_for
    from painters.models.loading import load_model
    from painters.report.page import report
    from painters.study.fingerprints import model_fingerprint
    from painters.study.sweep import sweep

    model, tokenizer = load_model(model_name, **asdict(placement or Placement()))
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    encoder = adapter_for(model.config.model_type).encoder
    plan_study = study(model.config.num_hidden_layers, full, limit, encoder)
    fingerprint = model_fingerprint(model)
    with Store(folder / "results.db") as store:
        check_model(store, fingerprint)  # before the similarity run, not after it
        if not store.query("SELECT 1 FROM matrices WHERE model_fingerprint = ? AND name = 'cosine'", (fingerprint,)):
            texts = load_texts(SIMILARITY_TASK, limit=plan_study.similarity_docs, data_dir=data_dir)
            result = similarity(model, tokenizer, texts, progress=True)
            write_similarity(result, importance_table(result), folder / "similarity", model_name)
            source = f"{model_name}, {len(texts)} {SIMILARITY_TASK} documents, {result.tokens} tokens"
            store.put_matrix(fingerprint, str(result.plan), "cosine", source, result.cosine.to_csv())
        for part in plan_study.parts:
            points = grid(model.config.num_hidden_layers, part.variants, part.ns, part.seeds, list(part.loops))
            sweep(
                model, tokenizer, model_name, points, part.tasks, store, part.limit, batch_size, data_dir,
                max_tokens=max_tokens, memo_bytes=memo_bytes, generate=full, exact_attention=exact_attention,
            )  # fmt: skip
        return report(store, folder)
