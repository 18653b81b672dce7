#!/usr/bin/env python3
"""Writes a synthetic bee-trace record for the rules benchmark.

usage: rules_record.py OUT TRACES EVENTS_PER_TRACE

Each trace is a job step (a tree under Runner.Worker) whose events exercise
every built-in rule: a download then an exec from /tmp, credential reads,
maps then mem of another process, and many outbound connects. Traces are
interleaved, a second apart in event time, as a busy runner would produce.
"""
import json
import sys

out, traces, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
head = {"type": "record", "schema": 1, "tool": "bee-trace", "version": "bench",
        "started": "2026-11-22T00:00:00Z"}


def ts(n):
    s, us = divmod(n, 1000)
    m, s = divmod(s, 60)
    h, m = divmod(m, 60)
    return f"2026-11-22T{h:02}:{m:02}:{s:02}.{us:03}000Z"


script = [
    ("process", {"kind": "exec", "comm": "curl", "exe": "/usr/bin/curl", "argv": ["curl", "-o", "/tmp/x"]}),
    ("process", {"kind": "exec", "comm": "x", "exe": "/tmp/x", "argv": ["/tmp/x"]}),
    ("file", {"path": "/home/ci/.aws/credentials", "access": "read", "result": "ok", "category": "cloud_credential"}),
    ("file", {"path": "/home/ci/.ssh/id_rsa", "access": "read", "result": "ok", "category": "ssh_key"}),
    ("file", {"path": "/home/ci/.npmrc", "access": "read", "result": "ok", "category": "registry_credential"}),
    ("memory", {"kind": "proc_maps", "target_pid": 7, "target_comm": "Runner.Worker", "result": "ok"}),
    ("memory", {"kind": "proc_mem", "target_pid": 7, "target_comm": "Runner.Worker", "result": "ok"}),
]
with open(out, "w") as f:
    f.write(json.dumps(head) + "\n")
    n = 0
    for step in range(per):
        for t in range(traces):
            n += 1
            root = 10000 + t
            kind, extra = script[step] if step < len(script) else (
                "network", {"op": "connect", "protocol": "tcp", "family": "ipv4",
                            "daddr": f"203.0.113.{step % 250}", "dport": 443, "result": "ok"})
            ev = {"type": kind, "id": n, "ts": ts(n), "pid": root * 10 + step % 7, "ppid": root,
                  "uid": 1001, "comm": extra.get("comm", "sh"), "exe": extra.get("exe", "/bin/sh"),
                  "ancestors": [{"pid": root, "comm": "bash"}, {"pid": 42, "comm": "Runner.Worker"},
                                {"pid": 1, "comm": "systemd"}],
                  "severity": "info"}
            ev.update(extra)
            f.write(json.dumps(ev) + "\n")
