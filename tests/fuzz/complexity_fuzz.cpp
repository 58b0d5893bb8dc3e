// libFuzzer target: the complexity classifier's features and the task-category cues on
// arbitrary text (both read request text on routes that use them).
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "routing/complexity/category.hpp"
#include "routing/complexity/features.hpp"

using namespace switchyard::routing::complexity;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  for (bool words : {false, true}) {
    FeatureSpec spec;
    spec.hash_bits = 12;
    spec.words = spec.bigrams = words;
    Sparse x;
    extract(text, spec, x);
    for (const auto& [i, v] : x)
      if (i >= dimensions(spec) || !(v == v)) std::abort();  // in range, not NaN
  }
  (void)categorize(text);
  return 0;
}
