#!/usr/bin/env python3
"""Prints "PASSED FAILED" from a TRX result file (dotnet test --logger trx): the counters the test host wrote,
not the console summary. Failed counts every outcome that is not a pass (failed, error, timeout, aborted)."""
import sys
import xml.etree.ElementTree as ET

if len(sys.argv) != 2:
    sys.exit("usage: trx-count.py FILE.trx")
try:
    root = ET.parse(sys.argv[1]).getroot()
except (OSError, ET.ParseError) as e:
    sys.exit(f"trx-count: {sys.argv[1]}: {e}")
ns = {"t": root.tag[1:].split("}")[0]} if root.tag.startswith("{") else {}
c = root.find(".//t:ResultSummary/t:Counters", ns) if ns else root.find(".//ResultSummary/Counters")
if c is None:
    sys.exit(f"trx-count: {sys.argv[1]}: no ResultSummary/Counters")
n = lambda k: int(c.get(k, "0"))
bad = sum(n(k) for k in ("failed", "error", "timeout", "aborted"))
print(n("passed"), bad)
