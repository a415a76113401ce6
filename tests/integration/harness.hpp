#pragma once
/// Integration-test harness: starts the real `basalt` binary in a fresh temp directory and talks
/// raw HTTP/1.1 to it over blocking POSIX sockets. Every wait is a poll with a deadline; nothing
/// sleeps for a fixed time.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <sys/types.h>

namespace boost::json {
class value;
}

namespace basalt::testing {

using namespace std::chrono_literals;
using Env = std::vector<std::pair<std::string, std::string>>;

/// Case-insensitive ordering for header names.
struct CaseLess {
  bool operator()(const std::string& a, const std::string& b) const;
};
using HeaderMap = std::multimap<std::string, std::string, CaseLess>;

/// A parsed HTTP response as the client saw it.
struct HttpResponse {
  bool ok = false;           ///< A complete response was read.
  std::string error;         ///< Why not, when !ok.
  int status = 0;
  unsigned version = 11;
  HeaderMap headers;
  std::string body;
  bool closed_after = false; ///< The peer closed the connection after this response.

  /// First header with this name, if any.
  std::optional<std::string> Header(std::string_view name) const;
  bool HasHeader(std::string_view name) const { return Header(name).has_value(); }
  /// Every value of this header joined with ", " (for Vary, Allow ...).
  std::string JoinedHeader(std::string_view name) const;
};

/// Splits a comma-separated header value into trimmed tokens.
std::vector<std::string> SplitList(std::string_view value);

/// A unique temporary directory removed (recursively) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

/// Path of the basalt binary under test: set by the test TU from its BASALT_BINARY compile
/// definition (see BASALT_USE_BINARY_FROM_DEFINITION), else the BASALT_BINARY environment variable.
std::string BinaryPath();
void SetBinaryPath(std::string path);

/// Put once in a test TU compiled with -DBASALT_BINARY="...": registers that path at start-up.
#define BASALT_USE_BINARY_FROM_DEFINITION() \
  [[maybe_unused]] static const bool basalt_binary_path_set_ = (::basalt::testing::SetBinaryPath(BASALT_BINARY), true)

/// The PostgreSQL URL for the servers of this test process, or nullptr when
/// BASALT_TEST_POSTGRES_URL is unset (the test then skips). The first call creates a database of
/// this process's own ("basalt_t_<pid>_<random>") on the server of BASALT_TEST_POSTGRES_URL; it is
/// dropped (WITH (FORCE)) when the process exits. ctest runs every test case in its own process,
/// so test cases running at once never share a database: each Basalt server on one database is
/// an instance of one cluster (its webhook worker claims every instance's deliveries, the last
/// started writes the `basalt.webhooks` queue settings, circuit breakers are keyed by
/// host:port), which made concurrent tests disturb each other. Servers of one test (two
/// instances, a restart) still share its database. Exits the process when the database cannot
/// be created.
const char* PostgresUrl();

/// Reads a whole file ("" when missing).
std::string ReadFile(const std::string& path);

/// Spawns `argv` (argv[0] is the binary path) with the current environment minus every BASALT_*
/// variable, plus `env`; stdout and stderr go to `log_path`. Returns the pid or -1.
pid_t Spawn(const std::vector<std::string>& argv, const Env& env, const std::string& log_path);

/// Waits for `pid` to exit within `timeout`: its exit code, 128+signal when killed by a signal,
/// nullopt on timeout (the process is left running).
std::optional<int> WaitPid(pid_t pid, std::chrono::milliseconds timeout);

/// The outcome of a short-lived CLI run.
struct RunResult {
  std::optional<int> exit_code;  ///< nullopt: it did not exit in time (it was then killed).
  std::string output;            ///< stdout + stderr.
};

/// Runs `basalt <args...>` to completion in a fresh temp dir. "{tmp}" in an argument is replaced
/// by that directory's path.
RunResult RunBasalt(const std::vector<std::string>& args, const Env& env = {},
                    std::chrono::milliseconds timeout = 20s);

/// Options for BasaltProcess.
struct ProcessOptions {
  std::vector<std::string> args;  ///< Extra arguments after `serve --port 0 --data-dir D`.
  Env env;                        ///< Extra environment variables (BASALT_*).
  bool wait_listening = true;     ///< Wait for the "listening" log line in the constructor.
  std::string data_dir;           ///< Reuse this data directory (a restart); empty: a fresh one.
};

/// The real server: `basalt serve --port 0 --data-dir <fresh temp dir>` + extra args and env.
/// Output goes to <tmp>/basalt.log. The destructor SIGKILLs it if still running and removes the
/// temp dir.
class BasaltProcess {
 public:
  explicit BasaltProcess(ProcessOptions options = {});
  BasaltProcess(std::vector<std::string> args, Env env)
      : BasaltProcess(ProcessOptions{std::move(args), std::move(env), true}) {}
  ~BasaltProcess();
  BasaltProcess(const BasaltProcess&) = delete;
  BasaltProcess& operator=(const BasaltProcess&) = delete;

  /// True when the process runs and announced its port.
  bool started() const { return port_ != 0; }
  /// Why start failed (with the log), for assertion messages.
  const std::string& start_error() const { return start_error_; }
  std::uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }
  const std::string& dir() const { return tmp_.path(); }

  /// Whole log so far.
  std::string LogText() const;
  /// Waits until the log contains `needle`.
  bool WaitForLog(std::string_view needle, std::chrono::milliseconds timeout = 10s) const;
  /// Sends a signal.
  void Signal(int sig);
  /// Exit code (128+sig when killed), or nullopt when still running after `timeout`.
  std::optional<int> WaitExit(std::chrono::milliseconds timeout);
  /// True while the process has not exited (reaps it if it has).
  bool Running();

 private:
  TempDir tmp_;
  std::string log_path_;
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  std::uint16_t port_ = 0;
  std::string start_error_;
};

/// A blocking TCP connection to 127.0.0.1:port with a receive timeout. Responses are parsed with
/// Beast's response parser; bytes after one response stay buffered for the next (pipelining).
class RawConnection {
 public:
  explicit RawConnection(std::uint16_t port, std::chrono::milliseconds recv_timeout = 5s);
  ~RawConnection();
  RawConnection(RawConnection&& other) noexcept;
  RawConnection& operator=(RawConnection&&) = delete;
  RawConnection(const RawConnection&) = delete;

  bool connected() const { return fd_ >= 0; }
  int connect_errno() const { return connect_errno_; }
  int fd() const { return fd_; }

  /// Sends every byte (MSG_NOSIGNAL). False on error (e.g. peer reset).
  bool Send(std::string_view bytes);
  /// Reads one response (a 1xx interim response counts as one). `head`: response to HEAD, so no body.
  HttpResponse ReadResponse(bool head = false);
  /// True when the peer closes (EOF or reset) within `timeout`. Bytes read meanwhile are kept.
  bool IsClosed(std::chrono::milliseconds timeout = 3s);
  /// Bytes received but not yet consumed by ReadResponse.
  const std::string& buffered() const { return buf_; }
  /// Closes our end.
  void Close();

 private:
  int fd_ = -1;
  int connect_errno_ = 0;
  std::chrono::milliseconds recv_timeout_;
  std::string buf_;
  bool eof_ = false;
};

/// Builds a request: "<method> <target> HTTP/1.1", Host, the given headers, Content-Length when
/// `body` is non-empty, then the body.
std::string BuildRequest(std::string_view method, std::string_view target,
                         const std::vector<std::pair<std::string, std::string>>& headers = {},
                         std::string_view body = {});

/// One request on a fresh connection with `Connection: close`.
HttpResponse Request(std::uint16_t port, std::string_view method, std::string_view target,
                     const std::vector<std::pair<std::string, std::string>>& headers = {},
                     std::string_view body = {});

/// GET on a fresh connection.
HttpResponse Get(std::uint16_t port, std::string_view target,
                 const std::vector<std::pair<std::string, std::string>>& headers = {});

/// The admin token the JSON API tests configure (`BASALT_AUTH__ADMIN_TOKEN`) and ApiClient sends.
inline constexpr const char* kTestAdminToken = "test-admin-token-0123456789abcdef0123";

/// Parses a response body; a JSON null for text that is not JSON (the test then fails on its shape).
boost::json::value ParseJson(std::string_view text);

/// Percent-encodes everything but RFC 3986's unreserved characters (query parameters).
std::string UrlEncode(std::string_view s);

/// A JSON API client bound to one server: sends `Bearer kTestAdminToken` unless `admin` is false,
/// and `Content-Type: application/json` with a body unless the headers name another.
struct ApiClient {
  std::uint16_t port;
  bool admin = true;

  HttpResponse Call(std::string_view method, std::string_view target, std::string_view body = {},
                    std::vector<std::pair<std::string, std::string>> headers = {}) const;
  ApiClient Anonymous() const { return ApiClient{port, false}; }
};

/// Polls `condition` (every few ms) until it holds or `timeout` passes.
template <class F>
bool WaitUntil(F&& condition, std::chrono::milliseconds timeout);

/// Sleeps a few milliseconds between polls (nanosleep). Only for polling loops with deadlines.
void PollPause(std::chrono::milliseconds pause = 10ms);

template <class F>
bool WaitUntil(F&& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    PollPause();
  }
}

}  // namespace basalt::testing
