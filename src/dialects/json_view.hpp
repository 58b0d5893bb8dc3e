#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "core/json_scan.hpp"

/// Read-only access to a small JSON document without building a tree: the document is validated
/// once by the lean scanner, which records its values on a tape, and lookups walk that tape. Used
/// for upstream stream events, where a tree per event would cost more than the rest of the relay.
namespace switchyard::dialects {

class JsonView {
 public:
  /// A value of the document (or nothing: every accessor of a missing value gives a default).
  class Node {
   public:
    Node() = default;
    Node(const JsonView* view, std::size_t index) : view_(view), index_(index) {}
    explicit operator bool() const { return view_ != nullptr; }
    core::json::Type type() const { return entry().type; }
    bool is_object() const { return view_ && type() == core::json::Type::object; }
    bool is_array() const { return view_ && type() == core::json::Type::array; }
    bool is_string() const { return view_ && type() == core::json::Type::string; }
    /// The value's bytes (a string keeps its quotes); empty when missing.
    std::string_view raw() const {
      return view_ ? view_->doc_.substr(entry().offset, entry().size) : std::string_view{};
    }
    /// The member `key` of an object.
    Node operator[](std::string_view key) const {
      if (!is_object()) return {};
      Node found;
      view_->tape_.for_each_child(view_->doc_, index_, [&](std::string_view k, const core::json::Value&, std::size_t i) {
        if (k != key) return true;
        found = Node(view_, i);
        return false;
      });
      return found;
    }
    /// The element `n` of an array.
    Node at(std::size_t n) const {
      if (!is_array()) return {};
      Node found;
      std::size_t k = 0;
      view_->tape_.for_each_child(view_->doc_, index_, [&](std::string_view, const core::json::Value&, std::size_t i) {
        if (k++ != n) return true;
        found = Node(view_, i);
        return false;
      });
      return found;
    }
    /// Calls `fn(Node)` for each element of an array.
    template <class Fn>
    void each(Fn&& fn) const {
      if (!is_array()) return;
      view_->tape_.for_each_child(view_->doc_, index_, [&](std::string_view, const core::json::Value&, std::size_t i) {
        fn(Node(view_, i));
        return true;
      });
    }
    /// A string's text (unescaped only when it holds an escape); empty for other types.
    std::string text() const {
      if (!is_string()) return {};
      std::string_view r = raw();
      if (r.find('\\') == std::string_view::npos) return std::string(r.substr(1, r.size() - 2));
      return core::json::unescape(r);
    }
    /// True when the string is present and not empty.
    bool has_text() const { return is_string() && raw().size() > 2; }
    /// Whether a string equals `s` (compared raw: for the ASCII words of a protocol).
    bool equals(std::string_view s) const {
      std::string_view r = raw();
      return is_string() && r.size() == s.size() + 2 && r.substr(1, s.size()) == s;
    }
    std::optional<std::int64_t> integer() const {
      if (!view_ || type() != core::json::Type::number) return std::nullopt;
      return core::json::as_int(core::json::Value{type(), raw(), entry().offset});
    }
    std::int64_t integer_or(std::int64_t fallback) const { return integer().value_or(fallback); }
    std::optional<double> number() const {
      if (!view_ || type() != core::json::Type::number) return std::nullopt;
      return core::json::as_double(core::json::Value{type(), raw(), entry().offset});
    }
    bool is_null() const { return view_ && type() == core::json::Type::null; }
    bool is_bool() const { return view_ && type() == core::json::Type::boolean; }
    bool is_true() const { return view_ && type() == core::json::Type::boolean && raw() == "true"; }
    /// Calls `fn(key, Node)` for each member of an object (the key as written, escapes kept).
    template <class Fn>
    void each_member(Fn&& fn) const {
      if (!is_object()) return;
      view_->tape_.for_each_child(view_->doc_, index_, [&](std::string_view k, const core::json::Value&, std::size_t i) {
        fn(k, Node(view_, i));
        return true;
      });
    }

   private:
    const core::json::Tape::Entry& entry() const { return view_->tape_[index_]; }
    const JsonView* view_ = nullptr;
    std::size_t index_ = 0;
  };

  /// Validates `doc` (kept by reference: it must outlive the nodes). False when it is not JSON.
  bool parse(std::string_view doc, std::size_t max_depth = 64) {
    doc_ = doc;
    tape_.clear();
    core::json::ScanResult r = core::json::validate(doc, max_depth, tape_, max_depth);
    return static_cast<bool>(r);
  }
  Node root() const { return tape_.size() ? Node(this, 0) : Node(); }

 private:
  std::string_view doc_;
  core::json::Tape tape_;
};

}  // namespace switchyard::dialects
