// libFuzzer target: the router model file reader. The input is read twice: as a whole file (its
// magic and checksum stop almost everything), and as a body behind a valid magic, version and
// checksum, so the fuzzer reaches the size checks of every field.
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "routing/complexity/model.hpp"

using namespace switchyard::routing::complexity;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  std::string error;
  (void)parse(in, "fuzz", error);

  std::string file("SWYDRTR\n", 8);
  const std::uint32_t version = Model::kVersion;
  file.append(reinterpret_cast<const char*>(&version), 4);
  file.append(in);
  const std::uint32_t sum = checksum(file);
  file.append(reinterpret_cast<const char*>(&sum), 4);
  if (auto model = parse(file, "fuzz", error)) (void)model->strong_gain("Prove that the square root of 2 is irrational.");
  return 0;
}
