#!/usr/bin/env python3
"""Check that one response captured by curl really is the mock's chat completion.

Usage: check_response.py json|sse HEADERS_FILE BODY_FILE EXPECTED_JSON
Prints one word-ish verdict: "ok", "ok:21-events", "WARN:..." or "FAIL:...". The expected text
is the message content of the canned chat.json (bench/gen_upstream.py); for SSE the deltas
must add up to it and the stream must end with [DONE].
"""
import json
import sys

mode, headers_file, body_file, expected_file = sys.argv[1:5]
want = json.load(open(expected_file))["choices"][0]["message"]["content"]
head = open(headers_file, errors="replace").read().lower()
body = open(body_file, errors="replace").read()
status = head.split("\n", 1)[0].strip()
if " 200" not in status:
    print("FAIL:" + (status.replace(" ", "_") or "no-response") + ":" + body[:200].replace(" ", "_"))
    sys.exit()
if mode == "json":
    try:
        got = json.loads(body)["choices"][0]["message"]["content"]
    except Exception:
        print("FAIL:not-a-chat-completion")
        sys.exit()
    print("ok" if got == want else "FAIL:content-differs")
    sys.exit()

notes = []
if "content-type: text/event-stream" not in head:
    notes.append("no-event-stream-content-type")
events = [line[6:] for line in body.split("\n") if line.startswith("data: ")]
if not events or events[-1].strip() != "[DONE]":
    notes.append("no-[DONE]")
text = ""
for e in events:
    if e.strip() == "[DONE]":
        continue
    try:
        for c in json.loads(e).get("choices", []):
            text += (c.get("delta") or {}).get("content") or ""
    except Exception:
        notes.append("bad-event-json")
        break
if text != want:
    notes.append("deltas-differ" if want in text else "content-missing")
verdict = "ok" if not notes else ("FAIL" if "content-missing" in notes else "WARN")
print(f"{verdict}:{len(events)}-events" + ("," + ",".join(notes) if notes else ""))
