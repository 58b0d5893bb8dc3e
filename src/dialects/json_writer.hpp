#pragma once

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/error.hpp"

/// Writes JSON straight into a string, commas and all: for the bodies built on every translated
/// request, where building a tree first costs more than the writing.
namespace switchyard::dialects {

class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) : out_(out) {}

  JsonWriter& begin_object() { return open('{'); }
  JsonWriter& end_object() { return close('}'); }
  JsonWriter& begin_array() { return open('['); }
  JsonWriter& end_array() { return close(']'); }
  JsonWriter& key(std::string_view k) {
    separate();
    core::append_json_string(out_, k);
    out_ += ':';
    after_key_ = true;
    return *this;
  }
  JsonWriter& string(std::string_view s) {
    separate();
    core::append_json_string(out_, s);
    return *this;
  }
  JsonWriter& integer(std::int64_t v) {
    separate();
    out_ += std::to_string(v);
    return *this;
  }
  JsonWriter& number(double v) {
    separate();
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    out_.append(buf, ec == std::errc{} ? end : buf);
    return *this;
  }
  JsonWriter& boolean(bool v) {
    separate();
    out_ += v ? "true" : "false";
    return *this;
  }
  JsonWriter& null() {
    separate();
    out_ += "null";
    return *this;
  }
  /// Already serialised JSON.
  JsonWriter& raw(std::string_view json) {
    separate();
    out_ += json;
    return *this;
  }
  // key + value shorthands
  JsonWriter& field(std::string_view k, std::string_view v) { return key(k).string(v); }
  JsonWriter& field(std::string_view k, const char* v) { return key(k).string(v); }
  JsonWriter& field(std::string_view k, const std::string& v) { return key(k).string(v); }
  JsonWriter& field_int(std::string_view k, std::int64_t v) { return key(k).integer(v); }

 private:
  JsonWriter& open(char c) {
    separate();
    out_ += c;
    if (depth_ < kMaxDepth) first_[depth_] = true;
    ++depth_;
    return *this;
  }
  JsonWriter& close(char c) {
    out_ += c;
    if (depth_ > 0) --depth_;
    return *this;
  }
  void separate() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (depth_ == 0 || depth_ > kMaxDepth) return;
    if (first_[depth_ - 1]) first_[depth_ - 1] = false;
    else out_ += ',';
  }
  static constexpr std::size_t kMaxDepth = 64;
  std::string& out_;
  bool first_[kMaxDepth] = {};
  std::size_t depth_ = 0;
  bool after_key_ = false;
};

}  // namespace switchyard::dialects
