// Micro-benchmarks of the pure hot-path pieces (no sockets): what one request costs in user space
// before the kernel's share. Run: build/bench/micro_bench
#include <benchmark/benchmark.h>

#include <string>

#include "dialects/openai/chat_request.hpp"
#include "dialects/openai/usage.hpp"
#include "dialects/sse.hpp"
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

}  // namespace

BENCHMARK_MAIN();
