"""Hidden-state capture, the similarity statistics and layer importance, against direct computations."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from reference import Recorder, rebuilt
from tiny import NUM_LAYERS, VOCAB, tiny_model

from painters import Plan
from painters.analysis.importance import importance_table, suggest
from painters.analysis.similarity import Similarity, StateStatistics, unbiased_hsic
from painters.analysis.states import state_labels, token_states
from painters.core.adapters import adapter_for
from painters.core.errors import PaintersError

SEQUENCES = [[5, 17, 3, 88, 42, 9, 11], [7, 1, 64], [30, 31, 32, 33, 34], [2, 95, 60, 12, 40, 41, 44, 70, 8]]


def random_states(states=5, tokens=300, hidden=16, seed=0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    base = torch.randn(tokens, hidden, generator=generator)
    drift = [base + 0.3 * s * torch.randn(tokens, hidden, generator=generator) for s in range(states)]
    return torch.stack(drift)


def statistics_of(states: torch.Tensor, sizes: list[int], cka_tokens: int = 64) -> StateStatistics:
    statistics = StateStatistics(cka_tokens)
    for batch in states.split(sizes, dim=1):
        statistics.add(batch)
    return statistics


def test_cosine_and_angular_equal_direct_per_token_means_in_any_batching():
    states = random_states().numpy().astype(np.float64)
    unit = states / np.linalg.norm(states, axis=-1, keepdims=True)
    direct = np.einsum("ith,jth->ijt", unit, unit)
    for sizes in ([300], [1, 99, 200], [7] * 42 + [6]):
        statistics = statistics_of(torch.from_numpy(states).float(), sizes)
        assert statistics.tokens == 300
        np.testing.assert_allclose(statistics.cosine(), direct.mean(-1), atol=1e-6)
        np.testing.assert_allclose(statistics.angular(), np.arccos(direct.clip(-1, 1)).mean(-1) / math.pi, atol=1e-5)


def reference_hsic(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased HSIC (Song et al. 2012, eq. 5) of linear kernels, written out term by term."""
    n = len(x)
    k, l_ = x @ x.T, y @ y.T
    np.fill_diagonal(k, 0)
    np.fill_diagonal(l_, 0)
    ones = np.ones(n)
    trace = np.trace(k @ l_)
    middle = (ones @ k @ ones) * (ones @ l_ @ ones) / ((n - 1) * (n - 2))
    last = 2 / (n - 2) * (ones @ k @ l_ @ ones)
    return (trace + middle - last) / (n * (n - 3))


def test_unbiased_hsic_equals_the_written_out_estimator():
    states = random_states(states=3, tokens=40).double()
    hsic = unbiased_hsic(states).numpy()
    for i in range(3):
        for j in range(3):
            assert hsic[i, j] == pytest.approx(reference_hsic(states[i].numpy(), states[j].numpy()), rel=1e-9)


def test_minibatch_cka_sums_hsic_over_minibatches_with_the_remainder_by_size():
    states = random_states(states=3, tokens=150).double()
    minibatches = [states[:, :64], states[:, 64:128], states[:, 128:]]
    total = sum(m.shape[1] * unbiased_hsic(m) for m in minibatches).numpy()
    expected = total / np.sqrt(np.outer(np.diag(total), np.diag(total)))
    for sizes in ([150], [10, 60, 80], [1] * 150):
        np.testing.assert_allclose(statistics_of(states.float(), sizes).cka(), expected, atol=1e-6)


def test_cka_is_one_on_itself_and_invariant_to_rotation_and_isotropic_scaling():
    x = random_states(states=2, tokens=500, hidden=24, seed=1)
    rotation, _ = torch.linalg.qr(torch.randn(24, 24, generator=torch.Generator().manual_seed(2)))
    transformed = 3.7 * x[0] @ rotation
    stacked = torch.stack([x[0], transformed, x[1], 0.01 * x[1] @ rotation])
    cka = statistics_of(stacked, [128, 372]).cka()
    np.testing.assert_allclose(np.diag(cka), 1.0, atol=1e-12)
    assert cka[0, 1] == pytest.approx(1.0, abs=1e-6)
    assert cka[0, 2] == pytest.approx(cka[1, 2], abs=1e-6) == pytest.approx(cka[0, 3], abs=1e-6)
    assert cka[0, 2] < 0.99


def test_minibatch_cka_estimates_full_linear_cka():
    x = random_states(states=3, tokens=4096, hidden=16, seed=3).double()
    centred = x - x.mean(1, keepdim=True)

    def full(a, b):
        return (torch.linalg.norm(a.T @ b) ** 2 / (torch.linalg.norm(a.T @ a) * torch.linalg.norm(b.T @ b))).item()

    cka = statistics_of(x.float(), [4096], cka_tokens=256).cka()
    for i, j in [(0, 1), (0, 2), (1, 2)]:
        assert cka[i, j] == pytest.approx(full(centred[i], centred[j]), abs=0.02)


def test_statistics_reject_empty_input():
    with pytest.raises(PaintersError, match="no tokens"):
        StateStatistics().cosine()
    statistics = StateStatistics()
    statistics.add(torch.randn(2, 3, 4))
    with pytest.raises(PaintersError, match="at least 4 tokens"):
        statistics.cka()


@pytest.mark.parametrize("model_type", ["llama", "gpt2", "bert"])
def test_states_of_the_full_plan_equal_transformers_hidden_states(model_type):
    model = tiny_model(model_type)
    tokens = SEQUENCES[0]
    (states,) = token_states(model, [tokens])
    with torch.no_grad():
        expected = model.base_model(input_ids=torch.tensor([tokens]), output_hidden_states=True).hidden_states
    assert states.shape == (NUM_LAYERS + 1, len(tokens), model.config.hidden_size)
    # transformers' last entry has the final norm applied in decoders; ours is before it
    torch.testing.assert_close(states[:-1], torch.cat(expected[:-1]), rtol=0, atol=0)


@pytest.mark.parametrize("model_type", ["llama", "gpt2"])
def test_states_of_a_sequential_plan_equal_a_rebuilt_model(model_type):
    model = tiny_model(model_type)
    plan = Plan.parse("0-2,2,1,4-5")
    (states,) = token_states(model, [SEQUENCES[3]], plan)
    with torch.no_grad():
        expected = rebuilt(model, plan.layers()).base_model(
            input_ids=torch.tensor([SEQUENCES[3]]), output_hidden_states=True
        )
    assert state_labels(plan) == ["embeddings", "0", "1", "2", "2", "1", "4", "5"]
    torch.testing.assert_close(states[:-1], torch.cat(expected.hidden_states[:-1]), rtol=1e-5, atol=1e-5)


def test_a_parallel_block_is_one_state_the_input_of_the_next_step():
    model = tiny_model("llama")
    plan = Plan.parse("0,[1-3],4,5")
    recorder = Recorder({4: adapter_for("llama").layer_list(model)[4]})
    (states,) = token_states(model, [SEQUENCES[0]], plan)
    recorder.remove()
    assert state_labels(plan) == ["embeddings", "0", "[1-3]", "4", "5"]
    assert states.shape[0] == 5
    torch.testing.assert_close(states[2], recorder.calls[0]["input"][0], rtol=0, atol=0)


@pytest.mark.parametrize("model_type", ["llama", "gpt2", "bert"])
def test_padding_does_not_change_the_statistics(model_type):
    model = tiny_model(model_type)
    plan = Plan.parse("0-2,[3-4],5")
    alone = StateStatistics(cka_tokens=8)
    for states in token_states(model, SEQUENCES, plan, batch_size=1):
        alone.add(states)
    for pad_id in (0, VOCAB - 1):
        padded = StateStatistics(cka_tokens=8)
        for states in token_states(model, SEQUENCES, plan, batch_size=3, pad_id=pad_id):
            padded.add(states)
        assert padded.tokens == alone.tokens == sum(map(len, SEQUENCES))
        for name in ("cosine", "angular", "cka"):
            np.testing.assert_allclose(getattr(padded, name)(), getattr(alone, name)(), atol=2e-5)


def test_an_empty_text_is_a_clear_error():
    with pytest.raises(PaintersError, match="text 2 has no tokens"):
        list(token_states(tiny_model("llama"), [[1, 2], []]))


def synthetic_similarity(plan: Plan) -> Similarity:
    size = len(plan.units) + 1
    steps = np.arange(size)
    cosine = 1 - np.abs(steps[:, None] - steps[None, :]) / size
    cosine[2, 3] = cosine[3, 2] = 0.99  # step 2 barely turns the state
    angular = np.arccos(cosine) / math.pi
    frame = pd.DataFrame(cosine, index=state_labels(plan), columns=state_labels(plan))
    return Similarity(plan, 10, frame, pd.DataFrame(angular, index=frame.index, columns=frame.columns), frame)


def test_importance_reads_block_influence_and_angular_distance_from_the_matrices():
    plan = Plan.full(6)
    result = synthetic_similarity(plan)
    table = importance_table(result)
    influence = table[table.metric == "block_influence"]
    assert list(influence.layers) == ["0", "1", "2", "3", "4", "5"]
    np.testing.assert_allclose(influence.value, [1 - result.cosine.iat[k, k + 1] for k in range(6)])
    assert list(influence[influence.best].start) == [2]
    angular = table[table.metric == "angular"]
    assert sorted(set(angular.n)) == [1, 2, 3, 4, 5]
    two = angular[angular.n == 2]
    assert list(two.layers) == ["0-1", "1-2", "2-3", "3-4", "4-5"]
    np.testing.assert_allclose(two.value, [result.angular.iat[k, k + 2] for k in range(5)])
    assert two[two.best].start.tolist() == [int(np.argmin(two.value))]
    assert table.groupby(["metric", "n"]).best.sum().eq(1).all()


def test_suggest_drops_the_least_important_steps():
    plan = Plan.full(6)
    table = importance_table(synthetic_similarity(plan))
    assert str(suggest(table, plan, 1, "block_influence")) == "0-1,3-5"
    two = table[(table.metric == "angular") & (table.n == 2) & table.best].iloc[0]
    kept = [k for k in range(6) if not two.start <= k < two.start + 2]
    assert suggest(table, plan, 2, "angular") == Plan(tuple(kept))
    with pytest.raises(PaintersError, match="unknown metric 'bi': valid metrics are block_influence, angular"):
        suggest(table, plan, 1, "bi")
    with pytest.raises(PaintersError, match="--n 6 is out of range: drop between 1 and 5"):
        suggest(table, plan, 6, "angular")
