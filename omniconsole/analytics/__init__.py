"""Figures of ../shared/METRICS.md: reports (`report.py`), the facts each conversation yields
(`figures.py`) and satisfaction surveys (`surveys.py`). SQL lives in omniconsole/store/analytics.py.

Imports go one way: tui -> analytics -> core -> store -> models.
"""
