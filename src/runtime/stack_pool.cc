#include "runtime/stack_pool.h"

#include <sys/mman.h>
#include <unistd.h>

#include <new>


namespace panal::detail {
namespace {

std::size_t page_size() {
  static const std::size_t size = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return size;
}

std::size_t round_up(std::size_t n) {
  const std::size_t p = page_size();
  return (n + p - 1) / p * p;
}

}  // namespace

stack_pool::stack_pool(std::size_t default_size, bool guard_pages, std::size_t max_cached)
    : default_size_(round_up(default_size)), guard_(guard_pages ? page_size() : 0), max_cached_(max_cached) {}

stack_pool::~stack_pool() {
  for (auto& sctx : cached_) {
    ::munmap(static_cast<char*>(sctx.sp) - sctx.size, sctx.size);
  }
}

boost::context::stack_context stack_pool::allocate(std::size_t size) {
  const std::size_t usable = round_up(size ? size : default_size_);
  if (usable == default_size_ && !cached_.empty()) {
    auto sctx = cached_.back();
    cached_.pop_back();
    return sctx;
  }
  const std::size_t total = usable + guard_;  // the guard is at the low end: stacks grow down
  void* base = ::mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) throw std::bad_alloc();
  if (guard_ != 0 && ::mprotect(base, guard_, PROT_NONE) != 0) {
    ::munmap(base, total);
    throw std::bad_alloc();
  }
  boost::context::stack_context sctx;
  sctx.size = total;
  sctx.sp = static_cast<char*>(base) + total;
  return sctx;
}

void stack_pool::deallocate(boost::context::stack_context& sctx) {
  if (sctx.size == default_size_ + guard_ && cached_.size() < max_cached_) {
    cached_.push_back(sctx);
    return;
  }
  ::munmap(static_cast<char*>(sctx.sp) - sctx.size, sctx.size);
}

}  // namespace panal::detail
