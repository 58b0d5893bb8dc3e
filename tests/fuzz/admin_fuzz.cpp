// libFuzzer target: the admin API (/admin/v1) over a real SQLite store — arbitrary methods, paths,
// queries and bodies. Everything must be answered with a status and the one error shape; nothing
// may crash, hang or write a half-validated change.
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "governance/admin_api.hpp"
#include "store/sqlite_store.hpp"

using namespace switchyard;

namespace {

governance::Governor& governor() {
  static governance::Governor* g = [] {
    const std::string dir = "/tmp/switchyard-admin-fuzz-" + std::to_string(::getpid());
    std::string mkdir = "mkdir -p " + dir;
    if (std::system(mkdir.c_str()) != 0) std::abort();
    store::SqliteOptions so;
    so.path = dir + "/fuzz.db";
    governance::LedgerOptions lo;
    lo.durability = governance::LedgerOptions::Durability::async;
    return new governance::Governor(std::make_unique<store::SqliteStore>(so), lo);
  }();
  return *g;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  static const char* const kMethods[] = {"GET", "POST", "PATCH", "DELETE", "PUT"};
  static const char* const kPaths[] = {"/admin/v1/teams",   "/admin/v1/keys",   "/admin/v1/budgets",
                                       "/admin/v1/limits",  "/admin/v1/spend",  "/admin/v1/audit",
                                       "/admin/v1/ledger",  "/admin/v1/status", "/admin/v1/keys/key_0000000000000000"};
  std::string_view in(reinterpret_cast<const char*>(data) + 2, size - 2);
  governance::AdminRequest request;
  request.method = kMethods[data[0] % 5];
  request.actor = "fuzz";
  std::string path;
  if (data[1] & 0x80) {
    // The path (and query) from the input itself, up to the first newline.
    const std::size_t nl = in.find('\n');
    std::string_view target = in.substr(0, nl);
    in = nl == std::string_view::npos ? std::string_view{} : in.substr(nl + 1);
    path = "/admin/v1/" + std::string(target);
  } else {
    path = kPaths[data[1] % 9];
  }
  std::string_view full(path);
  request.path = full.substr(0, full.find('?'));
  if (full.find('?') != std::string_view::npos) request.query = full.substr(full.find('?') + 1);
  request.body = in;
  governance::AdminContext context;
  context.routes = {"auto"};
  context.deployments = {"d"};
  auto response = governance::handle_admin(governor(), context, request);
  if (response.status < 200 || response.status > 599 || response.body.empty()) std::abort();
  return 0;
}
