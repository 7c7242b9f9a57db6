// panal_test_node: one node of a test cluster, driven line by line on stdin.
// (Database commands and the TCP client commands are listed in their branches below.)
//
//   panal_test_node --name n1@127.0.0.1:7001 (--cookie C | --cookie-file F)
//                   [--tick-ms 1000] [--down-ms 4000] [--forget-ms 60000] [--threads 2] [--spin-us 50] [--max-sessions 1024]
//                   [--max-send-queue-mb 256]
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
#include <atomic>
#include <fstream>
#include <thread>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "client/remote_client.h"
#include "dist/cookie.h"
#include "dist/distribution.h"
#include "node/node.h"
#include "registry/pg.h"
#include "runtime/this_process.h"
#include "supervision/supervisor.h"
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
  long tick_ms = 1000, down_ms = 4000, forget_ms = 60000, spin_us = 50, max_sessions = 1024, max_send_queue_mb = 256;
  unsigned threads = 2;
  dist::tls_files tls;
  std::string http;
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
    else if (k == "--forget-ms") forget_ms = std::stol(v);
    else if (k == "--spin-us") spin_us = std::stol(v);
    else if (k == "--max-sessions") max_sessions = std::stol(v);
    else if (k == "--max-send-queue-mb") max_send_queue_mb = std::stol(v);
    else if (k == "--threads") threads = static_cast<unsigned>(std::stoul(v));
    else if (k == "--tls-cert") tls.cert_file = v;
    else if (k == "--tls-key") tls.key_file = v;
    else if (k == "--tls-ca") tls.ca_file = v;
    else if (k == "--http") http = v;
  }
  if (name.empty() || cookie.empty()) {
    std::cerr << "usage: panal_test_node --name NAME@HOST:PORT (--cookie C | --cookie-file F)\n";
    return 2;
  }

  auto started = node::start({.name = name, .cookie = cookie, .threads = threads,
                              .tick = std::chrono::milliseconds(tick_ms),
                              .down_after = std::chrono::milliseconds(down_ms),
                              .forget_after = std::chrono::milliseconds(forget_ms),
                              .spin_before_sleep = std::chrono::microseconds(spin_us),
                              .max_sessions = static_cast<std::uint32_t>(max_sessions),
                              .max_send_queue = static_cast<std::size_t>(max_send_queue_mb) << 20,
                              .tls = tls,
                              .http = http});
  if (!started) {
    std::cerr << "error: " << started.err().message << "\n";
    return 1;
  }
  node& self = **started;
  runtime& rt = self.rt();
  auto* d = self.distribution();
  auto& pg = self.registry();
  std::optional<client> local_client;
  std::unique_ptr<remote_client> remote;
  bool route = true;  // rroute: whether rconnect routes by slot

  // A remote start that holds until `release` (for `hold`): while it runs,
  // the node's distribution must go on serving.
  std::atomic<bool> released{false};
  std::atomic<int> held_result{0};  // 0 running, 1 ok, 2 error
  if (d != nullptr) {
    d->register_spawn("test.hold", [&](const std::string&) -> result<pid> {
      for (int i = 0; i < 2000 && !released.load(); ++i) tp::sleep_for(std::chrono::milliseconds(10));
      return rt.whereis("echo");
    });
  }

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
      auto r = d->connect(node);
      out << (r ? "ok" : "error " + std::string(to_string(r.code())) + " " + r.err().message);
    } else if (cmd == "nodes") {
      out << "nodes";
      for (auto& n : d->nodes()) out << " " << n;
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
      auto& dd = *d;
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
    } else if (cmd == "server") {  // server DB [NODE...] [max_key= max_value= max_keys= max_memory= ckey= replicas= write_acks= lease_ms=]
      std::string db, word;
      in >> db;
      server_options o;
      std::vector<std::string> on;
      while (in >> word) {
        auto eq = word.find('=');
        if (eq == std::string::npos) {
          on.push_back(word);
          continue;
        }
        const std::string k = word.substr(0, eq), v = word.substr(eq + 1);
        if (k == "max_key") o.limits.max_key_bytes = std::stoull(v);
        else if (k == "max_value") o.limits.max_value_bytes = std::stoull(v);
        else if (k == "max_keys") o.limits.max_keys = std::stoull(v);
        else if (k == "max_memory") o.limits.max_memory = std::stoull(v);
        else if (k == "ckey") o.ckey = v;
        else if (k == "replicas") o.replicas = static_cast<std::uint32_t>(std::stoul(v));
        else if (k == "write_acks") o.write_acks = static_cast<std::uint32_t>(std::stoul(v));
        else if (k == "lease_ms") o.lease = std::chrono::milliseconds(std::stol(v));
      }
      auto r = self.start_server(db, on, o);
      out << (r ? "ok " + std::to_string(r->size()) : "error " + std::string(to_string(r.code())) + " " + r.err().message);
    } else if (cmd == "data") {  // data DB COUNT [NODE...]
      std::string db, n;
      unsigned count = 1;
      in >> db >> count;
      std::vector<std::string> on;
      while (in >> n) on.push_back(n);
      auto r = self.start_data(db, on, count);
      out << (r ? "ok " + std::to_string(r->size()) : "error " + std::string(to_string(r.code())) + " " + r.err().message);
    } else if (cmd == "client") {  // client NAME DB [NODE]
      std::string cname, db, n;
      in >> cname >> db;
      std::vector<std::string> on;
      while (in >> n) on.push_back(n);
      auto r = self.start_client(cname, db, on);
      if (r) local_client.emplace(std::move(*r));
      out << (r ? "ok" : "error " + std::string(to_string(r.code())) + " " + r.err().message);
    } else if (cmd == "rroute") {  // rroute on|off: whether the next rconnect routes by slot
      std::string v;
      in >> v;
      route = v != "off";
      out << "ok";
    } else if (cmd == "rsessions") {  // the nodes the TCP client has sessions with, home first
      out << "sessions";
      if (remote) {
        for (const auto& n : remote->sessions()) out << " " << n;
      }
    } else if (cmd == "rconnect") {  // rconnect ADDRESS[,ADDRESS...] DB [TOKEN]  (TLS as this node, with its CA)
      std::string addrs, db, token;
      in >> addrs >> db >> token;
      remote_options o{.db = db, .token = token, .tls = tls.enabled(), .tls_ca = tls.ca_file, .route = route};
      std::stringstream list(addrs);
      for (std::string a; std::getline(list, a, ',');) o.addresses.push_back(a);
      auto r = remote_client::connect(o);
      if (r) remote = std::move(*r);
      out << (r ? "ok " + remote->node() : "error " + std::string(to_string(r.code())) + " " + r.err().message);
    } else if (cmd == "set" || cmd == "get" || cmd == "del" || cmd == "exists" || cmd == "uset" ||
               cmd == "rset" || cmd == "rget" || cmd == "rdel" || cmd == "rexists" || cmd == "ruset") {
      // Through the local client process (set/get/...) or the TCP client (rset/rget/...).
      const bool r = cmd[0] == 'r';
      const std::string op = r ? cmd.substr(1) : cmd;
      std::string key, value;
      in >> key;
      std::getline(in >> std::ws, value);
      auto fmt = [&](errc code, const std::string& msg) { return "error " + std::string(to_string(code)) + " " + msg; };
      if (r ? !remote : !local_client) {
        out << "error no client";
      } else if (op == "set") {
        auto x = r ? remote->set(key, value) : local_client->set(key, value);
        out << (x ? "ok" : fmt(x.code(), x.err().message));
      } else if (op == "uset") {
        auto x = r ? remote->unsafe_set(key, value) : local_client->unsafe_set(key, value);
        out << (x ? "ok" : fmt(x.code(), x.err().message));
      } else if (op == "get") {
        auto x = r ? remote->get(key) : local_client->get(key);
        out << (!x ? fmt(x.code(), x.err().message) : *x ? "value " + **x : std::string("none"));
      } else if (op == "del") {
        auto x = r ? remote->remove(key) : local_client->remove(key);
        out << (!x ? fmt(x.code(), x.err().message) : *x ? std::string("removed") : std::string("absent"));
      } else {
        auto x = r ? remote->exists(key) : local_client->exists(key);
        out << (!x ? fmt(x.code(), x.err().message) : *x ? std::string("yes") : std::string("no"));
      }
    } else if (cmd == "fill") {  // fill PREFIX N [TAG]: N sets (value TAG + i) through the TCP client, pipelined
      std::string prefix, tag;
      int n = 0;
      in >> prefix >> n >> tag;
      std::vector<std::pair<std::string, std::string>> items;
      for (int i = 0; i < n; ++i) items.emplace_back(prefix + std::to_string(i), tag + std::to_string(i));
      auto x = remote ? remote->mset(items) : result<void>(errc::bad_argument, "no remote client");
      out << (x ? "ok" : "error " + std::string(to_string(x.code())) + " " + x.err().message);
    } else if (cmd == "check") {  // check PREFIX N [TAG]: how many of the N keys read back right
      std::string prefix, tag;
      int n = 0;
      in >> prefix >> n >> tag;
      std::vector<std::string> keys;
      for (int i = 0; i < n; ++i) keys.push_back(prefix + std::to_string(i));
      auto x = remote ? remote->mget(keys) : result<std::vector<std::optional<std::string>>>(errc::bad_argument, "no remote client");
      int good = 0;
      if (x) {
        for (int i = 0; i < n; ++i) good += (*x)[i] && *(*x)[i] == tag + std::to_string(i);
      }
      out << (x ? "check " + std::to_string(good) : "error " + std::string(to_string(x.code())) + " " + x.err().message);
    } else if (cmd == "stats" || cmd == "copies") {  // stats DB -> keys per data process as primary, sorted;
      std::string db;                                 // copies DB -> keys held (replicas included)
      in >> db;
      std::vector<std::uint64_t> keys;
      for (auto& st : self.stats(db)) keys.push_back(cmd == "stats" ? st.keys_primary : st.keys);
      std::sort(keys.begin(), keys.end());
      out << cmd;
      for (auto k : keys) out << " " << k;
    } else if (cmd == "states") {  // states DB -> each data process's state, sorted
      std::string db;
      in >> db;
      std::vector<std::string> states;
      for (auto& st : self.stats(db)) states.push_back(st.state);
      std::sort(states.begin(), states.end());
      out << "states";
      for (auto& x : states) out << " " << x;
    } else if (cmd == "moved") {  // moved DB -> keys and bytes received by fills and syncs, slots
      std::string db;             // synced by agreement and by copy, over data processes
      in >> db;
      std::uint64_t keys = 0, bytes = 0, agreed = 0, copied = 0;
      for (auto& st : self.stats(db)) {
        keys += st.keys_in, bytes += st.bytes_in, agreed += st.syncs_agreed, copied += st.syncs_copied;
      }
      out << "moved " << keys << " " << bytes << " " << agreed << " " << copied;
    } else if (cmd == "slots") {  // slots DB -> slots <epoch> <moving> <owners digest> <members>
      std::string db;
      in >> db;
      auto m = self.slot_map(db);
      if (m) out << "slots " << m->epoch << " " << m->moving << " " << m->owners_digest << " " << m->members.size();
      else out << "slots none";
    } else if (cmd == "stop_data") {  // stop_data DB COUNT [NODE...]
      std::string db, n;
      unsigned count = 1;
      in >> db >> count;
      std::vector<std::string> on;
      while (in >> n) on.push_back(n);
      auto r = self.stop_data(db, on, count, std::chrono::seconds(60));
      out << (r ? "ok" : "error " + std::string(to_string(r.code())) + " " + r.err().message);
    } else if (cmd == "locate") {  // locate DB KEY -> per data process: pid:role:held:tombstone:value:epoch.hlc
      std::string db, key;
      in >> db >> key;
      out << "locate";
      for (auto& c : self.locate(db, key)) {
        std::string hex;
        for (unsigned char ch : c.value) hex += "0123456789abcdef"[ch >> 4], hex += "0123456789abcdef"[ch & 15];
        out << " " << to_string(c.process) << ":" << c.role << ":" << c.held << ":" << c.tombstone << ":" << hex
            << ":" << c.version_epoch << "." << c.version_hlc << "@" << c.epoch;
      }
    } else if (cmd == "partition") {  // partition NODE... -> cut off from them until heal
      std::vector<std::string> on;
      for (std::string n; in >> n;) on.push_back(n);
      auto r = self.partition(on);
      out << (r ? "ok" : "error " + r.err().message);
    } else if (cmd == "heal") {
      self.heal();
      out << "ok";
    } else if (cmd == "master") {
      std::string db;
      in >> db;
      auto m = self.master(db);
      out << "master " << (m ? to_string(*m) : "none");
    } else if (cmd == "kill_master") {
      std::string db;
      in >> db;
      auto m = self.master(db);
      if (m && rt.is_local(*m)) rt.exit(*m, exit_reason::kill());
      out << (m && rt.is_local(*m) ? "ok" : "error not here");
    } else if (cmd == "kill_data") {
      std::string db;
      int n = 1;
      in >> db >> n;
      int done = 0;
      for (const pid& p : pg.local_members(db + "/data")) {
        if (done == n) break;
        rt.exit(p, exit_reason::kill());
        ++done;
      }
      out << "ok " << done;
    } else if (cmd == "data_pids") {  // data_pids DB -> the data processes' pids, sorted
      std::string db;
      in >> db;
      std::vector<std::string> names;
      for (const pid& p : self.groups(db).data) names.push_back(to_string(p));
      std::sort(names.begin(), names.end());
      out << "data_pids";
      for (auto& n : names) out << " " << n;
    } else if (cmd == "groups") {
      std::string db;
      in >> db;
      auto g = self.groups(db);
      out << "groups " << g.servers.size() << " " << g.data.size() << " " << g.clients.size();
    } else if (cmd == "flood") {  // flood NODE COUNT BYTES: COUNT messages of BYTES to a name nobody has there
      std::string n;
      int count = 0;
      std::size_t bytes = 0;
      in >> n >> count >> bytes;
      int sent = 0, refused = 0;
      for (int i = 0; i < count; ++i) {
        auto r = d->send_named(n, "nobody", std::string(bytes, 'x'));
        ++(r ? sent : refused);
      }
      out << "flood " << sent << " " << refused;
    } else if (cmd == "peak_mb") {  // peak_mb -> this process's peak resident memory (VmHWM), MiB
      std::ifstream status("/proc/self/status");
      std::string l;
      long kb = -1;
      while (std::getline(status, l)) {
        if (l.rfind("VmHWM:", 0) == 0) kb = std::stol(l.substr(6));
      }
      out << "peak_mb " << kb / 1024;
    } else if (cmd == "hold") {  // hold NODE: a remote start there that holds until its `release`
      std::string n;
      in >> n;
      held_result = 0;
      std::thread([d, n, &held_result] { held_result = d->spawn_on(n, "test.hold", "") ? 1 : 2; }).detach();
      out << "ok";
    } else if (cmd == "release") {
      released = true;
      out << "ok";
    } else if (cmd == "held") {  // held -> running, ok or error: what the `hold` start answered
      const int r = held_result.load();
      out << (r == 0 ? "running" : r == 1 ? "ok" : "error");
    } else if (cmd == "killname") {  // killname NAME: kills the process registered as NAME (e.g. panal_pg)
      std::string what;
      in >> what;
      const pid p = rt.whereis(what);
      if (p) rt.exit(p, exit_reason::kill());
      out << (p ? "ok " + to_string(p) : std::string("none"));
    } else if (cmd == "pause" || cmd == "resume") {  // pause|resume CHILD: stop a root child / start it again
      std::string child;
      in >> child;
      if (cmd == "pause") {
        auto r = supervisor::terminate_child(rt, self.root_supervisor(), child);
        out << (r ? std::string("ok") : "error " + r.err().message);
      } else {
        auto r = supervisor::restart_child(rt, self.root_supervisor(), child);
        out << (r ? std::string("ok") : "error " + r.err().message);
      }
    } else if (cmd == "httpport") {  // httpport -> the HTTP listener's port (0: none)
      out << self.http_port();
    } else if (cmd == "sleeper") {  // sleeper NAME: a process registered as NAME that never reads its mailbox
      std::string what;
      in >> what;
      auto p = rt.spawn([what] {
        (void)tp::register_name(what);
        for (;;) tp::sleep_for(std::chrono::hours(1));
      });
      if (p) (void)rt.await_name(what, std::chrono::seconds(5));
      out << (p ? "ok " + to_string(*p) : "error " + p.err().message);
    } else if (cmd == "stuff") {  // stuff NAME N: sends N messages to the process registered as NAME
      std::string what;
      long n = 0;
      in >> what >> n;
      const pid p = rt.whereis(what);
      for (long k = 0; p && k < n; ++k) rt.send(p, std::string("flood"));
      out << (p ? "ok" : "none");
    } else if (cmd == "tree") {  // tree -> the supervision tree's lines, joined by '|'
      auto lines = self.supervision("");
      if (!lines) out << "error " << lines.err().message;
      else {
        for (std::size_t k = 0; k < lines->size(); ++k) out << (k ? "|" : "") << (*lines)[k];
      }
    } else if (cmd == "quit") {
      std::cout << "bye" << std::endl;
      break;
    } else {
      out << "error unknown command '" << cmd << "'";
    }
    std::cout << out.str() << std::endl;
  }
  remote.reset();
  local_client.reset();
  self.stop();
  return 0;
}
