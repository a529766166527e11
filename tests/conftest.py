"""Shared fixtures. Tests never touch the user's cache: dequantized models go to one folder per test session."""

import os

import pytest
from refusals import cli_fixture

# lm-eval bootstraps some standard errors in a forked multiprocessing pool; a fork of this process after
# a test ran Ray in it (tests/test_cluster.py) can deadlock in the child, so lm-eval bootstraps in-process.
os.environ.setdefault("DISABLE_MULTIPROC", "1")

# Where the embedded models and task data are not installed on purpose (scripts/gpu-check: their 300 MB do
# not travel to a borrowed GPU machine), a test that failed only because painters said one of them is
# missing is reported as skipped, with that reason. Everywhere else (CI, scripts/install) they must be
# there, and such a test fails.
ASSETS_ABSENT = os.environ.get("PAINTERS_TESTS_ASSETS") == "absent"
ASSET_MISSING = ("needs its package: pip install --no-deps", "package (not installed)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if ASSETS_ABSENT and report.failed and any(text in str(report.longrepr) for text in ASSET_MISSING):
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0, "needs the embedded models or data: not installed")


@pytest.fixture(scope="session")
def painters_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("painters-cache")


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory):
    """A tiny random Llama with a small byte-level BPE tokenizer, saved as a model folder."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-llama")
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer, bpe.decoder = pre_tokenizers.ByteLevel(add_prefix_space=False), decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<s>", "</s>"])
    bpe.train_from_iterator(["The quick brown fox jumps over the lazy dog. Question: Answer:"] * 10, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>", eos_token="</s>")
    tokenizer.save_pretrained(folder)
    config = LlamaConfig(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=6,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512)  # fmt: skip
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


cli = pytest.fixture(cli_fixture)
