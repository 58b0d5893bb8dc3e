#pragma once

#include <string_view>

namespace switchyard::core {

/// The release version, from CMake's project version.
std::string_view version();

}  // namespace switchyard::core
