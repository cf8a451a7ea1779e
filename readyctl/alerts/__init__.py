"""Alerting helpers shared by the `alerts.*` checks and `readyctl init --alerts`.

`mapping` holds the seed's six alert conditions and the typed mapping from each condition to
the alert (or CloudWatch alarm) that covers it and the shape of the series it reads; `series`
turns a condition into promtool input series just over and just under the seed's threshold;
`tools` finds promtool and amtool and runs them; `cloudwatch` judges CloudWatch alarms;
`propose` writes a rules file and a mapping from a target's /metrics.
"""
