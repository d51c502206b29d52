// A restricted reader for the pickle inside a torch.save file (its data.pkl), torch-free so
// it can be fuzzed. It runs no code: it knows about twenty opcodes and an allow-list of five
// Python globals (OrderedDict, the tensor and parameter rebuilders, the typed storages), which
// is all a dict of tensors needs; anything else is refused with the name of what was asked.
//
// Why not torch::pickle_load: LibTorch 1.13's unpickler turns collections.OrderedDict (every
// state_dict) into None and has no SETITEM opcode, so it cannot read what torch.save writes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lincat {

struct PickleNode {
    enum class Kind { None, Bool, Int, Float, String, Tuple, List, Dict, Global, Storage, Tensor };
    Kind kind = Kind::None;
    bool boolean = false;
    int64_t integer = 0;
    double real = 0;
    std::string text;                          // String; Global "module.name"; Storage: its record key
    std::vector<int> items;                    // Tuple, List
    std::vector<std::pair<int, int>> entries;  // Dict, in insertion order
    // Storage: dtype (from the storage class, "float32", "bfloat16", ...) and element count.
    // Tensor: storage node, offset, sizes, strides (in elements).
    std::string dtype;
    int64_t numel = 0;
    int storage = -1;
    int64_t offset = 0;
    std::vector<int64_t> sizes, strides;
};

struct PickleDocument {
    std::vector<PickleNode> nodes;
    int root = -1;
    const PickleNode& at(int i) const { return nodes.at(size_t(i)); }
    // The value under string key `key` of dict node `dict`, or -1.
    int find(int dict, const std::string& key) const;
};

const char* pickle_kind_name(PickleNode::Kind kind);

// Parses a whole pickle; errors name `label`, the byte offset and the opcode or global.
PickleDocument read_torch_pickle(std::string_view bytes, const std::string& label);

// The data.pkl torch.save writes for {key: OrderedDict(name: tensor, ...), "step": step}
// (protocol 2, each tensor contiguous in its own storage record data/<storage_key>), so Python
// reads it as it reads its own files, with no torch.jit globals.
struct PickledTensor {
    std::string name, dtype, storage_key;  // dtype as above: "float32", "bfloat16", ...
    std::vector<int64_t> sizes;
};
std::string write_state_dict_pickle(const std::string& key, const std::vector<PickledTensor>& tensors, int64_t step);

}  // namespace lincat
