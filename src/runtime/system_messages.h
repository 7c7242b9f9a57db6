// Messages the runtime itself puts in mailboxes.
//
// exit_msg:  an exit signal from a linked process (or exit(pid, reason)),
//            delivered as a message because the receiver traps exits.
// down_msg:  a monitored process ended (or never existed: noproc).
// call_request / call_reply: the request-reply protocol of call()
//            (gen_server:call in OTP); `tag` pairs a reply with its request.
//
// Thread-safety: plain values.
#pragma once

#include "runtime/exit_reason.h"
#include "runtime/message.h"
#include "runtime/pid.h"

namespace panal {

struct exit_msg {
  pid from;
  exit_reason reason;
};

struct down_msg {
  ref monitor;
  pid who;
  exit_reason reason;
};

struct call_request {
  pid from;  // where the reply goes
  ref tag;
  message body;
};

struct call_reply {
  ref tag;
  message body;
};

}  // namespace panal
