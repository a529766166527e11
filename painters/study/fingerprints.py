"""Short stable digests of what a stored result depends on: the model's weights and the documents scored."""

from __future__ import annotations

import hashlib
import json

import torch
from transformers import PreTrainedModel

from painters.core.adapters import adapter_for
from painters.core.errors import PaintersError
from painters.core.execution import PlannedLayers
from painters.models.devices import stored_tensor

_LOCAL = ("_name_or_path", "transformers_version")  # config entries that say where, not what
_SAMPLES = 4096  # values read from each tensor: enough to tell checkpoints apart, cheap for 7B models


def model_fingerprint(model: PreTrainedModel) -> str:
    """A digest of the model's architecture config and, per tensor, its name, shape, dtype and sampled values.

    The values are read wherever they are stored (a GPU, the CPU, accelerate's offload), so a model gets
    one fingerprint however it is placed; its dtype is part of it, as it changes the numbers.
    """
    if isinstance(adapter_for(model.config.model_type).layer_list(model), PlannedLayers):
        raise PaintersError("fingerprint the model while no plan is applied: its state dict has slot keys")
    config = {k: v for k, v in model.config.to_dict().items() if k not in _LOCAL}
    sha = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    for name, tensor in sorted(model.state_dict().items()):
        flat = stored_tensor(model, name, tensor).detach().reshape(-1)
        sample = flat[:: max(1, flat.numel() // _SAMPLES)].to("cpu", torch.float64)
        sha.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
        sha.update(sample.numpy().tobytes())
    return sha.hexdigest()[:16]


def data_fingerprint(inputs: object) -> str:
    """A digest of the documents themselves (and whatever else decides a score), so changed data never reuses it."""
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()[:16]
