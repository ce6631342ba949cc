"""A careful reader's check: every headline and secondary sentence of findings.md against the
numbers printed in it, the declared smallest difference and the stated level."""

import re

from aedepth.stats import ALPHA, primary_verdict, secondary_verdict

NUMBER = r"[+-]?\d+(?:\.\d+)?"
PRIMARY = re.compile(
    rf"(?P<metric>\w+) (?P<mean>{NUMBER}) \[(?P<low>{NUMBER}), (?P<high>{NUMBER})\] "
    r"\((?P<level>[\d.]+) % interval(?:, 95 % for the (?P<steps>\d+) steps together)?; "
    r"[^)]*\): (?P<outcome>.*)\.$"
)
SECONDARY = re.compile(
    rf"(?P<metric>\w+) (?P<mean>{NUMBER}) \[(?P<low>{NUMBER}), (?P<high>{NUMBER})\], "
    r"(?P<verdict>better|worse|no clear difference) \((?P<better>higher|lower) is better\)"
)


def check_primary_sentence(sentence: str, delta: float, higher_is_better: bool, steps: int):
    """Assert that the sentence's verdict and its reasons hold for the interval it prints, and
    that its level is the study's simultaneous one; returns the verdict read off the numbers."""
    found = PRIMARY.search(sentence)
    assert found, sentence
    mean, low, high = (float(found[k]) for k in ("mean", "low", "high"))
    assert low <= mean <= high, sentence
    assert float(found["level"]) == round(100 * (1 - ALPHA / steps), 2), sentence
    assert (found["steps"] is not None) == (steps > 1), sentence
    verdict = primary_verdict(low, high, delta, higher_is_better)
    outcome, d = found["outcome"], f"{delta:g}"
    expected = {
        "better, not shown to reach δ": f"better, by an amount not shown to reach {d}:",
        "worse, not shown to reach δ": f"worse, by an amount not shown to reach {d}:",
    }.get(verdict, verdict.replace("δ", d) + ":")
    assert outcome.startswith(expected), (expected, sentence)
    claims = {
        f"lies at or above +{d}": low >= delta,
        f"lies at or below -{d}": high <= -delta,
        f"within ±{d}": -delta < low and high < delta,
        "a difference is detectable": low > 0 or high < 0,
        f"above 0 and holds +{d}": low > 0 and high >= delta,
        f"below 0 and holds -{d}": high < 0 and low <= -delta,
        "holds 0": low <= 0 <= high,
        f"reaches -{d}": low <= -delta,
        f"reaches +{d}": high >= delta,
        f"not shown to reach {d}": not (low >= delta or high <= -delta),
    }
    reason = outcome.split(";")[0]  # what follows is the plan for more seeds
    for words, holds in claims.items():
        if words in reason:
            assert holds, f"{words!r} is false for [{low}, {high}]: {sentence}"
    for word in ("excludes 0", "neither"):
        assert word not in outcome, sentence
    return verdict


def check_secondary_part(text: str) -> str:
    """Assert a secondary part's verdict is the one its printed interval shows."""
    found = SECONDARY.search(text)
    assert found, text
    low, high = float(found["low"]), float(found["high"])
    assert low <= float(found["mean"]) <= high, text
    assert found["verdict"] == secondary_verdict(low, high, found["better"] == "higher"), text
    return found["verdict"]
