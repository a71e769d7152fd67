"""Text: the packaged sentence encoder and its on-disk embedding cache.

Importing this package is light; torch, transformers and onnxruntime load only when a
text that is not yet cached has to be encoded.
"""

from fewrec.text.encoder import BACKENDS, MODELS, EmbeddingCache, TextEncoder, get_encoder

__all__ = ["BACKENDS", "MODELS", "EmbeddingCache", "TextEncoder", "get_encoder"]
