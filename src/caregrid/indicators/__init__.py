"""Indicators, targets and the group cockpit (指标、目标值与集团驾驶舱).

Owns the indicator registry (`registry.py`: every indicator declared once), the analytics
store (`store.py`: an incremental Arrow copy of the operational tables the indicators read),
the engine (`engine.py`: the registry's portable Ibis expressions on DuckDB by default, on
PySpark when asked), target status and trend rules (`rules.py`), the report use case
(`service.py`) and its outputs (API, Excel, CLI, cockpit page).

It sits at the top of the domain layers: it reads the record, referral, capacity and chronic
tables (read-only, through the store) and the active profile's targets."""
