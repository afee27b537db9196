#!/usr/bin/python3
"""promql_exprs.py DASHBOARD RULES: every PromQL expression of the Grafana dashboard (panels'
targets, templating queries) and of the rules file, one JSON object a line: {"where", "expr"},
the dashboard's variables replaced by what "All" selects and an alert's threshold taken off (so
that "returns data" means the series it compares exist, not that the alert fires now)."""
import json
import re
import sys

import yaml

# Grafana's variables, as the dashboard's "All" and a 1 s scrape make them.
VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$instance": ".*", "$vm": ".*"}
THRESHOLD = re.compile(r"\s*(==|!=|>=|<=|>|<)\s*(bool\s+)?[0-9.e+-]+\s*$")


def grafana(expr):
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    # label_values(METRIC, LABEL) is a Grafana query, not PromQL: the series behind it.
    m = re.fullmatch(r"\s*label_values\((.*),\s*\w+\)\s*", expr)
    return m.group(1) if m else expr


def main():
    dashboard = json.load(open(sys.argv[1]))
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            print(json.dumps({"where": f"dashboard panel {panel['title']!r}",
                              "expr": grafana(target["expr"])}))
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            print(json.dumps({"where": f"dashboard variable ${var['name']}", "expr": grafana(query)}))
    for group in yaml.safe_load(open(sys.argv[2]))["groups"]:
        for rule in group["rules"]:
            name = rule.get("record") or rule.get("alert")
            expr = rule["expr"]
            if "alert" in rule:
                expr = THRESHOLD.sub("", expr)
            print(json.dumps({"where": f"rule {name}", "expr": expr}))


main()
