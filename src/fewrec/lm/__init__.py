"""Small generative language models: Yes/No few-shot scoring, LoRA tuning, reasons.

Heavy parts (torch, transformers, peft) load only when a model is first used.
"""

from fewrec.lm.explain import generate_reason
from fewrec.lm.model import DEFAULT_LM, LM_SPECS, LanguageModel, LMSpec, load_lm
from fewrec.lm.prompts import Episode, build_messages

__all__ = [
    "DEFAULT_LM",
    "LM_SPECS",
    "Episode",
    "LMSpec",
    "LanguageModel",
    "build_messages",
    "generate_reason",
    "load_lm",
]
