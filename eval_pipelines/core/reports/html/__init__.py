"""One self-contained HTML page per completed benchmark or evaluation: tables, matplotlib plots as
inline SVG, the drill-down into the queries that moved, and where the numbers came from.

The same partition gives the same bytes, and nothing in a page is fetched from anywhere. Build
with `build.build_report`; `sources.resolve` checks the ids alone, without importing matplotlib.
"""
