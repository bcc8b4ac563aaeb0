"""AHP weights and consistency: published textbook examples, refusal, validation."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sitefinder.ahp import (
    CR_LIMIT,
    RANDOM_INDEX,
    AhpResult,
    ahp_weights,
    pairwise_matrix,
)
from sitefinder.errors import InputError


def _matrix(text: str) -> np.ndarray:
    return np.array(
        [[float(Fraction(x)) for x in row.split()] for row in text.strip().splitlines()]
    )


# Saaty, T.L. (1990) "How to make a decision: The Analytic Hierarchy Process",
# European Journal of Operational Research 48, 9-26, Table 2 (choosing a house; criteria
# in this order). Published there: priority vector .173 .054 .188 .018 .031 .036 .167 .333,
# lambda_max = 9.669, C.I. = 0.238, C.R. = 0.169.
# Copy seen at https://www.scribd.com/doc/152351928/AHP-Decisions ; the same matrix is
# in the Russian translation of Saaty's book (https://studopedia.info/4-100870.html).
HOUSE_CRITERIA = [
    "size",
    "transportation",
    "neighbourhood",
    "age",
    "yard",
    "modern facilities",
    "general condition",
    "financing",
]
HOUSE = _matrix(
    """
    1   5   3   7 6   6   1/3 1/4
    1/5 1   1/3 5 3   3   1/5 1/7
    1/3 3   1   6 3   4   6   1/5
    1/7 1/5 1/6 1 1/3 1/4 1/7 1/8
    1/6 1/3 1/3 3 1   1/2 1/5 1/6
    1/6 1/3 1/4 4 2   1   1/5 1/6
    3   5   1/6 7 5   5   1   1/2
    4   7   5   8 6   6   2   1
    """
)
HOUSE_WEIGHTS = [0.173, 0.054, 0.188, 0.018, 0.031, 0.036, 0.167, 0.333]

# Saaty, T.L. (2008) "Decision making with the analytic hierarchy process", Int. J.
# Services Sciences 1(1), 83-98, table "Which drink is consumed more in the U.S.?":
# derived scale .177 .019 .042 .116 .190 .129 .327 (actual consumption .180 .010 .040 .120
# .180 .140 .330). Copy at https://studylib.net/doc/18179705/ ; the same judgements, with
# CR = 0.022, are in the AHPy test suite (github.com/PhilipGriffith/AHPy, tests/test_ahp.py).
DRINK_JUDGEMENTS = [
    ("coffee", "wine", 9),
    ("coffee", "tea", 5),
    ("coffee", "beer", 2),
    ("coffee", "sodas", 1),
    ("coffee", "milk", 1),
    ("coffee", "water", "1/2"),
    ("wine", "tea", "1/3"),
    ("wine", "beer", "1/9"),
    ("wine", "sodas", "1/9"),
    ("wine", "milk", "1/9"),
    ("wine", "water", "1/9"),
    ("tea", "beer", "1/3"),
    ("tea", "sodas", "1/4"),
    ("tea", "milk", "1/3"),
    ("tea", "water", "1/9"),
    ("beer", "sodas", "1/2"),
    ("beer", "milk", 1),
    ("beer", "water", "1/3"),
    ("sodas", "milk", 2),
    ("sodas", "water", "1/2"),
    ("milk", "water", "1/3"),
]
DRINK_WEIGHTS = {
    "coffee": 0.177,
    "wine": 0.019,
    "tea": 0.042,
    "beer": 0.116,
    "sodas": 0.190,
    "milk": 0.129,
    "water": 0.327,
}


# --- published examples ------------------------------------------------------------------


def test_saaty_drinks_weights_and_cr():
    m = pairwise_matrix(DRINK_JUDGEMENTS)
    r = ahp_weights(m)
    assert list(r.weights.index) == list(DRINK_WEIGHTS)
    assert r.weights.round(3).to_dict() == pytest.approx(DRINK_WEIGHTS, abs=1e-9)
    assert r.weights.sum() == pytest.approx(1.0)
    assert round(r.consistency_ratio, 3) == 0.022
    assert r.consistent
    assert r.random_index == 1.32


def test_saaty_house_published_values():
    r = ahp_weights(HOUSE, HOUSE_CRITERIA, force=True)
    assert r.weights.round(3).tolist() == HOUSE_WEIGHTS
    assert round(r.lambda_max, 3) == 9.669
    assert round(r.consistency_index, 3) == 0.238
    assert round(r.consistency_ratio, 3) == 0.169
    assert not r.consistent


def test_house_is_refused_naming_the_worst_judgement():
    with pytest.raises(InputError) as err:
        ahp_weights(HOUSE, HOUSE_CRITERIA)
    msg = str(err.value)
    assert "0.169" in msg and "force=True" in msg
    assert "'neighbourhood' vs 'general condition'" in msg
    assert err.value.where == "row 'neighbourhood', column 'general condition'"


def test_named_judgement_is_the_single_change_that_helps_most():
    # The claim behind the refusal message: correcting the named judgement to the value
    # the others imply lowers CR more than correcting any other single judgement.
    r = ahp_weights(HOUSE, HOUSE_CRITERIA, force=True)
    w = r.weights.to_numpy()
    outcomes = {}
    for i, j in itertools.combinations(range(len(w)), 2):
        fixed = HOUSE.copy()
        fixed[i, j] = w[i] / w[j]
        fixed[j, i] = w[j] / w[i]
        outcomes[(HOUSE_CRITERIA[i], HOUSE_CRITERIA[j])] = ahp_weights(
            fixed, force=True
        ).consistency_ratio
    best = min(outcomes, key=outcomes.get)
    worst = r.most_inconsistent
    assert (worst.row, worst.column) == best
    assert worst.given == 6
    assert worst.implied == pytest.approx(w[2] / w[6])
    assert outcomes[best] < CR_LIMIT < r.consistency_ratio


# --- maths -------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=0.01, max_value=1.0), min_size=1, max_size=15))
def test_consistent_matrix_gives_back_its_weights(raw):
    w = np.array(raw) / np.sum(raw)
    m = w[:, None] / w[None, :]
    r = ahp_weights(m)
    np.testing.assert_allclose(r.weights.to_numpy(), w, rtol=1e-8, atol=1e-12)
    assert r.lambda_max == pytest.approx(len(w), abs=1e-8)
    assert r.consistency_ratio == pytest.approx(0.0, abs=1e-8)
    assert r.consistent


def test_relabelling_criteria_permutes_the_weights():
    perm = [3, 0, 7, 1, 6, 2, 5, 4]
    shuffled = pd.DataFrame(
        HOUSE[np.ix_(perm, perm)],
        index=[HOUSE_CRITERIA[p] for p in perm],
        columns=[HOUSE_CRITERIA[p] for p in perm],
    )
    a = ahp_weights(HOUSE, HOUSE_CRITERIA, force=True)
    b = ahp_weights(shuffled, force=True)
    pd.testing.assert_series_equal(a.weights, b.weights.reindex(a.weights.index))
    assert a.consistency_ratio == pytest.approx(b.consistency_ratio)


def test_one_and_two_criteria():
    one = ahp_weights([[1.0]], ["transit"])
    assert one.weights.tolist() == [1.0]
    assert one.consistency_ratio == 0.0 and one.most_inconsistent is None
    two = ahp_weights([[1, 3], [1 / 3, 1]], ["transit", "nature"])
    assert two.weights.tolist() == pytest.approx([0.75, 0.25])
    assert two.consistency_ratio == 0.0


def test_force_returns_inconsistent_result_with_summary():
    cyclic = [[1, 3, 1 / 3], [1 / 3, 1, 3], [3, 1 / 3, 1]]  # a > b > c > a
    with pytest.raises(InputError, match="too inconsistent"):
        ahp_weights(cyclic, ["a", "b", "c"])
    r = ahp_weights(cyclic, ["a", "b", "c"], force=True)
    assert isinstance(r, AhpResult)
    assert r.consistency_ratio > CR_LIMIT
    assert r.weights.tolist() == pytest.approx([1 / 3] * 3)
    assert "too inconsistent" in r.summary()


def test_random_index_table_covers_up_to_15():
    assert sorted(RANDOM_INDEX) == list(range(1, 16))
    assert RANDOM_INDEX[3] == 0.58 and RANDOM_INDEX[8] == 1.41 and RANDOM_INDEX[15] == 1.59


def test_typed_decimals_are_accepted_and_made_reciprocal():
    m = np.array([[1, 3, 5], [0.33, 1, 2], [0.2, 0.5, 1]])
    r = ahp_weights(m, ["a", "b", "c"])
    np.testing.assert_allclose(r.matrix.to_numpy() * r.matrix.to_numpy().T, 1.0)
    assert r.matrix.loc["a", "b"] == pytest.approx(np.sqrt(3 / 0.33))


# --- validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("matrix", "where", "text"),
    [
        ([[1, 2], [0.5, 1], [1, 1]], None, "square"),
        ([[1, -3], [-1 / 3, 1]], "row 'a', column 'b'", "positive"),
        ([[1, 0], [0, 1]], "row 'a', column 'b'", "positive"),
        ([[1, np.nan], [1, 1]], "row 'a', column 'b'", "finite"),
        ([[1, 3], [1 / 3, 2]], "row 'b', column 'b'", "itself must be 1"),
        ([[1, 3], [3, 1]], "row 'a', column 'b'", "not reciprocal"),
        ([[1, 3], [0.5, 1]], "row 'a', column 'b'", "not reciprocal"),
    ],
)
def test_invalid_matrices_name_the_cell(matrix, where, text):
    names = ["a", "b", "c"][: len(matrix[0])]
    with pytest.raises(InputError, match=text) as err:
        ahp_weights(matrix, names)
    assert err.value.where == where


def test_non_reciprocal_cell_hint_gives_the_fix():
    with pytest.raises(InputError) as err:
        ahp_weights([[1, 4, 1], [1 / 4, 1, 1], [1, 2, 1]], ["transit", "nature", "shop"])
    assert err.value.where == "row 'nature', column 'shop'"
    assert "row 'shop', column 'nature' to 1/1" in str(err.value)


def test_more_than_15_criteria_refused():
    with pytest.raises(InputError, match="more than the 15"):
        ahp_weights(np.ones((16, 16)))


def test_dataframe_labels_must_match():
    m = pd.DataFrame(np.ones((2, 2)), index=["a", "b"], columns=["b", "a"])
    with pytest.raises(InputError, match="same criteria"):
        ahp_weights(m)
    with pytest.raises(InputError, match="do not match"):
        ahp_weights(pd.DataFrame(np.ones((2, 2)), index=["a", "b"], columns=["a", "b"]), ["x", "y"])


def test_names_must_fit_and_be_unique():
    with pytest.raises(InputError, match="2 criteria names for a 3 x 3"):
        ahp_weights(np.ones((3, 3)), ["a", "b"])
    with pytest.raises(InputError, match="unique"):
        ahp_weights(np.ones((2, 2)), ["a", "a"])
    with pytest.raises(InputError, match="only numbers"):
        ahp_weights([[1, "x"], [1, 1]])


# --- pairwise_matrix ---------------------------------------------------------------------


def test_pairwise_matrix_from_mapping_and_order():
    m = pairwise_matrix(
        {("transit", "nature"): 3, ("grocery", "transit"): "1/2", ("grocery", "nature"): 1.5},
        criteria=["transit", "grocery", "nature"],
    )
    assert list(m.index) == ["transit", "grocery", "nature"] == list(m.columns)
    assert m.loc["transit", "grocery"] == 2.0
    assert m.loc["nature", "transit"] == pytest.approx(1 / 3)
    r = ahp_weights(m)
    # Consistent judgements (2 * 1.5 == 3): weights 3 : 1.5 : 1.
    assert r.weights.to_dict() == pytest.approx(
        {"transit": 3 / 5.5, "grocery": 1.5 / 5.5, "nature": 1 / 5.5}
    )
    assert r.consistency_ratio == pytest.approx(0.0, abs=1e-12)


def test_pairwise_matrix_lists_missing_pairs():
    with pytest.raises(InputError) as err:
        pairwise_matrix([("a", "b", 3), ("c", "d", 2)])
    msg = str(err.value)
    assert "4 pair(s) have no judgement" in msg
    for pair in ("'a' vs 'c'", "'a' vs 'd'", "'b' vs 'c'", "'b' vs 'd'"):
        assert pair in msg


@pytest.mark.parametrize(
    ("judgements", "text"),
    [
        ([("a", "b", 3), ("b", "a", "1/3")], "judged twice"),
        ([("a", "b", 0)], "positive number"),
        ([("a", "b", "three")], "positive number"),
        ([("a", "b", "1/0")], "positive number"),
        ([("a", "a", 2)], "itself must be 1"),
        ([("a", "b")], r"\(criterion, criterion, value\)"),
        ([], "no judgements"),
    ],
)
def test_pairwise_matrix_rejects_bad_judgements(judgements, text):
    with pytest.raises(InputError, match=text):
        pairwise_matrix(judgements)


def test_pairwise_matrix_unknown_criterion():
    with pytest.raises(InputError, match="not in the criteria list"):
        pairwise_matrix([("a", "b", 3)], criteria=["a", "c"])
