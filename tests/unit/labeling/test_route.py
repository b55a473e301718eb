import numpy as np
import pandas as pd

from flywheel.roster import load_roster
from labeling.route import harm, languages, route
from tests.conftest import queued_policy


def _tasks(rows: list[dict]) -> pd.DataFrame:
    base = {"purpose": "review", "decision": "review", "score": 0.5, "surface": "post"}
    return pd.DataFrame([{**base, "item_id": f"i{k}", **row} for k, row in enumerate(rows)])


def test_the_first_matching_route_wins(tmp_path):
    policy = queued_policy(tmp_path)
    tasks = _tasks(
        [
            {"purpose": "appeal", "text": "Ganhe dinheiro agora, clique aqui no link"},
            {"text": "Ganhe dinheiro agora, clique aqui no link", "score": 0.9, "surface": "dm"},
            {"text": "free followers click here now", "score": 0.9, "surface": "dm"},
            {"text": "free followers click here now", "score": 0.9, "surface": "post"},
            {"text": "free followers click here now", "score": 0.2, "surface": "dm"},
            {
                "purpose": "audit",
                "text": "gracias por todo, hasta mañana amigo",
                "score": 0.95,
                "surface": "dm",
            },
        ]
    )
    codes = sorted({*policy.queues.languages, *load_roster(policy).languages})
    language = languages(tasks, policy, codes)
    assert list(language) == ["pt", "pt", "en", "en", "en", "es"]
    queues = route(tasks, policy, language, set())
    assert list(queues) == ["appeals", "portuguese", "urgent", "general", "general", "urgent"]


def test_routes_test_emerging_clusters_ranges_and_decisions(tmp_path):
    queues = {
        "roster": "roster.yaml",
        "define": [
            {"name": "general", "sla_hours": 24},
            {"name": "urgent", "sla_hours": 4, "severity": 3},
        ],
        "routes": [
            {"queue": "urgent", "when": {"emerging": True}},
            {
                "queue": "urgent",
                "when": {"field_at_least": {"links": 3}, "field_below": {"account_age_days": 30}},
            },
            {"queue": "urgent", "when": {"decision": ["auto_action"], "score_below": 0.99}},
            {"queue": "general"},
        ],
    }
    roster = {"reviewers": [{
        "id": "r", "user": "r@x.org", "languages": ["en"], "queues": ["general", "urgent"],
        "decisions_per_hour": 10, "shifts": [{"days": ["mon"], "start": "09:00", "end": "10:00"}],
    }]}  # fmt: skip
    policy = queued_policy(tmp_path, queues, roster)
    tasks = _tasks(
        [
            {"links": 5, "account_age_days": 10},
            {"links": 5, "account_age_days": 300},
            {"links": 1, "account_age_days": 10},
            {"links": 1, "account_age_days": 300, "decision": "auto_action", "score": 0.95},
            {"links": 1, "account_age_days": 300, "decision": "auto_action", "score": 0.995},
            {"links": None, "account_age_days": None},
        ]
    )
    none = pd.Series(None, index=tasks.index, dtype=object)
    assert list(route(tasks, policy, none, {"i5"})) == [
        "urgent", "general", "general", "urgent", "general", "urgent",
    ]  # fmt: skip


def test_harm_puts_likely_severe_violations_first_and_aging_overtakes_them_within_the_sla():
    score = pd.Series([0.95, 0.95, 0.10, 0.10])
    severity = pd.Series([1.0, 3.0, 3.0, 1.0])
    fresh = pd.Series([0.0, 0.0, 0.0, 0.0])
    sla = pd.Series([24.0, 4.0, 4.0, 24.0])
    first = harm(score, severity, fresh, sla, weight=1.0)
    assert list(np.argsort(-first.to_numpy())) == [1, 0, 2, 3]
    # a low-scored task that has waited most of its SLA outranks a fresh likely one
    waited = pd.Series([0.0, 0.0, 0.0, 22.0])
    assert harm(score, severity, waited, sla, 1.0)[3] > harm(score, severity, waited, sla, 1.0)[0]
    # without aging it never would
    assert harm(score, severity, waited, sla, 0.0)[3] < harm(score, severity, waited, sla, 0.0)[0]
    # an unscored task (a gold check) counts as an even chance
    assert (
        harm(pd.Series([np.nan]), pd.Series([2.0]), pd.Series([0.0]), pd.Series([1.0]), 1)[0] == 1
    )
