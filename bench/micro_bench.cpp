// Micro-benchmarks of the pure hot-path pieces (no sockets): what one request costs in user space
// before the kernel's share. Run: build/bench/micro_bench
#include <benchmark/benchmark.h>

#include <string>

#include "dialects/openai/chat_request.hpp"
#include "dialects/openai/usage.hpp"
#include "dialects/sse.hpp"
#include "dialects/translate.hpp"
#include "governance/keys.hpp"
#include "net/http1.hpp"

using namespace switchyard;

namespace {

std::string request_body() {
  // About 1 KB, shaped like a typical chat request.
  std::string content(760, 'x');
  for (std::size_t i = 7; i < content.size(); i += 8) content[i] = ' ';
  return R"({"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":")" +
         content + R"("}],"temperature":0.7,"max_tokens":256,"stream":false})";
}

std::string sse_stream(int chunks) {
  std::string s;
  for (int i = 0; i < chunks; ++i)
    s += R"(data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"token )" +
         std::to_string(i) + R"("},"logprobs":null,"finish_reason":null}],"usage":null})" + "\n\n";
  s += R"(data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":20,"completion_tokens":20,"total_tokens":40}})" "\n\ndata: [DONE]\n\n";
  return s;
}

void BM_InspectChatRequest(benchmark::State& state) {
  std::string body = request_body();
  for (auto _ : state) benchmark::DoNotOptimize(dialects::openai::inspect_chat_request(body, {64}));
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(body.size()));
}
BENCHMARK(BM_InspectChatRequest);

void BM_PatchChatRequest(benchmark::State& state) {
  std::string body = request_body();
  auto info = std::get<dialects::openai::ChatRequestInfo>(dialects::openai::inspect_chat_request(body, {64}));
  std::string out;
  for (auto _ : state) {
    out.clear();
    dialects::openai::patch_chat_request(body, info, "gpt-4o-mini-2024-07-18", out);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_PatchChatRequest);

void BM_ParseRequestHead(benchmark::State& state) {
  std::string head =
      "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:18400\r\nUser-Agent: OpenAI/JS 5.23.2\r\n"
      "Authorization: Bearer sk-bench\r\nContent-Type: application/json\r\nAccept: application/json\r\n"
      "Content-Length: 1000\r\nx-stainless-lang: js\r\nx-stainless-retry-count: 0\r\n\r\n";
  net::http1::RequestHead parsed;
  for (auto _ : state) benchmark::DoNotOptimize(net::http1::parse_request(head, 16384, parsed));
}
BENCHMARK(BM_ParseRequestHead);

void BM_KeyLookup(benchmark::State& state) {
  std::vector<config::KeyConfig> keys{{"bench", governance::sha256_hex("sk-bench"), {"*"}}};
  governance::KeyStore store(keys);
  for (auto _ : state) benchmark::DoNotOptimize(store.find("sk-bench"));
}
BENCHMARK(BM_KeyLookup);

// The mock upstream's answer (bench/gen_upstream.py): usage read from a whole JSON response.
void BM_ProbeUsageResponse(benchmark::State& state) {
  const std::string body =
      R"({"id":"chatcmpl-AbCdEfGhIjKlMnOpQrStUvWxYz012","object":"chat.completion","created":1732521600,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":")" +
      std::string(600, 'a') +
      R"(","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":142,"completion_tokens":96,"total_tokens":238,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default","system_fingerprint":"fp_0ba0d124f1"})";
  for (auto _ : state) benchmark::DoNotOptimize(dialects::openai::probe_usage(body, false));
}
BENCHMARK(BM_ProbeUsageResponse);

void BM_RelaySse20Chunks(benchmark::State& state) {
  // What the relay does per stream: split events and probe each for usage.
  std::string stream = sse_stream(20);
  for (auto _ : state) {
    dialects::SseSplitter splitter;
    std::int64_t tokens = 0;
    splitter.feed(stream, [&](const dialects::SseEvent& e) {
      auto p = dialects::openai::probe_usage(e.data);
      if (p.usage) tokens = p.usage->total_tokens;
    });
    benchmark::DoNotOptimize(tokens);
  }
}
BENCHMARK(BM_RelaySse20Chunks);


// --- translation (an OpenAI client served by Anthropic / Gemini) ---

std::string anthropic_stream(int deltas) {
  auto ev = [](std::string_view name, const std::string& data) {
    return "event: " + std::string(name) + "\ndata: " + data + "\n\n";
  };
  std::string s = ev("message_start", R"({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-haiku-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":142,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}})");
  s += ev("content_block_start", R"({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})");
  for (int i = 0; i < deltas; ++i)
    s += ev("content_block_delta", R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" token )" + std::to_string(i) + R"( of the answer"}})");
  s += ev("content_block_stop", R"({"type":"content_block_stop","index":0})");
  s += ev("message_delta", R"({"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":96}})");
  s += ev("message_stop", R"({"type":"message_stop"})");
  return s;
}

std::string gemini_stream(int chunks) {
  std::string s;
  for (int i = 0; i < chunks; ++i) {
    s += R"(data: {"candidates":[{"content":{"role":"model","parts":[{"text":" token )" + std::to_string(i) + R"( of the answer"}]},"index":0)";
    s += i + 1 == chunks ? R"(,"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":142,"candidatesTokenCount":96,"totalTokenCount":238})" : "}]";
    s += R"(,"modelVersion":"gemini-2.5-flash","responseId":"AbCd"})" "\r\n\r\n";
  }
  return s;
}

void translate_stream(benchmark::State& state, dialects::Dialect upstream, const std::string& sse,
                      dialects::Dialect client = dialects::Dialect::openai) {
  dialects::UpstreamRequest sent;
  for (auto _ : state) {
    dialects::StreamTranslator t(client, upstream, sent, true, "auto", {});
    dialects::SseSplitter splitter;
    std::size_t out = 0;
    // As the relay does: one read's events at a time, the output taken after each read.
    for (std::size_t pos = 0; pos < sse.size(); pos += 4096) {
      splitter.feed(std::string_view(sse).substr(pos, 4096), [&](const dialects::SseEvent& e) { t.feed(e); });
      out += t.out().size();
      t.out().clear();
    }
    t.finish();
    benchmark::DoNotOptimize(out += t.out().size());
  }
}

void BM_TranslateStreamAnthropic20(benchmark::State& state) {
  translate_stream(state, dialects::Dialect::anthropic, anthropic_stream(18));
}
BENCHMARK(BM_TranslateStreamAnthropic20);

void BM_TranslateStreamGemini20(benchmark::State& state) {
  translate_stream(state, dialects::Dialect::gemini, gemini_stream(20));
}
BENCHMARK(BM_TranslateStreamGemini20);

// --- the Responses API: passed through to OpenAI, translated for the others ---

std::string responses_body() {
  // About 1 KB, the Responses API's shape of request_body().
  std::string content(760, 'x');
  for (std::size_t i = 7; i < content.size(); i += 8) content[i] = ' ';
  return R"({"model":"gpt-4o-mini","instructions":"You are a helpful assistant.","input":[{"role":"user","content":[{"type":"input_text","text":")" +
         content + R"("}]}],"temperature":0.7,"max_output_tokens":256,"store":false,"stream":false})";
}

void BM_PatchResponsesModel(benchmark::State& state) {
  // The pass-through's whole request work (next to BM_PatchChatRequest's byte patch).
  std::string body = responses_body();
  std::string out;
  for (auto _ : state) {
    out.clear();
    benchmark::DoNotOptimize(dialects::anthropic::patch_model(body, "gpt-4o-mini-2024-07-18", out));
  }
}
BENCHMARK(BM_PatchResponsesModel);

void BM_ResponsesTranslateRequestAnthropic(benchmark::State& state) {
  std::string body = responses_body();
  dialects::Target t;
  t.dialect = dialects::Dialect::anthropic;
  t.model = "model-x";
  for (auto _ : state) {
    auto decoded = dialects::decode_client_request(dialects::Dialect::responses, body, 64);
    dialects::UpstreamRequest out;
    benchmark::DoNotOptimize(dialects::encode_upstream_request(std::get<core::ChatRequest>(decoded), t, out));
  }
}
BENCHMARK(BM_ResponsesTranslateRequestAnthropic);

void BM_ResponsesTranslateStreamAnthropic20(benchmark::State& state) {
  translate_stream(state, dialects::Dialect::anthropic, anthropic_stream(18), dialects::Dialect::responses);
}
BENCHMARK(BM_ResponsesTranslateStreamAnthropic20);

void BM_ResponsesTranslateStreamGemini20(benchmark::State& state) {
  translate_stream(state, dialects::Dialect::gemini, gemini_stream(20), dialects::Dialect::responses);
}
BENCHMARK(BM_ResponsesTranslateStreamGemini20);

void translate_request(benchmark::State& state, dialects::Dialect upstream) {
  std::string body = request_body();
  dialects::Target t;
  t.dialect = upstream;
  t.model = "model-x";
  for (auto _ : state) {
    auto inspected = dialects::openai::inspect_chat_request(body, {64});
    benchmark::DoNotOptimize(inspected);
    auto decoded = dialects::decode_client_request(dialects::Dialect::openai, body, 64);
    dialects::UpstreamRequest out;
    benchmark::DoNotOptimize(dialects::encode_upstream_request(std::get<core::ChatRequest>(decoded), t, out));
  }
}
void BM_TranslateRequestAnthropic(benchmark::State& state) { translate_request(state, dialects::Dialect::anthropic); }
BENCHMARK(BM_TranslateRequestAnthropic);
void BM_TranslateRequestGemini(benchmark::State& state) { translate_request(state, dialects::Dialect::gemini); }
BENCHMARK(BM_TranslateRequestGemini);

void BM_TranslateResponseAnthropic(benchmark::State& state) {
  std::string body = R"({"id":"msg_1","type":"message","role":"assistant","model":"claude-haiku-4-5","content":[{"type":"text","text":")" +
                     std::string(700, 'a') + R"("}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":142,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":96}})";
  dialects::UpstreamRequest sent;
  for (auto _ : state) {
    core::TokenUsage usage;
    benchmark::DoNotOptimize(dialects::translate_response(dialects::Dialect::openai, dialects::Dialect::anthropic, body, sent, {}, usage));
  }
}
BENCHMARK(BM_TranslateResponseAnthropic);

void BM_ResponsesTranslateResponseAnthropic(benchmark::State& state) {
  std::string body = R"({"id":"msg_1","type":"message","role":"assistant","model":"claude-haiku-4-5","content":[{"type":"text","text":")" +
                     std::string(700, 'a') + R"("}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":142,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":96}})";
  dialects::UpstreamRequest sent;
  for (auto _ : state) {
    core::TokenUsage usage;
    benchmark::DoNotOptimize(dialects::translate_response(dialects::Dialect::responses, dialects::Dialect::anthropic, body, sent, {}, usage));
  }
}
BENCHMARK(BM_ResponsesTranslateResponseAnthropic);

}  // namespace

BENCHMARK_MAIN();
