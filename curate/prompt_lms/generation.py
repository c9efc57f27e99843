"""Writing prompts with a trained model: batched sampling, cut at the end tag, tags stripped.

The recipe comes from the model's card: a concept model continues `<start> subject` and
stops at the end tag (GPT-2 tokenizes the tag into several pieces, so stopping is checked
on decoded text, per row); an upsampler reads `prefix + plain prompt` and writes the
detailed one. With a blocklist the model is kept from writing its words (`bad_words_ids`,
as the tokenizer writes them), and a prompt that still holds a blocked term (another
tokenization, a phrase) is sampled again, up to `RESAMPLE` times, then withheld.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

import torch

from curate.prompt_lms.blocklist import Blocklist
from curate.prompt_lms.card import PromptModelCard
from curate.prompt_lms.clean import normalize, strip_tags
from curate.prompt_lms.config import GenerationSettings

STOP_WINDOW = 16  # trailing tokens decoded to look for the end tag
RESAMPLE = 2  # further tries for a prompt that came out holding a blocked term
SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.;:!?])")  # word-level tokenizers decode "fox , art"


@dataclass(frozen=True)
class Generation:
    """One generated prompt; `raw` keeps the tags, `complete` says the end tag was written."""

    input: str
    text: str  # "" when withheld for holding a blocked term
    raw: str
    complete: bool
    blocked: str | None = None  # the blocked term a withheld prompt held


class EndTagStop:
    """Stops each row once its newly generated tokens contain the end tag (after `min_new`)."""

    def __init__(self, tokenizer: Any, *, end: str, prompt_length: int, min_new: int) -> None:
        self.tokenizer, self.end, self.prompt_length, self.min_new = tokenizer, end, prompt_length, min_new

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        new = input_ids[:, self.prompt_length:]
        if new.shape[1] < max(1, self.min_new):
            return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        tails = self.tokenizer.batch_decode(new[:, -STOP_WINDOW:], skip_special_tokens=False)
        return torch.tensor([self.end in t for t in tails], dtype=torch.bool, device=input_ids.device)


def model_inputs(texts: list[str], card: PromptModelCard) -> list[str]:
    """What the model reads for each user text: tagged subject, or prefixed plain prompt."""
    if card.recipe == "concept":
        return [f"{card.tags['start']} {normalize(t)}" for t in texts]
    return [card.prefix + normalize(t) for t in texts]


def banned_token_ids(tokenizer: Any, blocklist: Blocklist) -> list[list[int]]:
    """Token sequences of every blocked word as the tokenizer writes it, alone and after a space;
    words the vocabulary cannot write (unknown tokens) need no ban."""
    found: set[tuple[int, ...]] = set()
    for form in blocklist.surface_forms():
        for text in (form, " " + form):
            ids = tuple(tokenizer(text, add_special_tokens=False)["input_ids"])
            if ids and tokenizer.unk_token_id not in ids:
                found.add(ids)
    return [list(ids) for ids in sorted(found)]


@torch.no_grad()
def generate(model: Any, tokenizer: Any, card: PromptModelCard, texts: list[str], *, settings: GenerationSettings,
             num: int = 1, seed: int = 0, batch_size: int = 16, blocklist: Blocklist | None = None) -> list[Generation]:
    """`num` prompts per text, in input order (all of a text's prompts together)."""
    model.eval()
    torch.manual_seed(seed)
    banned = banned_token_ids(tokenizer, blocklist) if blocklist is not None else []
    results: list[Generation] = []
    for start in range(0, len(texts), batch_size):
        chunk = texts[start:start + batch_size]
        results += _generate_batch(model, tokenizer, card, chunk, settings=settings, num=num, banned=banned)
    return _resample_blocked(results, blocklist, lambda text: _generate_batch(
        model, tokenizer, card, [text], settings=settings, num=1, banned=banned)[0])


def _resample_blocked(made: list[Generation], blocklist: Blocklist | None,
                      again: Callable[[str], Generation]) -> list[Generation]:
    """Sample a prompt holding a blocked term again (up to RESAMPLE times); withhold it if it still does."""
    if blocklist is None:
        return made
    kept: list[Generation] = []
    for generation in made:
        term, tries = blocklist.match(generation.text), 0
        while term is not None and tries < RESAMPLE:
            generation, tries = again(generation.input), tries + 1
            term = blocklist.match(generation.text)
        if term is not None:
            generation = Generation(input=generation.input, text="", raw=generation.raw, complete=False, blocked=term)
        kept.append(generation)
    return kept


def _generate_batch(model: Any, tokenizer: Any, card: PromptModelCard, texts: list[str], *,
                    settings: GenerationSettings, num: int, banned: list[list[int]]) -> list[Generation]:
    device = next(model.parameters()).device
    batch = tokenizer(model_inputs(texts, card), padding=True, return_tensors="pt").to(device)
    kwargs = _decoding_kwargs(settings, num=num, pad=tokenizer.pad_token_id)
    if banned:
        kwargs["bad_words_ids"] = banned
    if card.recipe == "concept":
        stop = EndTagStop(tokenizer, end=card.tags["end"], prompt_length=batch["input_ids"].shape[1],
                          min_new=settings.min_length)
        kwargs["stopping_criteria"] = [stop]
        kwargs["min_new_tokens"] = 0  # the end tag is not EOS; EndTagStop honours min_length instead
    out = model.generate(**batch, **kwargs)
    if card.recipe == "concept":
        out = out[:, batch["input_ids"].shape[1]:]
    decoded = tokenizer.batch_decode(out, skip_special_tokens=True)
    inputs = [t for t in texts for _ in range(num)]
    return [_finish(text, raw, card) for text, raw in zip(inputs, decoded)]


def _decoding_kwargs(settings: GenerationSettings, *, num: int, pad: int | None) -> dict[str, Any]:
    return {
        "do_sample": True,
        "max_new_tokens": settings.max_length,
        "min_new_tokens": settings.min_length,
        "temperature": settings.temperature,
        "top_p": settings.top_p,
        "repetition_penalty": settings.repetition_penalty,
        "num_return_sequences": num,
        "pad_token_id": pad,
    }


def _finish(text: str, raw: str, card: PromptModelCard) -> Generation:
    """Concept: the subject plus the continuation up to the end tag (`raw` keeps all the model
    wrote, tags included); upsample: the output as decoded."""
    if card.recipe != "concept":
        return Generation(input=text, text=_tidy(raw), raw=raw, complete=True)
    start, end = card.tags["start"], card.tags["end"]
    body = strip_tags(raw, start=start, end=end)
    full = _tidy(f"{normalize(text)} {body}")
    return Generation(input=text, text=full, raw=normalize(f"{start} {normalize(text)} {raw}"), complete=end in raw)


def _tidy(text: str) -> str:
    return SPACE_BEFORE_PUNCT.sub(r"\1", normalize(text))
