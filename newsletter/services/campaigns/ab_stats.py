"""The A/B test's statistics: a pooled two-proportion z-test, pure (no database, no scipy).

Each variant is compared with the leader (the highest rate; the leader itself with the
runner-up). The confidence stated is 1 - p, p the two-sided p-value of the pooled test:
"B beats A with 97% confidence" means that, were both variants equally good, a difference
at least this large (either way) would show up 3% of the time.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

TEST_NAME = "two-proportion z-test (pooled, two-sided)"


@dataclass(frozen=True)
class ZTest:
    z: float  # positive: the first proportion is the higher
    p_value: float  # two-sided

    @property
    def confidence(self) -> float:
        return 1.0 - self.p_value


def two_proportion_z_test(successes_a: int, trials_a: int, successes_b: int, trials_b: int) -> ZTest:
    """z = (pa - pb) / sqrt(p (1 - p) (1/na + 1/nb)), p the pooled rate; p-value = erfc(|z| / sqrt 2).

    No trials on a side, or a pooled rate of 0 or 1 (no variance): z = 0, p = 1 (no evidence).
    """
    if min(trials_a, trials_b) <= 0:
        return ZTest(0.0, 1.0)
    if not (0 <= successes_a <= trials_a and 0 <= successes_b <= trials_b):
        raise ValueError("successes must be between 0 and the trials")
    pooled = (successes_a + successes_b) / (trials_a + trials_b)
    variance = pooled * (1 - pooled) * (1 / trials_a + 1 / trials_b)
    if variance <= 0:
        return ZTest(0.0, 1.0)
    z = (successes_a / trials_a - successes_b / trials_b) / math.sqrt(variance)
    return ZTest(z, math.erfc(abs(z) / math.sqrt(2)))


@dataclass(frozen=True)
class Arm:
    label: str
    trials: int  # test messages sent
    successes: int  # distinct recipients with the metric's human event

    @property
    def rate(self) -> float:
        return self.successes / self.trials if self.trials else 0.0


@dataclass(frozen=True)
class Comparison:
    label: str
    rate: float
    leader: bool
    against: str | None  # the variant it is compared with (None: a single variant)
    test: ZTest

    def summary(self) -> str:
        """The comparison in words, from the leader's side."""
        if self.against is None:
            return "Nothing to compare with."
        winner, loser = (self.label, self.against) if self.leader else (self.against, self.label)
        if self.test.z == 0:
            return f"No difference between {winner} and {loser} yet (two-proportion z-test)."
        return f"{winner} beats {loser} with {percent(self.test.confidence)} confidence (two-proportion z-test)."


def percent(value: float) -> str:
    """0.9712 -> "97%"; never rounds up to a certainty the data does not give."""
    shown = math.floor(value * 1000) / 10
    return f"{shown:g}%"


def leader(arms: list[Arm]) -> Arm:
    """The highest rate; a tie goes to the variant with more successes, then the earlier label."""
    return sorted(arms, key=lambda arm: (-arm.rate, -arm.successes, arm.label))[0]


def compare(arms: list[Arm]) -> list[Comparison]:
    """Every variant against the leader, the leader against the runner-up; in label order."""
    if not arms:
        return []
    best = leader(arms)
    others = [arm for arm in arms if arm.label != best.label]
    runner_up = leader(others) if others else None
    result = []
    for arm in sorted(arms, key=lambda a: a.label):
        against = runner_up if arm.label == best.label else best
        if against is None:
            result.append(Comparison(arm.label, arm.rate, True, None, ZTest(0.0, 1.0)))
            continue
        test = two_proportion_z_test(arm.successes, arm.trials, against.successes, against.trials)
        result.append(Comparison(arm.label, arm.rate, arm.label == best.label, against.label, test))
    return result
