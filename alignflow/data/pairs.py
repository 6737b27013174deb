"""Which (better, worse) pairs a comparison group of scored responses becomes, within a bound.

A group of K responses holds up to K(K-1)/2 ordered pairs: 4.5 million for K = 3,000. A group keeps all of them
when there are at most `cap`; otherwise `cap` of them, drawn uniformly without replacement by a generator seeded
with the run's seed and the record id, so the choice is the same on every machine and in every order of the file.
The draw never lists the pairs: pair number u maps to its two responses by a binary search over the responses
sorted by score, so time and memory grow with K and `cap`, not with K².
"""

from __future__ import annotations

import bisect
import itertools
import random


def ordered_pairs(scores: list[float], cap: int, seed: str) -> list[tuple[int, int]]:
    """(better, worse) index pairs with scores[better] > scores[worse], sorted, at most `cap` of them."""
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    below = []  # below[k]: how many responses score strictly lower than order[k]
    for k, index in enumerate(order):
        tied = k and scores[index] == scores[order[k - 1]]
        below.append(below[-1] if tied else k)
    ends = list(itertools.accumulate(below))  # pairs numbered ends[k-1] .. ends[k]-1 have order[k] as the better
    total = ends[-1] if ends else 0
    numbers = range(total) if total <= cap else random.Random(seed).sample(range(total), cap)
    pairs = []
    for number in numbers:
        k = bisect.bisect_right(ends, number)
        pairs.append((order[k], order[number - (ends[k - 1] if k else 0)]))
    return sorted(pairs)
