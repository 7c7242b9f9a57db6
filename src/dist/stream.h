// A connection's byte stream: plain TCP, or TLS over TCP (Boost.Asio's ssl
// over OpenSSL), behind one interface, so that the node protocol and the
// client sessions read and write the same way either way.
//
// Promises:
// - With TLS, nothing is read or written in the clear after handshake();
//   TLS 1.3 only. channel_binding() gives bytes both ends of this one TLS
//   session compute alike and no other session shares (RFC 9266
//   tls-exporter): a proof over them cannot be relayed to another session.
// - looks_like_tls(): what a connection's first bytes say, so that a node
//   can refuse a peer that speaks the other way with a clear log line.
//
// Thread-safety: none; a stream belongs to its connection's thread (one
// read and one write may be outstanding at once, as with a socket). This
// header pulls in asio's ssl: include it only where connections are made.
#pragma once

#include <utility>  // before asio: Boost 1.74's asio needs it under C++20

#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "dist/tls_files.h"
#include "util/error.h"

namespace panal::dist {

// The two TLS contexts of a node: as the accepting and as the dialling side.
struct tls_contexts {
  std::unique_ptr<boost::asio::ssl::context> server;
  std::unique_ptr<boost::asio::ssl::context> client;
  bool verify_peers = false;  // ca_file was given
};
// Loads the files; a missing or unreadable file, or a key that does not
// match its certificate, is bad_argument with the file's name.
result<tls_contexts> make_tls_contexts(const tls_files& files);

class stream {
 public:
  using tcp = boost::asio::ip::tcp;

  explicit stream(tcp::socket s) : plain_(std::move(s)) {}
  // Closing (not just dropping) the socket is what ends a TLS operation
  // still outstanding: it holds the TLS state, not the caller's buffer,
  // and an aborted read writes nothing into that buffer.
  ~stream() { close(); }
  stream(stream&&) = default;
  stream& operator=(stream&&) = default;
  // TLS over `s` with `ctx` (which must outlive the stream); handshake() first.
  stream(tcp::socket s, boost::asio::ssl::context& ctx)
      : tls_(std::make_shared<boost::asio::ssl::stream<tcp::socket>>(std::move(s), ctx)) {}

  bool tls() const { return tls_ != nullptr; }
  tcp::socket& socket() { return tls_ ? tls_->next_layer() : plain_; }

  // From inside a process: the TLS handshake, as server or as client (then
  // `verify_host`, when not empty, must match the peer's certificate).
  result<void> handshake(bool as_server, const std::string& verify_host = {});
  // The session's tls-exporter bytes (32); empty for plain TCP.
  std::string channel_binding();
  // The peer showed a certificate that chains to the CA file.
  bool peer_certified();

  // A TLS operation's steps use the TLS state after the socket's part
  // completes, even when it completes aborted: each holds that state, so a
  // process may end (and drop its stream) while one is outstanding.
  template <class Buffers, class Handler>
  void async_read_some(const Buffers& b, Handler&& h) {
    if (tls_) {
      tls_->async_read_some(b, [keep = tls_, h = std::forward<Handler>(h)](const boost::system::error_code& ec,
                                                                          std::size_t n) mutable { h(ec, n); });
    } else {
      plain_.async_read_some(b, std::forward<Handler>(h));
    }
  }
  // From inside a process: reads up to `n` bytes into `buf`; the
  // completion comes to the process's mailbox as io::io_done{tag} (`keep`
  // lives until then). Plain TCP reads with runtime/socket_read.h, so a
  // read after one that emptied the socket waits without a system call.
  void start_read(char* buf, std::size_t n, std::uint64_t tag, std::shared_ptr<void> keep);
  // The same read, waited for inline (an exit point, as io::await).
  std::pair<boost::system::error_code, std::size_t> read_some(char* buf, std::size_t n);

  template <class Buffers, class Handler>
  void async_write(const Buffers& b, Handler&& h) {
    if (tls_) {
      boost::asio::async_write(*tls_, b,
                               [keep = tls_, h = std::forward<Handler>(h)](const boost::system::error_code& ec,
                                                                          std::size_t n) mutable { h(ec, n); });
    } else {
      boost::asio::async_write(plain_, b, std::forward<Handler>(h));
    }
  }
  // Writes what the socket takes now, without waiting: the bytes written
  // (0 when its buffer is full). A TLS stream writes nothing here (its
  // records go through async_write). Not while an async_write is running.
  std::size_t try_write_some(const char* data, std::size_t n, boost::system::error_code& ec);
  // The same for a gather list (its first 64 buffers are tried).
  std::size_t try_write_some(const std::vector<boost::asio::const_buffer>& buffers, boost::system::error_code& ec);

  void close() {
    boost::system::error_code ignored;
    socket().close(ignored);
  }

 private:
  tcp::socket plain_{socket_placeholder()};
  std::shared_ptr<boost::asio::ssl::stream<tcp::socket>> tls_;
  static boost::asio::io_context& socket_placeholder();
};

// What the first bytes of a connection are: a TLS handshake record (0x16,
// then major version 3), or not. `first` holds at least one byte.
bool looks_like_tls(std::string_view first);

}  // namespace panal::dist
