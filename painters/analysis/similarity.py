"""How alike the hidden states of a model's steps are: mean cosine, mean angular distance, linear CKA.

Cosine and angular distance are per token, between the states of the same token, averaged over every
real token of every text (each token counts once). Linear CKA compares whole representations, which
over all tokens would need an H x H cross-covariance per pair of states; we use minibatch CKA
(Nguyen, Raghu & Kornblith 2021): the unbiased HSIC of linear kernels on consecutive minibatches of
tokens, summed, then normalised. It is exactly 1 for identical states and invariant to orthogonal
transforms and isotropic scaling, and memory stays bounded by the minibatch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from transformers import PreTrainedModel

from painters.analysis.states import hidden_states, state_labels
from painters.core.errors import PaintersError
from painters.core.execution import resolve_plan
from painters.core.plan import Plan
from painters.models.devices import statistics_device

COSINE_TOKENS = 1024  # tokens per per-token cosine computation: bounds its [tokens, states, states] tensor
CKA_TOKENS = 256  # tokens per CKA minibatch
_MIN_CKA_TOKENS = 4  # the unbiased HSIC estimator needs n > 3


class StateStatistics:
    """Running sums over tokens of batches of states [states, tokens, hidden]; read the matrices any time."""

    def __init__(self, cka_tokens: int = CKA_TOKENS) -> None:
        self.tokens = 0
        self._cka_tokens = cka_tokens
        self._cosine: torch.Tensor | None = None
        self._angular: torch.Tensor | None = None
        self._hsic: torch.Tensor | None = None
        self._pending: list[torch.Tensor] = []  # tokens not yet in a full CKA minibatch

    def add(self, states: torch.Tensor) -> None:
        """Add one batch of real tokens' states: computed where they are, summed in float64 on the CPU."""
        states = states.to(statistics_device(states.device))
        if self._cosine is None:
            size = states.shape[0]
            self._cosine, self._angular, self._hsic = (torch.zeros(size, size, dtype=torch.float64) for _ in range(3))
        for chunk in states.split(COSINE_TOKENS, dim=1):
            cosines = token_cosines(chunk.double())  # float64: arccos near 1 needs the digits
            self._cosine += cosines.sum(0).cpu()
            self._angular += (cosines.clamp(-1, 1).arccos() / math.pi).sum(0).cpu()
        self.tokens += states.shape[1]
        self._pending.append(states)
        pending = torch.cat(self._pending, dim=1)
        full = pending.shape[1] // self._cka_tokens * self._cka_tokens
        for start in range(0, full, self._cka_tokens):
            self._hsic += self._cka_tokens * unbiased_hsic(pending[:, start : start + self._cka_tokens]).cpu()
        self._pending = [pending[:, full:]]

    def cosine(self) -> np.ndarray:
        """Mean over tokens of cos(state i, state j)."""
        return (self._checked(self._cosine) / self.tokens).numpy()

    def angular(self) -> np.ndarray:
        """Mean over tokens of arccos(cos(state i, state j)) / pi: 0 for the same direction, 1 for opposite."""
        return (self._checked(self._angular) / self.tokens).numpy()

    def cka(self) -> np.ndarray:
        """Minibatch linear CKA; the last, partial minibatch counts in proportion to its tokens."""
        hsic = self._checked(self._hsic).clone()
        rest = torch.cat(self._pending, dim=1)
        if rest.shape[1] >= _MIN_CKA_TOKENS:
            hsic += rest.shape[1] * unbiased_hsic(rest).cpu()
        elif self.tokens < _MIN_CKA_TOKENS:
            raise PaintersError(f"CKA needs at least {_MIN_CKA_TOKENS} tokens, got {self.tokens}: give more text")
        scale = hsic.diagonal().sqrt()
        return (hsic / scale[:, None] / scale[None, :]).numpy()

    def _checked(self, total: torch.Tensor | None) -> torch.Tensor:
        if total is None:
            raise PaintersError("no tokens were added: give at least one non-empty text")
        return total


def token_cosines(states: torch.Tensor) -> torch.Tensor:
    """[states, tokens, hidden] -> [tokens, states, states]: each token's cosine between every two states."""
    unit = states / states.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    per_token = unit.transpose(0, 1)
    return per_token @ per_token.transpose(1, 2)


def unbiased_hsic(states: torch.Tensor) -> torch.Tensor:
    """[states, n, hidden] -> [states, states]: the unbiased HSIC (Song et al. 2012) of linear kernels.

    With K~ the Gram matrix X X^T with its diagonal zeroed, and likewise L~:
    HSIC = (tr(K~ L~) + 1'K~1 1'L~1 / ((n-1)(n-2)) - 2/(n-2) 1'K~L~1) / (n(n-3)).
    """
    x = states.double()
    n = x.shape[1]
    gram = x @ x.transpose(1, 2)
    gram.diagonal(dim1=1, dim2=2).zero_()
    flat, rows = gram.flatten(1), gram.sum(2)
    totals = rows.sum(1)
    trace = flat @ flat.T  # tr(K L) = <K, L> for symmetric K, L
    return (trace + totals[:, None] * totals[None, :] / ((n - 1) * (n - 2)) - 2 / (n - 2) * rows @ rows.T) / (
        n * (n - 3)
    )


@dataclass(frozen=True)
class Similarity:
    """The state matrices of one model under one plan, labelled `embeddings` then each step's layer text."""

    plan: Plan
    tokens: int
    cosine: pd.DataFrame
    angular: pd.DataFrame
    cka: pd.DataFrame


def similarity(
    model: PreTrainedModel,
    tokenizer,
    texts: list[str],
    plan: Plan | str | None = None,
    **options,
) -> Similarity:
    """Cosine, angular-distance and CKA matrices between the states of every two steps, over `texts`.

    `options` (batch_size, max_length, progress) go to `painters.hidden_states`, whose batches are
    summed up one by one.
    """
    plan = resolve_plan(model, plan)
    statistics = StateStatistics()
    for states in hidden_states(model, tokenizer, texts, plan, **options):
        statistics.add(states)
    labels = state_labels(plan)

    def frame(matrix: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(matrix, index=pd.Index(labels, name="state"), columns=labels)

    cosine, angular, cka = statistics.cosine(), statistics.angular(), statistics.cka()
    return Similarity(plan, statistics.tokens, frame(cosine), frame(angular), frame(cka))
