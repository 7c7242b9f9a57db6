// The README's C++ example: a supervised echo process, called from main().
#include <iostream>

#include "runtime/this_process.h"
#include "supervision/supervisor.h"

using namespace panal;

int main() {
  runtime rt({.threads = 2});
  auto sup = supervisor::start(rt, {.how = strategy::one_for_one, .intensity = 3},
                               {child_spec::worker("echo", [] {
                                 for (;;) {
                                   auto req = this_process::receive_as<call_request>();
                                   this_process::reply(*req, std::move(req->body));
                                 }
                               })});
  if (!sup) {
    std::cerr << "supervisor failed: " << sup.err() << "\n";
    return 1;
  }
  auto kids = supervisor::which_children(rt, *sup);
  auto answer = rt.call(kids->front().child, std::string("hi"), std::chrono::seconds(1));
  if (!answer || !answer->is<std::string>()) {
    std::cerr << "no answer\n";
    return 1;
  }
  std::cout << "echo answered: " << answer->get<std::string>() << "\n";
  return 0;
}
