"""The users' setting on a CPU: bfloat16, accelerate's dispatch and offload, meta-device 7B models, placements."""

import pytest
import torch
from accelerate import cpu_offload
from reference import output_of, parallel_error
from test_execution import inputs_for
from test_generation import greedy, variant_plan
from tiny import CONFIGS, DECODERS, NUM_LAYERS, VOCAB, tiny_model
from transformers import AutoModelForCausalLM, LlamaConfig

from painters import Plan, apply_plan, evaluate, load_model
from painters.analysis.importance import importance_table, suggest
from painters.analysis.similarity import similarity
from painters.core.errors import PaintersError
from painters.core.variants import VARIANTS
from painters.models.costs import kv_cache_bytes, plan_cost, weight_bytes
from painters.models.devices import input_device
from painters.models.loading import empty_model
from painters.models.placement import Placement
from painters.study.fingerprints import model_fingerprint
from painters.study.grid import grid
from painters.study.store import Store
from painters.study.sweep import sweep

# --- placements ---------------------------------------------------------------------------------------------------


def test_auto_is_float32_on_the_cpu_here():
    assert Placement().check() == Placement("cpu", "float32", None, None)


@pytest.mark.parametrize(
    "placement, message",
    [
        (Placement(device="cuda"), "--device cuda: this machine has no CUDA GPU (valid here: auto, cpu)"),
        (Placement(device="cuda:3"), "--device cuda:3: this machine has no CUDA GPU"),
        (Placement(device="tpu"), "unknown --device 'tpu': valid devices are auto, cpu, cuda, cuda:N, mps"),
        (Placement(device="mps"), "--device mps: this machine has no Apple GPU"),
        (Placement(dtype="float8"), "unknown --dtype 'float8': valid dtypes are auto, float32, bfloat16, float16"),
        (Placement(device_map="everywhere"), "unknown --device-map 'everywhere': valid maps are auto, balanced"),
        (Placement(attn="flash"), "unknown --attn 'flash': valid kernels are sdpa, eager, flash_attention_2"),
    ],
)
def test_impossible_placements_are_one_line_errors(placement, message):
    if torch.cuda.is_available() or torch.backends.mps.is_available():
        pytest.skip("this machine has a GPU: the no-GPU messages do not apply")
    with pytest.raises(PaintersError) as error:
        placement.check()
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_a_model_loads_straight_into_its_dtype(tiny_folder):
    model, _ = load_model(str(tiny_folder), dtype="bfloat16")
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert input_device(model) == torch.device("cpu")


# --- bfloat16 -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=list(CONFIGS))
def bf16_model(request):
    return tiny_model(request.param).to(torch.bfloat16), request.param


def test_bfloat16_full_plan_is_bitwise_identical(bf16_model):
    model, model_type = bf16_model
    inputs = inputs_for(model_type)
    plain = output_of(model, **inputs)
    with apply_plan(model, Plan.full(NUM_LAYERS)):
        assert torch.equal(output_of(model, **inputs), plain)


@pytest.mark.parametrize("text, block, after", [("0,[1-3],4-5", (1, 2, 3), 4), ("0-1,[4,2]x2,5", (4, 2), 4)])
def test_bfloat16_parallel_block_is_the_float32_mean_cast_once(bf16_model, text, block, after):
    model, model_type = bf16_model
    assert parallel_error(model, inputs_for(model_type), text, block, after) == 0


def test_a_wide_bfloat16_block_keeps_its_mean_accurate():
    """30 members: a running bfloat16 sum would lose most of the block's update; the float32 sum does not."""
    model = tiny_model("llama").to(torch.bfloat16)
    inputs = inputs_for("llama")
    plan = Plan.parse(f"0,[{','.join(['1-4'] * 7)},2,3],5")  # 30 members
    exact = _float64_block_update(model, inputs, plan)
    layers = model.model.layers
    captured = {}
    hook = layers[5].register_forward_pre_hook(lambda _, args: captured.setdefault("mean", args[0]))
    with apply_plan(model, plan), torch.no_grad():
        model(**inputs)
    hook.remove()
    error = (captured["mean"].double() - exact["mean"]).norm() / (exact["mean"] - exact["input"]).norm()
    assert error < 0.02


def _float64_block_update(model, inputs, plan):
    """The block's input and the float64 mean of its members, computed from recorded member outputs."""
    from reference import Recorder

    layers = model.model.layers
    recorder = Recorder({1: layers[1], 2: layers[2], 3: layers[3], 4: layers[4]})
    with apply_plan(model, plan), torch.no_grad():
        model(**inputs)
    recorder.remove()
    outputs = [call["output"].double() for call in recorder.calls]
    return {"input": recorder.calls[0]["input"].double(), "mean": sum(outputs) / len(outputs)}


@pytest.mark.parametrize("model_type", DECODERS)
@pytest.mark.parametrize("name", VARIANTS)
def test_bfloat16_cached_generation_equals_recomputation(model_type, name):
    model = tiny_model(model_type, seed=1).to(torch.bfloat16)
    torch.manual_seed(0)
    ids = torch.randint(3, VOCAB, (2, 7))
    with apply_plan(model, variant_plan(name)):
        cached, cached_scores = greedy(model, ids, use_cache=True)
        recomputed, recomputed_scores = greedy(model, ids, use_cache=False)
    assert torch.equal(cached, recomputed)
    assert (cached_scores.float() - recomputed_scores.float()).abs().max().item() <= 0.05


# --- the paper's model on the meta device --------------------------------------------------------------------------

LLAMA2_7B = dict(
    vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
    num_key_value_heads=32, max_position_embeddings=4096,
)  # fmt: skip


@pytest.fixture(scope="module")
def llama2_7b():
    from accelerate import init_empty_weights

    with init_empty_weights():
        return AutoModelForCausalLM.from_config(LlamaConfig(**LLAMA2_7B))


def test_llama2_7b_runs_every_variant_on_the_meta_device_without_weights(llama2_7b):
    assert {p.device.type for p in llama2_7b.parameters()} == {"meta"}
    for name in VARIANTS:
        options = {"n": 8, "seed": 0, "loops": 2, "layer": 5}
        from painters.core.variants import options_of

        plan = Plan.variant(name, num_layers=32, **{k: v for k, v in options.items() if k in options_of(name)})
        with apply_plan(llama2_7b, plan):
            assert len(llama2_7b.model.layers) == len(plan.layers()) == llama2_7b.config.num_hidden_layers
        assert llama2_7b.config.num_hidden_layers == 32


def test_llama2_7b_cost_is_known_before_any_weight(llama2_7b):
    bf16 = Placement("cpu", "bfloat16")
    assert weight_bytes(llama2_7b, bf16) == 6_738_415_616 * 2  # Llama-2-7B's parameter count, untied head
    per_call = 2 * 32 * 128 * 2  # keys and values, 32 heads of 128, two bytes each
    assert kv_cache_bytes(llama2_7b, Plan.full(32), bf16, 1000) == 32 * per_call * 1000
    assert kv_cache_bytes(llama2_7b, Plan.variant("skip", num_layers=32, n=8), bf16, 1000) == 24 * per_call * 1000
    looped = Plan.variant("looped_parallel", num_layers=32, n=8, loops=3)
    assert kv_cache_bytes(llama2_7b, looped, bf16, 1000) == (24 + 8 * 3) * per_call * 1000
    cost = plan_cost(llama2_7b, looped, bf16)
    assert cost["weights"] == "12.55 GiB" and cost["KV cache"] == "0.732 GiB per 1,000 tokens"
    assert cost["layer calls"] == "48"


def test_a_sliding_window_layer_keeps_at_most_its_window():
    config = CONFIGS["gemma3_text"]()
    model = AutoModelForCausalLM.from_config(config)
    placement = Placement("cpu", "float32")
    per_call = 2 * 2 * 8 * 4  # 2 key-value heads of 8, float32
    sliding = sum(config.layer_types[i] == "sliding_attention" for i in range(NUM_LAYERS))
    assert kv_cache_bytes(model, Plan.full(NUM_LAYERS), placement, 100) == (
        sliding * 4 + (NUM_LAYERS - sliding) * 100
    ) * per_call


def test_the_empty_model_has_the_real_shapes_and_no_weights(tiny_folder):
    empty = empty_model(str(tiny_folder))
    loaded, _ = load_model(str(tiny_folder))
    assert {p.device.type for p in empty.parameters()} == {"meta"}
    assert sum(p.numel() for p in empty.parameters()) == sum(p.numel() for p in loaded.parameters())


# --- accelerate: dispatched and offloaded models ---------------------------------------------------------------------


def _split_map(config) -> dict:
    """Embeddings and the first half of the layers on the CPU, the rest (and the head) offloaded to disk."""
    half = config.num_hidden_layers // 2
    places = {"model.embed_tokens": "cpu", "model.rotary_emb": "cpu", "model.norm": "disk", "lm_head": "disk"}
    places.update({f"model.layers.{i}": "cpu" if i < half else "disk" for i in range(config.num_hidden_layers)})
    return places


@pytest.fixture(scope="module")
def dispatched(tiny_folder, tmp_path_factory):
    """The tiny Llama three ways: as loaded, split between CPU and disk offload, and under `cpu_offload`."""
    plain, tokenizer = load_model(str(tiny_folder))
    offload = tmp_path_factory.mktemp("offload")
    split = AutoModelForCausalLM.from_pretrained(
        str(tiny_folder), device_map=_split_map(plain.config), offload_folder=str(offload), dtype=torch.float32
    ).eval()
    offloaded = cpu_offload(load_model(str(tiny_folder))[0], execution_device=torch.device("cpu"))
    return plain, {"split": split, "cpu_offload": offloaded}, tokenizer


@pytest.mark.parametrize("how", ["split", "cpu_offload"])
def test_dispatched_models_are_bitwise_equal_under_every_variant(dispatched, how):
    plain, models, _ = dispatched
    model = models[how]
    assert any(p.device.type == "meta" for p in model.parameters())  # really offloaded
    assert input_device(model) == torch.device("cpu")
    torch.manual_seed(0)
    ids = torch.randint(3, 300, (2, 7))
    for name in VARIANTS:
        plan = Plan.variant(name, num_layers=6, **_options(name))
        with apply_plan(plain, plan):
            expected, expected_tokens = output_of(plain, input_ids=ids), greedy(plain, ids, use_cache=True)[0]
        with apply_plan(model, plan):
            got, tokens = output_of(model, input_ids=ids), greedy(model, ids, use_cache=True)[0]
        assert torch.equal(got, expected), name
        assert torch.equal(tokens, expected_tokens), name


def _options(name):
    from painters.core.variants import options_of

    return {k: v for k, v in {"n": 2, "seed": 1, "loops": 2, "layer": 2}.items() if k in options_of(name)}


def test_dispatched_models_keep_their_fingerprint(dispatched):
    plain, models, _ = dispatched
    assert model_fingerprint(models["split"]) == model_fingerprint(plain)
    assert model_fingerprint(models["cpu_offload"]) == model_fingerprint(plain)


def test_evaluate_similarity_sweep_and_suggest_run_on_an_offloaded_model(dispatched, tmp_path):
    plain, models, tokenizer = dispatched
    split = models["split"]
    for plan in (None, "0-1,[2-3],4-5"):
        got = evaluate(split, tokenizer, plan, ["arc_easy"], limit=3, progress=False)
        expected = evaluate(plain, tokenizer, plan, ["arc_easy"], limit=3, progress=False)
        assert got["samples"] == expected["samples"]
    texts = ["The quick brown fox jumps over the lazy dog.", "Question: Answer: the dog."]
    ours, theirs = similarity(split, tokenizer, texts), similarity(plain, tokenizer, texts)
    assert (ours.cosine - theirs.cosine).abs().max().max() <= 1e-6
    full = Plan.full(6)
    assert suggest(importance_table(ours), full, 2, "block_influence") == suggest(
        importance_table(theirs), full, 2, "block_influence"
    )
    points = grid(6, ["skip", "parallel"], [2], 1, [3])
    with Store(tmp_path / "split.db") as store:
        assert sweep(split, tokenizer, "split", points, ["arc_easy"], store, limit=2, progress=False) == 3
        stored = [tuple(row) for row in store.query("SELECT plan, metrics FROM cells ORDER BY plan")]
    with Store(tmp_path / "plain.db") as store:
        sweep(plain, tokenizer, "plain", points, ["arc_easy"], store, limit=2, progress=False)
        assert [tuple(row) for row in store.query("SELECT plan, metrics FROM cells ORDER BY plan")] == stored
