// libFuzzer target: the dialect translations on arbitrary bytes — client requests decoded in
// both client dialects and encoded for every upstream, upstream answers and streams of every
// dialect translated for both client dialects. Nothing may crash, hang or read out of bounds.
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "dialects/translate.hpp"

using namespace switchyard;
using dialects::Dialect;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  const Dialect all[] = {Dialect::openai, Dialect::anthropic, Dialect::gemini};
  switch (data[0] % 3) {
    case 0:  // a client request
      for (Dialect client : {Dialect::openai, Dialect::anthropic}) {
        auto decoded = dialects::decode_client_request(client, in, 64);
        if (auto* r = std::get_if<core::ChatRequest>(&decoded)) {
          for (Dialect up : all) {
            dialects::Target t;
            t.dialect = up;
            t.model = "m";
            t.drop_unsupported = (data[0] & 8) != 0;
            dialects::UpstreamRequest out;
            (void)dialects::encode_upstream_request(*r, t, out);
          }
          (void)dialects::estimate_tokens(*r);
        }
      }
      break;
    case 1:  // a whole upstream answer
      for (Dialect up : all)
        for (Dialect client : {Dialect::openai, Dialect::anthropic}) {
          core::TokenUsage usage;
          dialects::UpstreamRequest sent;
          if (data[0] & 4) sent.anthropic.json_tool = "json_response";
          (void)dialects::translate_response(client, up, in, sent, {}, usage);
        }
      break;
    default:  // an upstream stream, fed in pieces
      for (Dialect up : all)
        for (Dialect client : {Dialect::openai, Dialect::anthropic}) {
          dialects::UpstreamRequest sent;
          dialects::StreamTranslator t(client, up, sent, (data[0] & 16) != 0, "r", {});
          dialects::SseSplitter splitter(1 << 16);
          std::size_t step = 1 + data[0] % 37;
          for (std::size_t pos = 0; pos < in.size(); pos += step)
            splitter.feed(in.substr(pos, step), [&](const dialects::SseEvent& e) { t.feed(e); });
          t.finish();
        }
      break;
  }
  return 0;
}
