"""Hypothesis strategies for repeat rules, shared by the recurrence and time-zone suites."""

from __future__ import annotations

from hypothesis import strategies as st

WEEKDAY_NAMES = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]


@st.composite
def rules(draw: st.DrawFn) -> str:
    freq = draw(st.sampled_from(["DAILY", "WEEKLY", "MONTHLY", "YEARLY"]))
    parts = [f"FREQ={freq}"]
    if draw(st.booleans()):
        parts.append(f"INTERVAL={draw(st.integers(1, 60))}")
    kind = draw(st.sampled_from(["none", "plain", "numbered"]))
    if kind == "plain":
        days = draw(st.lists(st.sampled_from(WEEKDAY_NAMES), min_size=1, max_size=3, unique=True))
        parts.append("BYDAY=" + ",".join(days))
    elif kind == "numbered":
        numbers = st.integers(-5, 5).filter(bool) if freq == "MONTHLY" else st.integers(-53, 53).filter(bool)
        pairs = draw(st.lists(st.tuples(numbers, st.sampled_from(WEEKDAY_NAMES)), min_size=1, max_size=2, unique=True))
        parts.append("BYDAY=" + ",".join(f"{n}{day}" for n, day in pairs))
    if kind != "numbered" and draw(st.booleans()):
        monthdays = st.integers(-31, 31).filter(bool)
        parts.append("BYMONTHDAY=" + ",".join(map(str, draw(st.lists(monthdays, min_size=1, max_size=3, unique=True)))))
    return ";".join(parts)
