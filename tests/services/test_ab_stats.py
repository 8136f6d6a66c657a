"""The A/B statistics (pure): the pooled two-proportion z-test against hand-computed values."""
from __future__ import annotations

import math

import pytest

from newsletter.services.campaigns.ab_stats import Arm, compare, leader, percent, two_proportion_z_test


def test_the_z_test_matches_hand_computed_values():
    # 250/1000 vs 200/1000: pooled p = 0.225, SE = sqrt(0.225 * 0.775 * (1/1000 + 1/1000)) = 0.0186748,
    # z = 0.05 / 0.0186748 = 2.67740; two-sided p = 2 * (1 - Phi(2.6774)) = 0.00742 (normal table).
    test = two_proportion_z_test(250, 1000, 200, 1000)
    assert test.z == pytest.approx(2.67740, abs=1e-5)
    assert test.p_value == pytest.approx(0.00742, abs=1e-5)
    assert test.confidence == pytest.approx(0.99258, abs=1e-5)
    # 45/100 vs 30/100: pooled 0.375, SE = 0.0684653, z = 2.19089, p = 0.02846 (table: 2 x 0.01423).
    test = two_proportion_z_test(45, 100, 30, 100)
    assert (test.z, test.p_value) == (pytest.approx(2.19089, abs=1e-5), pytest.approx(0.02846, abs=1e-5))
    # The other way round: the same p, z negated.
    flipped = two_proportion_z_test(30, 100, 45, 100)
    assert (flipped.z, flipped.p_value) == (pytest.approx(-2.19089, abs=1e-5), pytest.approx(0.02846, abs=1e-5))


def test_z_of_1_96_is_95_percent_confidence():
    # Unequal sizes: choose counts whose z is close to 1.96 and check p = erfc(z / sqrt 2) at that z.
    test = two_proportion_z_test(60, 400, 40, 400)
    pooled = 100 / 800
    expected_z = (0.15 - 0.10) / math.sqrt(pooled * (1 - pooled) * (2 / 400))
    assert test.z == pytest.approx(expected_z)
    assert two_proportion_z_test(0, 10, 0, 10).p_value == 1.0
    assert math.erfc(1.959964 / math.sqrt(2)) == pytest.approx(0.05, abs=1e-6)


def test_no_evidence_without_trials_or_variance():
    assert (two_proportion_z_test(0, 0, 5, 10).z, two_proportion_z_test(0, 0, 5, 10).p_value) == (0.0, 1.0)
    assert two_proportion_z_test(10, 10, 10, 10).p_value == 1.0  # everyone on both sides: no variance
    with pytest.raises(ValueError):
        two_proportion_z_test(11, 10, 1, 10)


def test_the_leader_and_each_variant_compared_with_it_in_words():
    arms = [Arm("A", 1000, 200), Arm("B", 1000, 250), Arm("C", 1000, 210)]
    assert leader(arms).label == "B"
    by_label = {c.label: c for c in compare(arms)}
    assert (by_label["A"].against, by_label["C"].against, by_label["B"].against) == ("B", "B", "C")
    assert by_label["B"].leader and not by_label["A"].leader
    assert by_label["A"].summary() == "B beats A with 99.2% confidence (two-proportion z-test)."
    assert by_label["A"].test.z == pytest.approx(-2.67740, abs=1e-5)  # A's rate minus B's
    # The leader against the runner-up, C: 250/1000 vs 210/1000.
    assert by_label["B"].test.p_value == pytest.approx(two_proportion_z_test(250, 1000, 210, 1000).p_value)


def test_ties_go_to_more_successes_then_the_earlier_label():
    assert leader([Arm("A", 10, 1), Arm("B", 20, 2)]).label == "B"
    assert leader([Arm("A", 10, 0), Arm("B", 10, 0)]).label == "A"
    assert compare([Arm("A", 10, 0), Arm("B", 10, 0)])[1].summary().startswith("No difference between A and B")


def test_percent_never_rounds_up_to_certainty():
    assert percent(0.99999) == "99.9%"
    assert percent(0.97123) == "97.1%"
    assert percent(0.5) == "50%"
