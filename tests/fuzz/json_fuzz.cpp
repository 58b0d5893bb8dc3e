// libFuzzer target: the JSON scanner, the OpenAI request inspection and patching, the usage
// probe and the SSE splitter on arbitrary bytes.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

#include "core/json_scan.hpp"
#include "dialects/openai/chat_request.hpp"
#include "dialects/openai/usage.hpp"
#include "dialects/sse.hpp"

using namespace switchyard;
namespace json = core::json;

namespace {

// Walks a validated document completely; spans must stay inside it.
void walk(const json::Value& v, std::string_view doc, int depth) {
  if (v.raw.data() < doc.data() || v.raw.data() + v.raw.size() > doc.data() + doc.size()) std::abort();
  if (depth > 70) std::abort();
  if (v.type == json::Type::object)
    json::for_each_member(v, [&](std::string_view, const json::Value& m) {
      walk(m, doc, depth + 1);
      return true;
    });
  else if (v.type == json::Type::array)
    json::for_each_element(v, [&](const json::Value& e) {
      walk(e, doc, depth + 1);
      return true;
    });
  else if (v.type == json::Type::string)
    (void)json::unescape(v.raw);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  if (auto scan = json::validate(input, 64)) walk(scan.root, input, 0);

  auto inspected = dialects::openai::inspect_chat_request(input, {64});
  if (auto* info = std::get_if<dialects::openai::ChatRequestInfo>(&inspected)) {
    std::string out;
    dialects::openai::patch_chat_request(input, *info, "\"patched-model\"", out);
    // A patched valid request is still valid JSON with the new model.
    auto again = dialects::openai::inspect_chat_request(out, {64});
    auto* patched = std::get_if<dialects::openai::ChatRequestInfo>(&again);
    if (!patched || patched->model != "patched-model") std::abort();
    if (info->stream && !patched->client_wants_usage) std::abort();
  }
  (void)dialects::openai::probe_usage(input);

  dialects::SseSplitter splitter(4096);
  std::size_t split = size ? data[size - 1] % (size + 1) : 0;
  splitter.feed(input.substr(0, split), [](const dialects::SseEvent&) {});
  splitter.feed(input.substr(split), [](const dialects::SseEvent&) {});
  return 0;
}
