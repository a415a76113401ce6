#!/usr/bin/env python3
"""Validates deploy/prometheus/alerts.yml: `promtool check rules` when promtool is installed, and in
any case a structural check with PyYAML (groups, rules, alert names, expr, for, severity, the
metric names the server really exports)."""
import re
import shutil
import subprocess
import sys

import yaml

path = sys.argv[1]
exported = {  # What src/api/queues.cpp renders.
    "basalt_queue_messages", "basalt_queue_oldest_message_age_seconds", "basalt_queue_produced_total",
    "basalt_queue_acked_total", "basalt_queue_nacked_total", "basalt_queue_dead_lettered_total",
}
errors = []
if shutil.which("promtool"):
    run = subprocess.run(["promtool", "check", "rules", path], capture_output=True, text=True)
    if run.returncode != 0:
        errors.append("promtool: " + run.stdout + run.stderr)

with open(path) as f:
    doc = yaml.safe_load(f)
if not isinstance(doc, dict) or not isinstance(doc.get("groups"), list) or not doc["groups"]:
    errors.append("top level must be {groups: [...]}")
else:
    names = set()
    for group in doc["groups"]:
        if not group.get("name") or not isinstance(group.get("rules"), list):
            errors.append(f"group {group!r}: needs name and rules")
            continue
        for rule in group["rules"]:
            name = rule.get("alert")
            if not name or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                errors.append(f"rule {rule!r}: bad alert name")
            if name in names:
                errors.append(f"{name}: duplicate")
            names.add(name)
            expr = rule.get("expr", "")
            if not isinstance(expr, str) or not expr.strip():
                errors.append(f"{name}: no expr")
            elif expr.count("(") != expr.count(")"):
                errors.append(f"{name}: unbalanced parentheses")
            used = set(re.findall(r"basalt_[a-z_]+", expr))
            if not used or not used <= exported:
                errors.append(f"{name}: uses {sorted(used - exported) or 'no'} metric(s) the server does not export")
            if "for" in rule and not re.fullmatch(r"\d+[smhdwy]", str(rule["for"])):
                errors.append(f"{name}: bad for: {rule['for']}")
            if rule.get("labels", {}).get("severity") not in ("warning", "critical"):
                errors.append(f"{name}: severity must be warning or critical")
            if not rule.get("annotations", {}).get("summary"):
                errors.append(f"{name}: no summary")
    for wanted in ("BasaltQueueBacklogGrowing", "BasaltQueueOldestMessageTooOld", "BasaltQueueDeadLettersGrowing"):
        if wanted not in names:
            errors.append(f"missing alert {wanted}")

for e in errors:
    print("FAIL", e)
print("alerts.yml: ok" if not errors else f"alerts.yml: {len(errors)} problem(s)")
sys.exit(1 if errors else 0)
