"""Structured output: generation constrained by a JSON schema, a Lark grammar or a regular
expression, through :meth:`adak.Session.set_logits_processor` and llguidance
(``pip install adak[structured]``).

    import adak, adak.structured
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    text = adak.structured.generate(session, prompt_ids, adak.structured.json_schema(schema))

Before each sample, the token mask of the grammar's current state is applied (forbidden tokens
get -inf); the tokens the session took since the previous sample advance the matcher. End
tokens are allowed once the grammar accepts, so generation ends where the value is complete.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

try:
    import llguidance
except ImportError as e:  # pragma: no cover - the extra is optional
    raise ImportError("adak.structured needs llguidance: pip install 'adak[structured]'") from e

from . import InvalidArgumentError, Model, Session, _lib

__all__ = ["json_schema", "lark", "regex", "Constraint", "generate"]


def json_schema(schema: Union[str, Dict[str, Any]]) -> str:
    """An llguidance grammar for JSON values matching ``schema`` (compact JSON)."""
    return llguidance.LLMatcher.grammar_from_json_schema(schema, defaults={"whitespace_flexible": False})


def lark(grammar: str) -> str:
    """An llguidance grammar from a Lark grammar text."""
    return llguidance.LLMatcher.grammar_from_lark(grammar)


def regex(pattern: str) -> str:
    """An llguidance grammar for text matching ``pattern`` (also a choice: "yes|no")."""
    return llguidance.LLMatcher.grammar_from_regex(pattern)


class _Vocabulary:
    """What llguidance's TokenizerWrapper reads: every token's bytes (control tokens marked with
    a leading 0xff, as llguidance's llama.cpp adapter does), end tokens and a tokenize call."""

    def __init__(self, model: Model):
        n = model.n_vocab
        self.tokens: List[bytes] = []
        self.special_token_ids: List[int] = []
        for t in range(n):
            plain = model.token_to_piece(t, special=False)
            text = model.token_to_piece(t, special=True)
            if not plain and text:
                self.special_token_ids.append(t)
                text = b"\xff" + text
            self.tokens.append(text)
        self.eog = [t for t in self.special_token_ids if model.is_eog(t)] or [model.eos]
        self.eos_token_id = self.eog[0]
        self.bos_token_id = model.bos
        self._model = model

    def __call__(self, text: Union[bytes, str]) -> List[int]:
        return self._model.tokenize(text, add_special=False, parse_special=False)


def _tokenizer(model: Model) -> "llguidance.LLTokenizer":
    """The model's llguidance tokenizer, made once per model (about a second)."""
    tok = getattr(model, "_llguidance_tokenizer", None)
    if tok is None:
        vocab = _Vocabulary(model)
        tok = llguidance.LLTokenizer(llguidance.TokenizerWrapper(vocab), n_vocab=model.n_vocab, eos_token=vocab.eog)
        model._llguidance_tokenizer = tok
    return tok


class Constraint:
    """A logits processor that keeps a session's output inside ``grammar``."""

    def __init__(self, session: Session, grammar: str):
        self.session = session
        self.matcher = llguidance.LLMatcher(_tokenizer(session.model), grammar, log_level=0)
        if self.matcher.is_error():
            raise InvalidArgumentError(_lib.ERR_INVALID_ARGUMENT, f"grammar: {self.matcher.get_error()}")
        self._start: Optional[int] = None
        self._consumed = 0
        self._n_vocab = session.model.n_vocab

    def __call__(self, logits: np.ndarray) -> None:
        tokens = self.session.tokens
        if self._start is None:
            self._start = len(tokens)
        new = tokens[self._start + self._consumed:]
        if new:
            self.matcher.consume_tokens(new)
            self._consumed += len(new)
        if self.matcher.is_error():
            raise RuntimeError(self.matcher.get_error())
        bits = np.frombuffer(self.matcher.compute_bitmask(), dtype=np.uint8)
        allowed = np.unpackbits(bits, bitorder="little")[: self._n_vocab].astype(bool)
        logits[~allowed] = -np.inf

    @property
    def accepting(self) -> bool:
        return self.matcher.is_accepting()


def generate(session: Session, prompt: Union[str, bytes, Sequence[int], None], grammar: str,
             max_tokens: int = 256) -> str:
    """Generates text from ``prompt`` that follows ``grammar`` (see :func:`json_schema`,
    :func:`lark`, :func:`regex`) and returns it."""
    constraint = Constraint(session, grammar)
    session.set_logits_processor(constraint)
    try:
        return "".join(session.generate(prompt, max_tokens))
    finally:
        session.set_logits_processor(None)
