#!/usr/bin/env python3
"""Generate the mock OpenAI upstream for bench/run.sh: an nginx config (echo module) and the
canned bodies it serves. Adapted from the workplace reference harness (shared/bench/gen_mock.py):
same bodies, same /v1 and /slow/v1 behaviour, plus /paced/v1 for the concurrent-streams test.

  POST /v1/chat/completions        "stream": true in the body -> SSE, 20 chat.completion.chunk
                                    events + [DONE], all at once; otherwise ~1.1 KB JSON.
  POST /slow/v1/chat/completions   as above, paced like a model: JSON after 100 ms, SSE one
                                    event every 5 ms (the reference harness's probe upstream).
  POST /paced/v1/chat/completions  SSE one event every --paced-interval seconds (default 1 s:
                                    a 20 s stream), to hold many streams open at once.
  POST /anthropic/v1/messages      the same answer in Anthropic's Messages format: ~1 KB JSON,
                                    or SSE with the text in 18 text_delta events (plus
                                    message_start, content_block_start/stop, message_delta,
                                    message_stop: 23 events), all at once.
  POST /gemini/v1beta/models/gpt-4o-mini:generateContent, ...:streamGenerateContent?alt=sse
                                    the same answer in Gemini's format: JSON, or SSE with the
                                    text in 18 chunks (usage in the last one).
  POST /v1/responses               the same answer from OpenAI's Responses API: ~1 KB JSON, or its
                                    typed events (the text in 18 output_text.delta events; 26 in all)
  GET  /health                     "ok"

Usage: gen_upstream.py OUT_DIR [--paced-interval SECONDS] [--port 18080] [--worker-connections N]
Writes OUT_DIR/nginx-upstream.conf (paths relative to the nginx prefix, run it with
`nginx -p OUT_DIR/ -c OUT_DIR/nginx-upstream.conf`), OUT_DIR/chat.json and OUT_DIR/chat.sse.
"""
import argparse
import json
import os

MODEL = "gpt-4o-mini-2024-07-18"
CREATED = 1732521600
CID = "chatcmpl-AbCdEfGhIjKlMnOpQrStUvWxYz012"
CONTENT = (
    "A reverse proxy for LLM traffic mostly moves bytes: it parses the request "
    "once to read the model name and routing hints, chooses an upstream by "
    "policy (cost, latency, health or a weighted split), rewrites the "
    "authorization header and forwards the body unchanged. The response is "
    "relayed as it arrives, which matters most for server-sent events, where "
    "every token chunk should reach the client without buffering. Overhead "
    "that users notice comes from extra copies, per-request allocations, "
    "logging on the hot path and connection setup to the provider."
)


def chat_completion():
    return {
        "id": CID, "object": "chat.completion", "created": CREATED, "model": MODEL,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": CONTENT, "refusal": None, "annotations": []},
            "logprobs": None, "finish_reason": "stop",
        }],
        "usage": {
            "prompt_tokens": 142, "completion_tokens": 96, "total_tokens": 238,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0,
                                          "rejected_prediction_tokens": 0},
        },
        "service_tier": "default", "system_fingerprint": "fp_0ba0d124f1",
    }


def chunk(delta, finish=None):
    return {
        "id": CID, "object": "chat.completion.chunk", "created": CREATED, "model": MODEL,
        "service_tier": "default", "system_fingerprint": "fp_0ba0d124f1",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


def sse_events():
    """20 events (role chunk, 18 content chunks, finish chunk) + the [DONE] sentinel."""
    words = CONTENT.split(" ")
    n = 18
    per = (len(words) + n - 1) // n
    parts = [" ".join(words[i * per:(i + 1) * per]) for i in range(n)]
    parts = [p if i == 0 else " " + p for i, p in enumerate(parts)]
    ev = [chunk({"role": "assistant", "content": "", "refusal": None})]
    ev += [chunk({"content": p}) for p in parts]
    ev += [chunk({}, "stop")]
    out = ["data: " + json.dumps(e, separators=(",", ":")) + "\n\n" for e in ev]
    out.append("data: [DONE]\n\n")
    return out


def parts18():
    words = CONTENT.split(" ")
    n = 18
    per = (len(words) + n - 1) // n
    parts = [" ".join(words[i * per:(i + 1) * per]) for i in range(n)]
    return [p if i == 0 else " " + p for i, p in enumerate(parts)]


AID = "msg_01AbCdEfGhIjKlMnOpQrStUv"
AMODEL = "claude-haiku-4-5-20251001"


def anthropic_message():
    return {"id": AID, "type": "message", "role": "assistant", "model": AMODEL,
            "content": [{"type": "text", "text": CONTENT}], "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 142, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": 0, "output_tokens": 96}}


def anthropic_events():
    def ev(name, data):
        return f"event: {name}\ndata: " + json.dumps(data, separators=(",", ":")) + "\n\n"
    start = anthropic_message()
    start = dict(start, content=[], stop_reason=None,
                 usage=dict(start["usage"], output_tokens=1))
    out = [ev("message_start", {"type": "message_start", "message": start}),
           ev("content_block_start", {"type": "content_block_start", "index": 0,
                                      "content_block": {"type": "text", "text": ""}})]
    out += [ev("content_block_delta", {"type": "content_block_delta", "index": 0,
                                       "delta": {"type": "text_delta", "text": p}}) for p in parts18()]
    out += [ev("content_block_stop", {"type": "content_block_stop", "index": 0}),
            ev("message_delta", {"type": "message_delta",
                                 "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                 "usage": {"output_tokens": 96}}),
            ev("message_stop", {"type": "message_stop"})]
    return out


def gemini_response(text, finish, usage):
    cand = {"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}
    if finish:
        cand["finishReason"] = "STOP"
    r = {"candidates": [cand], "modelVersion": "gemini-2.5-flash", "responseId": "AbCdEfGhIjKlMnOp"}
    if usage:
        r["usageMetadata"] = {"promptTokenCount": 142, "candidatesTokenCount": 96, "totalTokenCount": 238}
    return r


def gemini_events():
    parts = parts18()
    return ["data: " + json.dumps(gemini_response(p, i == len(parts) - 1, i == len(parts) - 1),
                                  separators=(",", ":")) + "\r\n\r\n" for i, p in enumerate(parts)]


def responses_response(status="completed", with_output=True):
    return {
        "id": "resp_AbCdEfGhIjKlMnOpQrStUvWxYz012", "object": "response", "created_at": CREATED,
        "status": status, "model": MODEL, "error": None, "incomplete_details": None,
        "output": [{"type": "message", "id": "msg_AbCd", "status": "completed", "role": "assistant",
                    "content": [{"type": "output_text", "text": CONTENT, "annotations": []}]}] if with_output else [],
        "usage": {"input_tokens": 142, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 96,
                  "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 238} if with_output else None,
    }


def responses_events():
    """The Responses API's typed events for the same answer: the text in 18 deltas."""
    events, seq = [], 0

    def ev(kind, data):
        nonlocal seq
        data = {"type": kind, "sequence_number": seq, **data}
        seq += 1
        events.append(f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n")
    where = {"item_id": "msg_AbCd", "output_index": 0}
    ev("response.created", {"response": responses_response("in_progress", False)})
    ev("response.in_progress", {"response": responses_response("in_progress", False)})
    ev("response.output_item.added", {"output_index": 0, "item": {"type": "message", "id": "msg_AbCd", "status": "in_progress", "role": "assistant", "content": []}})
    ev("response.content_part.added", {**where, "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": []}})
    for p in parts18():
        ev("response.output_text.delta", {**where, "content_index": 0, "delta": p, "logprobs": []})
    ev("response.output_text.done", {**where, "content_index": 0, "text": CONTENT})
    ev("response.content_part.done", {**where, "content_index": 0, "part": {"type": "output_text", "text": CONTENT, "annotations": []}})
    ev("response.output_item.done", {"output_index": 0, "item": responses_response()["output"][0]})
    ev("response.completed", {"response": responses_response()})
    return events


def ngx_quote(s):
    """Quote a string as one nginx config token."""
    assert "$" not in s, "nginx would treat $ as a variable"
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


def paced(events, interval):
    """echo directives sending each event, flushed, with a pause between events."""
    lines = []
    for i, e in enumerate(events):
        lines.append(f"            echo -n {ngx_quote(e)};")
        lines.append("            echo_flush;")
        if i < len(events) - 1:
            lines.append(f"            echo_sleep {interval};")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--paced-interval", default="1.0")
    ap.add_argument("--port", type=int, default=18080)
    ap.add_argument("--worker-connections", type=int, default=8192)
    a = ap.parse_args()
    float(a.paced_interval)  # validate

    body = json.dumps(chat_completion(), separators=(",", ":"))
    events = sse_events()
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "chat.json"), "w") as f:
        f.write(body)
    with open(os.path.join(a.out, "chat.sse"), "w") as f:
        f.write("".join(events))

    fast_sse = "\n".join(f"            echo -n {ngx_quote(e)};" for e in events)
    anthropic_body = json.dumps(anthropic_message(), separators=(",", ":"))
    anthropic_sse = "\n".join(f"            echo -n {ngx_quote(e)};" for e in anthropic_events())
    gemini_body = json.dumps(gemini_response(CONTENT, True, True), separators=(",", ":"))
    gemini_sse = "\n".join(f"            echo -n {ngx_quote(e)};" for e in gemini_events())
    responses_body = json.dumps(responses_response(), separators=(",", ":"))
    responses_sse = "\n".join(f"            echo -n {ngx_quote(e)};" for e in responses_events())
    conf = f"""# Mock OpenAI-compatible upstream for bench/run.sh. GENERATED by bench/gen_upstream.py.
# JSON body: {len(body)} B; SSE body: {len(''.join(events))} B in {len(events)} events.
load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;
worker_processes 1;
pid nginx-upstream.pid;
error_log nginx-upstream.error.log warn;

events {{
    worker_connections {a.worker_connections};   # the streams test holds one per stream
    multi_accept on;
}}

http {{
    access_log off;
    server_tokens off;
    client_body_temp_path tmp/upstream/body;
    proxy_temp_path       tmp/upstream/proxy;
    fastcgi_temp_path     tmp/upstream/fastcgi;
    uwsgi_temp_path       tmp/upstream/uwsgi;
    scgi_temp_path        tmp/upstream/scgi;
    client_body_buffer_size 64k;      # keep request bodies in memory
    client_max_body_size 1m;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    tcp_nodelay on;

    # JSON or SSE by the request body, as the real API does
    map $request_body $mock_stream {{
        "~\\"stream\\"\\s*:\\s*true" sse;
        default                     json;
    }}

    server {{
        listen 127.0.0.1:{a.port} backlog=4096;

        location = /health {{ default_type text/plain; return 200 'ok'; }}

        location = /v1/chat/completions {{
            echo_read_request_body;
            echo_exec /_mock/fast/$mock_stream;
        }}
        location = /slow/v1/chat/completions {{
            echo_read_request_body;
            echo_exec /_mock/slow/$mock_stream;
        }}
        location = /paced/v1/chat/completions {{
            echo_read_request_body;
            echo_exec /_mock/paced/$mock_stream;
        }}

        # --- the same answer from OpenAI's Responses API (its pass-through) ---
        location = /v1/responses {{
            echo_read_request_body;
            echo_exec /_mock/responses/$mock_stream;
        }}
        location = /_mock/responses/json {{
            internal;
            default_type application/json;
            return 200 {ngx_quote(responses_body)};
        }}
        location = /_mock/responses/sse {{
            internal;
            default_type text/event-stream;
            add_header Cache-Control no-cache;
{responses_sse}
        }}

        # --- the same answer in Anthropic's and Gemini's formats (translation cost) ---
        location = /anthropic/v1/messages {{
            echo_read_request_body;
            echo_exec /_mock/anthropic/$mock_stream;
        }}
        location = /_mock/anthropic/json {{
            internal;
            default_type application/json;
            return 200 {ngx_quote(anthropic_body)};
        }}
        location = /_mock/anthropic/sse {{
            internal;
            default_type text/event-stream;
            add_header Cache-Control no-cache;
{anthropic_sse}
        }}
        location = /gemini/v1beta/models/gpt-4o-mini:generateContent {{
            default_type application/json;
            return 200 {ngx_quote(gemini_body)};
        }}
        location = /gemini/v1beta/models/gpt-4o-mini:streamGenerateContent {{
            default_type text/event-stream;
            add_header Cache-Control no-cache;
{gemini_sse}
        }}

        # --- fast: everything at once (measures proxy overhead) ---
        location = /_mock/fast/json {{
            internal;
            default_type application/json;
            add_header x-request-id $request_id;
            add_header openai-processing-ms 1;
            return 200 {ngx_quote(body)};
        }}
        location = /_mock/fast/sse {{
            internal;
            default_type text/event-stream;
            add_header Cache-Control no-cache;
            add_header x-request-id $request_id;
{fast_sse}
        }}

        # --- slow: 5 ms between events, as the reference harness's probe ---
        location = /_mock/slow/json {{
            internal;
            default_type application/json;
            add_header x-request-id $request_id;
            echo_sleep 0.1;
            echo -n {ngx_quote(body)};
        }}
        location = /_mock/slow/sse {{
            internal;
            default_type text/event-stream;
            add_header Cache-Control no-cache;
            add_header x-request-id $request_id;
{paced(events, "0.005")}
        }}

        # --- paced: {a.paced_interval} s between events (concurrent-streams test) ---
        location = /_mock/paced/json {{
            internal;
            default_type application/json;
            echo_sleep {a.paced_interval};
            echo -n {ngx_quote(body)};
        }}
        location = /_mock/paced/sse {{
            internal;
            default_type text/event-stream;
            add_header Cache-Control no-cache;
            add_header x-request-id $request_id;
{paced(events, a.paced_interval)}
        }}
    }}
}}
"""
    with open(os.path.join(a.out, "nginx-upstream.conf"), "w") as f:
        f.write(conf)


if __name__ == "__main__":
    main()
