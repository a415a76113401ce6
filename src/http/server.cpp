// The only translation unit that instantiates Beast's HTTP and Asio's socket templates.
//
// Runtime model: `threads` io_contexts, each run by one thread, each with its own SO_REUSEPORT
// acceptor (per-core), so a connection lives and dies on one thread and the request path shares
// nothing: no strand, no lock. (One io_context shared by every thread was measured too and was
// slower: ~14 us of CPU per request against ~10 us, and it needs a strand per connection.)

#include "http/server.hpp"

#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <ctime>
#include <optional>
#include <thread>
#include <tuple>
#include <unordered_set>

#include "core/ids.hpp"
#include "core/strings.hpp"
#include "core/swar.hpp"
#include "core/time.hpp"
#include "http/problem.hpp"
#include "obs/log.hpp"

namespace basalt::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using core::ErrorCode;

namespace {

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

thread_local unsigned t_shard = 0;

// The Date header changes once a second; format it at most once a second per thread.
const std::string& CachedHttpDate() {
  thread_local std::time_t last = 0;
  thread_local std::string text;
  const auto now = std::chrono::system_clock::now();
  const std::time_t secs = std::chrono::system_clock::to_time_t(now);
  if (secs != last) {
    last = secs;
    text = core::FormatHttpDate(now);
  }
  return text;
}

bool IsQuietDisconnect(const beast::error_code& ec) {
  return ec == bhttp::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::operation_aborted || ec == asio::error::broken_pipe ||
         ec == bhttp::error::partial_message || ec == asio::ssl::error::stream_truncated;
}

// A read error turned into the problem to answer with; nullopt when the peer is simply gone.
std::optional<core::Error> ReadErrorToProblem(const beast::error_code& ec, const beast::flat_buffer& buffer,
                                              std::uint32_t max_line, bool request_line_parsed) {
  if (ec == beast::error::timeout) {
    return core::Error::Make(ErrorCode::kRequestTimeout, "The request was not received in time.");
  }
  if (IsQuietDisconnect(ec)) return std::nullopt;
  if (ec == bhttp::error::header_limit) {
    // The request line alone may be what overflowed: 414 rather than 431. Once the parser has
    // taken the request line, the overflow is in the header fields.
    const std::string_view data(static_cast<const char*>(buffer.data().data()), buffer.size());
    const auto eol = data.find("\r\n");
    const bool line_too_long =
        (eol == std::string_view::npos && data.size() > max_line) || (eol != std::string_view::npos && eol > max_line);
    if (!request_line_parsed && line_too_long) {
      return core::Error::Make(ErrorCode::kUriTooLong, "The request line is longer than the server accepts.");
    }
    return core::Error::Make(ErrorCode::kHeadersTooLarge, "The request's header block is larger than the server accepts.");
  }
  if (ec == bhttp::error::body_limit) {
    return core::Error::Make(ErrorCode::kPayloadTooLarge, "The request body is larger than this endpoint accepts.");
  }
  if (ec == bhttp::error::bad_method) {
    return core::Error::Make(ErrorCode::kBadRequest, "The request method is not a valid token.");
  }
  if (ec == bhttp::error::bad_content_length || ec == bhttp::error::multiple_content_length) {
    return core::Error::Make(ErrorCode::kBadRequest, "The Content-Length header is invalid.");
  }
  return core::Error::Make(ErrorCode::kBadRequest, "The request is not valid HTTP/1.1 (" + ec.message() + ").");
}

// No CR, LF or NUL in `value`. Eight bytes at a time: only a word with a byte below 0x0E is
// looked at byte by byte.
bool HasNoLineBreak(std::string_view value) {
  std::size_t i = 0;
  for (; i + 8 <= value.size(); i += 8) {
    if (!core::swar::HasLess(core::swar::Load(value.data() + i), 0x0E)) continue;
    for (std::size_t k = i; k < i + 8; ++k) {
      if (value[k] == '\r' || value[k] == '\n' || value[k] == '\0') return false;
    }
  }
  for (; i < value.size(); ++i) {
    if (value[i] == '\r' || value[i] == '\n' || value[i] == '\0') return false;
  }
  return true;
}

// Writes "name: value" without CR, LF or NUL, so no handler can split the response: copied as it
// is, then looked at once; only a field that holds one of them is written again, without them.
char* PutHeaderField(char* p, std::string_view name, std::string_view value) {
  char* const start = p;
  p = core::CopyTo(p, name);
  p = core::CopyTo(p, ": ");
  p = core::CopyTo(p, value);
  if (HasNoLineBreak(std::string_view(start, static_cast<std::size_t>(p - start)))) return p;
  p = start;
  for (const std::string_view text : {name, std::string_view(": "), value}) {
    for (char c : text) {
      if (c != '\r' && c != '\n' && c != '\0') *p++ = c;
    }
  }
  return p;
}

// Writes the status line and headers of `response` into `wire`. Serialising by hand into one
// reused buffer costs a fraction of Beast's field-by-field buffer sequence, which dominated the
// profile of small responses; the head is written through a pointer into space reserved for its
// longest form, then trimmed. Returns whether the status allows a body.
bool SerializeHead(std::string& wire, const Response& response, unsigned version, bool keep_alive) {
  const std::string_view reason = bhttp::obsolete_reason(static_cast<bhttp::status>(response.status));
  const std::string& date = CachedHttpDate();
  std::size_t bound = 160 + reason.size() + date.size();  // status line, Date, Server, framing, Connection
  for (const auto& [name, value] : response.headers) bound += name.size() + value.size() + 4;
  const bool body_allowed = response.status >= 200 && response.status != 204 && response.status != 304;
  wire.clear();
  wire.resize_and_overwrite(bound, [&](char* base, std::size_t) {
    char* p = core::CopyTo(base, version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ");
    p = std::to_chars(p, p + 16, response.status).ptr;
    *p++ = ' ';
    p = core::CopyTo(p, reason);
    p = core::CopyTo(p, "\r\nDate: ");
    p = core::CopyTo(p, date);
    p = core::CopyTo(p, "\r\nServer: basalt\r\n");
    for (const auto& [name, value] : response.headers) {
      p = PutHeaderField(p, name, value);
      p = core::CopyTo(p, "\r\n");
    }
    if (body_allowed && response.stream) {
      if (version != 10) p = core::CopyTo(p, "Transfer-Encoding: chunked\r\n");
    } else if (body_allowed) {
      p = core::CopyTo(p, "Content-Length: ");
      p = std::to_chars(p, p + 24, response.body.size()).ptr;
      p = core::CopyTo(p, "\r\n");
    }
    if (!keep_alive) {
      p = core::CopyTo(p, "Connection: close\r\n");
    } else if (version == 10) {
      p = core::CopyTo(p, "Connection: keep-alive\r\n");
    }
    p = core::CopyTo(p, "\r\n");
    return static_cast<std::size_t>(p - base);
  });
  return body_allowed;
}

// Feeds what `buffer` already holds to `parser`, without waiting for the socket: a request that
// arrived whole (the usual case) is parsed here and never goes through Beast's asynchronous read
// composition. Stops after the header unless the parser is eager. need_more when the buffered
// bytes end before the header (or, eager, the message) does.
beast::error_code ParseBuffered(bhttp::request_parser<bhttp::string_body>& parser, beast::flat_buffer& buffer) {
  beast::error_code ec;
  while (buffer.size() > 0) {
    const std::size_t used = parser.put(buffer.data(), ec);
    buffer.consume(used);
    if (ec) return ec;
    if (parser.is_done() || (!parser.eager() && parser.is_header_done())) return {};
    if (used == 0) break;
  }
  return parser.is_done() ? beast::error_code() : beast::error_code(bhttp::error::need_more);
}

// Sends what the socket takes right now without waiting (plain TCP only; TLS and test streams
// send nothing here) and drops the sent bytes from `buffers`. False when the connection failed.
template <class Stream>
bool SendNow(Stream& stream, std::array<asio::const_buffer, 2>& buffers) {
  if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
    auto& socket = stream.socket();
    beast::error_code ec;
    if (!socket.non_blocking()) socket.non_blocking(true, ec);  // asynchronous operations are unaffected
    if (ec) return true;  // leave it all to the asynchronous write
    std::size_t sent = socket.write_some(buffers, ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) return true;
    if (ec) return false;
    for (auto& b : buffers) {
      const std::size_t take = std::min(sent, b.size());
      b += take;
      sent -= take;
    }
  }
  return true;
}

// What a shutdown or a deadline can do to a session. Only the session's own thread touches it.
//
// Deadlines: a session does not arm a timer per read or write (that was a timer insert, a cancel
// and an aborted-wait handler per operation, several times per request). It only writes its
// deadline here; each I/O thread's sweeper looks at its sessions a few times a second and cancels
// the socket operations of a session whose deadline has passed (`timed_out` tells the session
// why its operation was aborted).
struct SessionControl {
  using Clock = std::chrono::steady_clock;
  std::function<void()> cancel;  // set while the session lives; cancels pending socket operations
  std::function<void()> wake;    // set while a streaming response waits; ends the wait
  bool busy = false;             // a request is being read or handled
  bool stop = false;             // finish the current request, then close
  bool timed_out = false;        // the sweeper cancelled an operation that passed the deadline
  Clock::time_point deadline = Clock::time_point::max();

  void ExpireIn(std::chrono::milliseconds after) {
    deadline = Clock::now() + after;
    timed_out = false;
  }
  void ExpireNever() { deadline = Clock::time_point::max(); }
  // An aborted operation's error, turned into a timeout when the sweeper aborted it.
  beast::error_code Why(beast::error_code ec) const {
    return ec && timed_out ? beast::error_code(beast::error::timeout) : ec;
  }
};

// The rest of a header (or, eager, of a whole message) that ParseBuffered found missing: reads
// from the socket under `timeout` and parses whatever arrives, until the part is complete or an
// error. Not Beast's async_read: it would hand the parser the bytes ParseBuffered has already
// shown it without anything new, and Beast's chunk parser requires more (it asserts, in the
// final chunk). An operation the sweeper aborted at the deadline comes back as
// beast::error::timeout; a peer that closes, as the stream's error (a quiet disconnect). Only this
// slow path is a coroutine of its own.
constexpr std::size_t kReadSize = 64 * 1024;  // per read of ReadMore (what Beast's own reads use)

template <class Stream>
asio::awaitable<beast::error_code> ReadMore(Stream& stream, beast::flat_buffer& buffer,
                                            bhttp::request_parser<bhttp::string_body>& parser, SessionControl& ctl,
                                            std::chrono::milliseconds timeout) {
  ctl.ExpireIn(timeout);
  for (;;) {
    auto [ec, n] = co_await stream.async_read_some(buffer.prepare(kReadSize), kUseTuple);
    if (ec) co_return ctl.Why(ec);
    buffer.commit(n);
    if (const beast::error_code parsed = ParseBuffered(parser, buffer); parsed != bhttp::error::need_more) {
      co_return parsed;
    }
  }
}

// Lingering close: after our FIN, read and discard until the peer closes too, for at most 2 s.
// Closing a socket with unread input makes the kernel send a reset, and a reset can destroy a
// response the client has not read yet: a 413 answered before a large body was read would then
// reach the client as "connection reset" instead.
asio::awaitable<void> Linger(beast::tcp_stream& stream, SessionControl& ctl) {
  std::array<char, 4096> sink;
  ctl.ExpireIn(std::chrono::seconds(2));  // one deadline for the whole drain
  for (;;) {
    auto [ec, n] = co_await stream.socket().async_read_some(asio::buffer(sink), kUseTuple);
    if (ec) co_return;
  }
}

// The waiting side of a stream: a timer that the producer waits on and that other threads wake.
struct WakeState {
  explicit WakeState(const asio::any_io_executor& ex) : timer(ex) {}
  asio::steady_timer timer;
  std::atomic<bool> woken{false};
};

// StreamWriter over the connection's stream: chunked framing on HTTP/1.1, raw on HTTP/1.0.
template <class Stream>
class SocketStreamWriter final : public StreamWriter {
 public:
  SocketStreamWriter(Stream& stream, SessionControl& ctl, bool chunked, std::chrono::milliseconds timeout,
                     std::shared_ptr<WakeState> wake)
      : stream_(stream), ctl_(ctl), chunked_(chunked), timeout_(timeout), wake_(std::move(wake)) {}

  Task<bool> Write(std::string data) override {
    if (failed_ || ctl_.stop) co_return false;
    if (data.empty()) co_return true;
    std::string frame;
    if (chunked_) {
      char digits[16];
      auto end = std::to_chars(digits, digits + sizeof digits, data.size(), 16).ptr;
      frame.reserve(data.size() + 16);
      frame.append(digits, end);
      frame += "\r\n";
      frame += data;
      frame += "\r\n";
    } else {
      frame = std::move(data);
    }
    ctl_.ExpireIn(timeout_);
    auto [ec, n] = co_await asio::async_write(stream_, asio::buffer(frame), kUseTuple);
    ctl_.ExpireNever();
    if (ec) failed_ = true;
    co_return !failed_ && !ctl_.stop;
  }

  Task<void> Wait(std::chrono::milliseconds at_most) override {
    if (wake_->woken.exchange(false) || ctl_.stop) co_return;
    wake_->timer.expires_after(at_most);
    co_await wake_->timer.async_wait(kUseTuple);
    wake_->woken.store(false);
  }

  std::function<void()> Waker() override {
    std::weak_ptr<WakeState> weak = wake_;
    return [weak] {
      auto w = weak.lock();
      if (!w) return;
      w->woken.store(true);
      asio::post(w->timer.get_executor(), [w] { w->timer.cancel(); });
    };
  }

  bool closing() const override { return ctl_.stop; }
  bool failed() const { return failed_; }

 private:
  Stream& stream_;
  SessionControl& ctl_;
  bool chunked_;
  std::chrono::milliseconds timeout_;
  std::shared_ptr<WakeState> wake_;
  bool failed_ = false;
};

}  // namespace

struct Server::Impl {
  // One per io_context: its acceptor and its live sessions.
  // One per I/O thread. Everything in it is touched only by that thread.
  struct Core {
    asio::io_context ctx{1};
    std::optional<tcp::acceptor> acceptor;
    std::unordered_set<SessionControl*> sessions;
    std::optional<asio::steady_timer> sweep_timer;  // set while the sweeper runs
  };

  Impl(ServerOptions o, const Router& r, const Pipeline& p, Readiness& rd)
      : options(std::move(o)), router(r), pipeline(p), readiness(rd) {}

  ServerOptions options;
  const Router& router;
  const Pipeline& pipeline;
  Readiness& readiness;
  std::optional<asio::ssl::context> ssl;
  std::vector<std::unique_ptr<Core>> cores;
  std::vector<std::thread> threads;
  std::atomic<unsigned> connections{0};
  std::atomic<bool> stopping{false};
  std::uint16_t port = 0;
  unsigned thread_count = 1;

  core::Result<void> Bind();
  core::Result<void> LoadTls();
  asio::awaitable<void> AcceptLoop(Core& core);
  asio::awaitable<void> Reject(tcp::socket socket);
  asio::awaitable<void> ShutdownCore(Core& core);
  asio::awaitable<void> Sweep(Core& core);
  void AddSession(Core& core, SessionControl* ctl);
  void RemoveSession(Core& core, SessionControl* ctl);
  template <class Stream>
  asio::awaitable<void> Session(Stream stream, Core& core, std::string remote);
  template <class Stream>
  asio::awaitable<void> Serve(Stream& stream, SessionControl& ctl, const std::string& remote);
  template <class Stream>
  asio::awaitable<void> ServeStream(Stream& stream, SessionControl& ctl, Response& response, unsigned version);
};

template <class Stream>
asio::awaitable<void> Server::Impl::ServeStream(Stream& stream, SessionControl& ctl, Response& response,
                                                unsigned version) {
  // A streaming response does not hold up a graceful shutdown: the shutdown wakes the producer,
  // which returns, and the stream ends with its last chunk.
  auto wake = std::make_shared<WakeState>(stream.get_executor());
  ctl.wake = [wake] { wake->timer.cancel(); };
  ctl.busy = false;
  SocketStreamWriter<Stream> writer(stream, ctl, version != 10, options.body_timeout, wake);
  try {
    co_await response.stream(writer);
  } catch (const std::exception& e) {
    obs::Log(obs::LogLevel::kError, "stream producer failed", {{"error", e.what()}});
  }
  ctl.wake = nullptr;
  if (!writer.failed() && version != 10) {
    static constexpr std::string_view kLast = "0\r\n\r\n";
    ctl.ExpireIn(std::chrono::seconds(2));
    co_await asio::async_write(stream, asio::buffer(kLast), kUseTuple);
    ctl.ExpireNever();
  }
}

core::Result<void> Server::Impl::LoadTls() {
  if (options.tls_cert_file.empty() || options.tls_key_file.empty()) return {};
  try {
    ssl.emplace(asio::ssl::context::tls_server);
    ssl->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                     asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1 |
                     asio::ssl::context::single_dh_use);
    ssl->use_certificate_chain_file(options.tls_cert_file);
    ssl->use_private_key_file(options.tls_key_file, asio::ssl::context::pem);
  } catch (const std::exception& e) {
    ssl.reset();
    return core::Fail(ErrorCode::kInternal, "cannot load TLS certificate or key: " + std::string(e.what()));
  }
  return {};
}

core::Result<void> Server::Impl::Bind() {
  beast::error_code ec;
  const auto address = asio::ip::make_address(options.host, ec);
  if (ec) return core::Fail(ErrorCode::kInternal, "invalid listen address '" + options.host + "'");
  std::uint16_t bind_port = options.port;
  if (bind_port != 0) {
    // SO_REUSEPORT would let us join another process already listening on this port and split
    // its traffic. A plain bind (no SO_REUSEPORT) fails while anyone listens there: probe first.
    tcp::acceptor probe(cores.front()->ctx);
    const tcp::endpoint endpoint(address, bind_port);
    probe.open(endpoint.protocol(), ec);
    if (!ec) probe.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) probe.bind(endpoint, ec);
    if (ec) {
      return core::Fail(ErrorCode::kInternal, "cannot listen on " + options.host + ":" + std::to_string(bind_port) +
                                                  ": " + ec.message());
    }
    probe.close(ec);
  }
  for (auto& core_ptr : cores) {
    Core& core = *core_ptr;
    auto& acc = core.acceptor.emplace(core.ctx);
    tcp::endpoint endpoint(address, bind_port);
    acc.open(endpoint.protocol(), ec);
    if (!ec) acc.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) {
      const int one = 1;
      if (::setsockopt(acc.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
        ec.assign(errno, boost::system::system_category());
      }
    }
    if (!ec) acc.bind(endpoint, ec);
    if (!ec) acc.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return core::Fail(ErrorCode::kInternal, "cannot listen on " + options.host + ":" + std::to_string(bind_port) +
                                                  ": " + ec.message());
    }
    // Port 0: the first acceptor picks a port, the others join it.
    bind_port = acc.local_endpoint().port();
  }
  port = bind_port;
  return {};
}

asio::awaitable<void> Server::Impl::Reject(tcp::socket socket) {
  // Over max_connections: answer 503 without reading the request, then close.
  const std::string id = core::FormatUuid(core::NewUuidV7());
  Response problem = Problem(core::Error::Make(ErrorCode::kUnavailable, "The server is at its connection limit."), id);
  std::string wire = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/problem+json\r\n"
                     "Cache-Control: no-store\r\nRetry-After: 1\r\nConnection: close\r\nX-Request-Id: " +
                     id + "\r\nContent-Length: " + std::to_string(problem.body.size()) + "\r\n\r\n" + problem.body;
  co_await asio::async_write(socket, asio::buffer(wire), kUseTuple);
  beast::error_code ec;
  socket.shutdown(tcp::socket::shutdown_both, ec);
}

asio::awaitable<void> Server::Impl::AcceptLoop(Core& core) {
  auto& acceptor = *core.acceptor;
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(kUseTuple);
    if (ec) {
      if (stopping.load() || ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor) co_return;
      obs::Log(obs::LogLevel::kWarn, "accept failed", {{"error", ec.message()}});
      if (ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space) {
        // Out of file descriptors: back off briefly instead of spinning.
        asio::steady_timer timer(core.ctx, std::chrono::milliseconds(50));
        co_await timer.async_wait(kUseTuple);
      }
      continue;
    }
    if (connections.fetch_add(1, std::memory_order_relaxed) >= options.max_connections) {
      connections.fetch_sub(1, std::memory_order_relaxed);
      auto exec = socket.get_executor();
      asio::co_spawn(exec, Reject(std::move(socket)), asio::detached);
      continue;
    }
    beast::error_code opt_ec;
    socket.set_option(tcp::no_delay(true), opt_ec);
    std::string remote;
    if (auto ep = socket.remote_endpoint(opt_ec); !opt_ec) remote = ep.address().to_string();
    if (ssl) {
      asio::co_spawn(core.ctx,
                     Session(beast::ssl_stream<beast::tcp_stream>(beast::tcp_stream(std::move(socket)), *ssl), core,
                             std::move(remote)),
                     asio::detached);
    } else {
      asio::co_spawn(core.ctx, Session(beast::tcp_stream(std::move(socket)), core, std::move(remote)),
                     asio::detached);
    }
  }
}

// How often a sweeper looks at its sessions' deadlines: a quarter of the shortest timeout, between
// 5 ms and 250 ms. A timeout fires at most one tick late.
static std::chrono::milliseconds SweepTick(const ServerOptions& o) {
  const auto shortest = std::min({o.header_timeout, o.body_timeout, o.idle_timeout});
  return std::clamp(shortest / 4, std::chrono::milliseconds(5), std::chrono::milliseconds(250));
}

void Server::Impl::AddSession(Core& core, SessionControl* ctl) {
  core.sessions.insert(ctl);
  if (!core.sweep_timer) {
    core.sweep_timer.emplace(core.ctx);
    asio::co_spawn(core.ctx, Sweep(core), asio::detached);
  }
}

void Server::Impl::RemoveSession(Core& core, SessionControl* ctl) {
  core.sessions.erase(ctl);
  if (core.sessions.empty() && core.sweep_timer) core.sweep_timer->cancel();  // no work left: let it end
}

asio::awaitable<void> Server::Impl::Sweep(Core& core) {
  const auto tick = SweepTick(options);
  while (!core.sessions.empty()) {
    core.sweep_timer->expires_after(tick);
    co_await core.sweep_timer->async_wait(kUseTuple);
    const auto now = SessionControl::Clock::now();
    for (SessionControl* ctl : core.sessions) {
      if (ctl->deadline <= now && !ctl->timed_out) {
        ctl->timed_out = true;
        if (ctl->cancel) ctl->cancel();
      }
    }
  }
  core.sweep_timer.reset();
}

template <class Stream>
asio::awaitable<void> Server::Impl::Session(Stream stream, Core& core, std::string remote) {
  SessionControl control;
  SessionControl* ctl = &control;
  ctl->cancel = [&stream] { beast::get_lowest_layer(stream).cancel(); };
  AddSession(core, ctl);
  try {
    if constexpr (!std::is_same_v<Stream, beast::tcp_stream>) {
      ctl->ExpireIn(options.header_timeout);
      auto [ec] = co_await stream.async_handshake(asio::ssl::stream_base::server, kUseTuple);
      if (!ec) co_await Serve(stream, *ctl, remote);
      if (!ec) {
        ctl->ExpireIn(std::chrono::seconds(2));
        co_await stream.async_shutdown(kUseTuple);
      }
    } else {
      co_await Serve(stream, *ctl, remote);
      beast::error_code ec;
      stream.socket().shutdown(tcp::socket::shutdown_send, ec);
      if (!ec) co_await Linger(stream, *ctl);
    }
  } catch (const std::exception& e) {
    obs::Log(obs::LogLevel::kError, "connection failed", {{"error", e.what()}, {"remote", remote}});
  }
  RemoveSession(core, ctl);
  connections.fetch_sub(1, std::memory_order_relaxed);
}

template <class Stream>
asio::awaitable<void> Server::Impl::Serve(Stream& stream, SessionControl& ctl, const std::string& remote) {
  beast::flat_buffer buffer;
  std::string wire;  // the response head, reused for every response on this connection
  for (;;) {
    if (ctl.stop) co_return;
    // Idle: wait for the first byte of the next request under the keep-alive timeout. On plain
    // TCP straight from the socket (Beast's stream adds nothing here but cost).
    if (buffer.size() == 0) {
      ctl.ExpireIn(options.idle_timeout);
      beast::error_code ec;
      std::size_t n = 0;
      if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
        std::tie(ec, n) = co_await stream.socket().async_read_some(buffer.prepare(2048), kUseTuple);
      } else {
        std::tie(ec, n) = co_await stream.async_read_some(buffer.prepare(2048), kUseTuple);
      }
      if (ec) co_return;
      buffer.commit(n);
    }
    ctl.busy = true;
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(options.max_header_bytes);
    parser.body_limit(options.max_body_bytes);
    beast::error_code hec = ParseBuffered(parser, buffer);
    if (hec == bhttp::error::need_more) hec = co_await ReadMore(stream, buffer, parser, ctl, options.header_timeout);
    ctl.ExpireNever();

    std::optional<core::Error> early;
    bool close_after = false;
    RouteMatch match;
    Method method = Method::kOther;
    if (hec) {
      early = ReadErrorToProblem(hec, buffer, options.max_request_line_bytes, !parser.get().target().empty());
      if (!early) co_return;
      close_after = true;
    } else {
      auto& msg = parser.get();
      method = ParseMethod(msg.method_string());
      const std::string_view target = msg.target();
      if (target.size() > options.max_request_line_bytes) {
        early = core::Error::Make(ErrorCode::kUriTooLong, "The request target is longer than the server accepts.");
      } else if (method == Method::kOther) {
        early = core::Error::Make(ErrorCode::kNotImplemented,
                                  "The method " + std::string(msg.method_string()) + " is not supported.");
      } else if (target.empty() || target.front() != '/') {
        early = core::Error::Make(ErrorCode::kBadRequest, "The request target must be an absolute path.");
      }
      if (!early) {
        match = router.Find(method, target.substr(0, target.find('?')));
        std::uint64_t limit = options.max_body_bytes;
        if (match.route && match.route->options.max_body_bytes) limit = *match.route->options.max_body_bytes;
        const auto length = parser.content_length();
        const bool has_body = (length && *length > 0) || parser.chunked();
        if (length && *length > limit) {
          // Answer before reading a byte of the body.
          early = core::Error::Make(ErrorCode::kPayloadTooLarge,
                                    "The request body is larger than this endpoint accepts (" + std::to_string(limit) +
                                        " bytes).");
        } else if (has_body && bhttp::token_list(msg[bhttp::field::expect]).exists("100-continue") &&
                   match.kind != RouteMatch::Kind::kFound) {
          // The answer does not depend on the body: do not invite it.
          close_after = true;
        } else if (!parser.is_done()) {
          parser.body_limit(limit);
          if (bhttp::token_list(msg[bhttp::field::expect]).exists("100-continue")) {
            static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
            ctl.ExpireIn(options.body_timeout);
            auto [cec, cn] = co_await asio::async_write(stream, asio::buffer(kContinue), kUseTuple);
            if (cec) co_return;
          }
          parser.eager(true);
          beast::error_code bec = ParseBuffered(parser, buffer);
          if (bec == bhttp::error::need_more) bec = co_await ReadMore(stream, buffer, parser, ctl, options.body_timeout);
          ctl.ExpireNever();
          if (bec) {
            early = ReadErrorToProblem(bec, buffer, options.max_request_line_bytes, true);
            if (!early) co_return;
          }
        }
      }
      if (early) close_after = true;
    }

    // Build the request the pipeline sees. Views point into the parser's message.
    auto& msg = parser.get();
    Request::HeaderList headers;
    if (!hec) {
      headers.reserve(12);
      for (const auto& field : msg) headers.emplace_back(field.name_string(), field.value());
    }
    Request request(hec ? Method::kOther : method, hec ? std::string_view() : std::string_view(msg.method_string()),
                    hec ? std::string_view() : std::string_view(msg.target()), hec ? 11u : msg.version(), std::move(headers),
                    hec ? std::string() : std::move(msg.body()), remote);
    request.set_shard(t_shard);
    request.set_max_json_depth(options.max_json_depth);
    if (early) {
      request.set_early_error(&*early);
    } else {
      request.set_match(&match);
      if (match.route) request.set_route(match.route->pattern, std::move(match.params));
    }

    Response response;
    try {
      response = co_await pipeline.Run(request);
    } catch (const std::exception& e) {
      response = InternalError(request, e);
    }

    const bool streaming = static_cast<bool>(response.stream);
    const bool keep_alive = !close_after && !hec && msg.keep_alive() && !ctl.stop && !streaming;
    const unsigned version = hec ? 11 : msg.version();
    const bool send_body = SerializeHead(wire, response, version, keep_alive) && method != Method::kHead;
    if (streaming) {
      ctl.ExpireIn(options.body_timeout);
      auto [hwec, hwn] = co_await asio::async_write(stream, asio::buffer(wire), kUseTuple);
      ctl.ExpireNever();
      if (!hwec && send_body) co_await ServeStream(stream, ctl, response, version);
      ctl.busy = false;
      co_return;
    }
    std::array<asio::const_buffer, 2> buffers{asio::buffer(wire),
                                              send_body ? asio::buffer(response.body) : asio::const_buffer()};
    // Most responses fit in the socket's send buffer: one non-blocking send, and only what it
    // could not take goes through the asynchronous write with its deadline timer.
    if (!SendNow(stream, buffers)) co_return;
    beast::error_code wec;
    if (buffers[0].size() + buffers[1].size() > 0) {
      ctl.ExpireIn(options.body_timeout);
      std::tie(wec, std::ignore) = co_await asio::async_write(stream, buffers, kUseTuple);
      ctl.ExpireNever();
    }
    ctl.busy = false;
    if (wec || !keep_alive) co_return;
  }
}

asio::awaitable<void> Server::Impl::ShutdownCore(Core& core) {
  if (options.drain_delay.count() > 0) {
    asio::steady_timer delay(core.ctx, options.drain_delay);
    co_await delay.async_wait(kUseTuple);
  }
  if (core.acceptor) {
    beast::error_code ec;
    core.acceptor->close(ec);
  }
  // Idle sessions close now; busy ones finish their request and answer `Connection: close`.
  auto signal_sessions = [&core](bool force) {
    for (SessionControl* ctl : core.sessions) {
      ctl->stop = true;
      if ((force || !ctl->busy) && ctl->cancel) ctl->cancel();
      if (ctl->wake) ctl->wake();
    }
  };
  signal_sessions(false);
  const auto deadline = std::chrono::steady_clock::now() + options.shutdown_timeout;
  asio::steady_timer tick(core.ctx);
  bool forced = false;
  while (!core.sessions.empty()) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline && !forced) {
      obs::Log(obs::LogLevel::kWarn, "shutdown deadline passed; closing remaining connections",
               {{"connections", static_cast<std::int64_t>(core.sessions.size())}});
      signal_sessions(true);
      forced = true;
    } else if (forced && now >= deadline + std::chrono::seconds(1)) {
      // Handlers that ignore cancellation: stop the context; their frames are destroyed with it.
      core.ctx.stop();
      co_return;
    }
    // Internal drain poll (10 ms) while sessions finish, bounded by the deadline plus one second.
    tick.expires_after(std::chrono::milliseconds(10));
    co_await tick.async_wait(kUseTuple);
  }
}

Server::Server(ServerOptions options, const Router& router, const Pipeline& pipeline, Readiness& readiness)
    : impl_(std::make_unique<Impl>(std::move(options), router, pipeline, readiness)) {}

Server::~Server() {
  if (!impl_->threads.empty()) {
    Shutdown();
    Wait();
  }
}

core::Result<void> Server::Start() {
  auto& s = *impl_;
  s.thread_count = std::max(1u, s.options.threads);
  for (unsigned i = 0; i < s.thread_count; ++i) s.cores.push_back(std::make_unique<Impl::Core>());
  if (auto r = s.LoadTls(); !r) return r;
  if (auto r = s.Bind(); !r) return r;
  for (auto& core : s.cores) {
    asio::co_spawn(core->ctx, s.AcceptLoop(*core), asio::detached);
  }
  for (unsigned i = 0; i < s.thread_count; ++i) {
    Impl::Core& core = *s.cores[i];
    s.threads.emplace_back([&core, i] {
      t_shard = i;
      for (;;) {
        try {
          core.ctx.run();
          return;
        } catch (const std::exception& e) {
          obs::Log(obs::LogLevel::kError, "I/O thread caught an exception", {{"error", e.what()}});
        }
      }
    });
  }
  return {};
}

std::string ServeBytesForTesting(std::string_view input, ServerOptions options, const Router& router,
                                 const Pipeline& pipeline) {
  Readiness readiness;
  readiness.set(true);
  Server::Impl impl(std::move(options), router, pipeline, readiness);
  asio::io_context ctx(1);
  beast::test::stream server_end(ctx);
  beast::test::stream client_end(ctx);
  server_end.connect(client_end);
  server_end.append(input);
  client_end.close();  // the server reads `input`, then end of stream
  SessionControl ctl;
  const std::string remote = "127.0.0.1";
  asio::co_spawn(ctx, impl.Serve(server_end, ctl, remote), asio::detached);
  ctx.run();
  return std::string(client_end.str());
}

std::uint16_t Server::port() const { return impl_->port; }

unsigned Server::threads() const { return impl_->thread_count; }

void Server::Shutdown() {
  auto& s = *impl_;
  s.readiness.set(false);
  if (s.stopping.exchange(true)) return;
  for (auto& core : s.cores) {
    asio::co_spawn(core->ctx, s.ShutdownCore(*core), asio::detached);
  }
}

void Server::Wait() {
  for (auto& t : impl_->threads) {
    if (t.joinable()) t.join();
  }
  impl_->threads.clear();
}

}  // namespace basalt::http
