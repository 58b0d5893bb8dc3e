#pragma once

#include <cstddef>
#include <cstdint>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/// Vectorised byte searches for the JSON scanner and the HTTP parser: 16 bytes per step with
/// SSE2 (baseline on x86-64), a plain loop elsewhere and for the tail.
namespace switchyard::core::bytes {

/// First index in [pos, n) holding '"', '\\', a control byte (< 0x20) or a non-ASCII byte
/// (>= 0x80): the bytes a JSON string scan must look at. n if none.
inline std::size_t find_string_special(const unsigned char* s, std::size_t pos, std::size_t n) {
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  const __m128i space = _mm_set1_epi8(0x20);
  while (pos + 16 <= n) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + pos));
    // Signed compare: bytes >= 0x80 are negative, so "< 0x20" also catches them.
    __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                               _mm_cmplt_epi8(v, space));
    if (int mask = _mm_movemask_epi8(hit)) return pos + static_cast<std::size_t>(__builtin_ctz(mask));
    pos += 16;
  }
#endif
  for (; pos < n; ++pos) {
    unsigned char c = s[pos];
    if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) return pos;
  }
  return n;
}

/// First index in [pos, n) holding CR or LF. n if none.
inline std::size_t find_cr_or_lf(const unsigned char* s, std::size_t pos, std::size_t n) {
#if defined(__SSE2__)
  const __m128i cr = _mm_set1_epi8('\r');
  const __m128i lf = _mm_set1_epi8('\n');
  while (pos + 16 <= n) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + pos));
    __m128i hit = _mm_or_si128(_mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, lf));
    if (int mask = _mm_movemask_epi8(hit)) return pos + static_cast<std::size_t>(__builtin_ctz(mask));
    pos += 16;
  }
#endif
  for (; pos < n; ++pos)
    if (s[pos] == '\r' || s[pos] == '\n') return pos;
  return n;
}

/// First index in [pos, n) holding '"' or '\\'. n if none.
inline std::size_t find_quote_or_backslash(const unsigned char* s, std::size_t pos, std::size_t n) {
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  while (pos + 16 <= n) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + pos));
    __m128i hit = _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash));
    if (int mask = _mm_movemask_epi8(hit)) return pos + static_cast<std::size_t>(__builtin_ctz(mask));
    pos += 16;
  }
#endif
  for (; pos < n; ++pos)
    if (s[pos] == '"' || s[pos] == '\\') return pos;
  return n;
}

/// First index in [pos, n) that may hold a JSON structural byte that changes nesting or starts a
/// string: '"', '[', ']', '{', '}'. The vector step also stops at 'Y', 'y', '_' and DEL (which
/// never occur outside strings in valid JSON); callers check the byte. n if none.
inline std::size_t find_structural(const unsigned char* s, std::size_t pos, std::size_t n) {
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"');
  // '[' 0x5B, ']' 0x5D, '{' 0x7B, '}' 0x7D differ only in bits 0x26: clear them, compare once.
  const __m128i fold = _mm_set1_epi8(static_cast<char>(~0x26));
  const __m128i bracket = _mm_set1_epi8(0x59);
  while (pos + 16 <= n) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + pos));
    __m128i hit = _mm_or_si128(_mm_cmpeq_epi8(v, quote),
                               _mm_cmpeq_epi8(_mm_and_si128(v, fold), bracket));
    if (int mask = _mm_movemask_epi8(hit)) return pos + static_cast<std::size_t>(__builtin_ctz(mask));
    pos += 16;
  }
#endif
  for (; pos < n; ++pos) {
    unsigned char c = s[pos];
    if (c == '"' || c == '[' || c == ']' || c == '{' || c == '}') return pos;
  }
  return n;
}

}  // namespace switchyard::core::bytes
