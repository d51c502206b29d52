#include "interop/torch_pickle.h"

#include <cstring>
#include <map>

#include "util/error.h"

namespace lincat {

namespace {

using Kind = PickleNode::Kind;

// A checkpoint of a few thousand tensors needs a few tens of thousands of nodes; the cap keeps
// a hostile file from growing memory without bound.
constexpr size_t kMaxNodes = size_t(1) << 22;
constexpr size_t kMaxStack = size_t(1) << 20;

const std::map<std::string, std::string>& storage_dtypes() {
    static const std::map<std::string, std::string> m = {
        {"torch.FloatStorage", "float32"},     {"torch.DoubleStorage", "float64"}, {"torch.HalfStorage", "float16"},
        {"torch.BFloat16Storage", "bfloat16"}, {"torch.LongStorage", "int64"},     {"torch.IntStorage", "int32"},
        {"torch.ShortStorage", "int16"},       {"torch.CharStorage", "int8"},      {"torch.ByteStorage", "uint8"},
        {"torch.BoolStorage", "bool"},
    };
    return m;
}

class Reader {
  public:
    Reader(std::string_view bytes, const std::string& label) : in_(bytes), label_(label) {}

    PickleDocument run() {
        while (true) {
            if (pos_ >= in_.size()) error("ends before the STOP opcode (truncated?)");
            op_at_ = pos_;
            const uint8_t op = uint8_t(in_[pos_++]);
            if (op == '.') break;
            step(op);
        }
        if (stack_.size() != 1 || !marks_.empty()) error("leaves ", stack_.size(), " values on its stack at STOP");
        doc_.root = stack_.back();
        return std::move(doc_);
    }

  private:
    template <typename... Args>
    [[noreturn]] void error(const Args&... args) const {
        fail(label_, ": pickle at byte ", op_at_, ": ", args...);
    }

    std::string_view take(size_t n) {
        if (n > in_.size() - pos_) error("wants ", n, " bytes past the end (truncated?)");
        std::string_view s = in_.substr(pos_, n);
        pos_ += n;
        return s;
    }
    uint64_t little(size_t n) {
        std::string_view s = take(n);
        uint64_t v = 0;
        for (size_t i = 0; i < n; ++i) v |= uint64_t(uint8_t(s[i])) << (8 * i);
        return v;
    }
    std::string line() {
        size_t end = in_.find('\n', pos_);
        if (end == std::string_view::npos || end - pos_ > 256) error("has an unterminated GLOBAL name");
        std::string s(in_.substr(pos_, end - pos_));
        pos_ = end + 1;
        return s;
    }

    int add(PickleNode n) {
        if (doc_.nodes.size() >= kMaxNodes) error("holds more than ", kMaxNodes, " values");
        doc_.nodes.push_back(std::move(n));
        return int(doc_.nodes.size() - 1);
    }
    int add_kind(Kind k) {
        PickleNode n;
        n.kind = k;
        return add(std::move(n));
    }
    PickleNode& node(int i) { return doc_.nodes[size_t(i)]; }
    void push(int i) {
        if (stack_.size() >= kMaxStack) error("stack grows past ", kMaxStack);
        stack_.push_back(i);
    }
    int pop() {
        if (stack_.size() <= floor()) error("pops from an empty stack");
        int v = stack_.back();
        stack_.pop_back();
        return v;
    }
    int top() {
        if (stack_.size() <= floor()) error("reads an empty stack");
        return stack_.back();
    }
    size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
    std::vector<int> pop_mark() {
        if (marks_.empty()) error("has no MARK to pop to");
        std::vector<int> items(stack_.begin() + std::ptrdiff_t(marks_.back()), stack_.end());
        stack_.resize(marks_.back());
        marks_.pop_back();
        return items;
    }
    int tuple(std::vector<int> items) {
        PickleNode n;
        n.kind = Kind::Tuple;
        n.items = std::move(items);
        return add(std::move(n));
    }
    void memo_put(uint64_t key) {
        if (memo_.size() > kMaxNodes) error("memo grows past ", kMaxNodes);
        memo_[key] = top();
    }
    void memo_get(uint64_t key) {
        auto it = memo_.find(key);
        if (it == memo_.end()) error("reads memo entry ", key, ", which was never stored");
        push(it->second);
    }
    void string(size_t n) {
        PickleNode s;
        s.kind = Kind::String;
        s.text = std::string(take(n));
        push(add(std::move(s)));
    }
    void set_items(int dict, const std::vector<int>& kv) {
        if (node(dict).kind != Kind::Dict) error("sets items on a ", pickle_kind_name(node(dict).kind));
        if (kv.size() % 2) error("sets an odd number of dict keys and values");
        for (size_t i = 0; i < kv.size(); i += 2) node(dict).entries.push_back({kv[i], kv[i + 1]});
    }
    void append(int list, const std::vector<int>& items) {
        if (node(list).kind != Kind::List) error("appends to a ", pickle_kind_name(node(list).kind));
        auto& v = node(list).items;
        v.insert(v.end(), items.begin(), items.end());
    }

    void global(const std::string& module, const std::string& name) {
        const std::string full = module + "." + name;
        if (full != "collections.OrderedDict" && full != "torch._utils._rebuild_tensor_v2" &&
            full != "torch._utils._rebuild_parameter" && !storage_dtypes().count(full))
            error("names the Python global '", full,
                  "', which a file of tensors never needs; refused (nothing was run). Only dicts of tensors "
                  "(torch.save of a state_dict) are read");
        PickleNode g;
        g.kind = Kind::Global;
        g.text = full;
        push(add(std::move(g)));
    }

    const PickleNode& arg(const std::vector<int>& args, size_t i, Kind kind, const char* what) {
        if (i >= args.size()) error(what, ": missing argument ", i);
        const PickleNode& n = node(args[i]);
        if (n.kind != kind) error(what, ": argument ", i, " is a ", pickle_kind_name(n.kind));
        return n;
    }
    std::vector<int64_t> int_tuple(const std::vector<int>& args, size_t i, const char* what) {
        const PickleNode& t = arg(args, i, Kind::Tuple, what);
        std::vector<int64_t> out;
        for (int e : t.items) {
            if (node(e).kind != Kind::Int) error(what, ": a size or stride is a ", pickle_kind_name(node(e).kind));
            out.push_back(node(e).integer);
        }
        return out;
    }

    void reduce() {
        const int args_i = pop(), callable = pop();
        if (node(args_i).kind != Kind::Tuple) error("REDUCE with a ", pickle_kind_name(node(args_i).kind));
        if (node(callable).kind != Kind::Global) error("REDUCE calls a ", pickle_kind_name(node(callable).kind));
        const std::vector<int> args = node(args_i).items;
        const std::string fn = node(callable).text;
        if (fn == "collections.OrderedDict") {
            push(add_kind(Kind::Dict));  // its items follow as SETITEMS
        } else if (fn == "torch._utils._rebuild_tensor_v2") {
            PickleNode t;
            t.kind = Kind::Tensor;
            arg(args, 0, Kind::Storage, fn.c_str());
            t.storage = args[0];
            t.offset = arg(args, 1, Kind::Int, fn.c_str()).integer;
            t.sizes = int_tuple(args, 2, fn.c_str());
            t.strides = int_tuple(args, 3, fn.c_str());
            if (t.sizes.size() != t.strides.size() || t.sizes.size() > 16)
                error(fn, ": ", t.sizes.size(), " sizes and ", t.strides.size(), " strides");
            t.dtype = node(args[0]).dtype;
            push(add(std::move(t)));
        } else if (fn == "torch._utils._rebuild_parameter") {
            arg(args, 0, Kind::Tensor, fn.c_str());
            push(args[0]);  // a Parameter's data is its tensor
        } else {
            error("REDUCE calls ", fn, ", which builds no value");  // a storage class is only a persistent-id tag
        }
    }

    // torch.save's persistent id: ('storage', <storage class>, key, location, numel).
    void persistent_id() {
        const int pid = pop();
        const PickleNode& t = node(pid);
        if (t.kind != Kind::Tuple || t.items.size() != 5) error("has a persistent id that is not a 5-tuple");
        auto s = [&](size_t i) -> const PickleNode& { return node(t.items[i]); };
        if (s(0).kind != Kind::String || s(0).text != "storage") error("has a persistent id that is not a storage");
        if (s(1).kind != Kind::Global || !storage_dtypes().count(s(1).text)) error("has a storage of an unknown type");
        if (s(2).kind != Kind::String || s(3).kind != Kind::String || s(4).kind != Kind::Int || s(4).integer < 0 ||
            s(4).integer > (int64_t(1) << 40))
            error("has a malformed storage reference");
        PickleNode st;
        st.kind = Kind::Storage;
        st.dtype = storage_dtypes().at(s(1).text);
        st.text = s(2).text;
        st.numel = s(4).integer;
        push(add(std::move(st)));
    }

    void step(uint8_t op) {
        switch (op) {
            case 0x80:
                take(1);
                break;  // PROTO
            case 0x95:
                take(8);
                break;  // FRAME: a length hint
            case '(':
                marks_.push_back(stack_.size());
                break;
            case '}':
                push(add_kind(Kind::Dict));
                break;
            case ']':
                push(add_kind(Kind::List));
                break;
            case ')':
                push(tuple({}));
                break;
            case 't':
                push(tuple(pop_mark()));
                break;
            case 0x85: {
                int a = pop();
                push(tuple({a}));
                break;
            }
            case 0x86: {
                int b = pop(), a = pop();
                push(tuple({a, b}));
                break;
            }
            case 0x87: {
                int c = pop(), b = pop(), a = pop();
                push(tuple({a, b, c}));
                break;
            }
            case 'a': {
                int v = pop();
                append(top(), {v});
                break;
            }
            case 'e': {
                auto items = pop_mark();
                append(top(), items);
                break;
            }
            case 's': {
                int v = pop(), k = pop();
                set_items(top(), {k, v});
                break;
            }
            case 'u': {
                auto kv = pop_mark();
                set_items(top(), kv);
                break;
            }
            case 'b': {  // BUILD: only a dict's instance state (a state_dict's _metadata), which we drop
                pop();
                if (node(top()).kind != Kind::Dict) error("BUILD on a ", pickle_kind_name(node(top()).kind));
                break;
            }
            case 'X':
                string(size_t(little(4)));
                break;
            case 0x8c:
                string(size_t(little(1)));
                break;
            case 0x8d: {
                uint64_t n = little(8);
                if (n > in_.size()) error("has a string longer than the file");
                string(size_t(n));
                break;
            }
            case 'J': {
                PickleNode n;
                n.kind = Kind::Int;
                n.integer = int32_t(uint32_t(little(4)));
                push(add(std::move(n)));
                break;
            }
            case 'K':
            case 'M': {
                PickleNode n;
                n.kind = Kind::Int;
                n.integer = int64_t(little(op == 'K' ? 1 : 2));
                push(add(std::move(n)));
                break;
            }
            case 0x8a: {  // LONG1: little-endian two's complement
                size_t len = size_t(little(1));
                if (len > 8) error("has an integer of ", len, " bytes");
                uint64_t v = len ? little(len) : 0;
                if (len && len < 8 && (v >> (8 * len - 1)) & 1) v |= ~uint64_t(0) << (8 * len);
                PickleNode n;
                n.kind = Kind::Int;
                n.integer = int64_t(v);
                push(add(std::move(n)));
                break;
            }
            case 'G': {  // BINFLOAT: big-endian double
                std::string_view s = take(8);
                uint64_t bits = 0;
                for (int i = 0; i < 8; ++i) bits = (bits << 8) | uint8_t(s[size_t(i)]);
                PickleNode n;
                n.kind = Kind::Float;
                std::memcpy(&n.real, &bits, 8);
                push(add(std::move(n)));
                break;
            }
            case 'N':
                push(add_kind(Kind::None));
                break;
            case 0x88:
            case 0x89: {
                PickleNode n;
                n.kind = Kind::Bool;
                n.boolean = op == 0x88;
                push(add(std::move(n)));
                break;
            }
            case 'q':
                memo_put(little(1));
                break;
            case 'r':
                memo_put(little(4));
                break;
            case 0x94:
                memo_put(memo_.size());
                break;  // MEMOIZE
            case 'h':
                memo_get(little(1));
                break;
            case 'j':
                memo_get(little(4));
                break;
            case 'c': {
                std::string module = line();
                global(module, line());
                break;
            }
            case 0x93: {  // STACK_GLOBAL
                int name = pop(), module = pop();
                if (node(name).kind != Kind::String || node(module).kind != Kind::String)
                    error("STACK_GLOBAL with a non-string name");
                global(node(module).text, node(name).text);
                break;
            }
            case 'R':
                reduce();
                break;
            case 'Q':
                persistent_id();
                break;
            default:
                error("has opcode 0x", "0123456789abcdef"[op >> 4], "0123456789abcdef"[op & 15], " ('",
                      (op >= 32 && op < 127) ? char(op) : '?', "'), which a dict of tensors never uses");
        }
    }

    std::string_view in_;
    std::string label_;
    size_t pos_ = 0, op_at_ = 0;
    PickleDocument doc_;
    std::vector<int> stack_;
    std::vector<size_t> marks_;
    std::map<uint64_t, int> memo_;
};

}  // namespace

const char* pickle_kind_name(PickleNode::Kind kind) {
    switch (kind) {
        case Kind::None:
            return "None";
        case Kind::Bool:
            return "bool";
        case Kind::Int:
            return "int";
        case Kind::Float:
            return "float";
        case Kind::String:
            return "str";
        case Kind::Tuple:
            return "tuple";
        case Kind::List:
            return "list";
        case Kind::Dict:
            return "dict";
        case Kind::Global:
            return "global";
        case Kind::Storage:
            return "storage";
        case Kind::Tensor:
            return "tensor";
    }
    return "?";
}

int PickleDocument::find(int dict, const std::string& key) const {
    const PickleNode& d = at(dict);
    if (d.kind != PickleNode::Kind::Dict) return -1;
    for (auto& [k, v] : d.entries)
        if (at(k).kind == PickleNode::Kind::String && at(k).text == key) return v;
    return -1;
}

PickleDocument read_torch_pickle(std::string_view bytes, const std::string& label) {
    return Reader(bytes, label).run();
}

namespace {

void put_string(std::string& p, const std::string& s) {
    p += 'X';
    for (int i = 0; i < 4; ++i) p += char((uint64_t(s.size()) >> (8 * i)) & 0xff);
    p += s;
}

void put_int(std::string& p, int64_t v) {
    if (v >= 0 && v < 256) {
        p += 'K';
        p += char(v);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
        p += 'J';
        for (int i = 0; i < 4; ++i) p += char((uint32_t(int32_t(v)) >> (8 * i)) & 0xff);
    } else {
        p += '\x8a';  // LONG1, 8 bytes little-endian two's complement
        p += char(8);
        for (int i = 0; i < 8; ++i) p += char((uint64_t(v) >> (8 * i)) & 0xff);
    }
}

void put_global(std::string& p, const std::string& module, const std::string& name) {
    p += 'c' + module + '\n' + name + '\n';
}

void put_int_tuple(std::string& p, const std::vector<int64_t>& v) {
    p += '(';
    for (int64_t x : v) put_int(p, x);
    p += 't';
}

}  // namespace

std::string write_state_dict_pickle(const std::string& key, const std::vector<PickledTensor>& tensors, int64_t step) {
    std::string p = "\x80\x02}(";  // PROTO 2, the top dict, MARK for its items
    put_string(p, key);
    put_global(p, "collections", "OrderedDict");
    p += ")R(";  // OrderedDict(), then MARK for its items
    for (const PickledTensor& t : tensors) {
        std::string storage;
        for (auto& [cls, dtype] : storage_dtypes())
            if (dtype == t.dtype) storage = cls.substr(6);  // "torch.FloatStorage" -> "FloatStorage"
        if (storage.empty()) fail("'", t.name, "': dtype ", t.dtype, " has no torch storage class");
        int64_t numel = 1;
        std::vector<int64_t> strides(t.sizes.size());
        for (size_t d = t.sizes.size(); d-- > 0;) {
            strides[d] = numel;
            numel *= t.sizes[d];
        }
        put_string(p, t.name);
        put_global(p, "torch._utils", "_rebuild_tensor_v2");
        p += "((";  // the rebuild arguments, then the persistent id
        put_string(p, "storage");
        put_global(p, "torch", storage);
        put_string(p, t.storage_key);
        put_string(p, "cpu");
        put_int(p, numel);
        p += "tQ";  // persistent id tuple -> the storage
        put_int(p, 0);
        put_int_tuple(p, t.sizes);
        put_int_tuple(p, strides);
        p += '\x89';  // requires_grad False
        put_global(p, "collections", "OrderedDict");
        p += ")RtR";  // backward hooks OrderedDict(), close the arguments, rebuild
    }
    p += 'u';  // the OrderedDict's items
    put_string(p, "step");
    put_int(p, step);
    p += "u.";  // the top dict's items, STOP
    return p;
}

}  // namespace lincat
