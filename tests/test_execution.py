"""Planned execution on tiny random models of every supported architecture."""

import pytest
import torch
from reference import output_of, parallel_error, sequential_error
from tiny import CONFIGS, ENCODERS, NUM_LAYERS, VOCAB, tiny_model

from painters import Plan, PlanError, apply_plan
from painters.core.adapters import UnsupportedModelError, adapter_for
from painters.core.execution import PlannedLayers

SEQUENTIAL = {
    "skip": "0-1,4-5",
    "reverse": "0,4-1,5",
    "middle_repeat": "0-1,3x3,5",
    "shuffle": str(Plan.variant("shuffle", num_layers=NUM_LAYERS, n=4, seed=5)),
    "swap": "0-1,3-2,4-5",
    "long": "0-5,2-4,5,0",
}


def inputs_for(model_type, seed=0):
    torch.manual_seed(seed)
    ids = torch.randint(3, VOCAB, (2, 9))
    mask = torch.ones_like(ids)
    mask[1, :3] = 0  # left padding in the second row
    if model_type in ENCODERS:
        mask = mask.flip(1)  # right padding for encoders
    return {"input_ids": ids, "attention_mask": mask}


@pytest.fixture(scope="module", params=list(CONFIGS))
def model_type(request):
    return request.param


@pytest.fixture(scope="module")
def model(model_type):
    return tiny_model(model_type)


def test_full_plan_is_bitwise_identical(model, model_type):
    inputs = inputs_for(model_type)
    plain = output_of(model, **inputs)
    with apply_plan(model, Plan.full(NUM_LAYERS)):
        planned = output_of(model, **inputs)
    assert torch.equal(planned, plain)


@pytest.mark.parametrize("name", list(SEQUENTIAL))
def test_sequential_plan_equals_physically_rebuilt_model(model, model_type, name):
    error, change = sequential_error(model, inputs_for(model_type), Plan.parse(SEQUENTIAL[name]))
    assert error <= 1e-5
    assert change > 1e-4  # the plan did change the output


@pytest.mark.parametrize("text, block, after", [("0,[1-3],4-5", (1, 2, 3), 4), ("0-1,[4,2]x2,5", (4, 2), 4)])
def test_parallel_block_is_the_mean_of_its_members_called_directly(model, model_type, text, block, after):
    assert parallel_error(model, inputs_for(model_type), text, block, after) <= 1e-6


def test_weights_are_shared_not_copied(model):
    adapter = adapter_for(model.config.model_type)
    originals = list(adapter.layer_list(model))
    pointers = {name: p.data_ptr() for name, p in model.named_parameters()}
    count = sum(p.numel() for p in model.parameters())
    with apply_plan(model, "0,[1-4]x3,2x2,5"):
        slots = adapter.layer_list(model)
        assert [slot.layer for slot in slots][1:5] == originals[1:5]
        assert slots[1].layer is slots[5].layer is originals[1]
        assert sum(p.numel() for p in model.parameters()) == count
        assert {p.data_ptr() for p in model.parameters()} == set(pointers.values())
    assert {name: p.data_ptr() for name, p in model.named_parameters()} == pointers


def test_restore_puts_everything_back(model, model_type):
    adapter = adapter_for(model.config.model_type)
    layers = adapter.layer_list(model)
    config = model.base_model.config
    types = getattr(config, "layer_types", None)
    before = output_of(model, **inputs_for(model_type))
    handle = apply_plan(model, "0-1,[2-3]x2,4x2,5")
    assert isinstance(adapter.layer_list(model), PlannedLayers)
    assert config.num_hidden_layers == 2 + 4 + 2 + 1
    handle.restore()
    handle.restore()  # idempotent
    assert adapter.layer_list(model) is layers
    assert config.num_hidden_layers == NUM_LAYERS
    assert getattr(config, "layer_types", None) == types
    assert all(getattr(m, "layer_idx", i) == i for i, layer in enumerate(layers) for m in layer.modules())
    assert torch.equal(output_of(model, **inputs_for(model_type)), before)


def test_context_manager_restores_on_error(model):
    layers = adapter_for(model.config.model_type).layer_list(model)
    with pytest.raises(RuntimeError), apply_plan(model, "0-2"):
        raise RuntimeError("boom")
    assert adapter_for(model.config.model_type).layer_list(model) is layers


def test_slot_attention_types_follow_the_layers():
    model = tiny_model("gemma3_text")
    types = list(model.config.layer_types)
    with apply_plan(model, "1,0,[3,2],5x2"):
        assert model.config.layer_types == [types[i] for i in (1, 0, 3, 2, 5, 5)]
    assert model.config.layer_types == types


def test_plan_errors(model):
    with pytest.raises(PlanError, match=f"valid indices 0-{NUM_LAYERS - 1}"):
        apply_plan(model, f"0-{NUM_LAYERS}")
    with apply_plan(model, "0-1"), pytest.raises(PlanError, match="already runs under plan '0-1'"):
        apply_plan(model, "0-2")


def test_unsupported_architecture_lists_the_supported_ones():
    with pytest.raises(
        UnsupportedModelError, match="unsupported architecture 't5': painters supports bert, gemma3_text"
    ):
        adapter_for("t5")
