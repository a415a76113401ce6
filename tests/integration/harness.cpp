#include "harness.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include <algorithm>
#include <boost/beast/core/error.hpp>
#include <boost/json.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>

extern char** environ;

namespace basalt::testing {

namespace beast_http = boost::beast::http;

bool CaseLess::operator()(const std::string& a, const std::string& b) const {
  return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) < std::tolower(static_cast<unsigned char>(y));
  });
}

std::optional<std::string> HttpResponse::Header(std::string_view name) const {
  auto it = headers.find(std::string(name));
  if (it == headers.end()) return std::nullopt;
  return it->second;
}

std::string HttpResponse::JoinedHeader(std::string_view name) const {
  std::string out;
  auto [begin, end] = headers.equal_range(std::string(name));
  for (auto it = begin; it != end; ++it) {
    if (!out.empty()) out += ", ";
    out += it->second;
  }
  return out;
}

std::vector<std::string> SplitList(std::string_view value) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= value.size()) {
    std::size_t comma = value.find(',', start);
    if (comma == std::string_view::npos) comma = value.size();
    std::string_view item = value.substr(start, comma - start);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (!item.empty()) out.emplace_back(item);
    start = comma + 1;
  }
  return out;
}

void PollPause(std::chrono::milliseconds pause) {
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(pause.count() / 1000);
  ts.tv_nsec = static_cast<long>((pause.count() % 1000) * 1'000'000);
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

// ---------------------------------------------------------------------------------------------
// Temp dirs, files, processes.

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "basalt-it-XXXXXX").string();
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) != nullptr) path_ = buf.data();
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

namespace {
std::string& BinaryPathStorage() {
  static std::string path;
  return path;
}
}  // namespace

void SetBinaryPath(std::string path) { BinaryPathStorage() = std::move(path); }

std::string BinaryPath() {
  if (!BinaryPathStorage().empty()) return BinaryPathStorage();
  if (const char* p = std::getenv("BASALT_BINARY")) return p;
  return "basalt";
}

namespace {

/// `url` with its database name replaced: the path of a postgres:// URL, else (a key=value
/// conninfo) a trailing dbname= that overrides the first.
std::string WithDatabase(const std::string& url, const std::string& name) {
  const auto scheme = url.find("://");
  if (scheme == std::string::npos) return url + " dbname=" + name;
  const auto query = url.find('?', scheme + 3);
  const auto authority_end = std::min(url.find('/', scheme + 3), query);
  std::string out = url.substr(0, authority_end) + "/" + name;
  if (query != std::string::npos) out += url.substr(query);
  return out;
}

/// Runs one statement on `url`; the error message, empty on success.
std::string RunOnServer(const std::string& url, const std::string& sql) {
  PGconn* conn = PQconnectdb(url.c_str());
  std::string error;
  if (PQstatus(conn) != CONNECTION_OK) {
    error = PQerrorMessage(conn);
  } else {
    PGresult* result = PQexec(conn, sql.c_str());
    if (PQresultStatus(result) != PGRES_COMMAND_OK) error = PQerrorMessage(conn);
    PQclear(result);
  }
  PQfinish(conn);
  return error;
}

struct TestDatabase {
  std::string server_url;  ///< BASALT_TEST_POSTGRES_URL
  std::string name;
  std::string url;
  pid_t owner = ::getpid();
  ~TestDatabase() {
    // Every server of this process is gone (BasaltProcess kills its own); FORCE ends strays.
    if (!name.empty() && ::getpid() == owner) (void)RunOnServer(server_url, "DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
  }
};

}  // namespace

const char* PostgresUrl() {
  static const std::unique_ptr<TestDatabase> database = []() -> std::unique_ptr<TestDatabase> {
    const char* server = std::getenv("BASALT_TEST_POSTGRES_URL");
    if (server == nullptr || *server == '\0') return nullptr;
    auto db = std::make_unique<TestDatabase>();
    db->server_url = server;
    std::random_device random;
    db->name = "basalt_t_" + std::to_string(::getpid()) + "_" + std::to_string(random() % 1000000);
    if (const std::string error = RunOnServer(db->server_url, "CREATE DATABASE " + db->name); !error.empty()) {
      std::fprintf(stderr, "harness: cannot create the test database %s: %s\n", db->name.c_str(), error.c_str());
      std::exit(1);
    }
    db->url = WithDatabase(db->server_url, db->name);
    return db;
  }();
  return database ? database->url.c_str() : nullptr;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

pid_t Spawn(const std::vector<std::string>& argv, const Env& env, const std::string& log_path) {
  std::vector<std::string> env_strings;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry(*e);
    if (entry.starts_with("BASALT_")) continue;  // only what the test asks for
    env_strings.emplace_back(entry);
  }
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);

  std::vector<char*> argv_c;
  for (const auto& a : argv) argv_c.push_back(const_cast<char*>(a.c_str()));
  argv_c.push_back(nullptr);
  std::vector<char*> env_c;
  for (const auto& e : env_strings) env_c.push_back(const_cast<char*>(e.c_str()));
  env_c.push_back(nullptr);

  // fork + exec rather than posix_spawn: the child asks for SIGKILL when the test process dies
  // (PR_SET_PDEATHSIG), so a test that aborts (an ASan report, a crash) leaves no server behind.
  // Between fork and exec the child calls only async-signal-safe functions.
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);  // the parent died before prctl took effect
    const int out = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    const int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (out < 0 || in < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0 || dup2(in, 0) < 0) _exit(127);
    // Default signal dispositions and an empty mask for the child.
    for (int sig = 1; sig < NSIG; ++sig) signal(sig, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execvpe(argv_c[0], argv_c.data(), env_c.data());  // PATH search
    _exit(127);
  }
  return pid;
}

namespace {

int DecodeStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

std::optional<int> WaitPid(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return DecodeStatus(status);
    if (r < 0 && errno != EINTR) return std::nullopt;
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    PollPause(5ms);
  }
}

RunResult RunBasalt(const std::vector<std::string>& args, const Env& env, std::chrono::milliseconds timeout) {
  TempDir tmp;
  std::vector<std::string> argv{BinaryPath()};
  for (std::string a : args) {
    for (std::size_t pos; (pos = a.find("{tmp}")) != std::string::npos;) a.replace(pos, 5, tmp.path());
    argv.push_back(std::move(a));
  }
  const std::string log = tmp.path() + "/output.log";
  RunResult result;
  pid_t pid = Spawn(argv, env, log);
  if (pid < 0) {
    result.output = "spawn failed";
    return result;
  }
  result.exit_code = WaitPid(pid, timeout);
  if (!result.exit_code) {
    kill(pid, SIGKILL);
    WaitPid(pid, 5s);
  }
  result.output = ReadFile(log);
  return result;
}

namespace {

/// Parses `"port":N` from the JSON "listening" line, 0 when absent.
std::uint16_t PortFromLog(const std::string& log) {
  std::size_t line_start = 0;
  while (line_start < log.size()) {
    std::size_t line_end = log.find('\n', line_start);
    if (line_end == std::string::npos) break;  // only complete lines
    std::string_view line(log.data() + line_start, line_end - line_start);
    line_start = line_end + 1;
    if (line.find("\"msg\":\"listening\"") == std::string_view::npos) continue;
    std::size_t p = line.find("\"port\":");
    if (p == std::string_view::npos) continue;
    p += 7;
    while (p < line.size() && line[p] == ' ') ++p;
    unsigned value = 0;
    bool any = false;
    while (p < line.size() && std::isdigit(static_cast<unsigned char>(line[p]))) {
      value = value * 10 + static_cast<unsigned>(line[p] - '0');
      any = true;
      ++p;
    }
    if (any && value > 0 && value < 65536) return static_cast<std::uint16_t>(value);
  }
  return 0;
}

}  // namespace

BasaltProcess::BasaltProcess(ProcessOptions options) {
  if (tmp_.path().empty()) {
    start_error_ = "mkdtemp failed";
    return;
  }
  log_path_ = tmp_.path() + "/basalt.log";
  const std::string data_dir = options.data_dir.empty() ? tmp_.path() + "/data" : options.data_dir;
  std::filesystem::create_directories(data_dir);
  std::vector<std::string> argv{BinaryPath(), "serve", "--port", "0", "--data-dir", data_dir};
  for (auto& a : options.args) argv.push_back(std::move(a));
  // Tests send thousands of requests from 127.0.0.1 as one identity: unless a test sets its own,
  // the default rate is raised (the limiter still runs and adds its headers; the built-in auth
  // route rates stay as shipped). rate_limit_test checks real limits.
  const bool has_rate = std::any_of(options.env.begin(), options.env.end(),
                                    [](const auto& kv) { return kv.first == "BASALT_RATE_LIMIT__DEFAULT"; });
  if (!has_rate) options.env.emplace_back("BASALT_RATE_LIMIT__DEFAULT", "100000/s 100000");
  pid_ = Spawn(argv, options.env, log_path_);
  if (pid_ < 0) {
    start_error_ = "posix_spawn failed for " + argv[0];
    return;
  }
  if (!options.wait_listening) return;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (true) {
    port_ = PortFromLog(ReadFile(log_path_));
    if (port_ != 0) return;
    if (!Running()) {
      start_error_ = "basalt exited with code " + std::to_string(exit_code_.value_or(-1)) +
                     " before listening; log:\n" + LogText();
      return;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      start_error_ = "no \"listening\" line within 20 s; log:\n" + LogText();
      return;
    }
    PollPause(10ms);
  }
}

BasaltProcess::~BasaltProcess() {
  if (pid_ > 0 && !exit_code_) {
    kill(pid_, SIGKILL);
    WaitExit(10s);
  }
}

std::string BasaltProcess::LogText() const { return ReadFile(log_path_); }

bool BasaltProcess::WaitForLog(std::string_view needle, std::chrono::milliseconds timeout) const {
  return WaitUntil([&] { return LogText().find(needle) != std::string::npos; }, timeout);
}

void BasaltProcess::Signal(int sig) {
  if (pid_ > 0 && !exit_code_) kill(pid_, sig);
}

std::optional<int> BasaltProcess::WaitExit(std::chrono::milliseconds timeout) {
  if (exit_code_ || pid_ <= 0) return exit_code_;
  exit_code_ = WaitPid(pid_, timeout);
  return exit_code_;
}

bool BasaltProcess::Running() {
  if (pid_ <= 0) return false;
  if (exit_code_) return false;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_code_ = DecodeStatus(status);
    return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Raw connections.

RawConnection::RawConnection(std::uint16_t port, std::chrono::milliseconds recv_timeout)
    : recv_timeout_(recv_timeout) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    connect_errno_ = errno;
    return;
  }
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(recv_timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((recv_timeout.count() % 1000) * 1000);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int rc;
  do {
    rc = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    connect_errno_ = errno;
    ::close(fd);
    return;
  }
  fd_ = fd;
}

RawConnection::~RawConnection() { Close(); }

RawConnection::RawConnection(RawConnection&& other) noexcept
    : fd_(other.fd_),
      connect_errno_(other.connect_errno_),
      recv_timeout_(other.recv_timeout_),
      buf_(std::move(other.buf_)),
      eof_(other.eof_) {
  other.fd_ = -1;
}

void RawConnection::Close() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

bool RawConnection::Send(std::string_view bytes) {
  if (fd_ < 0) return false;
  while (!bytes.empty()) {
    ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

HttpResponse RawConnection::ReadResponse(bool head) {
  HttpResponse out;
  if (fd_ < 0) {
    out.error = "not connected";
    return out;
  }
  beast_http::response_parser<beast_http::string_body> parser;
  parser.eager(true);
  parser.skip(head);
  parser.header_limit(1024 * 1024);
  parser.body_limit(64ull * 1024 * 1024);
  boost::beast::error_code ec;
  const auto deadline = std::chrono::steady_clock::now() + recv_timeout_;
  while (!parser.is_done()) {
    if (!buf_.empty()) {
      std::size_t used = parser.put(boost::asio::buffer(buf_.data(), buf_.size()), ec);
      buf_.erase(0, used);
      if (ec == beast_http::error::need_more) {
        ec = {};
        if (used > 0 && !buf_.empty()) continue;
      } else if (ec) {
        out.error = "parse error: " + ec.message();
        return out;
      } else {
        continue;
      }
    }
    if (parser.is_done()) break;
    if (eof_) {
      if (!parser.got_some()) {
        out.error = "connection closed before a response";
        out.closed_after = true;
        return out;
      }
      parser.put_eof(ec);
      if (ec) {
        out.error = "connection closed mid-response: " + ec.message();
        out.closed_after = true;
        return out;
      }
      break;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      out.error = "timed out waiting for a response";
      return out;
    }
    char chunk[16384];
    ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n > 0) {
      buf_.append(chunk, static_cast<std::size_t>(n));
    } else if (n == 0 || errno == ECONNRESET) {
      eof_ = true;
    } else if (errno == EINTR) {
      continue;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      out.error = "timed out waiting for a response (SO_RCVTIMEO)";
      return out;
    } else {
      out.error = std::string("recv: ") + std::strerror(errno);
      return out;
    }
  }
  const auto& msg = parser.get();
  out.ok = true;
  out.status = static_cast<int>(msg.result_int());
  out.version = msg.version();
  for (const auto& field : msg) {
    out.headers.emplace(std::string(field.name_string()), std::string(field.value()));
  }
  out.body = msg.body();
  if (out.status >= 200) {
    if (eof_) {
      out.closed_after = true;
    } else if (!msg.keep_alive()) {
      out.closed_after = IsClosed(recv_timeout_);
    } else {
      out.closed_after = IsClosed(0ms);
    }
  }
  return out;
}

bool RawConnection::IsClosed(std::chrono::milliseconds timeout) {
  if (eof_) return true;
  if (fd_ < 0) return true;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    auto now = std::chrono::steady_clock::now();
    int wait_ms = now >= deadline
                      ? 0
                      : static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count());
    pollfd p{fd_, POLLIN, 0};
    int rc = ::poll(&p, 1, wait_ms);
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) return false;
    char chunk[16384];
    ssize_t n = ::recv(fd_, chunk, sizeof chunk, MSG_DONTWAIT);
    if (n > 0) {
      buf_.append(chunk, static_cast<std::size_t>(n));  // keep it for ReadResponse
    } else if (n == 0 || errno == ECONNRESET || errno == EPIPE) {
      eof_ = true;
      return true;
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      eof_ = true;
      return true;
    }
    if (std::chrono::steady_clock::now() >= deadline) return false;
  }
}

std::string BuildRequest(std::string_view method, std::string_view target,
                         const std::vector<std::pair<std::string, std::string>>& headers,
                         std::string_view body) {
  std::string out;
  out.append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
  bool has_host = false;
  for (const auto& [k, v] : headers) {
    if (CaseLess{}(k, "Host") == false && CaseLess{}("Host", k) == false) has_host = true;
  }
  if (!has_host) out += "Host: 127.0.0.1\r\n";
  for (const auto& [k, v] : headers) out.append(k).append(": ").append(v).append("\r\n");
  if (!body.empty()) out.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
  out += "\r\n";
  out.append(body);
  return out;
}

boost::json::value ParseJson(std::string_view text) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(text, ec);
  return ec ? boost::json::value(nullptr) : v;
}

std::string UrlEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

HttpResponse ApiClient::Call(std::string_view method, std::string_view target, std::string_view body,
                             std::vector<std::pair<std::string, std::string>> headers) const {
  if (admin) headers.emplace_back("Authorization", std::string("Bearer ") + kTestAdminToken);
  if (!body.empty() && std::none_of(headers.begin(), headers.end(), [](const auto& h) {
        return std::equal(h.first.begin(), h.first.end(), "content-type", "content-type" + 12,
                          [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == b; });
      }))
    headers.emplace_back("Content-Type", "application/json");
  return Request(port, method, target, headers, body);
}

HttpResponse Request(std::uint16_t port, std::string_view method, std::string_view target,
                     const std::vector<std::pair<std::string, std::string>>& headers, std::string_view body) {
  RawConnection conn(port);
  if (!conn.connected()) {
    HttpResponse r;
    r.error = std::string("connect: ") + std::strerror(conn.connect_errno());
    return r;
  }
  auto all = headers;
  all.emplace_back("Connection", "close");
  if (!conn.Send(BuildRequest(method, target, all, body))) {
    HttpResponse r;
    r.error = "send failed";
    return r;
  }
  return conn.ReadResponse(method == "HEAD");
}

HttpResponse Get(std::uint16_t port, std::string_view target,
                 const std::vector<std::pair<std::string, std::string>>& headers) {
  return Request(port, "GET", target, headers);
}

}  // namespace basalt::testing
