"""painters: run pretrained transformers under altered layer execution, exactly, and measure what it does.

    from painters import Plan, apply_plan, load_model
    model, tokenizer = load_model("smollm2-135m")
    with apply_plan(model, Plan.variant("skip", num_layers=30, n=6)):
        model.generate(...)

Heavy modules (torch, transformers) load on first use, so `painters plan` answers instantly.
"""

from importlib import import_module

from painters.errors import PaintersError
from painters.plan import Plan, PlanError

__version__ = "0.1.0"
__all__ = [
    "Plan",
    "PlanError",
    "PaintersError",
    "apply_plan",
    "evaluate",
    "hidden_states",
    "importance",
    "load_model",
    "similarity",
    "__version__",
]

_LAZY = {
    "apply_plan": "painters.execution",
    "load_model": "painters.models",
    "evaluate": "painters.evaluation",
    "hidden_states": "painters.states",
    "similarity": "painters.layer_similarity",
    "importance": "painters.layer_importance",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'painters' has no attribute '{name}'")
