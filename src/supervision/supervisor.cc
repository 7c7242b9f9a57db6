#include "supervision/supervisor.h"

#include <algorithm>
#include <deque>
#include <optional>

#include "runtime/this_process.h"
#include "util/log.h"

namespace panal {

const char* to_string(restart_type r) {
  switch (r) {
    case restart_type::permanent: return "permanent";
    case restart_type::transient: return "transient";
    case restart_type::temporary: return "temporary";
  }
  return "?";
}

const char* to_string(strategy s) {
  switch (s) {
    case strategy::one_for_one: return "one_for_one";
    case strategy::one_for_all: return "one_for_all";
    case strategy::rest_for_one: return "rest_for_one";
  }
  return "?";
}

child_spec child_spec::worker(std::string id, std::function<void()> body, restart_type restart,
                              spawn_options options) {
  child_spec spec;
  spec.id = std::move(id);
  spec.start = [body = std::move(body), options]() { return this_process::spawn_link(body, options); };
  spec.restart = restart;
  return spec;
}

child_spec child_spec::supervisor(std::string id, supervisor_flags flags, std::vector<child_spec> children,
                                  restart_type restart) {
  child_spec spec;
  spec.id = std::move(id);
  spec.start = [flags = std::move(flags), children = std::move(children)]() {
    return supervisor::start_link(flags, children);
  };
  spec.restart = restart;
  spec.shutdown = infinity;
  spec.type = child_type::supervisor;
  return spec;
}

namespace supervisor {
namespace {

// The supervisor's protocol (bodies of call_request).
struct init_ack {
  pid sup;
  std::optional<error> failure;
};
struct start_child_req {
  child_spec spec;
};
struct terminate_child_req {
  std::string id;
};
struct restart_child_req {
  std::string id;
};
struct delete_child_req {
  std::string id;
};
struct which_children_req {};
struct stop_req {};

struct child {
  child_spec spec;
  pid running;
  unsigned restarts = 0;
};

class supervisor_state {
 public:
  supervisor_state(supervisor_flags flags) : flags_(std::move(flags)), self_(this_process::self()) {}

  // Starts every child in order; on a failure stops those already started.
  std::optional<error> start_all(std::vector<child_spec> specs) {
    for (auto& spec : specs) {
      if (find(spec.id) != children_.end()) {
        stop_all();
        return error{errc::already_exists, "two children with id '" + spec.id + "'"};
      }
      children_.push_back(child{std::move(spec), {}, 0});
      if (auto e = start_one(children_.back())) {
        children_.pop_back();
        stop_all();
        return e;
      }
    }
    return std::nullopt;
  }

  [[noreturn]] void loop() {
    for (;;) {
      auto m = this_process::receive();
      if (auto* e = m->get_if<exit_msg>()) {
        on_exit(*e);
      } else if (auto* req = m->get_if<call_request>()) {
        on_call(*req);
      } else {
        log::warn("supervisor", name(), ": ignoring unexpected message of type ", m->type_name());
      }
    }
  }

  [[noreturn]] void give_up(exit_reason reason) {
    stop_all();
    this_process::exit(std::move(reason));
  }

 private:
  using iterator = std::vector<child>::iterator;

  std::string name() const { return flags_.name + " " + to_string(self_); }

  iterator find(const std::string& id) {
    return std::find_if(children_.begin(), children_.end(), [&](const child& c) { return c.spec.id == id; });
  }
  iterator find(const pid& p) {
    return std::find_if(children_.begin(), children_.end(), [&](const child& c) { return c.running == p; });
  }

  std::optional<error> start_one(child& c) {
    auto started = c.spec.start ? c.spec.start() : result<pid>(errc::bad_argument, "no start function");
    if (!started) {
      log::error("supervisor", name(), ": child '", c.spec.id, "' failed to start: ", started.err());
      return error{errc::start_failed, "child '" + c.spec.id + "' failed to start: " + started.err().message};
    }
    c.running = *started;
    log::debug("supervisor", name(), ": started child '", c.spec.id, "' as ", c.running);
    return std::nullopt;
  }

  // exit(child, shutdown), then kill after the child's shutdown time.
  void stop_one(child& c) {
    if (!c.running) return;
    const pid target = c.running;
    c.running = {};
    auto is_exit_of = [&](const message& m) {
      auto* e = m.get_if<exit_msg>();
      return e != nullptr && e->from == target;
    };
    if (c.spec.shutdown == clock::duration::zero()) {
      this_process::exit(target, exit_reason::kill());
      this_process::receive_if(is_exit_of);
      return;
    }
    this_process::exit(target, exit_reason::shutdown());
    if (!this_process::receive_if(is_exit_of, c.spec.shutdown)) {
      log::warn("supervisor", name(), ": child '", c.spec.id, "' (", target,
                ") did not stop within its shutdown time; killing it");
      this_process::exit(target, exit_reason::kill());
      this_process::receive_if(is_exit_of);
    }
  }

  void stop_all() {
    for (auto it = children_.rbegin(); it != children_.rend(); ++it) stop_one(*it);
  }

  // True if one more restart is allowed now.
  bool note_restart() {
    const auto now = clock::now();
    restarts_.push_back(now);
    while (!restarts_.empty() && now - restarts_.front() > flags_.period) restarts_.pop_front();
    return static_cast<int>(restarts_.size()) <= flags_.intensity;
  }

  void on_exit(const exit_msg& e) {
    auto it = find(e.from);
    if (it == children_.end()) {
      if (e.from == this_process::parent() || !e.from) {
        log::info("supervisor", name(), ": shutting down (", e.reason, ")");
        give_up(e.reason);
      }
      return;  // an old child's late exit, or a stranger's
    }
    child& c = *it;
    c.running = {};
    const bool restart = c.spec.restart == restart_type::permanent ||
                         (c.spec.restart == restart_type::transient && e.reason.is_failure());
    if (!restart) {
      log::info("supervisor", name(), ": child '", c.spec.id, "' (", e.from, ", ", to_string(c.spec.restart),
                ") exited with reason ", e.reason, "; not restarted");
      if (c.spec.restart == restart_type::temporary) children_.erase(it);
      return;
    }
    log::error("supervisor", name(), ": child '", c.spec.id, "' (", e.from, ") exited with reason ", e.reason,
               "; restarting (", to_string(flags_.how), ")");
    restart_after_failure(static_cast<std::size_t>(it - children_.begin()));
  }

  // Applies the strategy for the child at `index`; a child that fails to
  // start counts as one more failure, until the intensity is spent.
  void restart_after_failure(std::size_t index) {
    for (;;) {
      if (!note_restart()) {
        log::error("supervisor", name(), ": reached max restart intensity (", flags_.intensity, " in ",
                   std::chrono::duration_cast<std::chrono::milliseconds>(flags_.period).count(),
                   " ms); stopping all children and exiting");
        give_up(exit_reason::shutdown("reached_max_restart_intensity"));
      }
      std::size_t first = index, last = index + 1;
      if (flags_.how == strategy::one_for_all) first = 0, last = children_.size();
      if (flags_.how == strategy::rest_for_one) last = children_.size();
      for (std::size_t i = last; i-- > first;) stop_one(children_[i]);
      std::optional<std::size_t> failed;
      for (std::size_t i = first; i < last && !failed; ++i) {
        child& c = children_[i];
        if (c.spec.restart == restart_type::temporary) continue;  // stopped siblings that are temporary stay down
        ++c.restarts;
        if (start_one(c)) failed = i;
      }
      if (!failed) {
        std::erase_if(children_, [](const child& c) { return !c.running && c.spec.restart == restart_type::temporary; });
        return;
      }
      index = *failed;
    }
  }

  void on_call(const call_request& req) {
    const message& body = req.body;
    if (auto* r = body.get_if<start_child_req>()) {
      if (find(r->spec.id) != children_.end()) {
        this_process::reply(req, result<pid>(errc::already_exists, "a child with id '" + r->spec.id + "' exists"));
        return;
      }
      children_.push_back(child{r->spec, {}, 0});
      if (auto e = start_one(children_.back())) {
        children_.pop_back();
        this_process::reply(req, result<pid>(*e));
        return;
      }
      this_process::reply(req, result<pid>(children_.back().running));
    } else if (auto* r = body.get_if<terminate_child_req>()) {
      auto it = find(r->id);
      if (it == children_.end()) {
        this_process::reply(req, result<void>(errc::not_found, "no child '" + r->id + "'"));
        return;
      }
      stop_one(*it);
      if (it->spec.restart == restart_type::temporary) children_.erase(it);
      this_process::reply(req, result<void>());
    } else if (auto* r = body.get_if<restart_child_req>()) {
      auto it = find(r->id);
      if (it == children_.end()) {
        this_process::reply(req, result<pid>(errc::not_found, "no child '" + r->id + "'"));
      } else if (it->running) {
        this_process::reply(req, result<pid>(errc::already_exists, "child '" + r->id + "' is running"));
      } else if (auto e = start_one(*it)) {
        this_process::reply(req, result<pid>(*e));
      } else {
        this_process::reply(req, result<pid>(it->running));
      }
    } else if (auto* r = body.get_if<delete_child_req>()) {
      auto it = find(r->id);
      if (it == children_.end()) {
        this_process::reply(req, result<void>(errc::not_found, "no child '" + r->id + "'"));
      } else if (it->running) {
        this_process::reply(req, result<void>(errc::already_exists, "child '" + r->id + "' is running"));
      } else {
        children_.erase(it);
        this_process::reply(req, result<void>());
      }
    } else if (body.is<which_children_req>()) {
      std::vector<child_info> out;
      out.reserve(children_.size());
      for (const auto& c : children_) out.push_back({c.spec.id, c.running, c.spec.type, c.spec.restart, c.restarts});
      this_process::reply(req, result<std::vector<child_info>>(std::move(out)));
    } else if (body.is<stop_req>()) {
      log::info("supervisor", name(), ": stopping on request");
      stop_all();
      this_process::reply(req, result<void>());
      this_process::exit(exit_reason::shutdown());
    } else {
      log::warn("supervisor", name(), ": unknown request of type ", body.type_name());
    }
  }

  supervisor_flags flags_;
  pid self_;
  std::vector<child> children_;
  std::deque<clock::time_point> restarts_;
};

// Typed request-reply over runtime::call.
template <class Reply, class Request>
Reply ask(runtime& rt, const pid& sup, Request req, clock::duration timeout = infinity) {
  auto m = rt.call(sup, std::move(req), timeout);
  if (!m) return Reply(m.err());
  if (auto* r = m->template get_if<Reply>()) return std::move(*r);
  return Reply(errc::bad_argument, "unexpected reply from " + to_string(sup));
}

// The outcome of a supervisor's init: its ack, or its death (an EXIT when
// the caller traps exits, or a DOWN for a monitoring inbox).
result<pid> init_outcome(const pid& sup, message& m) {
  if (auto* a = m.get_if<init_ack>()) {
    if (a->failure) return *a->failure;
    return sup;
  }
  const exit_reason& why = m.is<exit_msg>() ? m.get<exit_msg>().reason : m.get<down_msg>().reason;
  return {errc::start_failed, "supervisor " + to_string(sup) + " died while starting: " + to_string(why)};
}

bool is_init_outcome(const pid& sup, const message& x) {
  if (auto* a = x.get_if<init_ack>()) return a->sup == sup;
  if (auto* e = x.get_if<exit_msg>()) return e->from == sup;
  if (auto* d = x.get_if<down_msg>()) return d->who == sup;
  return false;
}

}  // namespace

void run(supervisor_flags flags, std::vector<child_spec> children, pid ack) {
  this_process::trap_exit(true);
  supervisor_state state(std::move(flags));
  auto failure = state.start_all(std::move(children));
  if (ack) this_process::send(ack, init_ack{this_process::self(), failure});
  if (failure) this_process::exit(exit_reason::shutdown(failure->message));
  state.loop();
}

result<pid> start(runtime& rt, supervisor_flags flags, std::vector<child_spec> children, spawn_options options) {
  inbox waiter = rt.open_inbox();
  const pid ack = waiter.self();
  auto sup = rt.spawn([flags = std::move(flags), children = std::move(children), ack]() mutable {
    run(std::move(flags), std::move(children), ack);
  }, options);
  if (!sup) return sup;
  waiter.monitor(*sup);
  auto m = waiter.receive_if([&](const message& x) { return is_init_outcome(*sup, x); });
  if (!m) return {errc::not_running, "the runtime stopped while the supervisor started"};
  return init_outcome(*sup, *m);
}

result<pid> start_link(supervisor_flags flags, std::vector<child_spec> children, spawn_options options) {
  const pid me = this_process::self();
  auto sup = this_process::spawn_link([flags = std::move(flags), children = std::move(children), me]() mutable {
    run(std::move(flags), std::move(children), me);
  }, options);
  if (!sup) return sup;
  auto m = this_process::receive_if([&](const message& x) { return is_init_outcome(*sup, x); });
  return init_outcome(*sup, *m);
}

result<pid> start_child(runtime& rt, const pid& sup, child_spec spec) {
  return ask<result<pid>>(rt, sup, start_child_req{std::move(spec)});
}
result<void> terminate_child(runtime& rt, const pid& sup, const std::string& id) {
  return ask<result<void>>(rt, sup, terminate_child_req{id});
}
result<pid> restart_child(runtime& rt, const pid& sup, const std::string& id) {
  return ask<result<pid>>(rt, sup, restart_child_req{id});
}
result<void> delete_child(runtime& rt, const pid& sup, const std::string& id) {
  return ask<result<void>>(rt, sup, delete_child_req{id});
}
result<std::vector<child_info>> which_children(runtime& rt, const pid& sup, clock::duration timeout) {
  return ask<result<std::vector<child_info>>>(rt, sup, which_children_req{}, timeout);
}
namespace {
void walk(runtime& rt, const pid& sup, unsigned depth, clock::duration timeout, std::vector<tree_row>& out) {
  auto kids = which_children(rt, sup, timeout);
  if (!kids) {
    out.push_back({depth, {}, kids.err().message});
    return;
  }
  for (auto& k : *kids) {
    const bool descend = k.type == child_type::supervisor && k.child && depth < 16;
    const pid child = k.child;
    out.push_back({depth, std::move(k), {}});
    if (descend) walk(rt, child, depth + 1, timeout, out);
  }
}
}  // namespace

std::vector<tree_row> walk_tree(runtime& rt, const pid& root, clock::duration timeout) {
  std::vector<tree_row> out;
  walk(rt, root, 1, timeout, out);
  return out;
}

result<void> stop(runtime& rt, const pid& sup, clock::duration timeout) {
  auto r = ask<result<void>>(rt, sup, stop_req{}, timeout);
  return r;
}

}  // namespace supervisor
}  // namespace panal
