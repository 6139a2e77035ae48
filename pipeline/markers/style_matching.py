"""Language style matching (LSM) between therapist and client (Ireland & Pennebaker 2010).

Definitions
-----------
- *Words* are the normalised tokens (:func:`pipeline.lexicons.normalise_token`; tokens that normalise to
  nothing, such as a lone "?", are not words). A word counts for every function-word category of
  ``lexicons/function_words.json`` whose list holds it (a token can be in several, as in LIWC).
- *Rate* of a category: p = 100 x category words / all words (of a role, or of a turn).
- *Per-category score*: LSM_c = 1 - |p_therapist - p_client| / (p_therapist + p_client + epsilon), with
  ``epsilon`` = 0.0001 (Ireland & Pennebaker's constant, which keeps an absent category from dividing by
  zero). 1 is identical rates, 0 is one side only.
- ``lsm`` (session): the mean of LSM_c over the categories (nine by default), each role's words for the whole
  session pooled. A category neither role uses scores 1, as in the original definition. None when a role
  has no word.
- ``lsm_turn_mean`` (session): the same score for each pair of adjacent conversational turns of different
  roles (a turn and the other role's next turn, both directions: therapist -> client and client ->
  therapist), averaged over pairs. Categories absent from both turns of a pair are skipped, and pairs
  with no category left (or with a turn without words) are skipped; without this rule short turns would
  score 1 on every absent category. None without a scored pair.

Conversational turns are the ones of :mod:`pipeline.markers.backchannels` (backchannels removed, a
speaker's neighbouring utterances merged), so a backchannel neither splits a turn nor makes a pair; the
session score uses every word, backchannels included.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from pipeline.errors import ConfigError
from pipeline.lexicons import load_lexicon, normalise_token
from pipeline.types import ROLES, AttributedWord, Indicator, Role, RoleAssignment

#: Ireland & Pennebaker's (2010) constant in the denominator.
LSM_EPSILON = 0.0001


@dataclass(frozen=True)
class StyleMatchingOptions:
    """Parameters of language style matching.

    Attributes
    ----------
    lexicon : str
        Name of the word-list file in ``pipeline/lexicons`` (``function_words``, version 1.0.0).
    categories : tuple of str, optional
        The categories to average over; None: every category of the lexicon (the nine of Ireland &
        Pennebaker 2010).
    epsilon : float
        Added to the denominator of the per-category score; must be > 0.
    """

    lexicon: str = "function_words"
    categories: tuple[str, ...] | None = None
    epsilon: float = LSM_EPSILON

    def __post_init__(self) -> None:
        if not self.epsilon > 0:
            raise ConfigError(f"epsilon must be > 0, got {self.epsilon!r}")
        if self.categories is not None and not self.categories:
            raise ConfigError("categories must be None (all) or a non-empty tuple")


class TokenTurn(Protocol):
    """What turn-level LSM needs from a turn (:class:`pipeline.markers.backchannels.ConversationalTurn`)."""

    @property
    def role(self) -> Role | None: ...

    @property
    def text(self) -> str: ...


def function_word_categories(options: StyleMatchingOptions = StyleMatchingOptions()) -> dict[str, frozenset[str]]:
    """The categories' word sets, in the lexicon's order.

    Raises
    ------
    ConfigError
        ``options.categories`` names a category the lexicon does not have.
    """
    lex = load_lexicon(options.lexicon)["categories"]
    names = tuple(lex) if options.categories is None else options.categories
    unknown = [n for n in names if n not in lex]
    if unknown:
        raise ConfigError(f"unknown function-word categories {unknown!r}; the lexicon has {tuple(lex)!r}")
    return {n: frozenset(lex[n]) for n in names}


def words_of_text(text: str) -> tuple[str, ...]:
    """The words of a text as LSM counts them: whitespace tokens, normalised, empty ones dropped."""
    return tuple(t for t in (normalise_token(x) for x in text.split()) if t)


def category_rates(words: Iterable[str], categories: Mapping[str, frozenset[str]]) -> dict[str, float] | None:
    """Rate of each category, as a percentage of all words.

    Parameters
    ----------
    words : iterable of str
        Normalised words (:func:`words_of_text`).
    categories : mapping of str to frozenset of str
        :func:`function_word_categories`.

    Returns
    -------
    dict of str to float, or None
        Category -> 100 x category words / words; None without a word.
    """
    words = list(words)
    if not words:
        return None
    return {c: 100.0 * sum(w in vocab for w in words) / len(words) for c, vocab in categories.items()}


def category_score(p1: float, p2: float, *, epsilon: float = LSM_EPSILON) -> float:
    """LSM_c = 1 - |p1 - p2| / (p1 + p2 + epsilon), for two rates in percent."""
    return 1.0 - abs(p1 - p2) / (p1 + p2 + epsilon)


def style_matching(
    rates_a: Mapping[str, float],
    rates_b: Mapping[str, float],
    *,
    skip_absent: bool = False,
    epsilon: float = LSM_EPSILON,
) -> float | None:
    """Mean per-category score of two speakers' rates (same categories in both).

    Parameters
    ----------
    rates_a, rates_b : mapping of str to float
        :func:`category_rates` of each side.
    skip_absent : bool
        Leave out categories with rate 0 on both sides (the turn-level rule).
    epsilon : float

    Returns
    -------
    float or None
        In [0, 1]; None when no category is left.
    """
    scores = [category_score(rates_a[c], rates_b[c], epsilon=epsilon) for c in rates_a
              if not (skip_absent and rates_a[c] == 0 and rates_b[c] == 0)]
    return sum(scores) / len(scores) if scores else None


def session_lsm(
    therapist_words: Iterable[str],
    client_words: Iterable[str],
    *,
    options: StyleMatchingOptions = StyleMatchingOptions(),
) -> float | None:
    """Session ``lsm``: every category, each role's words pooled; None when a role has no word."""
    cats = function_word_categories(options)
    a, b = category_rates(therapist_words, cats), category_rates(client_words, cats)
    if a is None or b is None:
        return None
    return style_matching(a, b, epsilon=options.epsilon)


def turn_pair_scores(
    turns: Sequence[tuple[Role | None, Sequence[str]]],
    *,
    options: StyleMatchingOptions = StyleMatchingOptions(),
) -> tuple[float, ...]:
    """Scores of every adjacent pair of turns of different roles (module docstring), in order.

    Parameters
    ----------
    turns : sequence of (role, words)
        Conversational turns in order, each with its normalised words; a pair needs a therapist and a
        client turn, so a turn of no role scores in no pair.
    options : StyleMatchingOptions

    Returns
    -------
    tuple of float
        One score per scored pair.
    """
    cats = function_word_categories(options)
    rates = [category_rates(w, cats) for _, w in turns]
    out = []
    for k in range(len(turns) - 1):
        (r1, _), (r2, _) = turns[k], turns[k + 1]
        if r1 not in ROLES or r2 not in ROLES or r1 == r2:
            continue
        a, b = rates[k], rates[k + 1]
        if a is None or b is None:
            continue
        s = style_matching(a, b, skip_absent=True, epsilon=options.epsilon)
        if s is not None:
            out.append(s)
    return tuple(out)


def measure_style_matching(
    words: Sequence[AttributedWord],
    turns: Sequence[TokenTurn],
    roles: RoleAssignment,
    *,
    options: StyleMatchingOptions = StyleMatchingOptions(),
) -> tuple[Indicator, ...]:
    """The session's ``lsm`` and ``lsm_turn_mean`` indicators (role None, unit ``score 0-1``).

    Parameters
    ----------
    words : sequence of AttributedWord
        Every attributed word of the session.
    turns : sequence of TokenTurn
        Conversational turns in order (:func:`pipeline.markers.backchannels.conversational_turns`).
    roles : RoleAssignment
    options : StyleMatchingOptions

    Returns
    -------
    tuple of Indicator
        ``lsm`` then ``lsm_turn_mean``; values None where undefined (module docstring).
    """
    by_role: dict[Role, list[str]] = {r: [] for r in ROLES}
    for w in words:
        role = roles.role_of(w.speaker)
        t = normalise_token(w.text)
        if role is not None and t:
            by_role[role].append(t)
    lsm = session_lsm(by_role["therapist"], by_role["client"], options=options)
    pairs = turn_pair_scores([(t.role, words_of_text(t.text)) for t in turns], options=options)
    return (
        Indicator("lsm", None, lsm, "score 0-1"),
        Indicator("lsm_turn_mean", None, sum(pairs) / len(pairs) if pairs else None, "score 0-1"),
    )
