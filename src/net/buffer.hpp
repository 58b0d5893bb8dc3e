#pragma once

#include <cstddef>
#include <algorithm>
#include <cstring>
#include <memory>
#include <string_view>

namespace switchyard::net {

/// A growable byte buffer that does not zero what it allocates: [0, size) holds data,
/// [size, capacity) is free space for the next read.
class ByteBuffer {
 public:
  explicit ByteBuffer(std::size_t capacity = 0) { reserve(capacity); }

  char* data() { return data_.get(); }
  const char* data() const { return data_.get(); }
  std::size_t size() const { return size_; }
  std::size_t capacity() const { return capacity_; }
  std::size_t free() const { return capacity_ - size_; }
  char* tail() { return data_.get() + size_; }
  std::string_view view() const { return {data_.get(), size_}; }

  void commit(std::size_t n) { size_ += n; }
  void clear() { size_ = 0; }
  void truncate(std::size_t n) { size_ = std::min(size_, n); }

  /// Makes room for at least `n` more bytes.
  void reserve_free(std::size_t n) {
    if (free() < n) reserve(std::max(capacity_ * 2, size_ + n));
  }

  void reserve(std::size_t capacity) {
    if (capacity <= capacity_) return;
    std::unique_ptr<char[]> next(new char[capacity]);
    if (size_) std::memcpy(next.get(), data_.get(), size_);
    data_ = std::move(next);
    capacity_ = capacity;
  }

  /// Drops the first `n` bytes, keeping the rest at the front.
  void consume(std::size_t n) {
    if (n >= size_) {
      size_ = 0;
      return;
    }
    std::memmove(data_.get(), data_.get() + n, size_ - n);
    size_ -= n;
  }

  void append(std::string_view bytes) {
    reserve_free(bytes.size());
    std::memcpy(tail(), bytes.data(), bytes.size());
    size_ += bytes.size();
  }

  /// Returns to `capacity` bytes when it grew beyond `limit` (after a large request).
  void shrink(std::size_t capacity, std::size_t limit) {
    if (capacity_ <= limit || size_ > capacity) return;
    std::unique_ptr<char[]> next(new char[capacity]);
    if (size_) std::memcpy(next.get(), data_.get(), size_);
    data_ = std::move(next);
    capacity_ = capacity;
  }

 private:
  std::unique_ptr<char[]> data_;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
};

}  // namespace switchyard::net
