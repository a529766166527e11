"""painters: run pretrained transformers under altered layer execution, exactly, and measure what it does.

    from painters import Plan, apply_plan, load_model
    model, tokenizer = load_model("smollm2-135m")
    with apply_plan(model, Plan.variant("skip", num_layers=30, n=6)):
        model.generate(...)

Heavy modules (torch, transformers) load on first use, so `painters plan` answers instantly.
"""

from importlib import import_module

from painters.core.errors import PaintersError
from painters.core.grammar import PlanError
from painters.core.plan import Plan

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
    "search",
    "similarity",
    "__version__",
]

_LAZY = {
    "apply_plan": "painters.core.execution",
    "load_model": "painters.models.loading",
    "evaluate": "painters.tasks.evaluation",
    "hidden_states": "painters.analysis.states",
    "similarity": "painters.analysis.similarity",
    "importance": "painters.analysis.importance",
    "search": "painters.plan_search.run",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'painters' has no attribute '{name}'")
