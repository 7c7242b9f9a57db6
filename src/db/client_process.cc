#include "db/client_process.h"

#include "db/context.h"
#include "db/messages.h"
#include "db/requester.h"
#include "registry/pg.h"
#include "runtime/this_process.h"

namespace panal::db {

namespace tp = this_process;

void client_main(context& ctx, std::string db, std::string name) {
  if (auto j = ctx.groups.join(client_group(db), tp::self()); !j) throw std::runtime_error(j.err().message);
  (void)tp::register_name("panal_client:" + db + ":" + name);
  requester out(ctx, db, [](const requester::waiter& w, reply&& rep) { tp::send(w.to, call_reply{w.tag, std::move(rep)}); });
  auto to_request = [](client_op& c) {
    request r;
    r.kind = c.kind;
    r.key = std::move(c.key);
    r.value = std::move(c.value);
    r.wid = c.wid;
    return r;
  };
  auto handle = [&](message& m) {
    if (out.on_message(m)) return;
    if (auto* cast = m.get_if<client_op>()) {  // unsafe_set: nobody waits
      out.submit(to_request(*cast), nullptr);
      return;
    }
    if (auto* req = m.get_if<call_request>()) {
      auto* c = req->body.get_if<client_op>();
      if (c == nullptr) return;
      request r = to_request(*c);
      if (static_cast<op>(r.kind) == op::unsafe_set) {
        out.submit(std::move(r), nullptr);
        tp::reply(*req, reply{});  // accepted; nobody waits for the store
        return;
      }
      const requester::waiter w{0, req->from, req->tag};
      out.submit(std::move(r), &w);
    }
  };
  for (;;) {
    // The calls already waiting (a batch's, many callers') go to each
    // primary as one message.
    auto m = tp::receive();
    out.hold();
    for (int n = 0; m; ++n) {
      handle(*m);
      if (n + 1 >= 256) break;
      m = tp::receive(clock::duration::zero());
    }
    out.flush();
  }
}

}  // namespace panal::db
