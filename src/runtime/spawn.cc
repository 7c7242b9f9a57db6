#include "runtime/spawn.h"

#include "runtime/scheduler.h"

namespace panal::detail {

result<pid> spawn(runtime& rt, std::function<void()> body, const spawn_options& options,
                  const spawn_links& links) {
  if (!rt.running()) return {errc::not_running, "the runtime is stopping"};
  if (!body) return {errc::bad_argument, "spawn needs a function to run"};
  if (options.thread >= static_cast<int>(rt.thread_count())) {
    return {errc::bad_argument, "no scheduler thread " + std::to_string(options.thread)};
  }
  scheduler& s = rt.scheduler_at(rt.pick_thread(options.thread));
  const pid self{rt.node(), rt.incarnation(), s.next_id()};
  const std::size_t stack = options.stack_size ? options.stack_size : rt.options().stack_size;
  auto proc = std::make_unique<process>(s, self, links.parent, std::move(body), stack);
  if (links.link_to) proc->links.insert(links.link_to);
  if (links.monitored_by) proc->monitored_by.emplace(links.monitor_tag, links.monitored_by);
  s.count_spawned();  // counted from now, so process_count() never misses a queued spawn
  route(rt, signal{signal::kind::spawn, links.parent, self, {}, std::move(proc)});
  return self;
}

}  // namespace panal::detail
