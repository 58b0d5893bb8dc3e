#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <algorithm>
#include <cstring>
#include <memory>
#include <new>
#include <string_view>

namespace switchyard::net {

namespace detail {
/// Frees a ByteBuffer's allocation: mapped (ByteBuffer::kMapped), or from operator new.
struct BufferFree {
  std::size_t mapped = 0;  ///< bytes mapped; 0: from operator new
  void operator()(char* p) const {
    if (mapped) ::munmap(p, mapped);
    else delete[] p;
  }
};
}  // namespace detail

/// A growable byte buffer that does not zero what it allocates. Its data starts at an offset
/// into the allocation: [data(), data() + size()) holds data, and free() bytes after it are
/// room for the next read. Consuming from the front moves the offset instead of the rest of
/// the data; the data goes back to the front only when the room behind it runs short.
class ByteBuffer {
 public:
  explicit ByteBuffer(std::size_t capacity = 0) { reserve(capacity); }

  char* data() { return data_.get() + begin_; }
  const char* data() const { return data_.get() + begin_; }
  std::size_t size() const { return size_; }
  /// Bytes from data() to the end of the allocation.
  std::size_t capacity() const { return capacity_ - begin_; }
  std::size_t free() const { return capacity_ - begin_ - size_; }
  char* tail() { return data() + size_; }
  std::string_view view() const { return {data(), size_}; }
  void commit(std::size_t n) { size_ += n; }
  void clear() { begin_ = size_ = 0; }
  void truncate(std::size_t n) { size_ = std::min(size_, n); }
  /// Makes room for at least `n` more bytes (moving the data: pointers into it go stale).
  void reserve_free(std::size_t n) {
    if (free() >= n) return;
    if (capacity_ - size_ >= n) to_front();
    else reserve(std::max(capacity_ * 2, size_ + n));
  }
  /// Makes capacity() at least `capacity` (moving the data: pointers into it go stale).
  void reserve(std::size_t capacity) {
    if (capacity <= this->capacity()) return;
    if (capacity <= capacity_) to_front();
    else reallocate(capacity);
  }
  /// Drops the first `n` bytes. The rest stays where it is (a pipelined or read-ahead request
  /// is not copied) unless less than a quarter of the allocation is left behind it.
  void consume(std::size_t n) {
    if (n >= size_) {
      begin_ = size_ = 0;
      return;
    }
    begin_ += n;
    size_ -= n;
    if (free() < capacity_ / 4) to_front();
  }
  void append(std::string_view bytes) {
    reserve_free(bytes.size());
    std::memcpy(tail(), bytes.data(), bytes.size());
    size_ += bytes.size();
  }
  /// Returns to `capacity` bytes when it grew beyond `limit` (after a large request).
  void shrink(std::size_t capacity, std::size_t limit) {
    if (capacity_ <= limit || size_ > capacity) return;
    reallocate(capacity);
  }
  /// Frees the allocation (the buffer is empty and has no capacity afterwards).
  void release() {
    data_.reset();
    begin_ = size_ = capacity_ = 0;
  }

  /// Allocations of this size or more come from the kernel and go back to it when freed: a
  /// burst of large request bodies leaves nothing resident. (Through the allocator, 200 clients
  /// sending 4 MiB bodies against a 32 MiB budget left the gateway's RSS 29 MiB above where it
  /// started: mimalloc keeps freed spans committed until the thread allocates again.)
  static constexpr std::size_t kMapped = 256 * 1024;

 private:
  using Free = detail::BufferFree;
  /// A new allocation of `capacity` bytes with the data at its front.
  void reallocate(std::size_t capacity) {
    std::unique_ptr<char[], Free> next;
    if (capacity >= kMapped) {
      void* p = ::mmap(nullptr, capacity, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) throw std::bad_alloc();
      next = std::unique_ptr<char[], Free>(static_cast<char*>(p), Free{capacity});
    } else {
      next = std::unique_ptr<char[], Free>(new char[capacity], Free{});
    }
    if (size_) std::memcpy(next.get(), data(), size_);
    data_ = std::move(next);
    capacity_ = capacity;
    begin_ = 0;
  }
  void to_front() {
    if (begin_ == 0) return;
    std::memmove(data_.get(), data(), size_);
    begin_ = 0;
  }

  std::unique_ptr<char[], Free> data_;
  std::size_t begin_ = 0;  ///< where the data starts in the allocation
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
};

}  // namespace switchyard::net
