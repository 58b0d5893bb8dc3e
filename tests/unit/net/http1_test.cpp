#include "net/http1.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace switchyard::net::http1;

namespace {

/// Parses `text` into `head`. The head's views point into the text, so it is kept here until the
/// next parse (callers pass temporaries; AddressSanitizer found the views outliving them).
ParseStatus parse(const std::string& text, RequestHead& head, std::size_t limit = 8192) {
  static std::string kept;
  kept = text;
  return parse_request(kept, limit, head);
}

ParseStatus status_of(const std::string& text) {
  RequestHead head;
  return parse(text, head);
}

std::string decode_chunked(const std::string& body, std::size_t piece, ChunkedDecoder::Status& last,
                           std::size_t& total_consumed) {
  ChunkedDecoder d;
  std::string out;
  total_consumed = 0;
  last = ChunkedDecoder::Status::need_more;
  for (std::size_t i = 0; i < body.size() && last == ChunkedDecoder::Status::need_more; i += piece) {
    std::size_t used = 0;
    last = d.feed(std::string_view(body).substr(i, piece), used,
                  [&](std::string_view p) { out.append(p); });
    total_consumed += used;
  }
  return out;
}

}  // namespace

TEST(Http1Request, ParsesARequest) {
  RequestHead head;
  std::string text =
      "POST /v1/chat/completions?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
      "Authorization:  Bearer sk-1 \r\nX-Empty:\r\n\r\nhello";
  ASSERT_EQ(parse(text, head), ParseStatus::complete);
  EXPECT_EQ(head.method, "POST");
  EXPECT_EQ(head.target, "/v1/chat/completions?x=1");
  EXPECT_EQ(head.version_minor, 1);
  EXPECT_EQ(head.content_length, 5u);
  EXPECT_EQ(head.find("AUTHORIZATION"), "Bearer sk-1");
  EXPECT_EQ(head.find("x-empty"), "");
  EXPECT_EQ(head.head_size, text.size() - 5);
  EXPECT_TRUE(head.keep_alive());
}

TEST(Http1Request, IncompleteUntilTheBlankLine) {
  std::string text = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
  for (std::size_t n = 0; n < text.size(); ++n)
    EXPECT_EQ(status_of(text.substr(0, n)), ParseStatus::incomplete) << n;
  EXPECT_EQ(status_of(text), ParseStatus::complete);
}

TEST(Http1Request, KeepAliveRules) {
  RequestHead head;
  ASSERT_EQ(parse("GET / HTTP/1.0\r\n\r\n", head), ParseStatus::complete);
  EXPECT_FALSE(head.keep_alive());
  ASSERT_EQ(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", head), ParseStatus::complete);
  EXPECT_TRUE(head.keep_alive());
  ASSERT_EQ(parse("GET / HTTP/1.1\r\nConnection: foo, close\r\n\r\n", head), ParseStatus::complete);
  EXPECT_FALSE(head.keep_alive());
}

TEST(Http1Request, RefusesSmugglingShapes) {
  // Both framings, conflicting lengths, bad lengths.
  EXPECT_EQ(status_of("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
            ParseStatus::bad_request);
  EXPECT_EQ(status_of("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"),
            ParseStatus::bad_request);
  EXPECT_EQ(status_of("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n"),
            ParseStatus::complete);
  EXPECT_EQ(status_of("POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\n"), ParseStatus::bad_request);
  EXPECT_EQ(status_of("POST / HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\n"), ParseStatus::bad_request);
  EXPECT_EQ(status_of("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n"),
            ParseStatus::bad_request);
  // Transfer codings other than a single chunked.
  EXPECT_EQ(status_of("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            ParseStatus::not_implemented);
  EXPECT_EQ(status_of("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"),
            ParseStatus::not_implemented);
  // obs-fold, bare LF, whitespace before the colon, bad names and values.
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n"), ParseStatus::bad_request);
  EXPECT_EQ(status_of("GET / HTTP/1.1\nHost: a\n\n"), ParseStatus::bad_request);
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: a\n\r\n"), ParseStatus::bad_request);
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nContent-Length : 3\r\n\r\n"), ParseStatus::bad_request);
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nBad Name: 3\r\n\r\n"), ParseStatus::bad_request);
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nX: a\x01z\r\n\r\n"), ParseStatus::bad_request);
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nX: a\rb\r\n\r\n"), ParseStatus::bad_request);  // lone CR
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nX-Long-Enough-To-Fill-A-Vector: a\x7fz\r\n\r\n"),
            ParseStatus::bad_request);
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nX: obs-text \xe9 is allowed\r\n\r\n"), ParseStatus::complete);
  // Request line.
  EXPECT_EQ(status_of("GET  / HTTP/1.1\r\n\r\n"), ParseStatus::bad_request);
  EXPECT_EQ(status_of("GET / HTTP/2.0\r\n\r\n"), ParseStatus::bad_request);
  EXPECT_EQ(status_of("G@T / HTTP/1.1\r\n\r\n"), ParseStatus::bad_request);
  EXPECT_EQ(status_of("GET /a b HTTP/1.1\r\n\r\n"), ParseStatus::bad_request);
}

TEST(Http1Request, HeaderLimits) {
  std::string big = "GET / HTTP/1.1\r\nX: " + std::string(9000, 'a') + "\r\n\r\n";
  EXPECT_EQ(status_of(big), ParseStatus::headers_too_large);
  // Detected before the blank line arrives.
  EXPECT_EQ(status_of(big.substr(0, 8500)), ParseStatus::headers_too_large);
  std::string many = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 70; ++i) many += "X-" + std::to_string(i) + ": v\r\n";
  many += "\r\n";
  EXPECT_EQ(status_of(many), ParseStatus::headers_too_large);
}

TEST(Http1Response, ParsesStatusAndFraming) {
  ResponseHead head;
  std::string text = "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 2\r\nContent-Length: 2\r\n\r\n{}";
  ASSERT_EQ(parse_response(text, 8192, head), ParseStatus::complete);
  EXPECT_EQ(head.status, 429);
  EXPECT_EQ(head.reason, "Too Many Requests");
  EXPECT_EQ(head.find("retry-after"), "2");
  EXPECT_EQ(head.content_length, 2u);
  ASSERT_EQ(parse_response("HTTP/1.1 200 \r\nTransfer-Encoding: chunked\r\n\r\n", 8192, head),
            ParseStatus::complete);
  EXPECT_TRUE(head.chunked);
  EXPECT_EQ(parse_response("HTTP/1.1 20 OK\r\n\r\n", 8192, head), ParseStatus::bad_request);
  EXPECT_EQ(parse_response("HTTP/1.1 200 OK\r\n", 8192, head), ParseStatus::incomplete);
  EXPECT_EQ(parse_response("garbage\r\n\r\n", 8192, head), ParseStatus::bad_request);
}

TEST(Http1Chunked, DecodesAcrossAnySplit) {
  std::string body = "5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nTrailer: x\r\n\r\nNEXT";
  for (std::size_t piece : {1u, 2u, 5u, 13u, 200u}) {
    ChunkedDecoder::Status st;
    std::size_t consumed = 0;
    EXPECT_EQ(decode_chunked(body, piece, st, consumed), "helloabcdefghijklmnopqrstuvwxyz");
    EXPECT_EQ(st, ChunkedDecoder::Status::done);
    EXPECT_EQ(consumed, body.size() - 4) << "piece " << piece;  // stops before the next message
  }
}

TEST(Http1Chunked, RejectsMalformedChunks) {
  for (std::string bad : {"x\r\n", "5\r\nhelloX\r\n", "5\nhello\r\n", "\r\n", "fffffffffffffffff\r\n"}) {
    ChunkedDecoder::Status st;
    std::size_t consumed = 0;
    decode_chunked(bad, 100, st, consumed);
    EXPECT_EQ(st, ChunkedDecoder::Status::error) << bad;
  }
}

TEST(Http1, IequalsMatchesTheByteRuleOnEveryPair) {
  // The reference: bytes equal, or equal but for the case of an ASCII letter.
  auto reference = [](std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
      unsigned char x = static_cast<unsigned char>(a[i]), y = static_cast<unsigned char>(b[i]);
      if (x == y) continue;
      if ((x | 0x20) != (y | 0x20) || (x | 0x20) < 'a' || (x | 0x20) > 'z') return false;
    }
    return true;
  };
  // Pairs that differ only in bit 0x20 but are not letters must not match: '@'/'`', '['/'{',
  // '^'/'~', '-'/CR, digits/controls; nor bytes above 0x80 that differ in that bit.
  const std::string alphabet = std::string("aAzZmM@`[{^~-\r09\x10\x19_\x7f") + "\xc3\xe3\xa9\x89";
  std::uint64_t state = 42;
  auto next = [&state] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<std::size_t>(state >> 33);
  };
  std::size_t matches = 0;
  for (int round = 0; round < 20000; ++round) {
    std::size_t n = next() % 24;
    std::string a, b;
    for (std::size_t i = 0; i < n; ++i) {
      char c = alphabet[next() % alphabet.size()];
      a += c;
      // Mostly the same byte or its case twin, so that long matches happen.
      switch (next() % 4) {
        case 0: b += alphabet[next() % alphabet.size()]; break;
        case 1: b += static_cast<char>(c ^ 0x20); break;
        default: b += c;
      }
    }
    bool want = reference(a, b);
    matches += want;
    ASSERT_EQ(iequals(a, b), want) << a << " vs " << b;
  }
  EXPECT_GT(matches, 100u);  // the test exercised matching pairs, not only mismatches
  EXPECT_TRUE(iequals("Content-Length", "content-length"));
  EXPECT_FALSE(iequals("Content-Lengt@", "content-length`"));
  EXPECT_FALSE(iequals("x-ratelimit-[x]", "x-ratelimit-{x}"));
}

// The names found while parsing give what a scan by name gives: the first field of that name,
// any case; nothing when absent; nothing left over from the previous head parsed into the same
// object.
TEST(Http1Request, KnownNamesAreFoundWhileParsing) {
  const std::pair<Known, const char*> names[] = {
      {Known::authorization, "authorization"},        {Known::x_api_key, "x-api-key"},
      {Known::x_request_id, "x-request-id"},          {Known::content_type, "content-type"},
      {Known::anthropic_version, "anthropic-version"}, {Known::expect, "expect"}};
  RequestHead head;
  ASSERT_EQ(parse("POST /v1/chat HTTP/1.1\r\nHost: x\r\nAUTHORIZATION: Bearer a\r\n"
                  "authorization: Bearer b\r\nX-Request-Id: r1\r\nContent-Type: application/json\r\n"
                  "X-Api-Key: k\r\nAnthropic-Version: 2023-06-01\r\nTransfer-Encoding: chunked\r\n"
                  "x-request-ix: no\r\ncontent-typf: no\r\n\r\n",
                  head),
            ParseStatus::complete);
  EXPECT_TRUE(head.chunked);  // a 17-byte framing field is still read as one
  for (auto [known, name] : names) EXPECT_EQ(head.find(known), head.find(name)) << name;
  EXPECT_EQ(head.find(Known::authorization), "Bearer a");
  EXPECT_EQ(head.find(Known::x_request_id), "r1");
  EXPECT_EQ(head.find(Known::content_type), "application/json");
  EXPECT_EQ(head.find(Known::anthropic_version), "2023-06-01");
  EXPECT_EQ(head.find(Known::expect), "");

  ASSERT_EQ(parse("GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n", head),
            ParseStatus::complete);
  for (auto [known, name] : names) EXPECT_EQ(head.find(known), head.find(name)) << name;
  EXPECT_EQ(head.find(Known::authorization), "");
  EXPECT_TRUE(head.expect_continue);

  ResponseHead response;
  ASSERT_EQ(parse_response("HTTP/1.1 200 OK\r\nCONTENT-TYPE: text/event-stream\r\n\r\n", 8192, response),
            ParseStatus::complete);
  EXPECT_EQ(response.find(Known::content_type), "text/event-stream");
}

TEST(Http1Request, LookedUpNamesMatchExactlyAnyCaseAndNothingElse) {
  // Every name the parser looks up, with each of its bytes replaced by every token character
  // (and the original in both cases): a field counts as that name exactly when the names are
  // equal ignoring ASCII case, the rule the scan by name (`iequals`) applies.
  const std::string tchars =
      "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  const std::pair<std::string, Known> known[] = {
      {"authorization", Known::authorization}, {"x-api-key", Known::x_api_key},
      {"x-request-id", Known::x_request_id},   {"content-type", Known::content_type},
      {"anthropic-version", Known::anthropic_version}, {"expect", Known::expect}};
  const std::string framing[] = {"content-length", "connection", "transfer-encoding"};
  std::vector<std::string> names;
  for (const auto& [n, k] : known) names.push_back(n);
  for (const auto& n : framing) names.push_back(n);
  std::size_t checked = 0, matched = 0;
  for (const std::string& base : names) {
    for (std::size_t i = 0; i < base.size(); ++i) {
      for (char c : tchars) {
        std::string name = base;
        name[i] = c;
        RequestHead head;
        // "Transfer-Encoding: chunked" needs a body; the value of every field is "7".
        const bool te = iequals(name, "transfer-encoding");
        const std::string text = "POST / HTTP/1.1\r\nHost: h\r\n" + name + ": " +
                                 (te ? std::string("chunked") : std::string("7")) + "\r\n\r\n";
        ASSERT_EQ(parse(text, head), ParseStatus::complete) << name;
        ++checked;
        for (const auto& [n, k] : known) {
          const bool same = iequals(name, n);
          EXPECT_EQ(head.find(k), same ? std::string_view("7") : std::string_view()) << name << " / " << n;
          matched += same;
        }
        EXPECT_EQ(head.content_length.has_value(), iequals(name, "content-length")) << name;
        EXPECT_EQ(head.chunked, te) << name;
        EXPECT_FALSE(head.connection_close || head.connection_keep_alive) << name;  // "7" is neither
      }
    }
  }
  EXPECT_GT(checked, 8000u);
  EXPECT_GT(matched, 100u);  // the case variants of each known name's letters
  RequestHead head;
  ASSERT_EQ(parse("GET / HTTP/1.1\r\nCONNECTION: Keep-Alive\r\n\r\n", head), ParseStatus::complete);
  EXPECT_TRUE(head.connection_keep_alive);
  ASSERT_EQ(parse("GET / HTTP/1.1\r\nconnection: CLOSE\r\n\r\n", head), ParseStatus::complete);
  EXPECT_TRUE(head.connection_close);
  ASSERT_EQ(parse("GET / HTTP/1.1\r\nConnection: te, close\r\n\r\n", head), ParseStatus::complete);
  EXPECT_TRUE(head.connection_close);
  EXPECT_FALSE(head.connection_keep_alive);
}
