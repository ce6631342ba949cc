"""Does the primary question's interval cover the true difference as often as it says?

Run from the repository root (about 15-20 minutes on one CPU; --quick: about a minute):

    .venv/bin/python benchmarks/interval_coverage.py [--quick]

It prints Markdown tables of three checks of aedepth.stats:

1. Exact coverage by numerical integration. Gaussian model, the test images' part V known:
   the per-seed differences have variance sigma^2, so the seeds' part of the mean's variance
   is S = sigma^2 / n, estimated with n - 1 degrees of freedom (S_hat = S W / (n - 1),
   W ~ chi-square(n - 1)), and the mean is normal with variance S + V. The coverage of an
   interval of half-width h(S_hat, V) is E_W[2 Phi(h / sqrt(S + V)) - 1], integrated over W by
   scipy.integrate.quad (to 1e-9), for n = 2-10 seeds and ratios r = V / S. Beside the
   generalized pivotal interval (pivot_half_width, the method in use) are the two it replaced:
   Satterthwaite's degrees of freedom with the seeds' part at its one-sided 70 % upper
   chi-square limit, and the plain plug-in Satterthwaite interval (N = 10,000 test images).
2. Simulated studies with binary per-image correctness (like kNN accuracy): image i is right
   for the model of depth k and seed s with probability Phi(mu_k + u_ks + b_i + v_ki): u seed
   effects, b an image difficulty both depths share, v depth-specific image effects; the
   Bernoulli draw adds the seed-by-image part. Each study's (seeds, images) matrix of
   per-image differences is reduced to the sums paired_estimate's two variance parts are made
   of (row and column sums, the sum of squares: one code path for N = 400 and 10,000, checked
   against paired_estimate itself on the first two studies of every cell), and its 95 %
   interval is aedepth.stats.PairedEstimate(...).interval(0.95). Fewer seed-effect settings at
   N = 10,000, where the draws cost most (about 300 s per setting).
3. Silhouette: why its interval is over seeds only. The mean silhouette of a test set is not
   a mean of independent per-image terms (each image's value depends on all the others), so
   var(per-image) / N misstates its sampling variance over freshly drawn test sets.

Every generator is seeded (--seed): the same command prints the same tables.
"""

from __future__ import annotations

import argparse
import math
import platform
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import integrate, stats

from aedepth.cpus import cpu_model
from aedepth.stats import PairedEstimate, paired_estimate, pivot_half_width

REPO = Path(__file__).resolve().parents[1]
SEEDS = range(2, 11)
RATIOS = (0.0, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0)  # V / S: the test images' part over the seeds'
LEVELS = (0.95, 0.975)  # one step; each of two steps that hold together (Bonferroni)
IMAGES = 10_000  # N of the Satterthwaite degrees of freedom (the exact part)
OLD_UPPER = 0.7  # the replaced method's one-sided upper limit of the seeds' part
ACCURACY = (0.80, 0.82)  # the simulated depths' accuracies over seeds and images
IMAGE_SD, DEPTH_IMAGE_SD = 1.5, 2.0  # sd of b (shared difficulty) and of v (per depth)
BATCH_ELEMENTS = 1 << 22  # per-image draws held at once (16 MB of float32)


# 1. Exact coverage ------------------------------------------------------------------------


def satterthwaite_half_width(seed_part, image_part, n, images, confidence, upper=True):
    """The replaced interval (vectorised over the seeds' part): t at Satterthwaite's degrees of
    freedom, the seeds' part in them taken at its one-sided 70 % upper limit (upper=True) or as
    estimated, times sqrt(S + V); n - 1 degrees of freedom where V is 0, as it was."""
    s = np.asarray(seed_part, dtype=float)
    v = np.broadcast_to(np.asarray(image_part, dtype=float), s.shape)
    df_seeds = n - 1
    s_df = s * df_seeds / stats.chi2.ppf(1 - OLD_UPPER, df_seeds) if upper else s
    with np.errstate(divide="ignore", invalid="ignore"):
        df = (s_df + v) ** 2 / (s_df**2 / df_seeds + v**2 / (images - 1))
    df = np.where((v == 0) | (s + v == 0), df_seeds, df)
    return stats.t.isf((1 - confidence) / 2, df) * np.sqrt(s + v)


def half_width_rule(method: str, n: int, ratio: float, confidence: float):
    """h(S_hat) for S = 1, V = ratio: the pivot (in use) or the replaced Satterthwaite ones."""
    if method == "pivot":
        return lambda s: pivot_half_width(s, ratio, n - 1, confidence)
    upper = method == "old"
    return lambda s: float(satterthwaite_half_width(s, ratio, n, IMAGES, confidence, upper))


def exact_coverage(method: str, n: int, ratio: float, confidence: float) -> tuple[float, float]:
    """(coverage, quad's error estimate) with S = 1, V = ratio: E_W[2 Phi(h / sqrt(1 + ratio))
    - 1], W ~ chi-square(n - 1), integrated over W's quantile q in (0, 1) (the integrand is
    smooth and bounded there, where chi-square(1)'s density is not)."""
    df, half_width = n - 1, half_width_rule(method, n, ratio, confidence)

    def covered(q: float) -> float:
        seed_part = stats.chi2.ppf(q, df) / df
        return 2 * stats.norm.cdf(half_width(seed_part) / math.sqrt(1 + ratio)) - 1

    value, error = integrate.quad(covered, 0, 1, epsabs=1e-9, epsrel=0, limit=200)
    return value, error


def exact_tables(seeds, ratios, levels) -> dict:
    """{(method, level): {(n, ratio): coverage}} and the largest quad error estimate."""
    tables, worst_error = {}, 0.0
    for method in ("pivot", "old", "plugin"):
        for level in levels:
            cells = {}
            for n in seeds:
                for ratio in ratios:
                    cells[n, ratio], error = exact_coverage(method, n, ratio, level)
                    worst_error = max(worst_error, error)
            tables[method, level] = cells
    return {"tables": tables, "quad_error": worst_error}


# 2. Simulated studies, binary per-image correctness ---------------------------------------


@dataclass(frozen=True)
class Scenario:
    """Image i is right for depth k, seed s with probability Phi(mu_k + u_ks + b_i + v_ki),
    u ~ N(0, seed_sd^2), b ~ N(0, image_sd^2), v ~ N(0, depth_image_sd^2), all independent;
    mu_k is set so that depth k's accuracy over seeds and images is ACCURACY[k]."""

    seed_sd: float
    image_sd: float = IMAGE_SD
    depth_image_sd: float = DEPTH_IMAGE_SD

    @property
    def latent_sd(self) -> float:
        """sd of u + b + v + e, e the standard normal of the Bernoulli draw (y = [e < eta])."""
        return math.sqrt(1 + self.seed_sd**2 + self.image_sd**2 + self.depth_image_sd**2)

    def means(self) -> np.ndarray:
        return stats.norm.ppf(ACCURACY) * self.latent_sd

    def true_difference(self) -> float:
        """E Phi(mu + w), w ~ N(0, t^2), is P(e - w < mu) = Phi(mu / sqrt(1 + t^2)), e ~ N(0, 1)
        independent of w: the accuracy of each depth, and their difference."""
        mu0, mu1 = self.means() / self.latent_sd
        return float(stats.norm.cdf(mu1) - stats.norm.cdf(mu0))

    def label(self) -> str:
        if self.image_sd == self.depth_image_sd == 0:
            return f"no image effects, σ_u {self.seed_sd:g}"
        return f"σ_u {self.seed_sd:g}"


def check_true_difference(scenario: Scenario) -> float:
    """|E Phi(mu + w) by 200-point Gauss-Hermite quadrature - the closed form|, both depths."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(200)
    spread = math.sqrt(scenario.latent_sd**2 - 1)
    by_quadrature = [
        float(weights @ stats.norm.cdf(mu + spread * nodes) / math.sqrt(2 * math.pi))
        for mu in scenario.means()
    ]
    return abs(by_quadrature[1] - by_quadrature[0] - scenario.true_difference())


def draw_differences(scenario: Scenario, studies: int, n: int, images: int, rng) -> np.ndarray:
    """(studies, n, images) int8 per-image differences, deeper minus shallower: each study
    draws its own seed effects and its own test set."""
    shape = (studies, n, images)
    shared = rng.standard_normal((studies, 1, images), dtype=np.float32) * scenario.image_sd
    correct = []
    for mu in scenario.means():
        eta = rng.standard_normal((studies, n, 1), dtype=np.float32) * scenario.seed_sd
        eta = eta + shared + float(mu)
        eta += rng.standard_normal((studies, 1, images), dtype=np.float32) * scenario.depth_image_sd
        correct.append((rng.standard_normal(shape, dtype=np.float32) < eta).view(np.int8))
    return correct[1] - correct[0]


def variance_parts(d: np.ndarray):
    """(mean, S, V) per study of a (studies, n, N) batch: paired_estimate's seed_variance and
    image_variance (aedepth.stats.image_variance), from the sufficient statistics: row sums,
    column sums and the sum of squares (for differences of 0/1 values, the non-zero count)."""
    _, n, images = d.shape
    rows = d.sum(axis=2, dtype=np.int64).astype(float)  # per seed
    columns = d.sum(axis=1, dtype=np.int64).astype(float)  # per image
    squares = np.count_nonzero(d, axis=(1, 2)).astype(float)
    total = rows.sum(axis=1)
    per_seed = rows / images
    seeds = per_seed.var(axis=1, ddof=1) / n
    seeds[(rows == rows[:, :1]).all(axis=1)] = 0.0  # paired_estimate's "no spread"
    per_image = columns / n
    image_means = per_image.var(axis=1, ddof=1) / images
    residual = (
        squares
        - (rows**2).sum(axis=1) / images
        - (columns**2).sum(axis=1) / n
        + total**2 / (n * images)
    )
    interaction = residual / ((n - 1) * (images - 1))
    image_part = np.maximum(0.0, image_means - interaction / (n * images))
    return total / (n * images), seeds, image_part


def check_against_paired_estimate(d: np.ndarray, mean, seeds, image_part) -> None:
    """The sufficient statistics give paired_estimate's numbers (first two studies)."""
    for k in range(min(2, len(d))):
        real = paired_estimate(d[k])
        ours = PairedEstimate(real.mean, real.n_pairs, real.n_images, seeds[k], image_part[k])
        scale = real.seed_variance + real.image_variance
        assert math.isclose(real.mean, mean[k], rel_tol=1e-12, abs_tol=1e-15)
        assert math.isclose(real.seed_variance, seeds[k], rel_tol=1e-9, abs_tol=1e-12 * scale)
        assert math.isclose(real.image_variance, image_part[k], abs_tol=1e-9 * scale)
        width = real.half_width(0.95)
        assert math.isclose(ours.half_width(0.95), width, rel_tol=1e-7, abs_tol=1e-12), k


def simulate_cell(scenario: Scenario, n: int, images: int, studies: int, rng) -> dict:
    """Coverage of the 95 % interval in use (PairedEstimate.interval) and of the two replaced
    ones, over `studies` simulated studies; the realised ratio mean(V) / mean(S); the mean
    difference's bias in Monte Carlo standard errors."""
    truth, hits, old, plugin, sums = scenario.true_difference(), 0, 0, 0, np.zeros(3)
    means = []
    batch = max(1, BATCH_ELEMENTS // (n * images))
    for start in range(0, studies, batch):
        d = draw_differences(scenario, min(batch, studies - start), n, images, rng)
        mean, seeds, image_part = variance_parts(d)
        if start == 0:
            check_against_paired_estimate(d, mean, seeds, image_part)
        for m, s, v in zip(mean, seeds, image_part):
            low, high = PairedEstimate(float(m), n, images, float(s), float(v)).interval(0.95)
            hits += low <= truth <= high
        for upper in (True, False):
            half = satterthwaite_half_width(seeds, image_part, n, images, 0.95, upper)
            covered = int((np.abs(mean - truth) <= half).sum())
            old, plugin = (old + covered, plugin) if upper else (old, plugin + covered)
        sums += (seeds.sum(), image_part.sum(), 0)
        means.append(mean)
    means = np.concatenate(means)
    bias_se = (means.mean() - truth) / (means.std(ddof=1) / math.sqrt(studies))
    return {
        "pivot": hits / studies,
        "old": old / studies,
        "plugin": plugin / studies,
        "ratio": sums[1] / sums[0] if sums[0] > 0 else math.inf,
        "bias_se": float(bias_se),
    }


def simulation_tables(plan: dict, seeds, studies: int, seed: int) -> dict:
    """{images: {(n, scenario): cell}}; each cell its own generator (seed, N, n, column)."""
    results = {}
    for images, scenarios in plan.items():
        results[images] = {}
        for column, scenario in enumerate(scenarios):
            for n in seeds:
                rng = np.random.default_rng([seed, images, n, column])
                results[images][n, scenario] = simulate_cell(scenario, n, images, studies, rng)
    return results


# 3. Silhouette ----------------------------------------------------------------------------


def silhouette_variances(spread: float, images: int, test_sets: int, rng) -> dict:
    """Ten 2-D Gaussian classes (centres on a circle of radius 3, sd `spread`): the mean
    silhouette of `test_sets` freshly drawn test sets of `images` points, its variance across
    them (the truth) and the average naive var(per-image silhouette) / N."""
    from sklearn.metrics import silhouette_samples

    angles = 2 * np.pi * np.arange(10) / 10
    centres = 3 * np.c_[np.cos(angles), np.sin(angles)]
    means, naive = [], []
    for _ in range(test_sets):
        labels = rng.integers(0, 10, images)
        points = centres[labels] + rng.normal(0, spread, (images, 2))
        values = silhouette_samples(points, labels)
        means.append(values.mean())
        naive.append(values.var(ddof=1) / images)
    true = float(np.var(means, ddof=1))
    ratio = float(np.mean(naive)) / true
    return {
        "silhouette": float(np.mean(means)),
        "true_sd": math.sqrt(true),
        "naive_sd": math.sqrt(float(np.mean(naive))),
        "ratio": ratio,
        "ratio_se": ratio * math.sqrt(2 / (test_sets - 1)),  # the sample variance's chi-square
    }


# Output -----------------------------------------------------------------------------------


def machine() -> str:
    """The CPU model, and its family and model numbers (lscpu's name can be just "AMD EPYC")."""
    family = model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "cpu family":
                family = value.strip()
            elif key.strip() == "model" and model == "?":
                model = value.strip()
    except OSError:
        pass
    return f"{cpu_model()} (family {family} model {model}), {platform.system()}"


def commit() -> str:
    run = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return run.stdout.strip() or "unknown"


def markdown(rows_label: str, columns: list[str], rows: list[tuple[str, list[str]]]) -> str:
    lines = [
        f"| {rows_label} | " + " | ".join(columns) + " |",
        "| --- | " + " | ".join("---:" for _ in columns) + " |",
    ]
    lines += [f"| {label} | " + " | ".join(cells) + " |" for label, cells in rows]
    return "\n".join(lines)


METHODS = {
    "pivot": "generalized pivotal interval (in use)",
    "old": "Satterthwaite, seeds' part at its 70 % upper limit (replaced)",
    "plugin": "Satterthwaite, plug-in (replaced)",
}


def print_exact(result: dict, seeds, ratios) -> None:
    for (method, level), cells in result["tables"].items():
        print(f"\n#### Exact coverage at {level * 100:g} %: {METHODS[method]}\n")
        rows = [(str(n), [f"{cells[n, r]:.4f}" for r in ratios]) for n in seeds]
        print(markdown("seeds \\ V/S", [f"{r:g}" for r in ratios], rows))
        print(f"\nLowest: {min(cells.values()):.6f}")
    print(f"\nLargest quad error estimate: {result['quad_error']:.1e}")


def print_simulation(results: dict, seeds, studies: int) -> None:
    se = math.sqrt(0.95 * 0.05 / studies)
    for images, cells in results.items():
        scenarios = list(dict.fromkeys(s for _, s in cells))
        for method in METHODS:
            print(f"\n#### Simulated coverage at 95 %, N = {images:,}: {METHODS[method]}\n")
            rows = [
                (
                    str(n),
                    [
                        f"{cells[n, s][method]:.4f} (r {cells[n, s]['ratio']:.2g})"
                        for s in scenarios
                    ],
                )
                for n in seeds
            ]
            print(markdown("seeds", [s.label() for s in scenarios], rows))
            print(f"\nLowest: {min(c[method] for c in cells.values()):.4f}")
        worst_bias = max(abs(c["bias_se"]) for c in cells.values())
        print(f"\nLargest |mean difference - truth| over the cells: {worst_bias:.1f} MC SE")
    print(f"\n{studies:,} studies per cell: Monte Carlo SE {se:.4f} at 95 %. r: the cell's mean V")
    print("over its mean S (estimated), the test images' part of the variance over the seeds'.")


def print_silhouette(rows: list[tuple[float, int, int, dict]]) -> None:
    print("\n#### Silhouette: naive var(per-image) / N against the truth\n")
    table = [
        (
            f"{spread:g}",
            [
                f"{images:,}",
                f"{sets:,}",
                f"{r['silhouette']:.3f}",
                f"{r['true_sd']:.2e}",
                f"{r['naive_sd']:.2e}",
                f"{r['ratio']:.2f} ± {r['ratio_se']:.2f}",
                f"{1 - r['ratio']:.0%}",
            ],
        )
        for spread, images, sets, r in rows
    ]
    columns = ["N", "test sets", "mean silhouette", "true sd", "naive sd", "naive / true var"]
    print(markdown("class sd", [*columns, "variance understated by"], table))


def plan(quick: bool) -> dict:
    """The simulation's cells: {N: scenarios}. Fewer at N = 10,000, where the draws cost."""
    none = Scenario(0.1, image_sd=0.0, depth_image_sd=0.0)
    if quick:
        return {400: [none, Scenario(0.1), Scenario(0.0)]}
    return {
        400: [none, Scenario(0.2), Scenario(0.1), Scenario(0.05), Scenario(0.0)],
        10_000: [Scenario(0.05), Scenario(0.0)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small version (about a minute)")
    parser.add_argument("--studies", type=int, help="studies per cell (10,000; quick 1,000)")
    parser.add_argument("--seed", type=int, default=0, help="the generators' seed")
    parser.add_argument(
        "--parts", default="exact,simulation,silhouette", help="which checks, comma-separated"
    )
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    seeds = (2, 3, 5, 10) if args.quick else SEEDS
    ratios = (0.0, 1.0, 10.0) if args.quick else RATIOS
    studies = args.studies or (1_000 if args.quick else 10_000)
    print(f"# interval_coverage.py{' --quick' if args.quick else ''}, commit {commit()}")
    print(f"# CPU: {machine()}; {time.strftime('%Y-%m-%d')}; one process")
    if "exact" in parts:
        started = time.perf_counter()
        print("\n### 1. Exact coverage (Gaussian model, V known)")
        print_exact(exact_tables(seeds, ratios, LEVELS), seeds, ratios)
        print(f"\n({time.perf_counter() - started:.0f} s)")
    if "simulation" in parts:
        started = time.perf_counter()
        cells = plan(args.quick)
        worst = max(check_true_difference(s) for scenarios in cells.values() for s in scenarios)
        print("\n### 2. Simulated studies, binary per-image correctness")
        print(f"\nTrue difference {ACCURACY[1] - ACCURACY[0]:g}; closed form against")
        print(f"Gauss-Hermite quadrature: largest gap {worst:.1e}.")
        print_simulation(simulation_tables(cells, seeds, studies, args.seed), seeds, studies)
        print(f"\n({time.perf_counter() - started:.0f} s)")
    if "silhouette" in parts:
        started = time.perf_counter()
        sets, images = (200, 500) if args.quick else (1_000, 1_000)
        rng = np.random.default_rng([args.seed, 3])
        rows = [
            (spread, images, sets, silhouette_variances(spread, images, sets, rng))
            for spread in (1.0, 0.7, 0.5)
        ]
        print_silhouette(rows)
        print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
