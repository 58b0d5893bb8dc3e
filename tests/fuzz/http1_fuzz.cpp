// libFuzzer target: the HTTP/1.1 head parsers and the chunked decoder on arbitrary bytes.
// Properties checked beyond "no crash": a complete head lies within the input, its views point
// into the input, and framing is never ambiguous.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "net/http1.hpp"

using namespace switchyard::net::http1;

namespace {

bool inside(std::string_view part, std::string_view whole) {
  return part.empty() || (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

void check_head(const Head& head, std::string_view input) {
  if (head.head_size > input.size()) std::abort();
  if (head.chunked && head.content_length) std::abort();  // smuggling shape must be refused
  for (std::size_t i = 0; i < head.header_count; ++i)
    if (!inside(head.header(i).name, input) || !inside(head.header(i).value, input)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  RequestHead request;
  if (parse_request(input, 8192, request) == ParseStatus::complete) {
    check_head(request, input);
    if (!inside(request.method, input) || !inside(request.target, input)) std::abort();
  }
  ResponseHead response;
  if (parse_response(input, 8192, response) == ParseStatus::complete) {
    check_head(response, input);
    if (response.status < 100 || response.status > 999) std::abort();
  }
  // The chunked decoder, fed in two pieces split at a data-dependent point.
  ChunkedDecoder decoder;
  std::size_t split = size ? data[0] % (size + 1) : 0;
  std::size_t total = 0, used = 0;
  auto sink = [&](std::string_view piece) {
    if (!inside(piece, input)) std::abort();
    total += piece.size();
  };
  auto st = decoder.feed(input.substr(0, split), used, sink);
  if (used > split) std::abort();
  if (st == ChunkedDecoder::Status::need_more && used == split) {
    std::size_t used2 = 0;
    decoder.feed(input.substr(split), used2, sink);
    if (used2 > size - split) std::abort();
  }
  if (total > size) std::abort();
  return 0;
}
