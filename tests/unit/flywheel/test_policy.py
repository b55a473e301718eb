from pathlib import Path

import pytest

from flywheel.errors import FlywheelError
from flywheel.policy import list_policies, load_policy, parse_policy
from flywheel.settings import Settings

MINIMAL = """
name: fake_accounts
labels: {positive: fake, negative: genuine}
fields:
  numeric: [followers, following, posts_per_day]
  categorical: [signup_channel]
targets:
  auto_action_precision: 0.97
  review_recall: 0.9
"""


def test_shipped_policies_load():
    assert {"spam", "scam"} <= set(list_policies())
    for name in ("spam", "scam"):
        policy = load_policy(name)
        assert policy.name == name
        assert policy.fields.text, "shipped policies score text"


def test_minimal_policy_gets_documented_defaults():
    policy = parse_policy(MINIMAL)
    assert policy.fields.text == []
    assert policy.feature_columns == ["followers", "following", "posts_per_day", "signup_channel"]
    assert policy.promotion.recall_drop_tolerance == 0.01
    assert policy.dataset.tie_label == "negative"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("review_recall: 0.9", "review_recall: 1.5"),
            "targets.review_recall: Input should be less than or equal to 1",
        ),
        (("  review_recall: 0.9\n", ""), "targets.review_recall: required key is missing"),
        (
            ("targets:", "targetz:"),
            "targetz: unknown key (did you mean 'targets'?) (and 1 more problem)",
        ),
        (("posts_per_day]", "posts_per_day, followers]"), "fields: fields listed twice: followers"),
        (("[signup_channel]", "[label]"), "fields.categorical: field name 'label' is reserved"),
        (
            ("negative: genuine", "negative: fake"),
            "labels: positive and negative labels must differ",
        ),
        (("name: fake_accounts", "name: Fake Accounts"), "name: must be lower-case"),
        (
            (
                "  review_recall: 0.9\n",
                "  review_recall: 0.9\nlabeling:\n  explore_split: {novel: 0.9}\n",
            ),
            "labeling.explore_split: the shares must sum to 1 (they sum to 1.5)",
        ),
    ],
)
def test_invalid_policy_names_the_key(change, message):
    old, new = change
    with pytest.raises(FlywheelError) as caught:
        parse_policy(MINIMAL.replace(old, new), source="p.yaml")
    assert str(caught.value).startswith("p.yaml: ")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_policy_needs_a_field():
    text = MINIMAL.replace(
        "fields:\n  numeric: [followers, following, posts_per_day]\n", "fields: {}\n"
    )
    text = text.replace("  categorical: [signup_channel]\n", "")
    with pytest.raises(FlywheelError, match="at least one text, numeric or categorical field"):
        parse_policy(text)


def test_malformed_yaml_names_the_line():
    with pytest.raises(FlywheelError, match=r"not valid YAML at line \d+"):
        parse_policy("name: x\nlabels: {positive: a\n", source="bad.yaml")
    with pytest.raises(FlywheelError, match="must be a YAML mapping"):
        parse_policy("- just\n- a list\n")


def test_unknown_policy_lists_the_known_ones():
    with pytest.raises(FlywheelError, match=r"unknown policy 'hate'.*scam, spam"):
        load_policy("hate")


def test_policy_by_path_and_name_must_match_file(tmp_path: Path):
    good = tmp_path / "fake_accounts.yaml"
    good.write_text(MINIMAL)
    assert load_policy(str(good)).name == "fake_accounts"
    renamed = tmp_path / "other.yaml"
    renamed.write_text(MINIMAL)
    with pytest.raises(FlywheelError, match="does not match the file name"):
        load_policy(str(renamed))


def test_policies_dir_comes_from_settings(tmp_path: Path):
    (tmp_path / "fake_accounts.yaml").write_text(MINIMAL)
    settings = Settings(home=tmp_path / "home", policies_dir=tmp_path)
    assert load_policy("fake_accounts", settings).labels.positive == "fake"


def test_the_simulation_section_is_the_simulators_to_check():
    """Production reads a policy without the simulator's schema: the section is kept as given."""
    text = MINIMAL + "simulation:\n  numeric:\n    karma: {benign: 1, violating: 2}\n"
    assert parse_policy(text).simulation == {"numeric": {"karma": {"benign": 1, "violating": 2}}}


def test_alert_limits_take_the_targets_where_left_null_and_keep_what_is_off():
    limits = parse_policy(MINIMAL).alert_limits
    assert limits["min_golden_precision"] == limits["min_audit_precision"] == 0.97
    assert limits["min_golden_recall"] == 0.9 and limits["max_allow_fnr"] == 0.2
    own = parse_policy(
        MINIMAL + "monitoring:\n  alerts: {min_golden_recall: 0.8, drift_share: null}\n"
    ).alert_limits
    assert own["min_golden_recall"] == 0.8 and own["drift_share"] is None
