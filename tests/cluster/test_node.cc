// panal_test_node: one node of a test cluster, driven line by line on stdin.
//
//   panal_test_node --name n1@127.0.0.1:7001 (--cookie C | --cookie-file F)
//                   [--tick-ms 1000] [--down-ms 4000] [--threads 2]
//
// Prints "ready <name>", then answers each command with one line:
//   connect NODE         -> ok | error <why>
//   nodes                -> nodes [name ...]            (connected peers, sorted)
//   join GROUP N         -> ok                          (N new processes join GROUP)
//   kill GROUP N         -> ok <killed>                 (N local members of GROUP are killed)
//   crash GROUP N        -> ok <crashed>                (N local members throw)
//   members GROUP        -> members <count> <digest>    (digest of the sorted pids)
//   local GROUP          -> local <count>
//   oldest GROUP         -> oldest <pid> | oldest none
//   watch GROUP          -> ok <n>    (a watcher monitors and links to every remote member)
//   downs                -> downs <count> <reason,...>  (what the watcher saw)
//   ping NODE N PAIRS    -> ping <round trips/s>        (PAIRS concurrent pairs, N round trips each,
//                                                      with the echo process registered on NODE)
//   quit                 -> bye
#include <chrono>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "dist/cookie.h"
#include "dist/distribution.h"
#include "registry/pg.h"
#include "runtime/this_process.h"
#include "util/log.h"

using namespace panal;
namespace tp = this_process;

namespace {

std::uint64_t digest(std::vector<pid> pids) {
  std::vector<std::string> names;
  for (auto& p : pids) names.push_back(to_string(p));
  std::sort(names.begin(), names.end());
  std::uint64_t h = 1469598103934665603ull;
  for (auto& n : names) {
    for (unsigned char c : n) h = (h ^ c) * 1099511628211ull;
    h = (h ^ '|') * 1099511628211ull;
  }
  return h;
}

struct crash_now {};

}  // namespace

int main(int argc, char** argv) {
  std::string name, cookie;
  long tick_ms = 1000, down_ms = 4000;
  unsigned threads = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--name") name = v;
    else if (k == "--cookie") cookie = v;
    else if (k == "--cookie-file") {
      auto c = dist::read_cookie_file(v);
      if (!c) {
        std::cerr << "error: " << c.err().message << "\n";
        return 2;
      }
      cookie = *c;
    } else if (k == "--tick-ms") tick_ms = std::stol(v);
    else if (k == "--down-ms") down_ms = std::stol(v);
    else if (k == "--threads") threads = static_cast<unsigned>(std::stoul(v));
  }
  if (name.empty() || cookie.empty()) {
    std::cerr << "usage: panal_test_node --name NAME@HOST:PORT (--cookie C | --cookie-file F)\n";
    return 2;
  }

  runtime rt({.threads = threads, .node_name = name});
  auto d = dist::distribution::start(rt, {.cookie = cookie,
                                          .tick = std::chrono::milliseconds(tick_ms),
                                          .down_after = std::chrono::milliseconds(down_ms),
                                          .reconnect_every = std::chrono::milliseconds(std::min(tick_ms, 500L))});
  if (!d) {
    std::cerr << "error: " << d.err().message << "\n";
    return 1;
  }
  auto groups = registry::pg::start(rt, d->get());
  if (!groups) {
    std::cerr << "error: " << groups.err().message << "\n";
    return 1;
  }
  auto& pg = **groups;

  // The echo server for `ping`, by name.
  (void)rt.spawn([] {
    (void)tp::register_name("echo");
    for (;;) {
      auto from = tp::receive_as<pid>();
      tp::send(*from, tp::self());
    }
  });

  // What the watcher saw.
  std::mutex downs_mutex;
  std::vector<std::string> downs;
  auto watcher = rt.spawn([&] {
    tp::trap_exit(true);
    for (;;) {
      auto m = tp::receive();
      std::string reason;
      if (auto* req = m->get_if<std::vector<pid>>()) {
        for (const pid& p : *req) {
          tp::monitor(p);
          tp::link(p);
        }
        continue;
      }
      if (auto* dm = m->get_if<down_msg>()) reason = to_string(dm->reason);
      if (auto* em = m->get_if<exit_msg>()) reason = to_string(em->reason);
      if (reason.empty()) continue;
      std::lock_guard lock(downs_mutex);
      downs.push_back(reason);
    }
  });

  std::cout << "ready " << name << std::endl;
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::string cmd;
    in >> cmd;
    std::ostringstream out;
    if (cmd == "connect") {
      std::string node;
      in >> node;
      auto r = (*d)->connect(node);
      out << (r ? "ok" : "error " + r.err().message);
    } else if (cmd == "nodes") {
      out << "nodes";
      for (auto& n : (*d)->nodes()) out << " " << n;
    } else if (cmd == "join") {
      std::string group;
      int n = 0;
      in >> group >> n;
      std::vector<pid> ps;
      for (int i = 0; i < n; ++i) {
        auto p = rt.spawn([] {
          for (;;) {
            auto m = tp::receive();
            if (m->is<crash_now>()) throw std::runtime_error("crashed on request");
          }
        });
        if (p) ps.push_back(*p);
      }
      auto r = pg.join(group, ps);
      out << (r ? "ok" : "error " + r.err().message);
    } else if (cmd == "kill" || cmd == "crash") {
      std::string group;
      int n = 0;
      in >> group >> n;
      int done = 0;
      for (const pid& p : pg.local_members(group)) {
        if (done == n) break;
        if (cmd == "kill") rt.exit(p, exit_reason::kill());
        else rt.send(p, crash_now{});
        ++done;
      }
      out << "ok " << done;
    } else if (cmd == "members") {
      std::string group;
      in >> group;
      auto ms = pg.members(group);
      out << "members " << ms.size() << " " << digest(ms);
    } else if (cmd == "local") {
      std::string group;
      in >> group;
      out << "local " << pg.local_members(group).size();
    } else if (cmd == "oldest") {
      std::string group;
      in >> group;
      auto o = pg.oldest(group);
      out << "oldest " << (o ? to_string(*o) : "none");
    } else if (cmd == "watch") {
      std::string group;
      in >> group;
      std::vector<pid> remote;
      for (const pid& p : pg.members(group)) {
        if (!rt.is_local(p)) remote.push_back(p);
      }
      rt.send(*watcher, remote);
      out << "ok " << remote.size();
    } else if (cmd == "downs") {
      std::lock_guard lock(downs_mutex);
      std::set<std::string> kinds(downs.begin(), downs.end());
      out << "downs " << downs.size() << " ";
      bool first = true;
      for (auto& k : kinds) {
        out << (first ? "" : ",") << k;
        first = false;
      }
    } else if (cmd == "ping") {
      std::string node;
      long n = 0;
      int pairs = 1;
      in >> node >> n >> pairs;
      inbox done = rt.open_inbox();
      auto& dd = **d;
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < pairs; ++i) {
        (void)rt.spawn([&dd, node, n, report = done.self()] {
          // Find the echo by name once, then talk pid to pid.
          (void)dd.send_named(node, "echo", tp::self(), tp::self());
          auto echo = tp::receive_as<pid>(std::chrono::seconds(10));
          if (echo) {
            for (long k = 0; k < n; ++k) {
              tp::send(*echo, tp::self());
              tp::receive_as<pid>();
            }
          }
          tp::send(report, true);
        });
      }
      for (int i = 0; i < pairs; ++i) done.receive_as<bool>(std::chrono::seconds(120));
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      out << "ping " << static_cast<long>(static_cast<double>(n * pairs) / secs);
    } else if (cmd == "quit") {
      std::cout << "bye" << std::endl;
      break;
    } else {
      out << "error unknown command '" << cmd << "'";
    }
    std::cout << out.str() << std::endl;
  }
  pg.stop();
  (*d)->stop();
  rt.stop();
  return 0;
}
