"""The benchmark's statistics: what `bench/timing_parity.py` reports must mean what it says."""

from __future__ import annotations

import random

from bench.timing_parity import (
    analyse,
    best_threshold_accuracy,
    cross_validated_accuracy,
    median_difference_interval,
    null_best_threshold_accuracy,
)


def test_separable_samples_are_classified_perfectly_either_way_round():
    slow, fast = [10.0, 11.0, 12.0], [1.0, 2.0, 3.0]
    assert best_threshold_accuracy(slow, fast) == 1.0
    assert best_threshold_accuracy(fast, slow) == 1.0
    assert cross_validated_accuracy(slow * 10, fast * 10) == 1.0


def test_identical_samples_are_at_chance():
    same = [1.0] * 50
    assert best_threshold_accuracy(same, same) == 0.5


def test_partly_overlapping_samples():
    known, unknown = [2.0, 3.0, 4.0, 5.0], [1.0, 2.5, 3.5, 6.0]
    # Best rule: slower than 1.0 means known -> 4 known right, 1 unknown right: 5/8; or
    # slower than 3.5 means known: known 4,5 right; unknown 1,2.5,3.5 right -> 5/8.
    assert best_threshold_accuracy(known, unknown) == 5 / 8


def test_noise_scores_near_chance_out_of_sample_but_not_in_sample():
    rng = random.Random(7)
    known = [rng.gauss(5, 1) for _ in range(500)]
    unknown = [rng.gauss(5, 1) for _ in range(500)]
    in_sample = best_threshold_accuracy(known, unknown)
    null_mean, null_p95 = null_best_threshold_accuracy(known, unknown, repeats=50)
    assert 0.5 < in_sample < 0.56 and 0.5 < null_mean < 0.56 and null_p95 >= null_mean
    assert abs(cross_validated_accuracy(known, unknown) - 0.5) < 0.03


def test_a_one_sigma_shift_is_found():
    rng = random.Random(8)
    known = [rng.gauss(6, 1) for _ in range(500)]
    unknown = [rng.gauss(5, 1) for _ in range(500)]
    assert 0.65 < cross_validated_accuracy(known, unknown) < 0.75  # theory: 69%


def test_median_difference_interval_covers_the_truth_and_excludes_zero_when_it_should():
    rng = random.Random(9)
    same = median_difference_interval([rng.gauss(5, 1) for _ in range(400)],
                                      [rng.gauss(5, 1) for _ in range(400)], repeats=400)
    shifted = median_difference_interval([rng.gauss(6, 1) for _ in range(400)],
                                         [rng.gauss(5, 1) for _ in range(400)], repeats=400)
    assert same[0] < 0 < same[1]
    assert 0 < shifted[0] < 1 < shifted[1]


def test_report_is_in_milliseconds():
    report = analyse([0.002] * 4, [0.001] * 4, ("throttled", "admitted"))
    assert report.comparison == "throttled vs admitted"
    assert report.median_ms == {"throttled": 2.0, "admitted": 1.0}
    assert report.median_difference_ms == 1.0
    assert report.threshold_classifier_accuracy["in_sample"] == 1.0
