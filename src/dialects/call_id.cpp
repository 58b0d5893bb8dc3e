#include "dialects/call_id.hpp"

#include <array>
#include <cstdint>

namespace switchyard::dialects {

namespace {

constexpr std::string_view kMarker = "__sig_";
constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

constexpr std::array<std::int8_t, 256> kValues = [] {
  std::array<std::int8_t, 256> v{};
  v.fill(-1);
  for (int i = 0; i < 64; ++i) v[static_cast<unsigned char>(kAlphabet[i])] = static_cast<std::int8_t>(i);
  return v;
}();

}  // namespace

std::string id_with_signature(std::string_view id, std::string_view signature) {
  std::string out(id);
  if (signature.empty()) return out;
  out += kMarker;
  // base64url without padding: the id stays within [A-Za-z0-9_-], as Anthropic's ids are.
  std::uint32_t bits = 0;
  int count = 0;
  for (unsigned char c : signature) {
    bits = (bits << 8) | c;
    count += 8;
    while (count >= 6) {
      count -= 6;
      out += kAlphabet[(bits >> count) & 63];
    }
  }
  if (count > 0) out += kAlphabet[(bits << (6 - count)) & 63];
  return out;
}

std::string take_signature(std::string& id) {
  const std::size_t at = id.rfind(kMarker);
  if (at == std::string::npos) return {};
  std::string signature;
  std::uint32_t bits = 0;
  int count = 0;
  for (std::size_t i = at + kMarker.size(); i < id.size(); ++i) {
    const std::int8_t v = kValues[static_cast<unsigned char>(id[i])];
    if (v < 0) return {};  // not ours: the id is left as it is
    bits = (bits << 6) | static_cast<std::uint32_t>(v);
    count += 6;
    if (count >= 8) {
      count -= 8;
      signature += static_cast<char>((bits >> count) & 0xFF);
    }
  }
  id.resize(at);
  return signature;
}

}  // namespace switchyard::dialects
