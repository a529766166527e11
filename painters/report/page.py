"""The paper's figures from a results store, as PNG files and one self-contained index.html.

A figure never mixes runs: per figure and task it takes one set of cells (one limit and one data
fingerprint: the largest limit at which every plan of the figure was scored) and says which, and what
it left out. Scores are normalised per task so that chance is 0 and the full model 1, as the paper
averages them; a task where the full model is not above chance is left out of the averages, and the
page says so. Every number carries its standard error, as a bar or band in the figures and as
`value ± stderr` in the tables. Beside accuracy, the mean log-likelihood of the gold answer shows
damage far less noisily at small limits. The page says what produced it (model, versions, data, when).
This module writes the page; each family of sections has its own module.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import pandas as pd
from matplotlib import rc_context

from painters.core.errors import PaintersError
from painters.core.plan import Plan
from painters.report.draw import FONT
from painters.report.numbers import DASH, SINGLE_VARIANTS, Section, score_rows
from painters.report.paired import paired_section
from painters.report.search import search_section
from painters.report.similarity import similarity_section
from painters.report.single_layers import single_layers_section
from painters.report.tradeoff import tradeoff_section
from painters.report.variants import looped_section, order_section, per_task_section, variants_section
from painters.study.results import results_frame
from painters.study.store import Store
from painters.tasks.catalog import get_task


def report(store: Store, out: str | Path) -> Path:
    """Write the figures and index.html into `out`; returns the index path."""
    frame = results_frame(store, detail=True)
    if frame.empty:
        raise PaintersError(f"the store '{store.path}' has no results yet: run `painters sweep` or `painters paper`")
    models = sorted(frame.model.unique())
    if len(models) > 1:
        raise PaintersError(f"the store holds results of several models ({', '.join(models)}): use one store per model")
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    scores, facts = score_rows(frame), store.model_facts()
    with rc_context(FONT):
        sections = [
            similarity_section(store, folder, facts),
            single_layers_section(scores, folder, facts),
            per_task_section(scores, folder),
            variants_section(scores, folder),
            looped_section(scores, folder),
            order_section(scores, folder),
            paired_section(store, scores, folder),
            tradeoff_section(scores, store, folder, facts),
            search_section(store, folder),
        ]
    index = folder / "index.html"
    page = _page(models[0], frame, store, folder, [s for s in sections if s is not None])
    index.write_text(page, encoding="utf-8")
    return index


GLOSSARY = [
    ("full", "The unmodified model: every layer once, in order."),
    ("skip", "The n middle layers are left out."),
    ("middle_repeat", "The centre layer runs n times in place of the n middle layers."),
    ("reverse", "The n middle layers run in reverse order."),
    ("shuffle", "The n middle layers run in a random order (one per seed)."),
    ("parallel", "The n middle layers all read the same input and their outputs are averaged."),
    ("looped_parallel", "The parallel block runs K times, each pass feeding the next (loops K, here 3)."),
    ("skip_layer", "One layer i is left out (here i = 14)."),
    ("swap", "Layers i and i+1 exchange places (here i = 14)."),
]


TERMS = [
    ("affected layers n", "How many middle layers a variant changes: the band [a, a+n) with a = ceil((L - n) / 2)."),
    (
        "normalised score",
        (
            "(score - chance) / (full model's score - chance): chance is 0 and the full model 1, "
            "defined only on tasks where the full model is above chance."
        ),
    ),
    (
        "gold log-likelihood",
        (
            "The mean log-probability (nats) the model gives the right answer; its change from the "
            "full model shows damage even when accuracy is too noisy to."
        ),
    ),
]


def _glossary() -> str:
    rows = []
    for name, meaning in GLOSSARY:
        options = {"layer": 14} if name in SINGLE_VARIANTS else {} if name == "full" else {"n": 6}
        plan = Plan.variant(name, 30, **options)
        rows.append(f"<dt>{name}</dt><dd>{html.escape(meaning)} <code>{plan}</code></dd>")
    rows += [f"<dt>{html.escape(term)}</dt><dd>{html.escape(meaning)}</dd>" for term, meaning in TERMS]
    return f"<p>Plans shown for a model of L = 30 layers, n = 6.</p><dl>{''.join(rows)}</dl>"


def _provenance(model: str, frame: pd.DataFrame, store: Store, folder: Path) -> str:
    """What produced the page: model, versions, dtype, device, data, protocol, when, and how to redraw it."""
    runs = store.runs()
    environments = [json.loads(row["environment"]) for row in runs]

    def recorded(key: str) -> str:
        values = sorted({str(e[key]) if not isinstance(e[key], dict) else json.dumps(e[key])
                         for e in environments if key in e})  # fmt: skip
        return ", ".join(values) if values else "not recorded (written before painters recorded it)"

    cells = frame.drop_duplicates(["task", "limit", "data_fingerprint"]).sort_values(["task", "limit"])
    data = "; ".join(
        f"{row.task} ({'all' if pd.isna(row['limit']) else row['limit']} documents, data {row.data_fingerprint})"
        for _, row in cells.iterrows()
    )
    facts = [
        ("model", f"{model} (fingerprint {', '.join(sorted(frame.model_fingerprint.unique()))})"),
        ("painters", ", ".join(sorted(frame.version.unique()))),
        ("transformers", recorded("transformers")), ("torch", recorded("torch")),
        ("dtype", recorded("dtype")), ("device", recorded("device")),
        ("tasks", data), ("GLUE protocol", recorded("protocol") if frame.task.map(_is_glue).any() else "no GLUE task"),
        ("runs made", f"{frame.created.min()} to {frame.created.max()} UTC"),
        ("made by", recorded("command")),
        ("redraw with", f"painters report --db {store.path} --out {folder}"),
    ]  # fmt: skip
    if any("note" in e for e in environments):
        facts.append(("note", recorded("note")))
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in facts)
    return f'<div class="numbers"><table class="facts">{body}</table></div>'


def _is_glue(task: str) -> bool:
    return get_task(task).kind == "classification"


def _figure_html(path: Path, alt: str) -> str:
    image = base64.b64encode(path.read_bytes()).decode()
    return (
        f'<figure><label class="zoom" title="click to zoom"><input type="checkbox">'
        f'<img src="data:image/png;base64,{image}" alt="{html.escape(alt)}"></label></figure>'
    )


def _section_html(section: Section) -> str:
    figures = "".join(_figure_html(path, alt) for path, alt in section.figures)
    table = "" if section.table is None else f'<div class="numbers">{section.table.to_html(na_rep=DASH)}</div>'
    notes = "".join(f"<p class=note>{html.escape(note)}</p>" for note in section.notes)
    return (
        f'<section id="{section.anchor}"><h2>{html.escape(section.title)}</h2><p>{html.escape(section.text)}</p>'
        f'{notes}<div class="figures">{figures}</div>{table}</section>'
    )


STYLE = """
body{font-family:sans-serif;font-size:15px;line-height:1.4;margin:0 auto;padding:1em;max-width:90em}
h1{font-size:1.6em} .figures{display:flex;flex-wrap:wrap;gap:1em}
figure{margin:0;max-width:100%;overflow-x:auto} .zoom input{display:none}
.zoom img{display:block;width:616px;max-width:100%;height:auto;cursor:zoom-in}
.zoom input:checked+img{width:auto;max-width:none;cursor:zoom-out}
.numbers{max-width:100%;overflow-x:auto;margin:1em 0} table{border-collapse:collapse;font-size:14px}
td,th{border:1px solid #ccc;padding:2px 6px;white-space:nowrap;text-align:right} .facts td{text-align:left;white-space:normal}
.note{color:#333} dt{font-weight:bold} dd{margin:0 0 .5em 1.5em} code{overflow-wrap:anywhere}
"""


def _page(model: str, frame: pd.DataFrame, store: Store, folder: Path, sections: list[Section]) -> str:
    contents = [("what-produced-it", "What produced it"), ("glossary", "Glossary")]
    contents += [(s.anchor, s.title) for s in sections]
    toc = "".join(f'<li><a href="#{anchor}">{html.escape(title)}</a></li>' for anchor, title in contents)
    body = "\n".join(_section_html(section) for section in sections)
    missing = [name for name in ("Layer similarity", "Single layers", "Variants per task", "Looped parallel",
                                 "Layer order", "Reasoning against semantics") if name not in {s.title for s in sections}]  # fmt: skip
    absent = f"<p>Not in this store, so not drawn: {', '.join(missing)}.</p>" if missing else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>painters report: {html.escape(model)}</title><style>{STYLE}</style></head><body>
<h1>Transformer layers as painters: {html.escape(model)}</h1>
<p>The experiments of "Transformer Layers as Painters" (arXiv 2407.09298) on {html.escape(model)}.
Click a figure to see it at full size. Every number is shown with its standard error.</p>
<nav><h2>Contents</h2><ol>{toc}</ol></nav>{absent}
<section id="what-produced-it"><h2>What produced it</h2>{_provenance(model, frame, store, folder)}</section>
<section id="glossary"><h2>Glossary</h2>{_glossary()}</section>
{body}
</body></html>
"""
