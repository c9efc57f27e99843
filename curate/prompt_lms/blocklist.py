"""The blocklist: terms a kept prompt may not hold, matched on normalised words, at prepare and at generation.

The default list is the word list of the `better-profanity` package (about 900 entries, leet
spellings included) with curate's own file laid over it (`blocklist.txt`: explicit-content
terms that list lacks, and the exemptions that keep ordinary picture words usable). A user's
`--blocklist FILE` replaces both. One format for both files, one entry a line:

    nude            a word (or a phrase of several) matched as whole normalised words
    porn*           a word prefix: porn, porno, pornstar, pornographic
    !god            an exemption of one word: drops that word's entry (here: the package's)
    !naked eye      an exemption of several words: where they occur together, they never count
    # ...           a comment

Text and terms are normalised alike: Unicode NFKC, case folded, possessives dropped, dotted
or hyphenated single letters joined (`n.s.f.w` -> `nsfw`), hyphens and other punctuation
read as spaces (`half-naked` holds `naked`). A word also matches the terms of its plural and
`-ness` forms (`nudes`, `nakedness`).
"""

from __future__ import annotations

import importlib.util
import re
import unicodedata
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Iterable

from curate.errors import CurateError

PACKAGE_LIST = ("better_profanity", "profanity_wordlist.txt")  # (package, data file): the maintained base list
ACRONYM = re.compile(r"\b(?:[a-z0-9][.\-_]){1,}[a-z0-9]\b\.?")  # n.s.f.w, s-o-b, p.u.s.s.y.
WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
PLURAL_ES = ("ses", "xes", "zes", "ches", "shes")


def words(text: str) -> list[str]:
    """The normalised words of a text or a term (see the module's docstring)."""
    folded = unicodedata.normalize("NFKC", text).casefold().replace("\u2019", "'")
    folded = ACRONYM.sub(lambda m: re.sub(r"[.\-_]", "", m.group(0)), folded)
    return [w.split("'")[0] for w in WORD.findall(folded)]


def forms(word: str) -> tuple[str, ...]:
    """The word and the base forms it may inflect: plural -s/-es/-ies, and -ness."""
    if not word.endswith("s"):
        return (word,)
    if word.endswith("ness") and len(word) > 6:
        return (word, word[:-4])
    if word.endswith("ies") and len(word) > 4:
        return (word, word[:-3] + "y")
    if word.endswith(PLURAL_ES):
        return (word, word[:-2])
    if not word.endswith(("ss", "us", "is")) and len(word) > 3:
        return (word, word[:-1])
    return (word,)


@dataclass(frozen=True)
class Term:
    """One entry: its words, and whether the last one is a prefix (`porn*`)."""

    text: str
    words: tuple[str, ...]
    prefix: bool = False


def parse_term(line: str) -> Term | None:
    """An entry of a list file, or None for a blank line or one with no words."""
    prefix = line.rstrip().endswith("*")
    found = tuple(words(line.rstrip().rstrip("*")))
    return Term(text=" ".join(found) + ("*" if prefix else ""), words=found, prefix=prefix) if found else None


@dataclass
class Blocklist:
    """Blocked and exempted terms, indexed by their first word; `match` finds the first blocked one."""

    terms: tuple[Term, ...]
    exempt: tuple[Term, ...] = ()
    source: str = "default"
    _by_first: dict[str, list[Term]] = field(default_factory=dict, init=False, repr=False)
    _prefixes: list[Term] = field(default_factory=list, init=False, repr=False)
    _exempt_by_first: dict[str, list[Term]] = field(default_factory=dict, init=False, repr=False)
    _firsts: frozenset[str] = field(default=frozenset(), init=False, repr=False)
    _prefix_starts: tuple[str, ...] = field(default=(), init=False, repr=False)

    def __post_init__(self) -> None:
        dropped = {t.words for t in self.exempt if len(t.words) == 1}
        for term in self.terms:
            if term.words in dropped:
                continue
            if term.prefix and len(term.words) == 1:
                self._prefixes.append(term)
            else:
                self._by_first.setdefault(term.words[0], []).append(term)
        for term in self.exempt:
            if len(term.words) > 1:
                self._exempt_by_first.setdefault(term.words[0], []).append(term)
        self._firsts = frozenset(self._by_first) | frozenset(self._exempt_by_first)
        self._prefix_starts = tuple(t.words[0] for t in self._prefixes)

    def match(self, text: str) -> str | None:
        """The first blocked term in `text` (as its words, `*` for a prefix), or None."""
        tokens = words(text)
        firsts, prefixes = self._firsts, self._prefix_starts
        hits = [i for i, t in enumerate(tokens) if any(f in firsts for f in forms(t)) or t.startswith(prefixes)]
        if not hits:  # the common case: one set test per word
            return None
        free = self._not_exempt(tokens, hits)
        for i in hits:
            if not free[i]:
                continue
            for term in _starting_at(tokens, i, self._by_first):
                if all(free[i:i + len(term.words)]):
                    return term.text
            for term in self._prefixes:
                if tokens[i].startswith(term.words[0]):
                    return term.text
        return None

    def _not_exempt(self, tokens: list[str], starts: list[int]) -> list[bool]:
        """Per token: False where an exempted phrase covers it."""
        free = [True] * len(tokens)
        for i in starts:
            for term in _starting_at(tokens, i, self._exempt_by_first):
                free[i:i + len(term.words)] = [False] * len(term.words)
        return free

    def surface_forms(self) -> list[str]:
        """How blocked words are written, for a generator to be kept from writing them: each single-word
        term, its plural, and Capitalised (multi-word terms are caught after generation)."""
        found: list[str] = []
        for term in [*(t for terms in self._by_first.values() for t in terms), *self._prefixes]:
            if len(term.words) == 1:
                word = term.words[0]
                found += [word, word.capitalize()] + ([] if term.prefix else [word + "s"])
        return found


def _starting_at(tokens: list[str], start: int, index: dict[str, list[Term]]) -> Iterable[Term]:
    """The terms of `index` whose words follow from `start`: the first word exactly (or, alone, in
    an inflected form), the last in any inflected form, or as a prefix (`porn*`)."""
    for first in forms(tokens[start]):
        for term in index.get(first, ()):
            end = start + len(term.words)
            if end > len(tokens) or (len(term.words) > 1 and tuple(tokens[start:end - 1]) != term.words[:-1]):
                continue
            last = tokens[end - 1]
            if (last.startswith(term.words[-1]) if term.prefix else term.words[-1] in forms(last)):
                yield term


def read_entries(text: str) -> tuple[list[Term], list[Term]]:
    """(blocked terms, exemptions) of a list file's text."""
    blocked: list[Term] = []
    exempt: list[Term] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        target = exempt if line.startswith("!") else blocked
        term = parse_term(line.lstrip("!"))
        if term is not None:
            target.append(term)
    return blocked, exempt


def package_list() -> str:
    """The maintained base list's text, read from its package's files without importing it (its import
    builds every leet variant of every word, which takes seconds)."""
    spec = importlib.util.find_spec(PACKAGE_LIST[0])
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    if not folders:
        raise CurateError("The default blocklist comes from the better-profanity package: pip install better-profanity "
                          "(or pass --blocklist FILE).")
    return (Path(folders[0]) / PACKAGE_LIST[1]).read_text(encoding="utf-8")


def own_list_path() -> Path:
    """curate's additions and exemptions, shipped as package data."""
    return Path(str(resources.files("curate.prompt_lms").joinpath("blocklist.txt")))


def load_blocklist(path: Path | None = None, *, option: str = "--blocklist") -> Blocklist:
    """A user's list file, or (None) the default: the package's list with curate's own laid over it.

    An exemption of one word drops that entry (`!god` drops the package's `god`); one of several
    words shields them where they occur together (`!naked eye`).
    """
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CurateError(f"Could not read {option} {path}: {exc.__class__.__name__}.") from None
        blocked, exempt = read_entries(text)
        return Blocklist(terms=tuple(blocked), exempt=tuple(exempt), source=str(path))
    base, _ = read_entries(package_list())
    added, exempt = read_entries(own_list_path().read_text(encoding="utf-8"))
    return Blocklist(terms=tuple(base + added), exempt=tuple(exempt), source="default")
