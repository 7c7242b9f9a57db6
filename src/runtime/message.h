// A message: one value of any move-constructible C++ type.
//
// Promise: values up to `inline_size` bytes (with nothrow moves) live inside
// the message, so sending small messages allocates nothing beyond the
// mailbox slot; larger ones are boxed once. Type tests are a pointer
// compare. Messages are move-only; clone() copies when the type is copyable.
//
// Thread-safety: a message is owned by one thread at a time; sending moves it.
#pragma once

#include <cstddef>
#include <new>
#include <type_traits>
#include <typeinfo>
#include <utility>

namespace panal {

class message {
 public:
  // sizeof(message) == 144: the database's request and reply travel inline,
  // so a request costs no box of its own.
  static constexpr std::size_t inline_size = 128;

  message() noexcept = default;

  template <class T, class D = std::decay_t<T>,
            class = std::enable_if_t<!std::is_same_v<D, message>>>
  message(T&& value) {  // NOLINT: implicit, so send(to, foo{}) reads well
    emplace<D>(std::forward<T>(value));
  }

  message(message&& other) noexcept { move_from(other); }
  message& operator=(message&& other) noexcept {
    if (this != &other) {
      reset();
      move_from(other);
    }
    return *this;
  }
  message(const message&) = delete;
  message& operator=(const message&) = delete;
  ~message() { reset(); }

  template <class T, class... Args>
  T& emplace(Args&&... args) {
    reset();
    if constexpr (fits_inline<T>) {
      ::new (static_cast<void*>(storage_)) T(std::forward<Args>(args)...);
    } else {
      *reinterpret_cast<T**>(storage_) = new T(std::forward<Args>(args)...);
    }
    ops_ = &ops_for<T>;
    return *get_if<T>();
  }

  bool empty() const noexcept { return ops_ == nullptr; }

  template <class T>
  bool is() const noexcept {
    return ops_ == &ops_for<T>;
  }

  template <class T>
  T* get_if() noexcept {
    if (!is<T>()) return nullptr;
    if constexpr (fits_inline<T>) return std::launder(reinterpret_cast<T*>(storage_));
    else return *reinterpret_cast<T**>(storage_);
  }
  template <class T>
  const T* get_if() const noexcept {
    return const_cast<message*>(this)->get_if<T>();
  }
  // Precondition: is<T>().
  template <class T>
  T& get() noexcept {
    return *get_if<T>();
  }
  template <class T>
  const T& get() const noexcept {
    return *get_if<T>();
  }

  // The held type (typeid(void) when empty).
  const std::type_info& type() const noexcept { return ops_ ? ops_->type() : typeid(void); }

  // The C++ type name (mangled), for logs of unexpected messages.
  const char* type_name() const noexcept { return ops_ ? ops_->type().name() : "empty"; }

  // A copy of the value; an empty message if the type is not copyable.
  message clone() const {
    message m;
    if (ops_ && ops_->clone) ops_->clone(storage_, m.storage_), m.ops_ = ops_;
    return m;
  }

  void reset() noexcept {
    if (ops_) {
      ops_->destroy(storage_);
      ops_ = nullptr;
    }
  }

 private:
  template <class T>
  static constexpr bool fits_inline = sizeof(T) <= inline_size && alignof(T) <= alignof(std::max_align_t) &&
                                      std::is_nothrow_move_constructible_v<T>;

  struct ops {
    void (*destroy)(unsigned char*) noexcept;
    void (*move)(unsigned char* from, unsigned char* to) noexcept;
    void (*clone)(const unsigned char* from, unsigned char* to);
    const std::type_info& (*type)() noexcept;
  };

  template <class T>
  static T* inline_ptr(unsigned char* s) noexcept {
    return std::launder(reinterpret_cast<T*>(s));
  }

  template <class T>
  static constexpr ops make_ops() {
    ops o{};
    if constexpr (fits_inline<T>) {
      o.destroy = [](unsigned char* s) noexcept { inline_ptr<T>(s)->~T(); };
      o.move = [](unsigned char* from, unsigned char* to) noexcept {
        ::new (static_cast<void*>(to)) T(std::move(*inline_ptr<T>(from)));
        inline_ptr<T>(from)->~T();
      };
      if constexpr (std::is_copy_constructible_v<T>) {
        o.clone = [](const unsigned char* from, unsigned char* to) {
          ::new (static_cast<void*>(to)) T(*std::launder(reinterpret_cast<const T*>(from)));
        };
      }
    } else {
      o.destroy = [](unsigned char* s) noexcept { delete *reinterpret_cast<T**>(s); };
      o.move = [](unsigned char* from, unsigned char* to) noexcept {
        *reinterpret_cast<T**>(to) = *reinterpret_cast<T**>(from);
      };
      if constexpr (std::is_copy_constructible_v<T>) {
        o.clone = [](const unsigned char* from, unsigned char* to) {
          *reinterpret_cast<T**>(to) = new T(**reinterpret_cast<T* const*>(from));
        };
      }
    }
    o.type = []() noexcept -> const std::type_info& { return typeid(T); };
    return o;
  }

  template <class T>
  static constexpr ops ops_for = make_ops<T>();

  void move_from(message& other) noexcept {
    if (other.ops_) {
      other.ops_->move(other.storage_, storage_);
      ops_ = other.ops_;
      other.ops_ = nullptr;
    }
  }

  const ops* ops_ = nullptr;
  alignas(std::max_align_t) unsigned char storage_[inline_size];
};

}  // namespace panal
