#include "core/version.hpp"

namespace switchyard::core {

std::string_view version() { return SWITCHYARD_VERSION; }

}  // namespace switchyard::core
