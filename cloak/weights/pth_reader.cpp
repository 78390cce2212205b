// Reads PyTorch zip state dicts without libtorch's unpickler (which aborts on an OrderedDict in
// Debian's libtorch 1.13): the zip is read with libzip and the handful of pickle opcodes that
// torch.save writes for a state dict are decoded here.
#include <torch/torch.h>
#include <zip.h>

#include <cstring>
#include <memory>

#include "cloak/core/error.h"
#include "cloak/weights/state_dict.h"

namespace cloak {
namespace {

class Zip {
 public:
  Zip(const std::vector<std::uint8_t>& bytes, const std::string& name)
      : name_(name), size_(bytes.size()) {
    zip_error_t err;
    zip_error_init(&err);
    zip_source_t* src = zip_source_buffer_create(bytes.data(), bytes.size(), 0, &err);
    if (src) archive_ = zip_open_from_source(src, ZIP_RDONLY, &err);
    if (!archive_) {
      if (src) zip_source_free(src);
      std::string why = zip_error_strerror(&err);
      zip_error_fini(&err);
      throw Error(ErrorKind::Model, name + ": not a PyTorch zip file: " + why);
    }
  }
  ~Zip() { zip_discard(archive_); }
  Zip(const Zip&) = delete;
  Zip& operator=(const Zip&) = delete;

  // The folder every entry sits in ("taef2_encoder/", "archive/", ...), found from data.pkl.
  std::string prefix() const {
    for (zip_int64_t i = 0; i < zip_get_num_entries(archive_, 0); ++i) {
      std::string entry = zip_get_name(archive_, static_cast<zip_uint64_t>(i), 0);
      auto slash = entry.find('/');
      if (slash != std::string::npos && entry.substr(slash + 1) == "data.pkl")
        return entry.substr(0, slash + 1);
    }
    throw Error(ErrorKind::Model, name_ + ": no data.pkl in the archive");
  }

  std::vector<std::uint8_t> read(const std::string& entry) const {
    zip_stat_t st;
    if (zip_stat(archive_, entry.c_str(), 0, &st) != 0)
      throw Error(ErrorKind::Model, name_ + ": missing archive entry " + entry);
    // Deflate inflates at most about 1032:1, so an entry claiming more than that of the whole
    // archive lies about its size; it is refused before anything is allocated for it.
    if (st.size > 1032 * static_cast<zip_uint64_t>(size_))
      throw Error(ErrorKind::Model, name_ + ": archive entry " + entry +
                                        " claims more data than the archive can hold");
    std::vector<std::uint8_t> out(st.size);
    std::unique_ptr<zip_file_t, decltype(&zip_fclose)> f(zip_fopen(archive_, entry.c_str(), 0),
                                                         zip_fclose);
    if (!f || zip_fread(f.get(), out.data(), st.size) != static_cast<zip_int64_t>(st.size))
      throw Error(ErrorKind::Model, name_ + ": cannot read archive entry " + entry);
    return out;
  }

 private:
  std::string name_;
  std::size_t size_;
  zip_t* archive_ = nullptr;
};

struct Value;
using ValuePtr = std::shared_ptr<Value>;
struct Value {
  enum class Kind { None, Bool, Int, Float, Str, Tuple, List, Dict, Global, Tensor };
  explicit Value(Kind k) : kind(k) {}
  Kind kind;
  std::int64_t i = 0;
  double f = 0;
  std::string s;  // Str value, or "module.name" for a Global
  std::vector<ValuePtr> items;
  std::vector<std::pair<ValuePtr, ValuePtr>> dict;
  torch::Tensor tensor;
};

ValuePtr make(Value::Kind k) {
  return std::make_shared<Value>(k);
}

class Unpickler {
 public:
  Unpickler(const Zip& zip, const std::string& name)
      : zip_(zip), name_(name), prefix_(zip.prefix()), data_(zip.read(prefix_ + "data.pkl")) {}

  ValuePtr run() {
    while (true) {
      std::uint8_t op = byte();
      switch (op) {
        case 0x80:
          byte();
          break;     // PROTO
        case 'c': {  // GLOBAL
          auto v = make(Value::Kind::Global);
          v->s = line();
          v->s += "." + line();
          push(v);
          break;
        }
        case 'q':
          memo_[byte()] = top();
          break;  // BINPUT
        case 'r':
          memo_[uint(4)] = top();
          break;  // LONG_BINPUT
        case 'h':
          push(memo(byte()));
          break;  // BINGET
        case 'j':
          push(memo(uint(4)));
          break;  // LONG_BINGET
        case '(':
          marks_.push_back(stack_.size());
          break;  // MARK
        case ')':
          push(make(Value::Kind::Tuple));
          break;  // EMPTY_TUPLE
        case '}':
          push(make(Value::Kind::Dict));
          break;  // EMPTY_DICT
        case ']':
          push(make(Value::Kind::List));
          break;  // EMPTY_LIST
        case 't':
          push(tuple(pop_mark()));
          break;  // TUPLE
        case 0x85:
          push(tuple(pop_n(1)));
          break;  // TUPLE1
        case 0x86:
          push(tuple(pop_n(2)));
          break;  // TUPLE2
        case 0x87:
          push(tuple(pop_n(3)));
          break;  // TUPLE3
        case 'X':
          push(str(uint(4)));
          break;  // BINUNICODE
        case 0x8c:
          push(str(byte()));
          break;  // SHORT_BINUNICODE
        case 'K':
          push(integer(byte()));
          break;  // BININT1
        case 'M':
          push(integer(uint(2)));
          break;  // BININT2
        case 'J':
          push(integer(static_cast<std::int32_t>(uint(4))));
          break;  // BININT
        case 0x8a:
          push(integer(long1()));
          break;  // LONG1
        case 'N':
          push(make(Value::Kind::None));
          break;  // NONE
        case 0x88:
          push(boolean(true));
          break;  // NEWTRUE
        case 0x89:
          push(boolean(false));
          break;  // NEWFALSE
        case 'Q':
          push(storage(pop()));
          break;     // BINPERSID
        case 'R': {  // REDUCE
          auto args = pop();
          auto fn = pop();
          push(reduce(fn, args));
          break;
        }
        case 'b':
          pop();
          break;     // BUILD: state ignored
        case 's': {  // SETITEM
          auto v = pop();
          auto k = pop();
          expect(top(), Value::Kind::Dict)->dict.emplace_back(k, v);
          break;
        }
        case 'u': {  // SETITEMS
          auto kv = pop_mark();
          auto d = expect(top(), Value::Kind::Dict);
          for (std::size_t n = 0; n + 1 < kv.size(); n += 2) d->dict.emplace_back(kv[n], kv[n + 1]);
          break;
        }
        case 'a': {  // APPEND
          auto v = pop();
          expect(top(), Value::Kind::List)->items.push_back(v);
          break;
        }
        case 'e': {  // APPENDS
          auto vs = pop_mark();
          auto& items = expect(top(), Value::Kind::List)->items;
          items.insert(items.end(), vs.begin(), vs.end());
          break;
        }
        case '.':
          return pop();  // STOP
        default:
          fail("unsupported pickle opcode 0x" + hex(op));
      }
    }
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    throw Error(ErrorKind::Model, name_ + ": cannot decode state dict: " + why);
  }
  static std::string hex(unsigned v) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%02x", v);
    return buf;
  }
  std::uint8_t byte() {
    if (pos_ >= data_.size()) fail("pickle ends early");
    return data_[pos_++];
  }
  std::uint32_t uint(int n) {
    std::uint32_t v = 0;
    for (int k = 0; k < n; ++k) v |= static_cast<std::uint32_t>(byte()) << (8 * k);
    return v;
  }
  std::int64_t long1() {
    int n = byte();
    if (n > 8) fail("integer too large");
    std::uint64_t v = 0;
    for (int k = 0; k < n; ++k) v |= static_cast<std::uint64_t>(byte()) << (8 * k);
    if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~0ull << (8 * n);  // sign-extend
    return static_cast<std::int64_t>(v);
  }
  std::string line() {
    std::string s;
    for (char c; (c = static_cast<char>(byte())) != '\n';) s += c;
    return s;
  }
  ValuePtr str(std::size_t n) {
    if (pos_ + n > data_.size()) fail("pickle ends early");
    auto v = make(Value::Kind::Str);
    v->s.assign(reinterpret_cast<const char*>(data_.data() + pos_), n);
    pos_ += n;
    return v;
  }
  static ValuePtr integer(std::int64_t i) {
    auto v = make(Value::Kind::Int);
    v->i = i;
    return v;
  }
  static ValuePtr boolean(bool b) {
    auto v = make(Value::Kind::Bool);
    v->i = b;
    return v;
  }
  static ValuePtr tuple(std::vector<ValuePtr> items) {
    auto v = make(Value::Kind::Tuple);
    v->items = std::move(items);
    return v;
  }
  void push(ValuePtr v) { stack_.push_back(std::move(v)); }
  ValuePtr top() {
    if (stack_.empty()) fail("stack underflow");
    return stack_.back();
  }
  ValuePtr pop() {
    auto v = top();
    stack_.pop_back();
    return v;
  }
  std::vector<ValuePtr> pop_n(std::size_t n) {
    if (stack_.size() < n) fail("stack underflow");
    std::vector<ValuePtr> out(stack_.end() - static_cast<long>(n), stack_.end());
    stack_.resize(stack_.size() - n);
    return out;
  }
  std::vector<ValuePtr> pop_mark() {
    if (marks_.empty() || marks_.back() > stack_.size()) fail("mark underflow");
    std::size_t n = stack_.size() - marks_.back();
    marks_.pop_back();
    return pop_n(n);
  }
  ValuePtr memo(std::uint32_t k) {
    auto it = memo_.find(k);
    if (it == memo_.end()) fail("unknown memo entry");
    return it->second;
  }
  ValuePtr expect(ValuePtr v, Value::Kind kind) {
    if (v->kind != kind) fail("unexpected value type");
    return v;
  }
  std::int64_t as_int(const ValuePtr& v) { return expect(v, Value::Kind::Int)->i; }
  std::vector<std::int64_t> as_ints(const ValuePtr& v) {
    std::vector<std::int64_t> out;
    for (auto& item : expect(v, Value::Kind::Tuple)->items) out.push_back(as_int(item));
    return out;
  }

  // A persistent id ('storage', torch.XStorage, key, location, numel) names a raw storage file.
  ValuePtr storage(const ValuePtr& pid) {
    auto& t = expect(pid, Value::Kind::Tuple)->items;
    if (t.size() != 5 || expect(t[0], Value::Kind::Str)->s != "storage")
      fail("unknown persistent id");
    const std::string& type = expect(t[1], Value::Kind::Global)->s;
    const std::string& key = expect(t[2], Value::Kind::Str)->s;
    std::int64_t numel = as_int(t[4]);
    torch::ScalarType dtype;
    if (type == "torch.HalfStorage")
      dtype = torch::kFloat16;
    else if (type == "torch.FloatStorage")
      dtype = torch::kFloat32;
    else if (type == "torch.BFloat16Storage")
      dtype = torch::kBFloat16;
    else
      fail("unsupported storage type " + type);
    auto v = make(Value::Kind::Tensor);
    auto cached = storages_.find(key);
    if (cached != storages_.end()) {
      v->tensor = cached->second;
      return v;
    }
    auto raw = zip_.read(prefix_ + "data/" + key);
    auto flat = torch::empty({numel}, torch::TensorOptions().dtype(dtype));
    if (raw.size() != static_cast<std::size_t>(numel) * flat.element_size())
      fail("storage " + key + " has the wrong size");
    std::memcpy(flat.data_ptr(), raw.data(), raw.size());
    storages_[key] = flat;
    v->tensor = flat;
    return v;
  }

  ValuePtr reduce(const ValuePtr& fn, const ValuePtr& args) {
    const std::string& callee = expect(fn, Value::Kind::Global)->s;
    auto& a = expect(args, Value::Kind::Tuple)->items;
    if (callee == "collections.OrderedDict") return make(Value::Kind::Dict);
    if (callee != "torch._utils._rebuild_tensor_v2") fail("unsupported call " + callee);
    if (a.size() < 4) fail("bad tensor record");
    auto flat = expect(a[0], Value::Kind::Tensor)->tensor;
    auto size = as_ints(a[2]);
    auto stride = as_ints(a[3]);
    std::int64_t offset = as_int(a[1]);
    std::int64_t last = offset;
    for (std::size_t d = 0; d < size.size(); ++d) last += (size[d] - 1) * stride[d];
    if (offset < 0 || last >= flat.numel()) fail("tensor view outside its storage");
    auto v = make(Value::Kind::Tensor);
    v->tensor = flat.as_strided(size, stride, offset).to(torch::kFloat32).contiguous();
    return v;
  }

  const Zip& zip_;
  std::string name_;
  std::string prefix_;
  std::vector<std::uint8_t> data_;
  std::size_t pos_ = 0;
  std::vector<ValuePtr> stack_;
  std::vector<std::size_t> marks_;
  std::map<std::uint32_t, ValuePtr> memo_;
  std::map<std::string, torch::Tensor> storages_;
};

}  // namespace

TensorMap parse_pth(const std::vector<std::uint8_t>& bytes, const std::string& name) {
  Zip zip(bytes, name);
  auto root = Unpickler(zip, name).run();
  if (root->kind != Value::Kind::Dict)
    throw Error(ErrorKind::Model, name + ": the pickle is not a state dict");
  TensorMap out;
  for (auto& [k, v] : root->dict) {
    if (k->kind != Value::Kind::Str || v->kind != Value::Kind::Tensor)
      throw Error(ErrorKind::Model, name + ": the state dict holds a non-tensor entry");
    out.emplace(k->s, v->tensor);
  }
  return out;
}

}  // namespace cloak
