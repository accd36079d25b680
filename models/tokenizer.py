"""The one tokenization path shared by training, export and serving."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from tokenizers import Tokenizer

from models.exceptions import ModelsError

PAD = "[PAD]"
# BERT-style vocabularies (MiniLM) pad with [PAD]; RoBERTa/MPNet ones (the distillation
# teacher's) with <pad>.
PAD_TOKENS = (PAD, "<pad>")
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
)


class TextEncoder:
    """A fast tokenizer that pads to the batch's longest text and truncates at ``max_length``.

    ``encode`` holds a lock: a Rust tokenizer must not be used by two threads at once.
    """

    def __init__(self, tokenizer_file: Path, max_length: int) -> None:
        if not tokenizer_file.is_file():
            raise ModelsError(f"tokenizer file not found: {tokenizer_file}")
        self.max_length = max_length
        self._lock = threading.Lock()
        self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()
        self._tokenizer.enable_truncation(max_length=max_length)
        self._pad_token, self._pad_id = PAD, 0
        for token in PAD_TOKENS:
            pad_id = self._tokenizer.token_to_id(token)
            if pad_id is not None:
                self._pad_token, self._pad_id = token, pad_id
                break
        self._tokenizer.enable_padding(pad_id=self._pad_id, pad_token=self._pad_token)

    def encode(self, texts: Sequence[str]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Token ids and attention mask, both ``int64`` of shape (batch, longest)."""
        with self._lock:
            encodings = self._tokenizer.encode_batch(list(texts))
        ids = np.asarray([e.ids for e in encodings], dtype=np.int64)
        mask = np.asarray([e.attention_mask for e in encodings], dtype=np.int64)
        return ids, mask

    def lengths(self, texts: Sequence[str]) -> list[int]:
        """Token count of each text after truncation (no padding)."""
        ids, mask = self.encode(texts)
        del ids
        return [int(n) for n in mask.sum(axis=1)]

    def save(self, path: Path) -> None:
        """Write ``tokenizer.json`` with this truncation and without fixed padding."""
        with self._lock:
            self._tokenizer.no_padding()
            try:
                self._tokenizer.save(str(path))
            finally:
                self._tokenizer.enable_padding(pad_id=self._pad_id, pad_token=self._pad_token)
