// Internal: fiber stacks for processes, with a guard page below each stack
// so that an overflow faults instead of corrupting a neighbour. Stacks of
// the default size are kept for reuse (up to a bound), which makes spawn
// cheap: no mmap/munmap per process in steady state.
//
// Thread-safety: a pool belongs to one scheduler thread; fibers are created
// and destroyed on that thread only.
#pragma once

#include <cstddef>
#include <vector>

#include <boost/context/stack_context.hpp>

namespace panal::detail {

class stack_pool {
 public:
  stack_pool(std::size_t default_size, bool guard_pages, std::size_t max_cached = 1024);
  ~stack_pool();
  stack_pool(const stack_pool&) = delete;
  stack_pool& operator=(const stack_pool&) = delete;

  boost::context::stack_context allocate(std::size_t size);
  void deallocate(boost::context::stack_context& sctx);

 private:
  std::size_t default_size_;
  std::size_t guard_;  // bytes of no-access guard below each stack: one page or none
  std::size_t max_cached_;
  std::vector<boost::context::stack_context> cached_;
};

// The StackAllocator handed to Boost.Fiber: a pointer to the pool + a size.
struct pooled_stack {
  stack_pool* pool;
  std::size_t size;
  boost::context::stack_context allocate() { return pool->allocate(size); }
  void deallocate(boost::context::stack_context& sctx) noexcept { pool->deallocate(sctx); }
};

}  // namespace panal::detail
