"""The server-rendered web UI (Jinja2 + HTMX + ECharts, zh-CN). Pages call the same service
functions as the API.

Calls: every domain's service functions."""
