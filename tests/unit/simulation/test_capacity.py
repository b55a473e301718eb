"""The finite-capacity simulator on one small seeded world (the many-world sweep is
benchmarks/queues.py)."""

import numpy as np

from simulation.capacity import LANGUAGES, arrivals, team, work

DAYS, PER_HOUR = 3, 15.0


def _played():
    tasks = arrivals(np.random.default_rng(4), DAYS, PER_HOUR)
    members = team(np.random.default_rng(5), PER_HOUR, 1.1)
    return (
        tasks,
        members,
        {o: work(tasks, members, o, DAYS, seed=6) for o in ("oldest", "score", "harm", "truth")},
    )


def test_harm_first_routing_makes_violations_wait_less_and_serves_each_language():
    tasks, members, played = _played()
    readers = {m.name: set(m.languages) for m in members}

    def exposure(out):
        wait = np.minimum(out["decided"], (DAYS + 1) * 24) - out["arrived"]
        return float((out["severity"] * wait)[out["truth"]].sum())

    def high_within(out):
        high = out["severity"] > 1
        return float((out["decided"] - out["arrived"] <= out["sla"])[high].mean())

    # knowing which tasks violate does better still: the reference the benchmark reads
    assert exposure(played["truth"]) < exposure(played["harm"]) < exposure(played["oldest"])
    assert high_within(played["harm"]) >= max(high_within(played["oldest"]), 0.95)
    for out in played.values():
        done = out[np.isfinite(out["decided"])]
        # nobody decides what they cannot read, whatever the ordering
        assert all(
            lang in readers[r] for lang, r in zip(done["language"], done["reviewer"], strict=True)
        )
    # without routing, reviewers spend time skipping what they cannot read
    assert played["score"].attrs["utilisation"] > played["oldest"].attrs["utilisation"]
    assert played["harm"].attrs["escalated"] >= 0 and len(tasks) > 500


def test_the_team_is_scaled_to_the_capacity_asked_for():
    members = team(np.random.default_rng(1), 40.0, 0.8)
    per_day = sum(m.pace * (m.shift[1] - m.shift[0]) for m in members)
    assert abs(per_day - 0.8 * 40.0 * 24) < 1e-6
    # and the readers of each language, for that language's share of the work
    for language, share in LANGUAGES.items():
        readers = [m for m in members if m.languages[-1] == language]  # its own readers
        held = sum(m.pace * (m.shift[1] - m.shift[0]) for m in readers)
        assert abs(held - 0.8 * 40.0 * 24 * share) < 1e-6, language
    assert {s for m in members for s in [m.shift]} == {(6.0, 14.0), (14.0, 22.0), (22.0, 30.0)}
    assert sum("sw" in m.languages for m in members) == 1
