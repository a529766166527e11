"""Exporting a plan: a standard checkpoint that loads without painters and computes what the plan computes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from reference import output_of
from safetensors import safe_open
from tiny import CONFIGS, ENCODERS, tiny_model
from tokenizers import Tokenizer, models
from transformers import AutoModel, AutoModelForCausalLM, PreTrainedTokenizerFast

from painters import PaintersError, Plan, apply_plan, load_model
from painters.tools.export import check_exportable, export, mergekit_yaml

PLAN = Plan.parse("0-1,3x3,2,5-4")  # skip, repeat, reorder and reverse in one: 8 layer calls


@pytest.fixture(scope="module")
def word_tokenizer():
    """A real (one-word) tokenizer: the tiny models need one to be saved beside them."""
    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]")))


def ids(vocab: int = 90) -> torch.Tensor:
    return torch.randint(3, vocab, (2, 12), generator=torch.Generator().manual_seed(0))


def planned_output(model, plan, **inputs) -> torch.Tensor:
    with apply_plan(model, plan):
        return output_of(model, **inputs)


def load_exported(folder: Path, model_type: str):
    auto = AutoModel if model_type in ENCODERS else AutoModelForCausalLM
    return auto.from_pretrained(folder, attn_implementation="eager").eval()


@pytest.mark.parametrize("model_type", list(CONFIGS))
def test_export_loads_without_painters_and_equals_the_planned_model(model_type, word_tokenizer, tmp_path):
    model = tiny_model(model_type)
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    assert export(model, word_tokenizer, PLAN, tmp_path / "out") == tmp_path / "out"
    exported = load_exported(tmp_path / "out", model_type)
    assert torch.equal(output_of(exported, input_ids=ids()), planned_output(model, PLAN, input_ids=ids()))
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["architectures"] == [type(model).__name__]
    assert exported.config.num_hidden_layers == 8
    if model_type == "gemma3_text":
        kinds = model.config.layer_types
        assert exported.config.layer_types == [kinds[i] for i in PLAN.layers()]
    # the model itself is untouched: same layers, same config, same weights
    assert model.config.num_hidden_layers == 6
    assert all(torch.equal(before[name], tensor) for name, tensor in model.state_dict().items())


def test_a_repeated_layer_is_written_once_per_use(word_tokenizer, tmp_path):
    model = tiny_model("llama")
    export(model, word_tokenizer, PLAN, tmp_path / "out")
    with safe_open(tmp_path / "out" / "model.safetensors", "pt") as weights:
        names = set(weights.keys())
        for position, index in enumerate(PLAN.layers()):
            written = weights.get_tensor(f"model.layers.{position}.mlp.up_proj.weight")
            assert torch.equal(written, model.model.layers[index].mlp.up_proj.weight)
    assert sum(name.endswith("mlp.up_proj.weight") for name in names) == 8
    assert "model.embed_tokens.weight" in names


def test_generate_from_the_export_equals_generate_under_the_plan(word_tokenizer, tmp_path):
    model = tiny_model("llama")
    export(model, word_tokenizer, PLAN, tmp_path / "out")
    exported = load_exported(tmp_path / "out", "llama")
    prompt = ids()[:1]
    options = dict(max_new_tokens=10, do_sample=False, pad_token_id=0)
    with torch.no_grad(), apply_plan(model, PLAN):
        planned = model.generate(input_ids=prompt, **options)
    with torch.no_grad():
        assert torch.equal(exported.generate(input_ids=prompt, **options), planned)


def test_parallel_blocks_are_refused_with_the_reason():
    with pytest.raises(PaintersError) as error:
        check_exportable(Plan.parse("0-1,[2-3]x2,4-5"))
    assert str(error.value) == (
        "plan '0-1,[2-3]x2,4-5' runs parallel blocks ([2-3]): a checkpoint is a plain sequence of layers and "
        "cannot express the mean of layers that read the same input; export a plan without '[...]'"
    )
    assert check_exportable(Plan.parse("0,[1],2")) == Plan.parse("0,[1],2")  # a one-layer block is the layer


def test_an_occupied_folder_is_refused_unless_forced(word_tokenizer, tmp_path):
    model = tiny_model("llama")
    out = tmp_path / "out"
    out.mkdir()
    export(model, word_tokenizer, "0-5", out)  # an existing empty folder is fine
    with pytest.raises(PaintersError, match=f"'{out}' already exists and is not empty: give another --out, or"):
        export(model, word_tokenizer, "0-2", out)
    assert json.loads((out / "config.json").read_text())["num_hidden_layers"] == 6
    export(model, word_tokenizer, "0-2", out, force=True)
    assert json.loads((out / "config.json").read_text())["num_hidden_layers"] == 3
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]  # no staging folder left beside it
    (tmp_path / "fresh").mkdir()
    assert out.stat().st_mode == (tmp_path / "fresh").stat().st_mode  # not mkdtemp's private mode


def test_an_export_killed_part_way_leaves_no_checkpoint(word_tokenizer, tmp_path, monkeypatch):
    model = tiny_model("llama")

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(word_tokenizer, "save_pretrained", killed)  # the weights are written, the tokenizer not
    with pytest.raises(KeyboardInterrupt):
        export(model, word_tokenizer, "0-5", tmp_path / "out")
    assert list(tmp_path.iterdir()) == []
    assert isinstance(model.model.layers[0], type(tiny_model("llama").model.layers[0]))  # the layer list is back


def test_mergekit_recipe_has_half_open_ranges_per_ascending_run():
    model = tiny_model("llama")
    model.name_or_path = "/models/tiny"
    assert mergekit_yaml(model, Plan.parse("0-1,3x2,5-4")) == (
        "# painters plan 0-1,3x2,5-4\n"
        "slices:\n"
        "- sources:\n  - model: /models/tiny\n    layer_range: [0, 2]\n"
        "- sources:\n  - model: /models/tiny\n    layer_range: [3, 4]\n"
        "- sources:\n  - model: /models/tiny\n    layer_range: [3, 4]\n"
        "- sources:\n  - model: /models/tiny\n    layer_range: [5, 6]\n"
        "- sources:\n  - model: /models/tiny\n    layer_range: [4, 5]\n"
        "merge_method: passthrough\n"
        "dtype: float32\n"
    )


# The embedded models: what a user exports and loads elsewhere.

SMOLLM_PLANS = ["0-11,18-29", "0-11,15x6,18-29"]
PROMPTS = ["The capital of France is Paris, and the capital of Italy is", "Two plus two is"]


@pytest.fixture(scope="module")
def smollm(painters_cache):
    return load_model("smollm2-135m", cache_dir=painters_cache)


@pytest.mark.slow
def test_the_cached_embedded_checkpoint_is_standard(smollm):
    model, _ = smollm
    folder = Path(model.name_or_path)
    assert json.loads((folder / "config.json").read_text())["architectures"] == ["LlamaForCausalLM"]
    with safe_open(folder / "model.safetensors", "pt") as weights:
        assert "model.embed_tokens.weight" in set(weights.keys())


@pytest.mark.slow
@pytest.mark.parametrize("plan", SMOLLM_PLANS)
def test_exported_smollm_gives_the_planned_logits_and_tokens(smollm, plan, tmp_path):
    model, tokenizer = smollm
    export(model, tokenizer, plan, tmp_path / "out")
    exported = AutoModelForCausalLM.from_pretrained(tmp_path / "out").eval()
    tokenizer.padding_side = "left"
    inputs = dict(tokenizer(PROMPTS, return_tensors="pt", padding=True))
    difference = (output_of(exported, **inputs) - planned_output(model, plan, **inputs)).abs().max()
    assert difference <= 1e-5
    prompt = dict(tokenizer(PROMPTS[:1], return_tensors="pt"))
    options = dict(max_new_tokens=12, do_sample=False, pad_token_id=tokenizer.eos_token_id)
    with torch.no_grad(), apply_plan(model, plan):
        planned = model.generate(**prompt, **options)
    with torch.no_grad():
        assert torch.equal(exported.generate(**prompt, **options), planned)


@pytest.mark.slow
def test_exported_minilm_gives_the_planned_states_and_keeps_its_pooling(tmp_path):
    model, tokenizer = load_model("minilm-l6")
    plan = "0-1,4-5"
    export(model, tokenizer, plan, tmp_path / "out")
    exported = AutoModel.from_pretrained(tmp_path / "out").eval()
    inputs = dict(tokenizer(PROMPTS, return_tensors="pt", padding=True))
    assert (output_of(exported, **inputs) - planned_output(model, plan, **inputs)).abs().max() <= 1e-5
    assert json.loads((tmp_path / "out" / "1_Pooling" / "config.json").read_text())["pooling_mode_mean_tokens"]


def _painters(cache: Path, *args: str) -> subprocess.CompletedProcess:
    code = "import sys; from painters.cli import main; sys.argv = ['painters', *sys.argv[1:]]; main()"
    env = {**os.environ, "PAINTERS_CACHE": str(cache)}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=600, env=env)


@pytest.mark.slow
def test_eval_of_the_export_equals_eval_under_the_plan(painters_cache, tmp_path):
    plan, scores = "skip:n=6", {}
    exported = _painters(painters_cache, "export", "--plan", plan, "--out", str(tmp_path / "skip6"))
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout.strip() == str(tmp_path / "skip6")
    for name, args in (("planned", ["--plan", plan]), ("exported", ["--model", str(tmp_path / "skip6")])):
        result = _painters(painters_cache, "eval", *args, "--tasks", "arc_easy", "--limit", "12",
                           "--json", str(tmp_path / f"{name}.json"))  # fmt: skip
        assert result.returncode == 0, result.stderr
        scores[name] = json.loads((tmp_path / f"{name}.json").read_text())["results"]
    assert scores["exported"] == scores["planned"]
    again = _painters(painters_cache, "export", "--plan", plan, "--out", str(tmp_path / "skip6"))
    assert again.returncode == 2
    assert again.stderr.strip().splitlines() == [
        f"error: '{tmp_path / 'skip6'}' already exists and is not empty: give another --out, or --force to replace it"
    ]


MERGEKIT = Path(sys.executable).parent / "mergekit-yaml"


@pytest.mark.slow
@pytest.mark.parametrize("plan", SMOLLM_PLANS)
def test_mergekit_builds_the_same_model_from_the_recipe(smollm, plan, tmp_path):
    model, tokenizer = smollm
    export(model, tokenizer, plan, tmp_path / "painters")
    export(model, tokenizer, plan, tmp_path / "recipe.yaml", fmt="mergekit")
    merged = subprocess.run(
        [str(MERGEKIT), str(tmp_path / "recipe.yaml"), str(tmp_path / "mergekit"), "--quiet"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert merged.returncode == 0, merged.stderr
    inputs = dict(tokenizer(PROMPTS[:1], return_tensors="pt"))
    ours, theirs = (AutoModelForCausalLM.from_pretrained(tmp_path / name).eval() for name in ("painters", "mergekit"))
    assert theirs.config.num_hidden_layers == len(Plan.parse(plan).layers())
    assert (output_of(theirs, **inputs) - output_of(ours, **inputs)).abs().max() <= 1e-5


KILLED_EXPORT = """
import os, signal, sys
from pathlib import Path
import painters.tools.export as export_module
from painters import load_model
from painters.tools.export import export

model, tokenizer = load_model(sys.argv[1], device="cpu")
where = sys.argv[3]

def killed(*args, **kwargs):  # the process dies as under `kill -9`: no handler, no finally runs
    if where == "weights":
        Path(args[0], "model.safetensors").write_bytes(b"half")
    os.kill(os.getpid(), signal.SIGKILL)

if where == "weights":
    tokenizer.save_pretrained = killed
else:  # the --force swap: the new checkpoint complete, the old one moved aside
    replace, calls = os.replace, []
    def once_then_kill(src, dst):
        replace(src, dst)
        calls.append(dst)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGKILL)
    export_module.os.replace = once_then_kill
export(model, tokenizer, "0-1", sys.argv[2], force=True)
"""


@pytest.mark.parametrize("where", ["weights", "swap"])
def test_a_real_sigkill_leaves_the_old_checkpoint_and_the_next_export_cleans_up(tiny_folder, tmp_path, where):
    """A process killed by SIGKILL runs no cleanup: the target is the old checkpoint or none, never a half one,
    and what the dead process staged is removed by the next export into the same folder."""
    out = tmp_path / "out"
    export(*_loaded(tiny_folder), "0-5", out)
    before = (out / "config.json").read_text()
    done = subprocess.run([sys.executable, "-c", KILLED_EXPORT, str(tiny_folder), str(out), where],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == -9, done.stderr
    if out.exists():
        assert (out / "config.json").read_text() == before  # the old checkpoint, whole
    left = sorted(p.name for p in tmp_path.iterdir() if p.name != "out")
    assert left and all(name.startswith(".") for name in left)  # staging (and, in the swap, the old one aside)
    export(*_loaded(tiny_folder), "0-2", tmp_path / "again")
    staged = [p for p in tmp_path.iterdir() if p.name.startswith(".painters-staging-")]
    assert staged == []
    assert json.loads((tmp_path / "again" / "config.json").read_text())["num_hidden_layers"] == 3


def _loaded(folder):
    from painters import load_model

    return load_model(str(folder), device="cpu")
