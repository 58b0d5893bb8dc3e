#include "dialects/translate.hpp"

#include "core/token_estimate.hpp"

#include <algorithm>

#include <boost/json/serialize.hpp>

namespace switchyard::dialects {

using core::ApiError;

std::variant<core::ChatRequest, ApiError> decode_client_request(Dialect client, std::string_view body,
                                                                std::size_t max_depth) {
  if (client == Dialect::anthropic) return anthropic::decode_request(body, max_depth);
  if (client == Dialect::responses) return responses::decode_request(body, max_depth);
  return openai::decode_request(body, max_depth);
}

std::optional<ApiError> encode_upstream_request(const core::ChatRequest& original, const Target& t,
                                                UpstreamRequest& out) {
  // Clamping is rare (a ceiling above the model's maximum): a copy then, none otherwise.
  std::optional<core::ChatRequest> clamped;
  if (t.max_tokens_cap > 0 && original.max_tokens && *original.max_tokens > t.max_tokens_cap) {
    clamped = original;
    clamped->max_tokens = t.max_tokens_cap;
  }
  const core::ChatRequest& request = clamped ? *clamped : original;
  core::Unsupported unsupported;
  out.body.clear();
  switch (t.dialect) {
    case Dialect::openai: {
      openai::EncodeOptions options;
      if (t.type) {
        options.max_completion_tokens = t.type->max_completion_tokens;
        options.top_k = t.type->top_k;
      }
      openai::encode_request(request, t.model, options, out.body, unsupported);
      break;
    }
    case Dialect::anthropic: {
      std::int64_t max = t.default_max_tokens > 0 ? t.default_max_tokens
                                                  : anthropic::default_max_tokens(t.model);
      out.anthropic = anthropic::encode_request(request, t.model, max, out.body, unsupported);
      break;
    }
    case Dialect::gemini:
      gemini::encode_request(request, out.body, unsupported);
      break;
    case Dialect::responses:  // a client dialect: OpenAI deployments take it as it is
      return ApiError::make(core::ErrorKind::internal, "No provider speaks only the Responses API.");
  }
  if (unsupported.params.empty()) return std::nullopt;
  std::sort(unsupported.params.begin(), unsupported.params.end());
  unsupported.params.erase(std::unique(unsupported.params.begin(), unsupported.params.end()),
                           unsupported.params.end());
  if (t.drop_unsupported) {
    out.dropped = std::move(unsupported.params);
    return std::nullopt;
  }
  std::string names;
  for (const auto& p : unsupported.params) names += (names.empty() ? "`" : ", `") + p + "`";
  std::string provider = t.type ? std::string(t.type->name) : std::string("this provider");
  return ApiError::make(core::ErrorKind::invalid_request,
                        "Unsupported parameter(s) for " + provider + " (model " +
                            std::string(t.model) + "): " + names +
                            ". Remove them, or set drop_unsupported_params on the provider.",
                        unsupported.params.front(), "unsupported_parameter");
}

std::variant<std::string, ApiError> translate_response(Dialect client, Dialect upstream,
                                                       std::string_view body,
                                                       const UpstreamRequest& sent,
                                                       gemini::IdSource ids,
                                                       core::TokenUsage& usage) {
  std::variant<core::ChatResponse, ApiError> decoded;
  switch (upstream) {
    case Dialect::openai: decoded = openai::decode_response(body); break;
    case Dialect::anthropic: decoded = anthropic::decode_response(body, sent.anthropic); break;
    case Dialect::gemini: decoded = gemini::decode_response(body, ids); break;
    case Dialect::responses: return ApiError::make(core::ErrorKind::internal, "No provider speaks only the Responses API.");
  }
  if (auto* e = std::get_if<ApiError>(&decoded)) return *e;
  const core::ChatResponse& r = std::get<core::ChatResponse>(decoded);
  usage = r.usage;
  std::string out;
  if (client == Dialect::anthropic) anthropic::encode_response(r, out);
  else if (client == Dialect::responses) responses::encode_response(r, out);
  else openai::encode_response(r, out);
  return out;
}

StreamTranslator::StreamTranslator(Dialect client, Dialect upstream, const UpstreamRequest& sent,
                                   bool client_wants_usage, std::string model, gemini::IdSource ids)
    : upstream_(upstream), out_(std::in_place_type<openai::ChunkEncoder>, client_wants_usage) {
  switch (upstream) {
    case Dialect::openai: openai_in_.emplace(); break;
    case Dialect::anthropic: anthropic_in_.emplace(sent.anthropic); break;
    case Dialect::gemini: gemini_in_.emplace(std::move(ids)); break;
    case Dialect::responses: break;  // not an upstream's
  }
  if (client == Dialect::anthropic) out_.emplace<anthropic::EventEncoder>(std::move(model));
  else if (client == Dialect::responses) out_.emplace<responses::EventEncoder>(std::move(model));
}

void StreamTranslator::on_event(const core::StreamEvent& event) {
  if (event.kind == core::StreamEvent::Kind::usage) usage_ = event.usage;
  if (event.kind == core::StreamEvent::Kind::start && event.usage.known) usage_ = event.usage;
  if (event.kind == core::StreamEvent::Kind::finish) finish_seen_ = true;
  if (event.kind == core::StreamEvent::Kind::error) failed_ = true;
  std::visit([&](auto& encoder) { encoder.on_event(event); }, out_);
}

bool StreamTranslator::feed(const SseEvent& event) {
  if (failed_) return true;
  switch (upstream_) {
    case Dialect::openai:
      if (event.data == "[DONE]") done_ = true;
      return openai_in_->feed(event.data, *this);
    case Dialect::anthropic:
      if (event.data.empty()) return true;
      return anthropic_in_->feed(event.name, event.data, *this);
    case Dialect::gemini:
      if (event.data.empty()) return true;
      return gemini_in_->feed(event.data, *this);
    case Dialect::responses: break;
  }
  return false;
}

bool StreamTranslator::complete() const {
  switch (upstream_) {
    case Dialect::openai: return done_;
    case Dialect::anthropic: return anthropic_in_->stopped();
    case Dialect::gemini: return finish_seen_;
    case Dialect::responses: break;
  }
  return false;
}

void StreamTranslator::fail(const ApiError& error) {
  if (failed_) return;
  core::StreamEvent ev;
  ev.kind = core::StreamEvent::Kind::error;
  ev.error = error;
  on_event(ev);
}

void StreamTranslator::finish() {
  if (failed_) return;
  if (!complete()) {
    fail(ApiError::make(core::ErrorKind::upstream_connect,
                        "The upstream stream ended before it was complete.", {},
                        "upstream_stream_incomplete"));
    return;
  }
  if (openai_in_) openai_in_->finish(*this);
  if (gemini_in_) gemini_in_->finish(*this);
  std::visit([](auto& encoder) { encoder.end(); }, out_);
}

std::string& StreamTranslator::out() {
  return std::visit([](auto& encoder) -> std::string& { return encoder.out(); }, out_);
}

std::string error_body(Dialect dialect, const ApiError& error, std::string_view request_id) {
  if (dialect == Dialect::anthropic) return anthropic::error_body(error, request_id);
  return core::openai_error_body(error);
}

std::string stream_error_event(Dialect dialect, const ApiError& error, std::string_view request_id) {
  switch (dialect) {
    case Dialect::anthropic: return "event: error\ndata: " + anthropic::error_body(error, request_id) + "\n\n";
    case Dialect::responses: {
      std::string out = "event: error\ndata: {\"type\":\"error\",\"code\":";
      core::append_json_string(out, error.code.empty() ? std::string_view("server_error") : std::string_view(error.code));
      out += ",\"message\":";
      core::append_json_string(out, error.message);
      out += ",\"param\":null}\n\n";
      return out;
    }
    case Dialect::openai:
    case Dialect::gemini: break;
  }
  return "data: " + core::openai_error_body(error) + "\n\n";
}

std::int64_t estimate_tokens(const core::ChatRequest& r, bool precise) {
  auto estimate = [precise](std::string_view text) {
    return static_cast<std::int64_t>(precise ? core::estimate_text_tokens(text) : core::quick_text_tokens(text));
  };
  std::int64_t tokens = 0;
  auto count = [&](const std::vector<core::Block>& blocks, auto& self) -> void {
    for (const auto& b : blocks) {
      tokens += estimate(b.text) + estimate(b.arguments) + estimate(b.name);
      if (b.type == core::Block::Type::image) tokens += 1000;  // a typical image
      self(b.content, self);
    }
  };
  count(r.system, count);
  for (const auto& m : r.messages) {
    tokens += 4;  // role and message framing
    count(m.content, count);
  }
  for (const auto& t : r.tools)
    tokens += estimate(t.name) + estimate(t.description) + estimate(boost::json::serialize(t.parameters));
  return tokens;
}

}  // namespace switchyard::dialects
