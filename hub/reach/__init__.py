"""Reach (传播数据): readers' counts of every published copy, read back from its platform.

``models.py`` (per copy per day counts, per account pull state), ``rules.py`` (pure: which day
to ask for, back-off, growth over a period, ranking), ``service.py`` (the pull, the queries),
``api.py`` (REST), ``views.py`` (the ranking page). See docs/reach.md.
"""
