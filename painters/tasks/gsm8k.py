"""GSM8K as lm-eval-harness's `gsm8k_cot`: 8 fixed chain-of-thought exemplars, greedy generation, regex answers.

lm-eval's default `gsm8k` samples its few-shot examples from the train split, which does not ship
offline; `gsm8k_cot`'s exemplars are fixed in its config, so its prompt is the same everywhere.

A small model scores near 0 whatever the plan, so painters also scores the reference solution itself:
its log-likelihood after the same 8-shot prompt (`gold_ll`, and per token), a smooth signal of damage.
"""

from __future__ import annotations

import re

EXEMPLARS = (
    ("There are 15 trees in the grove. Grove workers will plant trees in the grove today. After they are done, "
     "there will be 21 trees. How many trees did the grove workers plant today?",
     "There are 15 trees originally. Then there were 21 trees after some more were planted. So there must have "
     "been 21 - 15 = 6. The answer is 6."),
    ("If there are 3 cars in the parking lot and 2 more cars arrive, how many cars are in the parking lot?",
     "There are originally 3 cars. 2 more cars arrive. 3 + 2 = 5. The answer is 5."),
    ("Leah had 32 chocolates and her sister had 42. If they ate 35, how many pieces do they have left in total?",
     "Originally, Leah had 32 chocolates. Her sister had 42. So in total they had 32 + 42 = 74. After eating 35, "
     "they had 74 - 35 = 39. The answer is 39."),
    ("Jason had 20 lollipops. He gave Denny some lollipops. Now Jason has 12 lollipops. How many lollipops did "
     "Jason give to Denny?",
     "Jason started with 20 lollipops. Then he had 12 after giving some to Denny. So he gave Denny 20 - 12 = 8. "
     "The answer is 8."),
    ("Shawn has five toys. For Christmas, he got two toys each from his mom and dad. How many toys does he have now?",
     "Shawn started with 5 toys. If he got 2 toys each from his mom and dad, then that is 4 more toys. 5 + 4 = 9. "
     "The answer is 9."),
    ("There were nine computers in the server room. Five more computers were installed each day, from monday to "
     "thursday. How many computers are now in the server room?",
     "There were originally 9 computers. For each of 4 days, 5 more computers were added. So 5 * 4 = 20 computers "
     "were added. 9 + 20 is 29. The answer is 29."),
    ("Michael had 58 golf balls. On tuesday, he lost 23 golf balls. On wednesday, he lost 2 more. How many golf "
     "balls did he have at the end of wednesday?",
     "Michael started with 58 golf balls. After losing 23 on tuesday, he had 58 - 23 = 35. After losing 2 more, he "
     "had 35 - 2 = 33 golf balls. The answer is 33."),
    ("Olivia has $23. She bought five bagels for $3 each. How much money does she have left?",
     "Olivia had 23 dollars. 5 bagels for 3 dollars each will be 5 x 3 = 15 dollars. So she has 23 - 15 dollars "
     "left. 23 - 15 is 8. The answer is 8."),
)  # fmt: skip
STOP = ("Q:", "</s>", "<|im_end|>")
MAX_NEW_TOKENS = 256  # lm-eval's default max_gen_toks
_STRICT = re.compile(r"The answer is (\-?[0-9\.\,]+).")
_FLEXIBLE = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")
_IGNORE = (",", "\\$", "(?s).*#### ", "\\.$")
INVALID = "[invalid]"


def prompt(question: str) -> str:
    """The 8-shot prompt: exemplars as `Q: ...\\nA: ...` separated by blank lines, then the question."""
    shots = "".join(f"Q: {q}\nA: {a}\n\n" for q, a in EXEMPLARS)
    return f"{shots}Q: {question}\nA:"


def strict_answer(text: str) -> str:
    match = _STRICT.search(text)
    return match.group(1).strip() if match else INVALID


def flexible_answer(text: str) -> str:
    """The last number in the text (lm-eval's flexible-extract)."""
    matches = _FLEXIBLE.findall(text)
    if not matches:
        return INVALID
    last = matches[-1]
    return next((group for group in last if group), INVALID).strip()


def reference(answer: str) -> str:
    return answer.split("####")[-1].strip()


def solution(answer: str) -> str:
    """The dataset's worked answer in the exemplars' style: calculator annotations (`<<48/2=24>>`) removed,
    lines joined by single spaces, and the final `#### N` written as `The answer is N.`"""
    *steps, final = re.sub(r"<<[^>]*>>", "", answer).strip().split("\n")
    return " ".join([*(step.strip() for step in steps), f"The answer is {reference(final)}."])


def exact_match(prediction: str, gold: str) -> float:
    """lm-eval's exact_match as gsm8k_cot sets it: ignoring case, commas, '$', '#### ' and a final '.'."""
    for pattern in _IGNORE:
        prediction, gold = re.sub(pattern, "", prediction), re.sub(pattern, "", gold)
    return float(prediction.lower() == gold.lower())
