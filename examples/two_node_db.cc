// The README's database example: two nodes in one process, a database over
// both, a client process and a TCP client. Exits 0 if every step worked.
#include <iostream>

#include "client/remote_client.h"
#include "node/node.h"

int main() {
  auto n1 = panal::node::start({.name = "n1@127.0.0.1:7101", .cookie = "secret"});
  auto n2 = panal::node::start({.name = "n2@127.0.0.1:7102", .cookie = "secret"});
  if (!n1 || !n2) {
    std::cerr << "cannot start the nodes: " << (n1 ? n2.err() : n1.err()) << "\n";
    return 1;
  }
  if (auto r = (*n2)->connect("n1@127.0.0.1:7101"); !r) return std::cerr << r.err() << "\n", 1;
  if (auto r = (*n1)->start_server("mydb"); !r) return std::cerr << r.err() << "\n", 1;
  if (auto r = (*n1)->start_data("mydb", {"n1@127.0.0.1:7101", "n2@127.0.0.1:7102"}, 2); !r) {
    return std::cerr << r.err() << "\n", 1;
  }
  auto c = (*n1)->start_client("c1", "mydb");
  if (!c) return std::cerr << c.err() << "\n", 1;
  if (auto r = c->set("k", "v"); !r) return std::cerr << r.err() << "\n", 1;
  auto v = c->get("k");
  auto tcp = panal::remote_client::connect({.addresses = {"127.0.0.1:7102"}, .db = "mydb"});
  if (!tcp) return std::cerr << tcp.err() << "\n", 1;
  auto w = (*tcp)->get("k");
  if (!v || !*v || **v != "v" || !w || !*w || **w != "v") {
    std::cerr << "read back the wrong value\n";
    return 1;
  }
  std::cout << "k = " << **w << " (data processes: " << (*n1)->groups("mydb").data.size() << ")\n";
  (*tcp)->close();
  (*n2)->stop();
  (*n1)->stop();
  return 0;
}
