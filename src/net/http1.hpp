#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

/// A lean, zero-allocation HTTP/1.1 message-head parser and chunked-body decoder. Pure code (no
/// sockets). Strict where laxness enables request smuggling: CRLF line endings only, no obs-fold,
/// no whitespace before the colon, Content-Length and Transfer-Encoding never both, one
/// Content-Length value, `chunked` the only transfer coding.
namespace switchyard::net::http1 {

constexpr std::size_t kMaxHeaders = 64;
static_assert(kMaxHeaders < 255, "Head::known keeps field indexes in a byte");

struct Header {
  std::string_view name;
  std::string_view value;
};

enum class ParseStatus : std::uint8_t {
  complete,
  incomplete,        ///< need more bytes
  bad_request,       ///< malformed or ambiguous (400)
  headers_too_large, ///< head larger than the limit or too many fields (431)
  not_implemented,   ///< unsupported transfer coding (501)
};

/// Where a field's name and value lie in the head's bytes: 16 bytes where two string views take
/// 32. A head holds kMaxHeaders of them and every open stream two heads.
struct FieldSpan {
  std::uint32_t name_offset, name_size, value_offset, value_size;
};

/// Field names looked up on every request or response. Found once while the head is parsed
/// (their lengths are checked for the framing fields anyway), so a lookup is an array read, not
/// a scan of the head's fields.
enum class Known : std::uint8_t {
  authorization,
  x_api_key,
  x_request_id,
  content_type,
  anthropic_version,
  expect,
  count
};

/// Fields shared by requests and responses.
struct Head {
  std::array<FieldSpan, kMaxHeaders> fields;
  /// For each `Known` name: 1 + the index of its first field, 0 when absent.
  std::array<std::uint8_t, static_cast<std::size_t>(Known::count)> known{};
  const char* base = nullptr;  ///< the bytes `fields` point into (the parsed data)
  std::size_t header_count = 0;
  std::size_t head_size = 0;  ///< bytes of the head, including the final CRLF CRLF
  int version_minor = 1;
  std::optional<std::uint64_t> content_length;
  bool chunked = false;
  bool connection_close = false;
  bool connection_keep_alive = false;

  /// Field `i` (< header_count), as views into the parsed bytes.
  Header header(std::size_t i) const {
    const FieldSpan& f = fields[i];
    return Header{std::string_view(base + f.name_offset, f.name_size),
                  std::string_view(base + f.value_offset, f.value_size)};
  }
  /// First header of that name (case-insensitive), or empty.
  std::string_view find(std::string_view name) const;
  /// The same for a known name, without the scan.
  std::string_view find(Known name) const {
    const std::uint8_t at = known[static_cast<std::size_t>(name)];
    if (at == 0) return {};
    const FieldSpan& f = fields[at - 1];
    return std::string_view(base + f.value_offset, f.value_size);
  }
  /// HTTP/1.1 defaults to keep-alive, HTTP/1.0 to close.
  bool keep_alive() const {
    return version_minor >= 1 ? !connection_close : connection_keep_alive;
  }
};

struct RequestHead : Head {
  std::string_view method;
  std::string_view target;
  bool expect_continue = false;
};

struct ResponseHead : Head {
  int status = 0;
  std::string_view reason;
};

/// Parses a request head at the start of `data`. Returns `incomplete` until the blank line is
/// seen, `headers_too_large` once `max_head_bytes` pass without it.
ParseStatus parse_request(std::string_view data, std::size_t max_head_bytes, RequestHead& out);

/// Parses a response head at the start of `data`.
ParseStatus parse_response(std::string_view data, std::size_t max_head_bytes, ResponseHead& out);

namespace detail {
inline bool iequals_bytes(const char* a, const char* b, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    unsigned char x = static_cast<unsigned char>(a[i]), y = static_cast<unsigned char>(b[i]);
    if (x == y) continue;
    if ((x | 0x20) != (y | 0x20) || (x | 0x20) < 'a' || (x | 0x20) > 'z') return false;
  }
  return true;
}

/// The eight bytes at `a` and `b` (read as `x` and `y`) are equal but for the case of ASCII
/// letters.
inline bool iequals8(std::uint64_t x, std::uint64_t y, const char* a, const char* b) {
  constexpr std::uint64_t k20 = 0x2020202020202020ull, k80 = 0x8080808080808080ull;
  const std::uint64_t diff = x ^ y;
  if (diff & ~k20) return false;                    // a difference other than the case bit
  if ((x | y) & k80) return iequals_bytes(a, b, 8);  // non-ASCII: the sums below would carry
  const std::uint64_t lower = x | k20;
  // Per byte (all below 0x80, so nothing carries between bytes): bit 7 set iff 'a' <= c <= 'z'.
  const std::uint64_t letter = (lower + 0x1F1F1F1F1F1F1F1Full) & (0xFAFAFAFAFAFAFAFAull - lower) & k80;
  return ((diff << 2) & ~letter) == 0;           // every case difference is on a letter
}
}  // namespace detail

/// Case-insensitive ASCII comparison, eight bytes at a time. Inline: most calls end at the
/// size check.
inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  std::size_t i = 0;
  for (; i + 8 <= a.size(); i += 8) {
    std::uint64_t x, y;
    std::memcpy(&x, a.data() + i, 8);
    std::memcpy(&y, b.data() + i, 8);
    if (x != y && !detail::iequals8(x, y, a.data() + i, b.data() + i)) return false;
  }
  return detail::iequals_bytes(a.data() + i, b.data() + i, a.size() - i);
}

/// Incremental decoder of a chunked body. Feed it bytes; it appends payload bytes through a
/// callback and reports completion after the last chunk and the trailers.
class ChunkedDecoder {
 public:
  enum class Status : std::uint8_t { need_more, done, error };

  /// Consumes as much of `in` as it can; `fn(std::string_view)` receives payload. `consumed` is
  /// set to the bytes used (on `done`, anything after is the next message).
  template <class Fn>
  Status feed(std::string_view in, std::size_t& consumed, Fn&& fn);

  void reset() { *this = ChunkedDecoder{}; }

 private:
  enum class State : std::uint8_t { size, size_ext, size_lf, data, data_cr, data_lf, trailer_start, trailer_line, trailer_lf, final_lf };
  State state_ = State::size;
  std::uint64_t remaining_ = 0;
  int size_digits_ = 0;
  std::size_t trailer_bytes_ = 0;
};

template <class Fn>
ChunkedDecoder::Status ChunkedDecoder::feed(std::string_view in, std::size_t& consumed, Fn&& fn) {
  std::size_t i = 0;
  const std::size_t n = in.size();
  while (i < n) {
    char c = in[i];
    switch (state_) {
      case State::size: {
        int digit = -1;
        if (c >= '0' && c <= '9') digit = c - '0';
        else if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') digit = c - 'A' + 10;
        if (digit >= 0) {
          if (++size_digits_ > 15) return consumed = i, Status::error;
          remaining_ = remaining_ * 16 + static_cast<std::uint64_t>(digit);
          ++i;
          break;
        }
        if (size_digits_ == 0) return consumed = i, Status::error;
        if (c == ';') state_ = State::size_ext;
        else if (c == '\r') state_ = State::size_lf;
        else return consumed = i, Status::error;
        ++i;
        break;
      }
      case State::size_ext:
        if (c == '\r') state_ = State::size_lf;
        else if (c == '\n') return consumed = i, Status::error;
        ++i;
        break;
      case State::size_lf:
        if (c != '\n') return consumed = i, Status::error;
        ++i;
        size_digits_ = 0;
        state_ = remaining_ == 0 ? State::trailer_start : State::data;
        break;
      case State::data: {
        std::size_t take = static_cast<std::size_t>(
            std::min<std::uint64_t>(remaining_, static_cast<std::uint64_t>(n - i)));
        fn(in.substr(i, take));
        i += take;
        remaining_ -= take;
        if (remaining_ == 0) state_ = State::data_cr;
        break;
      }
      case State::data_cr:
        if (c != '\r') return consumed = i, Status::error;
        ++i;
        state_ = State::data_lf;
        break;
      case State::data_lf:
        if (c != '\n') return consumed = i, Status::error;
        ++i;
        state_ = State::size;
        break;
      case State::trailer_start:
        if (c == '\r') {
          state_ = State::final_lf;
        } else {
          state_ = State::trailer_line;
        }
        ++i;
        break;
      case State::trailer_line:
        if (++trailer_bytes_ > 16384) return consumed = i, Status::error;
        if (c == '\r') state_ = State::trailer_lf;
        ++i;
        break;
      case State::trailer_lf:
        if (c != '\n') return consumed = i, Status::error;
        ++i;
        state_ = State::trailer_start;
        break;
      case State::final_lf:
        if (c != '\n') return consumed = i, Status::error;
        ++i;
        consumed = i;
        return Status::done;
    }
  }
  consumed = i;
  return Status::need_more;
}

}  // namespace switchyard::net::http1
