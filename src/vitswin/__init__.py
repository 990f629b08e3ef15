"""vitswin: fine-tune, evaluate, explain and compare Vision and Swin Transformers (and any timm classifier).

The entry points, for scripts and notebooks (imported when first used, so `import vitswin` stays light):

    import vitswin
    result = vitswin.run_study(vitswin.load_config())          # the built-in default study
    pandas.DataFrame(result.comparisons())                      # every comparison: estimate, interval, p, verdict
    result.report_html                                          # the report
"""

import importlib
from typing import Any

_ENTRY_POINTS = {
    "load_config": "vitswin.config",
    "validate_config": "vitswin.config",
    "run_study": "vitswin.study",
    "train_models": "vitswin.study",
    "report_study": "vitswin.study",
    "StudyResult": "vitswin.study",
    "explain_runs": "vitswin.explain.runner",
    "export_run": "vitswin.export",
}
__all__ = sorted(_ENTRY_POINTS)


def __getattr__(name: str) -> Any:
    if name not in _ENTRY_POINTS:
        raise AttributeError(f"module 'vitswin' has no attribute {name!r}")
    return getattr(importlib.import_module(_ENTRY_POINTS[name]), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
