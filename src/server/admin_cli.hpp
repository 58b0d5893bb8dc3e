#pragma once

namespace CLI {
class App;
}

/// `switchyard admin ...`: the operator's command line over the admin API (`/admin/v1/`), on a
/// running gateway. Every command is one HTTP request; `--json` prints the API's answer as is.
namespace switchyard::server {

/// Adds `admin` and its commands to `app`; returns the `admin` command (run it with
/// `run_admin` when it was given).
CLI::App* add_admin_commands(CLI::App& app);
int run_admin();

}  // namespace switchyard::server
