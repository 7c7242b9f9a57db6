// A FIFO queue in one growing circular array: push at the back, pop at the
// front, and (rarely) take from the middle, keeping the order.
//
// Promise: no allocation in steady state (the array only grows, doubling),
// unlike std::deque, which allocates and frees a block every few elements
// as a queue flows through it.
//
// Thread-safety: none.
#pragma once

#include <cstddef>
#include <memory>
#include <utility>

namespace panal {

template <class T>
class ring {
 public:
  ring() = default;
  ring(const ring&) = delete;
  ring& operator=(const ring&) = delete;
  ~ring() { clear(); }

  bool empty() const { return size_ == 0; }
  std::size_t size() const { return size_; }

  T& operator[](std::size_t i) { return slots_[(head_ + i) & mask_].value; }
  const T& operator[](std::size_t i) const { return slots_[(head_ + i) & mask_].value; }
  T& front() { return (*this)[0]; }

  void push_back(T&& v) {
    if (size_ == capacity_) grow();
    ::new (static_cast<void*>(&slots_[(head_ + size_) & mask_].value)) T(std::move(v));
    ++size_;
  }

  void pop_front() {
    slots_[head_].value.~T();
    head_ = (head_ + 1) & mask_;
    --size_;
  }

  // Removes element i, keeping the order of the others.
  void erase_at(std::size_t i) {
    for (; i + 1 < size_; ++i) (*this)[i] = std::move((*this)[i + 1]);
    (*this)[size_ - 1].~T();
    --size_;
  }

  template <class Pred>
  std::size_t erase_if(Pred pred) {
    std::size_t kept = 0;
    for (std::size_t i = 0; i < size_; ++i) {
      if (pred((*this)[i])) continue;
      if (kept != i) (*this)[kept] = std::move((*this)[i]);
      ++kept;
    }
    const std::size_t removed = size_ - kept;
    for (std::size_t i = kept; i < size_; ++i) (*this)[i].~T();
    size_ = kept;
    return removed;
  }

  void clear() {
    while (size_ > 0) pop_front();
  }

 private:
  union slot {
    slot() {}
    ~slot() {}
    T value;
  };

  void grow() {
    const std::size_t capacity = capacity_ == 0 ? 8 : capacity_ * 2;
    std::unique_ptr<slot[]> bigger(new slot[capacity]);
    for (std::size_t i = 0; i < size_; ++i) {
      ::new (static_cast<void*>(&bigger[i].value)) T(std::move((*this)[i]));
      (*this)[i].~T();
    }
    slots_ = std::move(bigger);
    capacity_ = capacity;
    mask_ = capacity - 1;
    head_ = 0;
  }

  std::unique_ptr<slot[]> slots_;
  std::size_t capacity_ = 0, mask_ = 0, head_ = 0, size_ = 0;
};

}  // namespace panal
