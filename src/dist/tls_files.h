// Certificate files for TLS (see dist/stream.h); a plain struct, so that
// options can name them without pulling in asio's ssl.
#pragma once

#include <string>

namespace panal::dist {

// A node needs cert_file and key_file (PEM). ca_file, when given, is what
// the certificates of the nodes it dials (and, for a client, of the node it
// connects to) must chain to, with the host they were dialled at.
struct tls_files {
  std::string cert_file;
  std::string key_file;
  std::string ca_file;
  bool enabled() const { return !cert_file.empty() || !key_file.empty(); }
};

}  // namespace panal::dist
