"""The paper's benchmarks as lm-eval-harness 0.4.x defines them: prompts, choices, gold answers, metrics.

Each task turns one document (a row in the Hugging Face schema) into the (context, continuation)
pairs to score, exactly as lm-eval builds its requests, so that a painters number means what the
same lm-eval number means. GSM8K is a generation task; its prompt lives in `painters.tasks.gsm8k`.
OLMES's basic skills come as requests already (`painters.tasks.data`): their pairs are taken as given.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from painters.core.errors import PaintersError
from painters.tasks import gsm8k

DELIMITER = " "  # lm-eval's default target_delimiter


@dataclass(frozen=True)
class Doc:
    """One document's scoring work: the pairs to score, the gold choice, each choice's length in characters
    (what per-character accuracy divides by), and the few-shot prompt its context starts with, where
    documents differ in it (scoring shares a prompt between the documents that have it)."""

    pairs: tuple[tuple[str, str], ...]
    gold: int = 0
    choice_lengths: tuple[int, ...] = ()
    prompt: str = ""


@dataclass(frozen=True)
class Task:
    """A benchmark: how to build a Doc from a row, and which lm-eval metrics it reports.

    `skill` groups tasks as the paper does when it asks where layer order matters: "reasoning" (math,
    science and physical reasoning) or "semantic" (language understanding and completion).
    """

    name: str
    kind: str  # "multiple_choice", "loglikelihood", "generate" (decoders) or "classification" (encoders)
    metrics: tuple[str, ...]
    skill: str
    build: Callable[[dict], Doc] | None = None
    inputs: tuple[str, ...] = ()  # classification: the text fields, one sentence or a pair
    few_shot: bool = False  # contexts start with a few-shot prompt (`Doc.prompt`), which scoring runs once
    main: str | None = None  # the metric the task's own authors report first, where it is not accuracy

    @property
    def primary(self) -> str:
        """The metric figures plot: the task's own (OLMES: accuracy per token), else accuracy, or exact match
        for generation."""
        return self.main or ("exact_match" if self.kind == "generate" else "acc")


def _choices(context: str, choices: list[str], gold: int) -> Doc:
    """Choices placed in the continuation after the target delimiter, scored against one shared context."""
    pairs = tuple((context, f"{DELIMITER}{choice}") for choice in choices)
    return Doc(pairs, gold, tuple(len(choice) for choice in choices))


def _arc(row: dict) -> Doc:
    choices = row["choices"]
    return _choices(f"Question: {row['question']}\nAnswer:", choices["text"], choices["label"].index(row["answerKey"]))


def _hellaswag_clean(text: str) -> str:
    """lm-eval's HellaSwag preprocessing: WikiHow bracket artifacts removed."""
    text = text.strip().replace(" [title]", ". ")
    text = re.sub("\\[.*?\\]", "", text)
    return text.replace("  ", " ")


def _hellaswag(row: dict) -> Doc:
    context = row["ctx_a"] + " " + row["ctx_b"].capitalize()
    query = _hellaswag_clean(row["activity_label"] + ": " + context)
    return _choices(query, [_hellaswag_clean(ending) for ending in row["endings"]], int(row["label"]))


def _winogrande(row: dict) -> Doc:
    """Partial scoring: each option fills the blank in the context; the shared rest of the sentence is scored."""
    blank = row["sentence"].index("_")
    contexts = [row["sentence"][:blank] + option for option in (row["option1"], row["option2"])]
    target = row["sentence"][blank + 1 :].strip()
    return Doc(tuple((context, f"{DELIMITER}{target}") for context in contexts), {"1": 0, "2": 1}[str(row["answer"])])


def _piqa(row: dict) -> Doc:
    return _choices(f"Question: {row['goal']}\nAnswer:", [row["sol1"], row["sol2"]], int(row["label"]))


def _boolq(row: dict) -> Doc:
    return _choices(f"{row['passage']}\nQuestion: {row['question']}?\nAnswer:", ["no", "yes"], int(row["label"]))


def _gsm8k(row: dict) -> Doc:
    """The reference solution after the 8-shot prompt the generation sees (see `painters.tasks.gsm8k.solution`)."""
    return Doc(((gsm8k.prompt(row["question"]), DELIMITER + gsm8k.solution(row["answer"])),))


def _lambada(row: dict) -> Doc:
    words = row["text"].split(" ")
    return Doc(((" ".join(words[:-1]), " " + words[-1]),))


def _olmes(row: dict) -> Doc:
    """An OLMES request as given: its context and continuations are the prompt OLMES scores (nothing added);
    per-character accuracy divides by the continuation's length, its leading space included, as OLMES does."""
    context, question = row["context"], row.get("question", "")
    prompt = context[: len(context) - len(question)] if question and context.endswith(question) else ""
    continuations = row["continuations"]
    return Doc(tuple((context, c) for c in continuations), int(row["gold"]), tuple(map(len, continuations)), prompt)


# OLMES's rankings: by log-likelihood, per token, per character
OLMES_METRICS = ("acc", "acc_per_token", "acc_per_char")


def _basic_skill(name: str, skill: str) -> Task:
    """An OLMES basic-skills task (5-shot rank classification); OLMES reports accuracy per token first."""
    return Task(name, "multiple_choice", OLMES_METRICS, skill, _olmes, few_shot=True, main="acc_per_token")


TASKS: dict[str, Task] = {
    "arc_easy": Task("arc_easy", "multiple_choice", ("acc", "acc_norm"), "reasoning", _arc),
    "arc_challenge": Task("arc_challenge", "multiple_choice", ("acc", "acc_norm"), "reasoning", _arc),
    "hellaswag": Task("hellaswag", "multiple_choice", ("acc", "acc_norm"), "semantic", _hellaswag),
    "winogrande": Task("winogrande", "multiple_choice", ("acc",), "semantic", _winogrande),
    "piqa": Task("piqa", "multiple_choice", ("acc", "acc_norm"), "reasoning", _piqa),
    "boolq": Task("boolq", "multiple_choice", ("acc",), "semantic", _boolq),
    "lambada_openai": Task("lambada_openai", "loglikelihood", ("perplexity", "acc"), "semantic", _lambada),
    "gsm8k": Task("gsm8k", "generate", ("exact_match",), "reasoning", _gsm8k, few_shot=True),
    "arithmetic": _basic_skill("arithmetic", "reasoning"),
    "logic": _basic_skill("logic", "reasoning"),
    "pattern": _basic_skill("pattern", "reasoning"),
    "strings": _basic_skill("strings", "reasoning"),
    "coding": _basic_skill("coding", "reasoning"),
    "knowledge": _basic_skill("knowledge", "semantic"),
    "sst2": Task("sst2", "classification", ("acc",), "semantic", inputs=("sentence",)),
    "mrpc": Task("mrpc", "classification", ("acc", "f1"), "semantic", inputs=("sentence1", "sentence2")),
    "rte": Task("rte", "classification", ("acc",), "reasoning", inputs=("sentence1", "sentence2")),
}


def get_task(name: str) -> Task:
    """The task called `name`, or a one-line error listing the valid names."""
    try:
        return TASKS[name]
    except KeyError:
        raise PaintersError(f"unknown task '{name}': valid tasks are {', '.join(TASKS)}") from None


def document_text(task: Task, row: dict) -> str:
    """A document as plain text, to run the model on for its hidden states: the context and its gold answer."""
    if task.inputs:
        return " ".join(row[field] for field in task.inputs)
    if task.kind == "generate":  # gsm8k: the question and its worked answer
        return f"Question: {row['question']}\nAnswer: {row['answer']}"
    doc = task.build(row)
    context, continuation = doc.pairs[doc.gold]
    return context + continuation
