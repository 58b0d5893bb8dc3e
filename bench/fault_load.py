#!/usr/bin/env python3
"""Sends N chat requests from C concurrent clients (a fresh connection each) to a gateway and
prints one JSON line: each request's latency to the end of its answer, and how many answers were
whole (the fake's echo, a stream ending in [DONE]), error events, error statuses or broken.

    fault_load.py PORT KEY N C json|stream
"""
import http.client
import json
import sys
import threading
import time

port, key, total, clients, mode = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
stream = mode == "stream"
lock = threading.Lock()
latencies, counts = [], {"whole": 0, "error_event": 0, "error_status": 0, "broken": 0}
next_index = [0]


def judge(status, body, text):
    if status != 200:
        return "error_status"
    expected = "Hello from Switchyard's demo provider! You said: " + text
    if not stream:
        try:
            return "whole" if json.loads(body)["choices"][0]["message"]["content"] == expected else "broken"
        except Exception:
            return "broken"
    said = ""
    events = [line[6:] for line in body.split("\n") if line.startswith("data: ")]
    for i, data in enumerate(events):
        if data == "[DONE]":
            return "whole" if i + 1 == len(events) and said == expected else "broken"
        try:
            v = json.loads(data)
        except Exception:
            return "broken"
        if "error" in v:
            return "error_event" if i + 1 == len(events) else "broken"
        for choice in v.get("choices", []):
            said += choice.get("delta", {}).get("content") or ""
    return "broken"


def client():
    while True:
        with lock:
            i = next_index[0]
            next_index[0] += 1
        if i >= total:
            return
        text = "fault bench %d" % i
        body = {"model": "r", "messages": [{"role": "user", "content": text}]}
        if stream:
            body["stream"] = True
        started = time.monotonic()
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            c.request("POST", "/v1/chat/completions", json.dumps(body),
                      {"Authorization": "Bearer " + key, "Content-Type": "application/json"})
            r = c.getresponse()
            seen = judge(r.status, r.read().decode("utf-8", "replace"), text)
            c.close()
        except Exception:
            seen = "broken"
        elapsed = (time.monotonic() - started) * 1000
        with lock:
            latencies.append(elapsed)
            counts[seen] += 1


threads = [threading.Thread(target=client) for _ in range(clients)]
for t in threads:
    t.start()
for t in threads:
    t.join()
latencies.sort()


def pct(p):
    return latencies[min(len(latencies) - 1, int(round(p / 100 * len(latencies) + 0.5)) - 1)]


print(json.dumps({"p50_ms": round(pct(50), 1), "p99_ms": round(pct(99), 1), "max_ms": round(latencies[-1], 1), **counts}))
