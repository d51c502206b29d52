// safetensors: 8-byte little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets}, "__metadata__": {..}}, then raw little-endian data.
// Torch-free: every header field is validated here before any tensor byte is touched.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "util/file.h"

namespace lincat {

enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };

size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);  // safetensors spelling: "F32", "BF16", ...

struct TensorInfo {
    std::string name;
    DType dtype = DType::F32;
    std::vector<int64_t> shape;
    uint64_t begin = 0, end = 0;  // byte range relative to the start of the data section

    int64_t numel() const;
};

struct SafetensorsHeader {
    std::vector<TensorInfo> tensors;  // in file order of their data
    std::map<std::string, std::string> metadata;
    uint64_t data_start = 0;  // absolute offset of the data section
};

// Largest header we accept; real headers are a few hundred KB.
constexpr uint64_t kMaxSafetensorsHeaderBytes = 100ull << 20;

// Validates the header of a safetensors file of `file_size` bytes whose first bytes are
// `bytes` (`available` of them; the header must be within). `label` names the file.
SafetensorsHeader parse_safetensors_header(const uint8_t* bytes, size_t available, uint64_t file_size,
                                           const std::string& label);

// model.safetensors.index.json: tensor name -> shard file. Shard names must be plain file
// names in the model folder (no '/', no ".."). Errors name `label` and the entry.
std::map<std::string, std::string> parse_safetensors_index(const std::string& text, const std::string& label);

class SafetensorsFile {
  public:
    static SafetensorsFile open(const std::string& path);

    const std::string& path() const { return file_.path(); }
    const std::vector<TensorInfo>& tensors() const { return header_.tensors; }
    const std::map<std::string, std::string>& metadata() const { return header_.metadata; }
    const TensorInfo* find(const std::string& name) const;
    const uint8_t* data(const TensorInfo& t) const { return file_.data() + header_.data_start + t.begin; }
    // Bytes [from, from + length) of the tensor have been copied out: let the kernel drop
    // their pages from our RSS.
    void release(const TensorInfo& t, uint64_t from, uint64_t length) const {
        file_.release(header_.data_start + t.begin + from, length);
    }

  private:
    MappedFile file_;
    SafetensorsHeader header_;
    std::map<std::string, size_t> index_;
};

struct TensorBlob {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    const void* data;
    size_t nbytes;
};

// Writes atomically (temp + rename); the header is padded to 8 bytes as the format asks.
void write_safetensors(const std::string& path, const std::vector<TensorBlob>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace lincat
