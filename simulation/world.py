"""A seeded synthetic world for one policy, so the loop can be run and measured end to end.

The world has what real trust-and-safety traffic has and a toy would not: a low base rate,
borderline items whose signals sit between the classes, categorical segments with their own risk,
reviewers of unequal reliability (one of them poor), an emerging abuse pattern that starts on a
given day with new wording and shifted signals, and optionally a hidden campaign: violating items
that wrap phrases no other item uses in everyday wording, from ordinary accounts, which a
model trained before it scores low and allows; its operators can probe the live model and
reword what it would not allow (`evade`). Everything it writes follows the README's file
formats; the ground truth goes to separate files so tests can measure the loop against it.

The policy's optional `simulation` section shapes the world; fields it does not describe get
generic, seeded defaults, so a policy written by someone else simulates too.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from flywheel.errors import FlywheelError
from flywheel.files import write_json_atomic
from flywheel.language import iso_code
from flywheel.policy import Policy, describe_problem
from flywheel.records import write_table


class _Section(BaseModel):
    """A section of the simulator's schema: unknown keys are refused, as a policy's are."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NumericSignal(_Section):
    """Simulated distribution of one numeric field: its mean for benign and violating items,
    and for the emerging abuse pattern (which shifts it)."""

    kind: Literal["count", "positive", "real"] = "count"
    benign: float = 1.0
    violating: float = 3.0
    emerging: float | None = None


class CategoricalSignal(_Section):
    """Simulated values of one categorical field with their shares and a per-value risk factor."""

    values: dict[str, float] = Field(min_length=1)
    risk: dict[str, float] = {}


class TextVocabulary(_Section):
    benign: list[str] = Field(min_length=5)
    violating: list[str] = Field(min_length=3)
    emerging: list[str] = Field(min_length=3)


class Language(_Section):
    """Items written in another language: their share of all items, and their vocabulary."""

    share: float = Field(gt=0.0, lt=1.0)
    text: TextVocabulary


class Simulation(_Section):
    """The synthetic world `flywheel simulate` builds for a policy: its `simulation` section."""

    base_rate: float = Field(default=0.05, ge=0.005, le=0.10)
    borderline_rate: float = Field(default=0.08, ge=0.0, le=0.5)
    emerging_share: float = Field(default=0.6, ge=0.0, le=1.0)
    text: TextVocabulary | None = None
    # other languages by ISO 639-1 code (the rest of the items use `text`)
    languages: dict[str, Language] = {}

    @field_validator("languages")
    @classmethod
    def _shares(cls, value: dict[str, Language]) -> dict[str, Language]:
        for code in value:
            try:
                iso_code(code)
            except FlywheelError as exc:
                raise ValueError(str(exc)) from None
        if sum(language.share for language in value.values()) >= 1.0:
            raise ValueError("the languages' shares must leave some items to `text`")
        return value

    numeric: dict[str, NumericSignal] = {}
    categorical: dict[str, CategoricalSignal] = {}


def world_spec(policy: Policy) -> Simulation:
    """The policy's `simulation` section, checked: its schema and that it names only fields the
    policy declares (a policy without one simulates with generic defaults)."""
    try:
        spec = Simulation.model_validate(policy.simulation)
    except ValidationError as exc:
        source = f"policy {policy.name}"
        raise FlywheelError(describe_problem(exc, source, Simulation, "simulation")) from exc
    for section, names, declared in (
        ("numeric", spec.numeric, policy.fields.numeric),
        ("categorical", spec.categorical, policy.fields.categorical),
    ):
        unknown = sorted(set(names) - set(declared))
        if unknown:
            raise FlywheelError(
                f"policy {policy.name}: simulation.{section} names fields not in "
                f"fields.{section}: {', '.join(unknown)}"
            )
    return spec


GENERIC_TEXT = TextVocabulary(
    benign=[
        "hello",
        "thanks",
        "see you",
        "tomorrow",
        "great",
        "meeting",
        "photo",
        "weekend",
        "family",
        "question",
        "sounds good",
        "nice work",
        "the plan",
        "good morning",
    ],
    violating=[
        "act now",
        "limited time",
        "click here",
        "guaranteed",
        "urgent",
        "exclusive deal",
        "send money",
        "free gift",
    ],
    emerging=["new drop", "secret link", "invite code", "bonus round", "early access"],
)
# ordinary words, none in the shipped vocabularies, for hidden campaigns' phrases
CAMPAIGN_WORDS = [
    "anchor",
    "autumn",
    "basket",
    "blanket",
    "bridge",
    "candle",
    "canyon",
    "carpet",
    "castle",
    "cement",
    "chapter",
    "circus",
    "cobalt",
    "copper",
    "cotton",
    "crystal",
    "desert",
    "diamond",
    "dolphin",
    "engine",
    "falcon",
    "feather",
    "forest",
    "fountain",
    "gallery",
    "garden",
    "glacier",
    "granite",
    "harbor",
    "harvest",
    "helmet",
    "island",
    "ivory",
    "jacket",
    "jungle",
    "kettle",
    "ladder",
    "lantern",
    "lemon",
    "marble",
    "meadow",
    "mirror",
    "monkey",
    "needle",
    "orbit",
    "orchard",
    "paddle",
    "palace",
    "pepper",
    "pillow",
    "planet",
    "pocket",
    "quarry",
    "rabbit",
    "ribbon",
    "river",
    "rocket",
    "saddle",
    "silver",
    "spiral",
    "summit",
    "tablet",
    "temple",
    "thunder",
    "timber",
    "tunnel",
    "valley",
    "velvet",
    "violin",
    "walnut",
    "window",
    "winter",
    "yellow",
    "zephyr",
]
LEET = str.maketrans({"e": "3", "o": "0", "i": "1", "a": "@", "s": "$"})
FORMATS = ("csv", "parquet", "jsonl")


@dataclass(frozen=True)
class Reviewer:
    """A simulated reviewer. Real reviewers rarely invent a violation in clear content but do
    miss subtle ones, so their two error rates differ; `accuracy` is the balanced mean. A careful
    reviewer's errors fall mostly on borderline items; a careless one's anywhere."""

    reviewer_id: str
    sensitivity: float  # P(says violating | violating)
    specificity: float  # P(says benign | benign)
    seconds_per_decision: float

    @property
    def accuracy(self) -> float:
        return (self.sensitivity + self.specificity) / 2


DEFAULT_REVIEWERS = (
    Reviewer("rev-ana", 0.96, 0.995, 45.0),
    Reviewer("rev-bo", 0.95, 0.993, 60.0),
    Reviewer("rev-chen", 0.94, 0.995, 40.0),
    Reviewer("rev-dara", 0.93, 0.99, 50.0),
    Reviewer("rev-eli", 0.92, 0.99, 35.0),
    # the unreliable one: fast, misses many, invents some. Far enough below the QA bar (0.90) that
    # a hundred gold checks tell (balanced ~0.75 with borderline items, ~0.04 standard error)
    Reviewer("rev-fox", 0.60, 0.93, 12.0),
)
# a careless reviewer of the kind imported history brings: flips about a third of answers,
# anywhere, and has never seen a gold check
CARELESS_REVIEWER = Reviewer("rev-zed", 0.65, 0.65, 15.0)
# a new team (a vendor, a new queue) whose first decisions share no item with anyone before
NEW_TEAM = (
    Reviewer("new-kai", 0.95, 0.99, 40.0),
    Reviewer("new-lea", 0.93, 0.99, 45.0),
    Reviewer("new-mo", 0.94, 0.995, 50.0),
)
UNRELIABLE_BELOW = 0.9


def team(
    error: float, size: int = 7, careless: float | None = None, miss_share: float = 0.5
) -> tuple[Reviewer, ...]:
    """A team for worlds of `reviewer_errors: uniform`: `size` careful reviewers whose balanced
    error is `error` (with `miss_share` of it on violations: 0.5 is symmetric, 2/3 misses
    violations twice as often as it invents them), and optionally one careless reviewer who
    flips `careless` of their answers."""
    miss, false_alarm = 2 * error * miss_share, 2 * error * (1 - miss_share)
    members = [
        Reviewer(f"rev-{k + 1:02d}", 1 - miss, 1 - false_alarm, 40.0 + 5 * k) for k in range(size)
    ]
    if careless is not None:
        members.append(Reviewer("rev-careless", 1 - careless, 1 - careless, 15.0))
    return tuple(members)


CAREFUL_ERROR_ON_CLEAR_ITEMS = 0.4  # share of a careful reviewer's error rate left on clear items


@dataclass(frozen=True)
class WorldConfig:
    """Size and shape of a simulated world (the policy's `simulation` section adds the rest)."""

    seed: int = 7
    days: int = 30
    items_per_day: int = 800
    emerging_day: int = 20
    history_days: int | None = None  # decisions exist for days before this; default: emerging_day
    review_fraction: float = 0.35
    multi_review_fraction: float = 0.3
    max_reviews_per_item: int = 3  # an item decided more than once gets 2 to this many
    # how reviewers err: "borderline" (careful ones mostly on hard items, the realistic default)
    # or "uniform" (every reviewer at their own rates whatever the item: the Dawid-Skene model)
    reviewer_errors: Literal["borderline", "uniform"] = "borderline"
    golden_items: int = 600
    golden_positive_share: float = 0.3
    borderline_accuracy_drop: float = 0.15
    start: str = "2026-01-05"
    reviewers: tuple[Reviewer, ...] = DEFAULT_REVIEWERS
    # a new team deciding review-queue items (mostly violating) of the history that no other
    # reviewer decided, `new_team_per_item` of them per item
    new_team: tuple[Reviewer, ...] = ()
    new_team_items: int = 0
    new_team_violating_share: float = 0.9
    new_team_per_item: int = 2
    # a hidden campaign from this day on: `campaign_share` of each day's items are violating,
    # phrases no item had in everyday wording, from ordinary accounts: the first model allows them
    campaign_day: int | None = None
    campaign_share: float = 0.1

    def validate(self) -> WorldConfig:
        if self.days < 1 or self.items_per_day < 1:
            raise FlywheelError("simulate: days and items per day must be at least 1")
        if not 0 <= self.emerging_day <= self.days:
            raise FlywheelError(f"simulate: emerging day must be between 0 and {self.days}")
        if not 0 < self.review_fraction <= 1:
            raise FlywheelError("simulate: review fraction must be in (0, 1]")
        if self.golden_items < 10:
            raise FlywheelError("simulate: a golden set needs at least 10 items")
        if len(self.reviewers) < 3:
            raise FlywheelError("simulate: at least 3 reviewers are needed")
        if not 2 <= self.max_reviews_per_item <= len(self.reviewers):
            raise FlywheelError(
                f"simulate: reviews per item must be between 2 and {len(self.reviewers)}"
            )
        if self.campaign_day is not None and not 0 <= self.campaign_day <= self.days:
            raise FlywheelError(f"simulate: the campaign day must be between 0 and {self.days}")
        if not 0 < self.campaign_share < 1:
            raise FlywheelError("simulate: the campaign share must be in (0, 1)")
        if self.new_team_items and not 1 <= self.new_team_per_item <= len(self.new_team):
            raise FlywheelError("simulate: a new team needs at least as many reviewers as per item")
        return self

    @property
    def decided_days(self) -> int:
        return self.emerging_day if self.history_days is None else self.history_days


@dataclass
class World:
    """A simulated world: what the platform sees, and apart from it, the truth."""

    policy: str
    traffic: pd.DataFrame
    decisions: pd.DataFrame
    golden: pd.DataFrame
    truth: pd.DataFrame
    reviewers: pd.DataFrame
    meta: dict = field(default_factory=dict)


def _rng(policy: Policy, seed: int, stream: str) -> np.random.Generator:
    return np.random.default_rng(
        [seed, zlib.crc32(policy.name.encode()), zlib.crc32(stream.encode())]
    )


def _numeric_spec(policy: Policy, name: str, seed: int) -> NumericSignal:
    if name in world_spec(policy).numeric:
        return world_spec(policy).numeric[name]
    rng = _rng(policy, seed, f"numeric:{name}")
    benign = float(rng.uniform(0.5, 2.0))
    return NumericSignal(
        kind="count",
        benign=benign,
        violating=benign * rng.uniform(2.5, 5.0),
        emerging=benign * rng.uniform(1.2, 2.0),
    )


def _categorical_spec(policy: Policy, name: str, seed: int) -> CategoricalSignal:
    if name in world_spec(policy).categorical:
        return world_spec(policy).categorical[name]
    rng = _rng(policy, seed, f"categorical:{name}")
    values = [f"{name}_{c}" for c in "abcd"]
    shares = rng.dirichlet(np.full(len(values), 4.0))
    return CategoricalSignal(
        values=dict(zip(values, shares.round(3).tolist(), strict=True)),
        risk={values[-1]: float(rng.uniform(1.3, 2.0))},
    )


def _draw_items(
    policy: Policy,
    config: WorldConfig,
    n: int,
    times: pd.Series,
    emerging_possible: np.ndarray,
    rng: np.random.Generator,
    rate_boost: np.ndarray | float = 1.0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Items with their fields, and their truth (violating, borderline, emerging, strength)."""
    sim = world_spec(policy)
    fields: dict[str, object] = {}
    risk = np.ones(n)
    for name in policy.fields.categorical:
        spec = _categorical_spec(policy, name, config.seed)
        values = np.array(list(spec.values))
        shares = np.array(list(spec.values.values()), dtype=float)
        drawn = rng.choice(values, size=n, p=shares / shares.sum())
        risk *= pd.Series(drawn).map(spec.risk).fillna(1.0).to_numpy()
        fields[name] = drawn
    risk /= risk.mean() if n else 1.0
    p_violating = np.clip(sim.base_rate * risk * rate_boost, 0.0, 0.9)
    violating = rng.random(n) < p_violating
    emerging = violating & emerging_possible & (rng.random(n) < sim.emerging_share)
    borderline = rng.random(n) < sim.borderline_rate
    strength = np.where(violating, 1.0, 0.0)
    strength = np.where(borderline & violating, rng.uniform(0.3, 0.55, n), strength)
    strength = np.where(borderline & ~violating, rng.uniform(0.2, 0.45, n), strength)

    for name in policy.fields.numeric:
        spec = _numeric_spec(policy, name, config.seed)
        high = np.where(
            emerging, spec.emerging if spec.emerging is not None else spec.violating, spec.violating
        )
        fields[name] = _numeric_values(spec, spec.benign + strength * (high - spec.benign), rng)

    language = _languages(sim, n, rng)
    vocabularies = {code: spec.text for code, spec in sim.languages.items()}
    vocabularies[""] = sim.text or GENERIC_TEXT
    for name in policy.fields.text:
        fields[name] = [
            _message(vocabularies[code], s, e, rng)
            for code, s, e in zip(language, strength, emerging, strict=True)
        ]

    items = pd.DataFrame({"created_at": times.to_numpy(), **fields})[
        ["created_at", *policy.feature_columns]
    ]
    truth = pd.DataFrame(
        {
            "is_violating": violating,
            "is_borderline": borderline,
            "is_emerging": emerging,
            "is_campaign": np.zeros(n, dtype=bool),
            "strength": strength.round(3),
            "language": language,
        }
    )
    return items, truth


def _languages(sim: Simulation, n: int, rng: np.random.Generator) -> np.ndarray:
    """Each item's language code ("" for the policy's own `text`); drawn only in a world that
    has other languages, so that one without draws exactly what it did before they existed."""
    if not sim.languages:
        return np.full(n, "", dtype=object)
    codes = ["", *sim.languages]
    shares = [language.share for language in sim.languages.values()]
    return rng.choice(np.array(codes, dtype=object), size=n, p=[1 - sum(shares), *shares])


def _numeric_values(spec: NumericSignal, mean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if spec.kind == "count":
        return rng.poisson(np.maximum(mean, 0.0)).astype(float)
    if spec.kind == "positive":
        sigma = 0.8
        return np.round(rng.lognormal(np.log(np.maximum(mean, 1e-3)) - sigma**2 / 2, sigma), 1)
    return np.round(rng.normal(mean, 1.0), 3)


def campaign_phrases(policy: Policy, seed: int, n: int = 8) -> list[str]:
    """A campaign's signature phrases: pairs of ordinary English words that no vocabulary of the
    world uses, drawn per policy and seed, so a detector cannot have been tuned to them and
    their spelling gives nothing away (made-up syllables did: character n-grams learnt them
    from a handful of examples)."""
    vocab = world_spec(policy).text or GENERIC_TEXT
    taken = {
        w for phrase in [*vocab.benign, *vocab.violating, *vocab.emerging] for w in phrase.split()
    }
    free = [w for w in CAMPAIGN_WORDS if w not in taken]
    words = _rng(policy, seed, "campaign").choice(free, size=2 * n, replace=False)
    return [f"{a} {b}" for a, b in zip(words[::2], words[1::2], strict=True)]


def _campaign(
    items: pd.DataFrame,
    truth: pd.DataFrame,
    chosen: np.ndarray,
    policy: Policy,
    config: WorldConfig,
    rng: np.random.Generator,
) -> None:
    """Turn the chosen items into the hidden campaign's (in place)."""
    truth.loc[chosen, ["is_violating", "is_emerging", "is_campaign"]] = True
    truth.loc[chosen, "is_borderline"] = False
    truth.loc[chosen, "strength"] = 1.0
    truth.loc[chosen, "language"] = ""  # the campaign writes in the policy's own language
    fresh = campaign_items(policy, config.seed, int(chosen.sum()), rng)
    for column in fresh.columns:
        items.loc[chosen, column] = fresh[column].to_numpy()


def campaign_items(policy: Policy, seed: int, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """`n` messages of the hidden campaign, with their accounts' numeric signals: each wraps one
    or two of its phrases in everyday wording and comes from an ordinary account (every signal
    drawn as a benign account's). Nothing the first model learnt marks them: their known words
    and signals are benign ones, so it allows most of them, and only reviewing some of them
    teaches the next. Categories are left as drawn."""
    fields: dict[str, object] = {}
    for name in policy.fields.numeric:
        spec = _numeric_spec(policy, name, seed)
        fields[name] = _numeric_values(spec, np.full(n, spec.benign), rng)
    everyday = (world_spec(policy).text or GENERIC_TEXT).benign
    phrases = campaign_phrases(policy, seed)
    for name in policy.fields.text:
        fields[name] = [_camouflaged(everyday, phrases, rng) for _ in range(n)]
    return pd.DataFrame(fields, columns=[*policy.fields.numeric, *policy.fields.text])


def evade(
    items: pd.DataFrame,
    campaign: np.ndarray,
    policy: Policy,
    seed: int,
    decide: Callable[[pd.DataFrame], np.ndarray],
    tries: int,
) -> tuple[pd.DataFrame, int]:
    """The campaign's operators probe the live model before they post: each of their items it
    would not allow is reworded (new everyday wording around the same phrases, another
    ordinary account) up to `tries` times, and the first version it allows is sent (the last
    one when none is). A model that merely happens to review some ordinary-looking items
    therefore sees none of the campaign; only one that learnt its phrases catches it.

    Returns the items as posted and how many campaign items were reworded at least once.
    """
    items = items.copy()
    rng = _rng(policy, seed, f"evade:{items['item_id'].iloc[0] if len(items) else ''}")
    pending = np.flatnonzero(np.asarray(campaign, dtype=bool))
    reworded: set[int] = set()
    for _ in range(tries):
        if not len(pending):
            break
        caught = decide(items.iloc[pending]) != "allow"
        pending = pending[caught]
        if not len(pending):
            break
        reworded.update(pending.tolist())
        fresh = campaign_items(policy, seed, len(pending), rng)
        for column in fresh.columns:
            items.iloc[pending, items.columns.get_loc(column)] = fresh[column].to_numpy()
    return items, len(reworded)


def _camouflaged(everyday: list[str], phrases: list[str], rng: np.random.Generator) -> str:
    words = [
        *rng.choice(everyday, size=rng.integers(1, 4)),
        *rng.choice(phrases, size=rng.integers(1, 3), replace=False),
    ]
    rng.shuffle(words)
    return " ".join(words).capitalize() + str(rng.choice(["", ".", "!", "!!", "?"]))


def _message(
    vocab: TextVocabulary, strength: float, emerging: bool, rng: np.random.Generator
) -> str:
    """A short message: everyday phrases, plus abusive ones in proportion to the item's strength."""
    words = list(rng.choice(vocab.benign, size=rng.integers(2, 6)))
    bad_pool = vocab.emerging if emerging else vocab.violating
    n_bad = rng.binomial(3, strength) if strength > 0 else int(rng.random() < 0.04)
    for _ in range(n_bad):
        phrase = str(rng.choice(bad_pool))
        words.append(phrase.translate(LEET) if rng.random() < 0.15 else phrase)
    if strength >= 0.99 and n_bad == 0:
        words.append(str(rng.choice(bad_pool)))
    rng.shuffle(words)
    text = " ".join(words)
    return text.capitalize() + str(rng.choice(["", ".", "!", "!!", "?"]))


def _timestamps(start: datetime, days: np.ndarray, rng: np.random.Generator) -> pd.Series:
    seconds = rng.integers(0, 86_400, size=len(days))
    stamps = (
        pd.Timestamp(start) + pd.to_timedelta(days, unit="D") + pd.to_timedelta(seconds, unit="s")
    )
    return pd.Series(stamps)


def verdicts(
    reviewers: list[Reviewer],
    truly: np.ndarray,
    borderline: np.ndarray,
    borderline_drop: float,
    rng: np.random.Generator,
    by_difficulty: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """What each (reviewer, item) pair says, and how long it took: the simulated reviewers of
    the decision files and of Label Studio answer by the same rule. `by_difficulty`: careful
    reviewers err mostly on borderline items (else every reviewer errs at their own rates on
    any item)."""
    right = np.where(truly, [r.sensitivity for r in reviewers], [r.specificity for r in reviewers])
    if by_difficulty:
        # careful reviewers err mostly on hard items; a careless one errs anywhere
        careful = np.array([r.accuracy >= UNRELIABLE_BELOW for r in reviewers], dtype=bool)
        right = np.where(
            careful & ~borderline, 1 - (1 - right) * CAREFUL_ERROR_ON_CLEAR_ITEMS, right
        )
        right = np.where(borderline, np.maximum(right - borderline_drop, 0.5), right)
    says_positive = np.where(rng.random(len(truly)) < right, truly, ~truly)
    speed = np.array([r.seconds_per_decision for r in reviewers], dtype=float)
    lead = np.round(rng.lognormal(np.log(speed) - 0.18, 0.6), 1)
    return says_positive, lead


def _review(
    truth: pd.DataFrame,
    items: pd.DataFrame,
    policy: Policy,
    config: WorldConfig,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Reviewers decide a random share of the items; some items get two or three reviewers."""
    reviewed = np.flatnonzero(rng.random(len(items)) < config.review_fraction)
    extra = rng.random(len(reviewed)) < config.multi_review_fraction
    n_reviews = np.where(extra, rng.integers(2, config.max_reviews_per_item + 1, len(reviewed)), 1)
    pool = config.reviewers
    # distinct reviewers per item: the first k of a random permutation of the pool
    permutations = np.argsort(rng.random((len(reviewed), len(pool))), axis=1)
    taken = np.arange(len(pool)) < n_reviews[:, None]
    item_idx = np.repeat(reviewed, n_reviews)
    rev_idx = permutations[taken]
    truly = truth["is_violating"].to_numpy()[item_idx]
    borderline = truth["is_borderline"].to_numpy()[item_idx]
    says_positive, lead = verdicts(
        [pool[i] for i in rev_idx],
        truly,
        borderline,
        config.borderline_accuracy_drop,
        rng,
        by_difficulty=config.reviewer_errors == "borderline",
    )
    queue_delay = rng.exponential(3 * 3600, len(item_idx)).round()
    created = pd.to_datetime(items["created_at"].to_numpy()[item_idx], utc=True)
    decisions = pd.DataFrame(
        {
            "item_id": items["item_id"].to_numpy()[item_idx],
            "label": np.where(says_positive, policy.labels.positive, policy.labels.negative),
            "reviewer_id": [pool[i].reviewer_id for i in rev_idx],
            "decided_at": created + pd.to_timedelta(queue_delay + lead, unit="s"),
            "created_at": created,
            "source": "review",
            "lead_time_s": lead,
        }
    )
    decisions["decided_at"] = decisions["decided_at"].dt.floor("s")
    features = items.iloc[item_idx][policy.feature_columns].reset_index(drop=True)
    return pd.concat([decisions, features], axis=1).sort_values("decided_at", ignore_index=True)


def _new_team(
    truth: pd.DataFrame,
    items: pd.DataFrame,
    decided: set[str],
    policy: Policy,
    config: WorldConfig,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """The new team's decisions: undecided history items, mostly violating (a review queue's
    mix), each decided by `new_team_per_item` of the team and by nobody else."""
    free = ~items["item_id"].isin(decided).to_numpy()
    violating = truth["is_violating"].to_numpy()
    want_bad = round(config.new_team_items * config.new_team_violating_share)
    bad = rng.permutation(np.flatnonzero(free & violating))[:want_bad]
    good = rng.permutation(np.flatnonzero(free & ~violating))[: config.new_team_items - len(bad)]
    chosen = np.sort(np.concatenate([bad, good]))
    team, per_item = config.new_team, config.new_team_per_item
    picks = np.argsort(rng.random((len(chosen), len(team))), axis=1)[:, :per_item]
    item_idx = np.repeat(chosen, per_item)
    reviewers = [team[i] for i in picks.ravel()]
    says, lead = verdicts(
        reviewers,
        violating[item_idx],
        truth["is_borderline"].to_numpy()[item_idx],
        config.borderline_accuracy_drop,
        rng,
        by_difficulty=config.reviewer_errors == "borderline",
    )
    created = pd.to_datetime(items["created_at"].to_numpy()[item_idx], utc=True)
    decisions = pd.DataFrame(
        {
            "item_id": items["item_id"].to_numpy()[item_idx],
            "label": np.where(says, policy.labels.positive, policy.labels.negative),
            "reviewer_id": [r.reviewer_id for r in reviewers],
            "decided_at": (created + pd.to_timedelta(3600 + lead, unit="s")).floor("s"),
            "created_at": created,
            "source": "review",
            "lead_time_s": lead,
        }
    )
    features = items.iloc[item_idx][policy.feature_columns].reset_index(drop=True)
    return pd.concat([decisions, features], axis=1)


def simulate(policy: Policy, config: WorldConfig | None = None) -> World:
    """Build the world for one policy; the same policy and config always give the same world."""
    config = (config or WorldConfig()).validate()
    rng = _rng(policy, config.seed, "world")
    start = datetime.fromisoformat(config.start).replace(tzinfo=UTC)
    n = config.days * config.items_per_day
    day = np.repeat(np.arange(config.days), config.items_per_day)
    after = day >= config.emerging_day
    times = _timestamps(start, day, rng)
    items, truth = _draw_items(
        policy, config, n, times, after, rng, rate_boost=np.where(after, 1.4, 1.0)
    )
    order = np.argsort(items["created_at"].to_numpy(), kind="stable")
    items, truth, day = (
        items.iloc[order].reset_index(drop=True),
        truth.iloc[order].reset_index(drop=True),
        day[order],
    )
    if config.campaign_day is not None:
        own = _rng(policy, config.seed, "campaign-items")  # the history does not depend on it
        hidden = (day >= config.campaign_day) & (own.random(n) < config.campaign_share)
        _campaign(items, truth, hidden, policy, config, own)
    items.insert(0, "item_id", [f"{policy.name}-{i:07d}" for i in range(n)])
    truth.insert(0, "item_id", items["item_id"])
    truth.insert(1, "day", day)

    history = day < config.decided_days
    decisions = _review(
        truth[history].reset_index(drop=True),
        items[history].reset_index(drop=True),
        policy,
        config,
        rng,
    )

    golden, golden_truth = _golden(policy, config, start, rng)
    if config.new_team_items:
        decisions = pd.concat(
            [
                decisions,
                _new_team(
                    truth[history].reset_index(drop=True),
                    items[history].reset_index(drop=True),
                    set(decisions["item_id"]),
                    policy,
                    config,
                    rng,
                ),
            ],
            ignore_index=True,
        ).sort_values("decided_at", ignore_index=True)
    truth = pd.concat(
        [truth.assign(set="traffic"), golden_truth.assign(set="golden")], ignore_index=True
    )
    reviewers = pd.DataFrame(
        [{**asdict(r), "accuracy": r.accuracy} for r in (*config.reviewers, *config.new_team)]
    )
    reviewers["unreliable"] = reviewers["accuracy"] < UNRELIABLE_BELOW
    meta = {
        "policy": policy.name,
        "config": {k: v for k, v in asdict(config).items() if k not in {"reviewers", "new_team"}},
        "items": n,
        "base_rate": round(float(truth.loc[truth["set"] == "traffic", "is_violating"].mean()), 4),
        "decisions": len(decisions),
        "golden_items": len(golden),
        "emerging_starts": (
            pd.Timestamp(start) + pd.Timedelta(days=config.emerging_day)
        ).isoformat(),
        "campaign_starts": None
        if config.campaign_day is None
        else (pd.Timestamp(start) + pd.Timedelta(days=config.campaign_day)).isoformat(),
    }
    return World(policy.name, items, decisions, golden, truth, reviewers, meta)


def _golden(
    policy: Policy, config: WorldConfig, start: datetime, rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """An expert-labelled set from the world before the emerging pattern, positives enriched."""
    want_pos = round(config.golden_items * config.golden_positive_share)
    want_neg = config.golden_items - want_pos
    pool_size = int(want_pos / world_spec(policy).base_rate * 1.5) + config.golden_items
    days = rng.integers(0, max(config.emerging_day, 1), pool_size)
    items, truth = _draw_items(
        policy,
        config,
        pool_size,
        _timestamps(start, days, rng),
        np.zeros(pool_size, dtype=bool),
        rng,
    )
    positives = np.flatnonzero(truth["is_violating"].to_numpy())[:want_pos]
    negatives = np.flatnonzero(~truth["is_violating"].to_numpy())[:want_neg]
    chosen = np.sort(np.concatenate([positives, negatives]))
    items, truth = (
        items.iloc[chosen].reset_index(drop=True),
        truth.iloc[chosen].reset_index(drop=True),
    )
    ids = [f"{policy.name}-g{i:05d}" for i in range(len(items))]
    golden = items.assign(
        item_id=ids,
        label=np.where(truth["is_violating"], policy.labels.positive, policy.labels.negative),
    )
    golden = golden[["item_id", "label", "created_at", *policy.feature_columns]]
    truth.insert(0, "item_id", ids)
    truth.insert(1, "day", days[chosen])
    return golden, truth


def write_world(world: World, out_dir: Path, fmt: str = "csv") -> dict[str, Path]:
    """Write the world: what the platform imports (decisions, golden set, traffic) in `fmt`,
    and the truth apart in `truth/`, so nothing the platform reads contains the answers."""
    if fmt not in FORMATS:
        raise FlywheelError(f"simulate: unknown format {fmt!r} (use {', '.join(FORMATS)})")
    out_dir.mkdir(parents=True, exist_ok=True)
    truth_dir = out_dir / "truth"
    paths = {
        "decisions": write_table(world.decisions, out_dir / f"decisions.{fmt}"),
        "golden": write_table(world.golden, out_dir / f"golden.{fmt}"),
        "traffic": write_table(world.traffic, out_dir / "traffic.parquet"),
        "truth": write_table(world.truth, truth_dir / "items.parquet"),
        "reviewers": write_table(world.reviewers, truth_dir / "reviewers.csv"),
    }
    paths["meta"] = out_dir / "world.json"
    write_json_atomic(
        {**world.meta, "files": {k: str(p.relative_to(out_dir)) for k, p in paths.items()}},
        paths["meta"],
    )
    return paths
