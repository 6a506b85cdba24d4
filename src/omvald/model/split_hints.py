"""What data or settings would allow a fuller split: the sentences the split adds to its notes and errors.

Pure date arithmetic on the as-of calendar (month ends from the first as-of
date, as the features stage makes them) and the end of data. "Data until
D" assumes the export grows by whole months with the same first as-of date.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

MAX_MONTHS_AHEAD = 60


def fuller_split_hint(
    calendar: Sequence[dt.date] | None,
    data_end: dt.date | None,
    horizon_days: int,
    fits: Callable[[list[dt.date], int], bool],
    valid_dates: int,
    test_dates: int,
) -> str:
    """A sentence: the end of data, or the shorter horizon, that would fit a full out-of-time split ("" if unknown).

    ``fits(labelled_dates, horizon_days)`` says whether the full split fits.
    """
    if not calendar or data_end is None:
        return ""
    month_ends = [d for d in calendar if d == _month_end(d)]
    until = None
    end = data_end
    for _ in range(MAX_MONTHS_AHEAD):
        end = _month_end(end + dt.timedelta(days=1))
        dates = sorted({*month_ends, *_month_ends_between(data_end, end), end})
        if fits([t for t in dates if t + dt.timedelta(days=horizon_days) <= end], horizon_days):
            until = end
            break
    shorter = next(
        (
            h
            for h in range(horizon_days - 1, 0, -1)
            if fits([t for t in calendar if t + dt.timedelta(days=h) <= data_end], h)
        ),
        None,
    )
    need = (
        f"A full out-of-time split (train.test_dates={test_dates}, train.valid_dates={valid_dates} and a training "
        f"date, each window {horizon_days} days after the one before) needs"
    )
    options = []
    if until is not None:
        options.append(f"data until about {until}")
    if shorter is not None:
        options.append(
            f"a horizon of at most {shorter} days on this data (features.horizon_days; a different question)"
        )
    if not options:
        return ""
    return f"{need} {' or '.join(options)}."


def no_label_hint(calendar: Sequence[dt.date] | None, data_end: dt.date | None, horizon_days: int) -> str:
    """A sentence for "no labelled date": the horizon, or the end of data, that would label the first as-of date."""
    if not calendar or data_end is None:
        return "Lower features.horizon_days, set features.as_of_first earlier, or provide more history."
    first = calendar[0]
    most = (data_end - first).days
    until = first + dt.timedelta(days=horizon_days)
    shorter = f"lower features.horizon_days to at most {most} days or " if most > 0 else ""
    return f"To label the first as-of date {first}, {shorter}export data until {until}."


def _month_end(day: dt.date) -> dt.date:
    first_next = (day.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    return first_next - dt.timedelta(days=1)


def _month_ends_between(after: dt.date, last: dt.date) -> list[dt.date]:
    """Month ends ``m`` with ``after < m <= last``."""
    out, day = [], _month_end(after + dt.timedelta(days=1))
    while day <= last:
        out.append(day)
        day = _month_end(day + dt.timedelta(days=1))
    return out
