// The golden conformance suite: every case in tests/golden/cases (clients: OpenAI chat
// completions, Anthropic Messages, the Responses API), for every upstream dialect that differs
// from the client's, is run through the same translation code the gateway uses:
//   client request → upstream wire request
//   recorded upstream answer (tests/golden/upstream/<answer>.<dialect>.json) → client answer
//   recorded upstream stream (.sse) → client stream
// and compared with tests/golden/expected/<case>.<dialect>.json. With SWITCHYARD_UPDATE_GOLDEN=1
// the expected files are (re)written instead; review their diff before committing.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "dialects/translate.hpp"
#include "dialects/upstream_error.hpp"

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace switchyard;
using dialects::Dialect;

const fs::path kRoot = SWITCHYARD_GOLDEN_DIR;

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string_view name_of(Dialect d) {
  switch (d) {
    case Dialect::openai: return "openai";
    case Dialect::anthropic: return "anthropic";
    case Dialect::gemini: return "gemini";
    case Dialect::responses: return "responses";
  }
  return "";
}

/// `created` is the gateway's clock when the upstream has none: not part of the contract.
void normalise(json::value& v) {
  if (v.is_object()) {
    auto& o = v.get_object();
    for (std::string_view key : {"created", "created_at"})
      if (auto* c = o.if_contains(key); c && c->is_int64()) *c = 0;
    for (auto& kv : o) normalise(kv.value());
  } else if (v.is_array()) {
    for (auto& e : v.get_array()) normalise(e);
  }
}

json::value parse_or_string(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) return json::string(text);
  normalise(v);
  return v;
}

/// The client's stream as a list of events: {"event": name?, "data": parsed data}.
json::array stream_events(std::string_view sse) {
  json::array events;
  dialects::SseSplitter splitter;
  splitter.feed(sse, [&](const dialects::SseEvent& e) {
    json::object ev;
    if (!e.name.empty()) ev["event"] = e.name;
    ev["data"] = parse_or_string(e.data);
    events.push_back(std::move(ev));
  });
  return events;
}

json::value run_case(const json::object& c, Dialect upstream) {
  const std::string_view client_name = c.at("client").as_string();
  Dialect client = client_name == "anthropic"   ? Dialect::anthropic
                   : client_name == "responses" ? Dialect::responses
                                                : Dialect::openai;
  std::string request = json::serialize(c.at("request"));
  json::object result;
  auto decoded = dialects::decode_client_request(client, request, 64);
  if (auto* e = std::get_if<core::ApiError>(&decoded)) {
    result["client_error"] = json::parse(dialects::error_body(client, *e, {}));
    return result;
  }
  const core::ChatRequest& r = std::get<core::ChatRequest>(decoded);
  dialects::Target target;
  target.dialect = upstream;
  target.type = dialects::find_provider_type(name_of(upstream));
  target.model = "test-model";
  dialects::UpstreamRequest sent;
  if (auto e = dialects::encode_upstream_request(r, target, sent)) {
    result["client_error"] = json::parse(dialects::error_body(client, *e, {}));
    return result;
  }
  result["upstream_request"] = json::parse(sent.body);

  std::string answer = std::string(c.at("answer").as_string()) + "." + std::string(name_of(upstream));
  if (const auto* status = c.if_contains("upstream_status")) {
    // The upstream refused: its error, in its own shape, reaches the client in the client's.
    core::ApiError e = dialects::upstream_error(static_cast<int>(status->as_int64()),
                                                read(kRoot / "upstream" / (answer + ".json")), "dep");
    result["client_status"] = e.status;
    result["client_error"] = json::parse(dialects::error_body(client, e, {}));
    return result;
  }
  dialects::gemini::IdSource ids;
  ids.prefix = "call_golden_";
  core::TokenUsage usage;
  bool stream = r.stream;
  if (!stream) {
    auto translated = dialects::translate_response(client, upstream, read(kRoot / "upstream" / (answer + ".json")),
                                                   sent, ids, usage);
    if (auto* e = std::get_if<core::ApiError>(&translated))
      result["client_error"] = json::parse(dialects::error_body(client, *e, {}));
    else
      result["client_response"] = parse_or_string(std::get<std::string>(translated));
  } else {
    dialects::StreamTranslator t(client, upstream, sent, r.include_usage, r.model, ids);
    dialects::SseSplitter splitter;
    bool ok = true;
    splitter.feed(read(kRoot / "upstream" / (answer + ".sse")),
                  [&](const dialects::SseEvent& e) { ok = t.feed(e) && ok; });
    t.finish();
    EXPECT_TRUE(ok) << "an upstream event was refused";
    result["client_stream"] = stream_events(t.out());
    usage = t.usage();
  }
  result["usage"] = json::object{{"input", usage.input}, {"output", usage.output},
                                 {"cache_read", usage.cache_read}, {"cache_creation", usage.cache_creation},
                                 {"reasoning", usage.reasoning}};
  return result;
}

std::string pretty(const json::value& v, int indent = 0) {
  // One member per line keeps review diffs readable.
  std::string pad(indent, ' ');
  if (v.is_object() && !v.get_object().empty()) {
    std::string s = "{\n";
    bool first = true;
    for (const auto& kv : v.get_object()) {
      if (!first) s += ",\n";
      first = false;
      s += pad + "  " + json::serialize(json::string(kv.key())) + ": " + pretty(kv.value(), indent + 2);
    }
    return s + "\n" + pad + "}";
  }
  if (v.is_array() && !v.get_array().empty()) {
    std::string s = "[\n";
    bool first = true;
    for (const auto& e : v.get_array()) {
      if (!first) s += ",\n";
      first = false;
      s += pad + "  " + pretty(e, indent + 2);
    }
    return s + "\n" + pad + "]";
  }
  return json::serialize(v);
}

struct Param {
  std::string case_name;
  Dialect upstream;
};

std::vector<Param> all_params() {
  std::vector<Param> params;
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(kRoot / "cases")) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    json::value c = json::parse(read(f));
    const std::string_view client = c.at("client").as_string();
    for (Dialect d : {Dialect::openai, Dialect::anthropic, Dialect::gemini}) {
      // Same dialect: the byte-patching fast path, tested elsewhere. A Responses client is
      // translated for every upstream dialect (to OpenAI's chat completions: the OpenAI-compatible
      // vendors; OpenAI's own API takes it as it is).
      if ((d == Dialect::openai && client == "openai") || (d == Dialect::anthropic && client == "anthropic"))
        continue;
      params.push_back({f.stem().string(), d});
    }
  }
  return params;
}

class Golden : public ::testing::TestWithParam<Param> {};

TEST_P(Golden, MatchesExpected) {
  const Param& p = GetParam();
  json::value c = json::parse(read(kRoot / "cases" / (p.case_name + ".json")));
  json::value got = run_case(c.as_object(), p.upstream);
  fs::path expected_file = kRoot / "expected" / (p.case_name + "." + std::string(name_of(p.upstream)) + ".json");
  if (std::getenv("SWITCHYARD_UPDATE_GOLDEN")) {
    std::ofstream(expected_file) << pretty(got) << "\n";
    GTEST_SKIP() << "wrote " << expected_file;
  }
  ASSERT_TRUE(fs::exists(expected_file)) << expected_file << " is missing (SWITCHYARD_UPDATE_GOLDEN=1)";
  json::value expected = json::parse(read(expected_file));
  EXPECT_EQ(expected, got) << "expected:\n" << pretty(expected) << "\ngot:\n" << pretty(got);
}

INSTANTIATE_TEST_SUITE_P(AllProviders, Golden, ::testing::ValuesIn(all_params()),
                         [](const ::testing::TestParamInfo<Param>& info) {
                           return info.param.case_name + "_to_" + std::string(name_of(info.param.upstream));
                         });

}  // namespace
