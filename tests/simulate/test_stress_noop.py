"""An ``--inject`` that multiplies zeros warns, naming its window and the busiest hour."""

from __future__ import annotations

import numpy as np
import pytest

from foresize.simulate.replicas.stress import (
    NoOpInjectionWarning,
    parse_injection,
    warn_noop_injections,
)


def test_a_shift_over_zeros_warns_to_the_end_and_a_biting_spike_does_not() -> None:
    # synthetic: 3 h of 10-minute steps, demand only in the second hour (real traces
    # never end in a long idle tail one could shift)
    demand = np.zeros(18)
    demand[6:12] = 4.0
    injections = [parse_injection("shift:+50%@2h"), parse_injection("spike:2x:10m@1h")]
    with pytest.warns(NoOpInjectionWarning) as caught:
        warn_noop_injections(demand, 600.0, injections)
    assert [str(w.message) for w in caught] == [
        "--inject shift:+50%@2h changes nothing: demand is 0 from 2h on; busiest hour is 1h"
    ]
