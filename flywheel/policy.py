"""Policies: one YAML file per risk classifier, validated on load.

A policy is the single source of every per-classifier value: labels, fields, operating targets,
promotion tolerances, dataset rules, training parameters and the simulator's world. Code reads
thresholds and rates from here and never hard-codes them. Every section beyond the required keys (docs/architecture.md)
required ones has defaults, so a minimal policy file written against the contract just works.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from flywheel.errors import FlywheelError
from flywheel.settings import Settings, get_settings

RESERVED_COLUMNS = frozenset(
    {
        "item_id",
        "policy",
        "label",
        "reviewer_id",
        "decided_at",
        "created_at",
        "source",
        "lead_time_s",
        "task_id",
        "split",
    }
)
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_POLICY_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
Probability = Annotated[float, Field(ge=0.0, le=1.0)]


# harm added per SLA's length waited, times the queue's severity (`queues.age_weight`):
# nothing starves, even in a queue short of hands (escalation saves the tasks of a queue keeping
# its SLA); stronger aging turns such a queue oldest first (benchmarks/queues.py)
AGE_WEIGHT = 0.02


class _Section(BaseModel):
    """A policy section: unknown keys are refused so a typo never silently falls back."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Labels(_Section):
    positive: str = Field(min_length=1)
    negative: str = Field(min_length=1)

    @model_validator(mode="after")
    def _distinct(self) -> Labels:
        if self.positive == self.negative:
            raise ValueError("positive and negative labels must differ")
        return self


class Fields(_Section):
    text: list[str] = []
    numeric: list[str] = []
    categorical: list[str] = []

    @field_validator("text", "numeric", "categorical")
    @classmethod
    def _identifiers(cls, names: list[str]) -> list[str]:
        for name in names:
            if not _IDENTIFIER.match(name):
                raise ValueError(f"field name {name!r} is not an identifier")
            if name in RESERVED_COLUMNS:
                raise ValueError(f"field name {name!r} is reserved for Flywheel's own columns")
        return names

    @model_validator(mode="after")
    def _unique_and_present(self) -> Fields:
        names = self.all
        if not names:
            raise ValueError("a policy needs at least one text, numeric or categorical field")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"fields listed twice: {', '.join(dupes)}")
        return self

    @property
    def all(self) -> list[str]:
        return [*self.text, *self.numeric, *self.categorical]


class Targets(_Section):
    auto_action_precision: Probability
    review_recall: Probability
    # the thresholds meet both targets on new items with this confidence (training.thresholds)
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)
    # the review band may send at most this many times the share of items a threshold on the
    # truth would (as estimated from the same evidence); where the recall guarantee needs more,
    # the band stops there and the version says the target is not shown and what evidence
    # would show it. null: the guarantee at any cost, up to reviewing everything
    max_review_factor: float | None = Field(default=2.0, ge=1.0)


class Promotion(_Section):
    """How much worse than the champion a challenger may be on the golden set."""

    recall_drop_tolerance: float = Field(default=0.01, ge=0.0, le=1.0)
    fpr_rise_tolerance: float = Field(default=0.002, ge=0.0, le=1.0)
    min_golden_positives: int = Field(default=20, ge=1)
    # a challenger fails a comparison only when it is worse by more than the tolerance at this
    # (one-sided) confidence, bootstrapping the golden set (training.evaluate)
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)


class DatasetRules(_Section):
    """How decisions become a dataset version."""

    # hash: each item's split drawn from its id, so an item keeps its split in every version and
    # the newest decisions reach training at once; time: the newest items validate and test
    split: Literal["hash", "time"] = "hash"
    validation_fraction: float = Field(default=0.15, gt=0.0, lt=0.5)
    test_fraction: float = Field(default=0.15, gt=0.0, lt=0.5)
    min_train_items: int = Field(default=200, ge=10)
    min_items_per_class: int = Field(default=5, ge=1)
    tie_label: Literal["positive", "negative"] = "negative"
    aggregation: Literal["dawid_skene", "majority"] = "dawid_skene"
    # leave out the decisions of reviewers the latest QA report flags (labeling.qa)
    exclude_flagged_reviewers: bool = True


class Training(_Section):
    """Model parameters; defaults suit short texts with a few signals."""

    n_estimators: int = Field(default=300, ge=10, le=5000)
    learning_rate: float = Field(default=0.05, gt=0.0, le=1.0)
    num_leaves: int = Field(default=31, ge=2, le=4096)
    min_child_samples: int = Field(default=20, ge=1)
    colsample_bytree: float = Field(default=0.5, gt=0.0, le=1.0)
    max_bin: int = Field(
        default=63, ge=3, le=1023
    )  # TF-IDF weights need few bins; 255 costs ~40% more
    early_stopping_rounds: int | None = Field(default=30, ge=1)  # on validation log-loss; None: off
    word_max_features: int = Field(default=30000, ge=100)
    char_max_features: int = Field(default=30000, ge=100)
    calibration: Literal["sigmoid", "isotonic"] = "sigmoid"
    seed: int = 0
    # thresholds are read off out-of-fold scores of train + validation (cross-fitting, this many
    # folds) unless the validation split alone holds `crossfit_below_positives` positives
    cv_folds: int = Field(default=5, ge=2, le=20)
    crossfit_below_positives: int = Field(default=1000, ge=0)


class AuditRates(_Section):
    """Share of each decision's traffic drawn into the blind audit (inclusion probabilities)."""

    allow: Probability = 0.01
    review: Probability = 0.05
    auto_action: Probability = 0.05


class ExploreSplit(_Section):
    """How the exploration budget is shared: representatives of emerging clusters, items far
    from the training data, and allowed items with the highest scores under the review threshold.
    A share its candidates cannot fill passes to the next, in this order."""

    clusters: Probability = 0.4
    novel: Probability = 0.4
    near_threshold: Probability = 0.2

    @model_validator(mode="after")
    def _sums_to_one(self) -> ExploreSplit:
        total = self.clusters + self.novel + self.near_threshold
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"the shares must sum to 1 (they sum to {total:g})")
        return self


class Labeling(_Section):
    """What reviewers see in Label Studio, what is sampled to them, and the quality bar."""

    project_title: str | None = None  # default: "Flywheel · <policy name>"
    instructions: str = ""
    overlap: int = Field(default=2, ge=1, le=10)  # reviewers asked to decide each task
    review_batch: int = Field(default=1000, ge=1)  # most review + exploration tasks per push
    # share of review_batch spent on exploration: allowed items the model cannot vouch for
    explore_budget: Probability = 0.1
    explore_split: ExploreSplit = ExploreSplit()
    review_age_weight: float = Field(default=0.02, ge=0.0)  # priority per hour waited
    audit_rates: AuditRates = AuditRates()
    gold_rate: Probability = 0.05  # gold checks per other task pushed
    assist_features: int = Field(default=5, ge=0, le=20)  # top contributions shown
    min_gold_checks: int = Field(default=20, ge=1)  # before a reviewer can be flagged
    min_reviewer_accuracy: Probability = 0.90  # balanced, on gold checks; below is flagged
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)  # for the intervals reported
    # posted {policy, item_id, appeal_id, model_version, outcome} when reviewers overturn an
    # appeal (flywheel.appeals), so the product can reinstate the content; null: none
    reinstate_webhook: str | None = None

    @property
    def explore_tasks(self) -> int:
        """Exploration tasks per push: the budget's share of the review capacity."""
        return round(self.explore_budget * self.review_batch)


class AlertRules(_Section):
    """When monitoring raises an alert; a value of null switches that alert off."""

    drift_share: Probability | None = 0.5  # share of drifted fields
    score_drift: bool = True  # the score distribution drifted
    max_auto_action_fpr: Probability | None = 0.01  # production, from the blind audit
    max_allow_fnr: Probability | None = 0.2  # production, from the blind audit
    min_audit_precision: Probability | None = None  # default: targets.auto_action_precision
    min_golden_precision: Probability | None = None  # default: targets.auto_action_precision
    min_golden_recall: Probability | None = None  # default: targets.review_recall
    max_fallback_share: Probability | None = 0.01
    max_backlog: int | None = Field(default=5000, ge=0)
    flagged_reviewers: bool = True
    emerging: bool = True  # a cluster of the window's items carrying terms that burst
    emerging_growth: float | None = Field(default=None, gt=0)  # and grew this much (null: any)
    max_sla_breaches: int | None = Field(default=0, ge=0)  # open tasks older than the SLA
    escalations: bool = True  # tasks escalated near their SLA (queues:) and still undecided


class AuditHalfWidth(_Section):
    """How precise each window's blind-audit estimate should be (half-width of its interval at
    `monitoring.confidence`); the push sizes the audit to reach it (flywheel.audit). null: the
    figure does not size the audit."""

    allow_fnr: Probability | None = 0.1
    auto_action_fpr: Probability | None = 0.005
    auto_action_precision: Probability | None = 0.05


class Monitoring(_Section):
    """What a monitoring run looks at, and its alert thresholds."""

    window_days: float = Field(default=7.0, gt=0)  # the current window of the prediction log
    drift_sample: int = Field(default=20000, ge=100)  # rows per side for drift tests
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)
    min_slice_items: int = Field(default=20, ge=1)  # smaller golden slices are not reported
    novelty: float = Field(default=0.3, gt=0, lt=1)  # share of an item that is new (novelty.py)
    baseline_days: float = Field(default=28.0, gt=0)  # earlier traffic each day is tested against
    min_cluster_size: int = Field(default=15, ge=2)
    max_clusters: int = Field(default=8, ge=1)
    sla_hours: float = Field(default=24.0, gt=0)  # a review task should be decided within this
    audit_half_width: AuditHalfWidth = AuditHalfWidth()
    audit_max_rate: Probability = 0.1  # no decision's traffic is audited above this rate
    audit_max_items: int | None = Field(default=2000, ge=1)  # audited items per push at most
    alerts: AlertRules = AlertRules()


PURPOSES = ("review", "explore", "audit", "gold", "appeal")
DECISIONS = ("allow", "review", "auto_action")
_LANGUAGE = re.compile(r"^[a-z]{2}$")


class FieldCondition(_Section):
    """Tests of an item's own fields (`flywheel.conditions.fields_hold`). Every key given must
    hold; a list holds when any of its values does."""

    field: dict[str, list[str | int | float | bool]] | None = None  # field → the values it may take
    field_at_least: dict[str, float] | None = None  # numeric field → its least value
    field_below: dict[str, float] | None = None

    @property
    def fields(self) -> set[str]:
        """The item fields this condition reads."""
        return {*(self.field or {}), *(self.field_at_least or {}), *(self.field_below or {})}

    def field_problem(self, policy_fields: Fields) -> str | None:
        """What is wrong with the fields this condition reads, if anything."""
        for name in sorted(self.fields - set(policy_fields.all)):
            return f"unknown field {name!r} (the policy's fields: {', '.join(policy_fields.all)})"
        numeric = {*(self.field_at_least or {}), *(self.field_below or {})}
        for name in sorted(numeric - set(policy_fields.numeric)):
            return f"{name!r} is not a numeric field, so it has no range"
        return None


class Condition(FieldCondition):
    """What a routing rule tests. Every key given must hold; a list holds when any of its
    values does; no key at all matches every task."""

    purpose: list[Literal["review", "explore", "audit", "gold", "appeal"]] | None = None
    decision: list[Literal["allow", "review", "auto_action"]] | None = None
    score_at_least: Probability | None = None  # the champion's score
    score_below: Probability | None = None
    # ISO 639-1 codes of the language detected in the item's text fields (flywheel.language)
    language: list[str] | None = None
    emerging: bool | None = None  # a member of the latest monitoring run's emerging clusters

    @field_validator("language")
    @classmethod
    def _codes(cls, codes: list[str] | None) -> list[str] | None:
        for code in codes or []:
            if not _LANGUAGE.match(code):
                raise ValueError(f"{code!r} is not a two-letter ISO 639-1 language code")
        return codes


class Route(_Section):
    """Tasks that meet `when` go to `queue`; routes are tried in order, the first match wins."""

    queue: str
    when: Condition = Condition()


class Queue(_Section):
    """A review queue: one Label Studio project, worked by the rostered reviewers who have its
    skills (a language code is a skill)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    sla_hours: float = Field(gt=0)  # a task should be decided within this many hours
    severity: float = Field(default=1.0, gt=0)  # harm of a violation waiting here, relative
    skills: list[str] = []  # every reviewer working the queue has all of these


class Queues(_Section):
    """Review queues, their routing rules and the roster that staffs them. Without this
    section a policy has one project for every task, as before."""

    roster: str  # the roster file (flywheel.roster), relative to the policy file
    define: list[Queue] = Field(min_length=1)
    routes: list[Route] = Field(min_length=1)
    # a task still undecided when this share of its SLA has passed goes to the head of its
    # queue (its Label Studio tab by harm), and monitoring alerts on it
    escalate_at: float = Field(default=0.75, gt=0, lt=1)
    appeals: str | None = None  # the queue appeals go to (it needs a route only if named here)
    sla_target: float = Field(default=0.95, gt=0, lt=1)  # share decided within the SLA, planned for
    age_weight: float = Field(default=AGE_WEIGHT, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> Queues:
        names = [q.name for q in self.define]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"queues defined twice: {', '.join(dupes)}")
        known = set(names)
        for i, route in enumerate(self.routes):
            if route.queue not in known:
                raise ValueError(
                    f"routes[{i}]: unknown queue {route.queue!r} (defined: {', '.join(names)})"
                )
        if self.routes[-1].when != Condition():
            raise ValueError(
                "routes: the last route must have no `when`, so that every task has a queue"
            )
        if self.appeals is not None and self.appeals not in known:
            raise ValueError(
                f"appeals: unknown queue {self.appeals!r} (defined: {', '.join(names)})"
            )
        return self

    def queue(self, name: str) -> Queue:
        return next(q for q in self.define if q.name == name)

    @property
    def languages(self) -> list[str]:
        """Every language a route tests, for the detector to tell apart."""
        return sorted({c for r in self.routes for c in (r.when.language or [])})


class Rule(FieldCondition):
    """One rule of a rules bank: when every test given holds, the bank gives `verdict`. The
    text tests read the policy's text fields joined; a bank's first matching rule answers."""

    name: str = Field(min_length=1)  # quoted in the verdict's rationale
    verdict: str = Field(min_length=1)  # one of the policy's labels
    confidence: Probability = 0.9
    terms: list[str] | None = None  # any of these words or phrases, whole, in any case
    regex: str | None = None  # a Python regular expression searched for, case-insensitive

    @field_validator("terms")
    @classmethod
    def _terms(cls, terms: list[str] | None) -> list[str] | None:
        if terms is not None and (not terms or any(not t.strip() for t in terms)):
            raise ValueError("terms must be a non-empty list of non-empty words or phrases")
        return terms

    @field_validator("regex")
    @classmethod
    def _regex(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from exc
        return pattern

    @model_validator(mode="after")
    def _tests_something(self) -> Rule:
        if self.terms is None and self.regex is None and not self.fields:
            raise ValueError(f"rule {self.name!r} tests nothing (give terms, regex or a field)")
        return self


class Autonomy(_Section):
    """When an automated reviewer may decide a task alone: where the lower confidence bound of
    its accuracy on a label and queue, measured against people, reaches `min_accuracy`."""

    min_accuracy: Probability = 0.97
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)  # of that lower bound
    min_checks: int = Field(default=50, ge=1)  # decisions people also made, before any grant
    # of its autonomous decisions, the share still sent to people, drawn at random (an
    # inclusion probability, so that it stays measured)
    human_share: float = Field(default=0.1, gt=0.0, le=1.0)


class _AutomatedReviewer(_Section):
    """What every kind of automated reviewer has: a name (its decisions carry `auto:<name>` as
    reviewer and `automated` as source, never a person's), the share of the tasks people decide
    that it also answers (so it is measured like them), and its autonomy; null: never alone."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    share: Probability = 0.2
    autonomy: Autonomy | None = Autonomy()


class RulesReviewer(_AutomatedReviewer):
    """A versioned bank of term, regex and field rules; an item no rule matches gets no
    verdict (a person decides it)."""

    kind: Literal["rules"]
    version: str = Field(min_length=1)
    rules: list[Rule] = Field(min_length=1)


class ModelReviewer(_AutomatedReviewer):
    """A classifier: `entry_point` (`package.module:function`, given the items' fields as a
    frame and returning each one's probability of the positive label) or `model_uri` (an
    MLflow pyfunc returning that probability, e.g. `models:/abuse@champion`)."""

    kind: Literal["model"]
    entry_point: str | None = Field(default=None, pattern=r"^[\w.]+:[\w.]+$")
    model_uri: str | None = None
    threshold: Probability = 0.5  # the positive label at or above it

    @model_validator(mode="after")
    def _one_source(self) -> ModelReviewer:
        if (self.entry_point is None) == (self.model_uri is None):
            raise ValueError("give exactly one of entry_point and model_uri")
        return self


class LlmReviewer(_AutomatedReviewer):
    """A chat model behind an OpenAI-compatible `/chat/completions` endpoint, asked to apply
    the policy's `definition` to an item and answer with a label, a confidence and a rationale
    (`automation.llm`)."""

    kind: Literal["llm"]
    base_url: str = Field(pattern=r"^https?://")  # e.g. https://api.openai.com/v1
    model: str = Field(min_length=1)
    api_key_env: str = Field(default="OPENAI_API_KEY", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    timeout_s: float = Field(default=30.0, gt=0)
    max_retries: int = Field(default=3, ge=0, le=10)  # on a timeout, a 429 or a 5xx
    backoff_s: float = Field(default=1.0, ge=0)  # first wait; doubled at each retry
    requests_per_minute: float = Field(default=60.0, gt=0)
    budget_per_cycle: float | None = Field(default=5.0, ge=0)  # in the prices' currency
    price_per_1k_input: float = Field(default=0.0, ge=0)
    price_per_1k_output: float = Field(default=0.0, ge=0)


AutomatedReviewer = Annotated[
    RulesReviewer | ModelReviewer | LlmReviewer, Field(discriminator="kind")
]
_REVIEWER_KINDS = ("rules", "model", "llm")


class Policy(_Section):
    name: str
    description: str = ""
    labels: Labels
    fields: Fields
    targets: Targets
    promotion: Promotion = Promotion()
    dataset: DatasetRules = DatasetRules()
    training: Training = Training()
    labeling: Labeling = Labeling()
    monitoring: Monitoring = Monitoring()
    queues: Queues | None = None
    # what the policy forbids, in words, as written for reviewers: the `llm` reviewers' prompt
    definition: str = ""
    automated_reviewers: list[AutomatedReviewer] = []
    # the simulator's section: its schema is the simulator's (`simulation.world.Simulation`),
    # checked when a world is built, so that nothing in production depends on it
    simulation: dict[str, Any] = {}

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not _POLICY_NAME.match(name):
            raise ValueError(
                "must be lower-case letters, digits, '-' or '_', starting with a letter"
            )
        return name

    @model_validator(mode="after")
    def _routes_read_known_fields(self) -> Policy:
        if self.queues is None:
            return self
        for i, route in enumerate(self.queues.routes):
            problem = route.when.field_problem(self.fields)
            if problem:
                raise ValueError(f"queues.routes[{i}].when: {problem}")
        return self

    @model_validator(mode="after")
    def _automated_reviewers_fit(self) -> Policy:
        names = [r.name for r in self.automated_reviewers]
        for name in sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"automated_reviewers: {name!r} is named twice")
        labels = (self.labels.positive, self.labels.negative)
        for i, reviewer in enumerate(self.automated_reviewers):
            if reviewer.kind == "llm" and not self.definition.strip():
                raise ValueError(
                    f"automated_reviewers[{i}] ({reviewer.name}): an llm reviewer needs the "
                    "policy's `definition` to put in its prompt"
                )
            for j, rule in enumerate(getattr(reviewer, "rules", [])):
                where = f"automated_reviewers[{i}].rules[{j}]"
                if rule.verdict not in labels:
                    raise ValueError(
                        f"{where}.verdict: {rule.verdict!r} is not one of the policy's labels "
                        f"({', '.join(labels)})"
                    )
                problem = rule.field_problem(self.fields)
                if problem:
                    raise ValueError(f"{where}: {problem}")
                if (rule.terms or rule.regex) and not self.fields.text:
                    raise ValueError(f"{where}: the policy has no text field for terms or regex")
        return self

    @property
    def feature_columns(self) -> list[str]:
        return self.fields.all

    @property
    def alert_limits(self) -> dict[str, float | None]:
        """Each numeric alert limit as it applies: the minimums left null take the policy's
        targets; None is an alert switched off. One reading for monitoring's conditions, the
        console's target lines and the limits exported to Prometheus."""
        rules, targets = self.monitoring.alerts, self.targets
        return {
            "drift_share": rules.drift_share,
            "max_auto_action_fpr": rules.max_auto_action_fpr,
            "max_allow_fnr": rules.max_allow_fnr,
            "min_audit_precision": rules.min_audit_precision or targets.auto_action_precision,
            "min_golden_precision": rules.min_golden_precision or targets.auto_action_precision,
            "min_golden_recall": rules.min_golden_recall or targets.review_recall,
            "max_fallback_share": rules.max_fallback_share,
            "max_backlog": rules.max_backlog,
            "max_sla_breaches": rules.max_sla_breaches,
        }

    @property
    def project_title(self) -> str:
        return self.labeling.project_title or f"Flywheel · {self.name}"

    def label_value(self, positive: bool) -> str:
        return self.labels.positive if positive else self.labels.negative


def _known_keys(location: tuple, root: type[BaseModel]) -> list[str]:
    """The keys allowed at a place in a model, for suggesting the one a typo meant."""
    model: type[BaseModel] | None = root
    for part in location:
        annotation = (
            model.model_fields[part].annotation if model and part in model.model_fields else None
        )
        model = (
            annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel)
            else None
        )
    return list(model.model_fields) if model else []


def describe_problem(
    error: ValidationError, source: str, root: type[BaseModel] | None = None, within: str = ""
) -> str:
    """The first validation problem as one line naming the key, e.g. `targets.review_recall`
    (a policy's, or, with `root` and `within`, a section another module owns). An unknown key
    is reported first: a typo there is usually what caused the rest."""
    errors = sorted(error.errors(), key=lambda e: e["type"] != "extra_forbidden")
    first = errors[0]
    loc = [str(part) for part in first["loc"]]
    if loc[:1] == ["automated_reviewers"] and len(loc) > 2 and loc[2] in _REVIEWER_KINDS:
        del loc[2]  # pydantic names the kind a discriminated union chose; the file does not
    key = ".".join([*([within] if within else []), *loc])
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "missing":
        message = "required key is missing"
    elif first["type"] == "extra_forbidden":
        message = "unknown key"
        close = difflib.get_close_matches(
            str(first["loc"][-1]), _known_keys(first["loc"][:-1], root or Policy), n=1
        )
        if close:
            message += f" (did you mean {close[0]!r}?)"
    more = len(errors) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    # a check across sections names its keys in the message itself
    return f"{source}: {key + ': ' if key else ''}{message}{suffix}"


def parse_policy(text: str, source: str = "policy") -> Policy:
    """Validate a policy given as YAML text."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise FlywheelError(f"{source}: not valid YAML{where}") from exc
    if not isinstance(raw, dict):
        raise FlywheelError(f"{source}: a policy must be a YAML mapping of keys to values")
    try:
        return Policy.model_validate(raw)
    except ValidationError as exc:
        raise FlywheelError(describe_problem(exc, source)) from exc


def policy_path(name_or_path: str, settings: Settings | None = None) -> Path:
    """Resolve `--policy`: an existing YAML path, or a name looked up in the policies folder."""
    candidate = Path(name_or_path)
    if candidate.suffix in {".yaml", ".yml"} or "/" in name_or_path:
        if not candidate.is_file():
            raise FlywheelError(f"policy file not found: {name_or_path}")
        return candidate
    folder = (settings or get_settings()).policies_dir
    path = folder / f"{name_or_path}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in folder.glob("*.yaml"))) or "none"
        raise FlywheelError(f"unknown policy {name_or_path!r} (known in {folder}: {known})")
    return path


def load_policy(name_or_path: str, settings: Settings | None = None) -> Policy:
    """Load and validate a policy by name or path; the name inside must match the file name."""
    path = policy_path(name_or_path, settings)
    policy = parse_policy(path.read_text(encoding="utf-8"), source=str(path))
    if path.stem != policy.name:
        raise FlywheelError(
            f"{path}: name: {policy.name!r} does not match the file name {path.stem!r}"
        )
    if policy.queues is not None:
        from flywheel.roster import load_roster  # the roster's schema builds on this module's

        roster = (path.parent / policy.queues.roster).resolve()
        policy = policy.model_copy(
            update={"queues": policy.queues.model_copy(update={"roster": str(roster)})}
        )
        load_roster(policy)  # checked on load: a policy with a broken roster does not load
    return policy


def list_policies(settings: Settings | None = None) -> list[str]:
    folder = (settings or get_settings()).policies_dir
    return sorted(p.stem for p in folder.glob("*.yaml"))
