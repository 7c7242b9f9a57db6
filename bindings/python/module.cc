// panal._core: the C++ runtime, seen from Python.
//
// Every call that waits or works releases the GIL, so other Python threads
// run meanwhile. Errors arrive as result<T> values and leave here as the
// Python exception class registered for their code (panal.errors).
#include <pybind11/chrono.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "runtime/this_process.h"
#include "util/error.h"
#include "util/log.h"

namespace py = pybind11;

namespace panal::python {
namespace {

// Raises the panal.errors class for e.code.
[[noreturn]] void raise(const error& e) {
  py::object errors = py::module_::import("panal.errors");
  py::object cls = errors.attr("error_class")(static_cast<int>(e.code));
  PyErr_SetString(cls.ptr(), e.message.c_str());
  throw py::error_already_set();
}

template <class T>
T unwrap(result<T> r) {
  if (!r) raise(r.err());
  return std::move(r).value();
}

// A runtime owned by Python. stop() is explicit and idempotent; the
// destructor stops it too, without the GIL.
class py_runtime {
 public:
  py_runtime(unsigned threads, std::string node_name) {
    runtime_options options;
    options.threads = threads;
    options.node_name = std::move(node_name);
    py::gil_scoped_release nogil;
    rt_ = std::make_unique<runtime>(std::move(options));
  }
  ~py_runtime() {
    py::gil_scoped_release nogil;
    rt_.reset();
  }

  void stop() {
    py::gil_scoped_release nogil;
    rt_->stop();
  }
  bool running() const { return rt_->running(); }
  unsigned threads() const { return rt_->thread_count(); }
  std::size_t process_count() const { return rt_->process_count(); }
  std::string node() const { return node_name(rt_->node()); }

  // Two processes exchange `rounds` messages; returns the seconds it took.
  // A demonstration and a check that the runtime works from Python.
  double ping_pong(long rounds, bool same_thread) {
    if (rounds < 0) raise(error{errc::bad_argument, "rounds must be >= 0"});
    check_running();
    py::gil_scoped_release nogil;
    inbox done = rt_->open_inbox();
    const pid report = done.self();
    auto ponger = rt_->spawn(
        [] {
          for (;;) {
            auto m = this_process::receive_as<pid>();
            this_process::send(*m, this_process::self());
          }
        },
        {.thread = 0});
    if (!ponger) raise_nogil(ponger.err());
    const int thread = same_thread || rt_->thread_count() == 1 ? 0 : 1;
    auto pinger = rt_->spawn(
        [rounds, report, ponger = *ponger] {
          const auto t0 = std::chrono::steady_clock::now();
          for (long i = 0; i < rounds; ++i) {
            this_process::send(ponger, this_process::self());
            this_process::receive_as<pid>();
          }
          std::chrono::duration<double> took = std::chrono::steady_clock::now() - t0;
          this_process::exit(ponger, exit_reason::kill());
          this_process::send(report, took.count());
        },
        {.thread = thread});
    if (!pinger) raise_nogil(pinger.err());
    auto took = done.receive_as<double>();
    if (!took) raise_nogil(error{errc::not_running, "the runtime stopped during ping_pong"});
    return *took;
  }

  // Runs a process that sleeps for `seconds` and waits for it: a blocking
  // call that keeps only its own fiber busy (and not the GIL).
  void sleep(double seconds) {
    check_running();
    py::gil_scoped_release nogil;
    inbox done = rt_->open_inbox();
    const pid report = done.self();
    auto d = std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(seconds));
    auto p = rt_->spawn([d, report] {
      this_process::sleep_for(d);
      this_process::send(report, true);
    });
    if (!p) raise_nogil(p.err());
    if (!done.receive_as<bool>()) raise_nogil(error{errc::not_running, "the runtime stopped during sleep"});
  }

 private:
  void check_running() const {
    if (!rt_->running()) raise(error{errc::not_running, "this runtime has been stopped; create a new one"});
  }
  [[noreturn]] static void raise_nogil(const error& e) {
    py::gil_scoped_acquire gil;
    raise(e);
  }

  std::unique_ptr<runtime> rt_;
};

}  // namespace
}  // namespace panal::python

PYBIND11_MODULE(_core, m) {
  using panal::python::py_runtime;
  m.doc() = "panal's C++ core (use the `panal` package, not this module directly)";
  m.attr("__version__") = PANAL_VERSION;

  py::class_<py_runtime>(m, "Runtime", R"doc(
The process runtime: scheduler threads running lightweight processes.

It runs in background threads of this Python process. `stop()` ends every
process and joins the threads; a new Runtime can be started afterwards.
)doc")
      .def(py::init<unsigned, std::string>(), py::arg("threads") = 0, py::arg("node_name") = "nonode@nohost",
           "Starts `threads` scheduler threads (0: one per CPU).")
      .def("stop", &py_runtime::stop, "Kills all processes and joins the threads. Idempotent.")
      .def_property_readonly("running", &py_runtime::running)
      .def_property_readonly("threads", &py_runtime::threads)
      .def_property_readonly("process_count", &py_runtime::process_count, "Live processes.")
      .def_property_readonly("node", &py_runtime::node, "The node name.")
      .def("ping_pong", &py_runtime::ping_pong, py::arg("rounds"), py::arg("same_thread") = true,
           "Two processes exchange `rounds` round trips; returns the seconds taken.")
      .def("sleep", &py_runtime::sleep, py::arg("seconds"),
           "Waits for a process that sleeps `seconds` (the GIL is released).");

  m.def(
      "set_log_level",
      [](const std::string& level) {
        panal::log::level l;
        if (!panal::log::parse_level(level, l)) {
          throw py::value_error("log level must be one of debug, info, warn, error, off");
        }
        panal::log::set_level(l);
      },
      py::arg("level"), "Sets the C++ log level: debug, info, warn, error or off.");
}
