#include "model/safetensors.h"

#include <algorithm>
#include <cstring>

#include "util/json.h"

namespace lincat {

size_t dtype_size(DType d) {
    switch (d) {
        case DType::F64:
        case DType::I64:
            return 8;
        case DType::F32:
        case DType::I32:
            return 4;
        case DType::F16:
        case DType::BF16:
        case DType::I16:
            return 2;
        case DType::I8:
        case DType::U8:
        case DType::BOOL:
            return 1;
    }
    return 0;
}

const char* dtype_name(DType d) {
    switch (d) {
        case DType::F64:
            return "F64";
        case DType::F32:
            return "F32";
        case DType::F16:
            return "F16";
        case DType::BF16:
            return "BF16";
        case DType::I64:
            return "I64";
        case DType::I32:
            return "I32";
        case DType::I16:
            return "I16";
        case DType::I8:
            return "I8";
        case DType::U8:
            return "U8";
        case DType::BOOL:
            return "BOOL";
    }
    return "?";
}

static bool dtype_from_name(const std::string& s, DType* out) {
    static const std::pair<const char*, DType> table[] = {
        {"F64", DType::F64}, {"F32", DType::F32}, {"F16", DType::F16}, {"BF16", DType::BF16}, {"I64", DType::I64},
        {"I32", DType::I32}, {"I16", DType::I16}, {"I8", DType::I8},   {"U8", DType::U8},     {"BOOL", DType::BOOL}};
    for (auto& [name, d] : table)
        if (s == name) {
            *out = d;
            return true;
        }
    return false;
}

int64_t TensorInfo::numel() const {
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    return n;
}

SafetensorsHeader parse_safetensors_header(const uint8_t* bytes, size_t available, uint64_t file_size,
                                           const std::string& label) {
    if (file_size < 8 || available < 8)
        fail(label, ": truncated safetensors file (", file_size, " bytes, need at least 8 for the header length)");
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];
    if (header_len > file_size - 8)
        fail(label, ": header length ", header_len, " runs past the end of the file (", file_size, " bytes)");
    if (header_len > kMaxSafetensorsHeaderBytes)
        fail(label, ": header length ", header_len, " exceeds the limit of ", kMaxSafetensorsHeaderBytes, " bytes");
    if (header_len > available - 8) fail(label, ": header not fully readable");
    if (header_len < 2) fail(label, ": header length ", header_len, " is too small for a JSON object");

    std::string text(reinterpret_cast<const char*>(bytes + 8), size_t(header_len));
    json j = parse_json(text, label + " (safetensors header)");
    if (!j.is_object()) fail(label, ": safetensors header must be a JSON object");

    SafetensorsHeader h;
    h.data_start = 8 + header_len;
    const uint64_t data_size = file_size - h.data_start;
    for (auto it = j.begin(); it != j.end(); ++it) {
        const std::string& name = it.key();
        const json& v = it.value();
        if (name == "__metadata__") {
            if (!v.is_object()) fail(label, ": __metadata__ must be an object of strings");
            for (auto m = v.begin(); m != v.end(); ++m) {
                if (!m.value().is_string()) fail(label, ": __metadata__['", m.key(), "'] must be a string");
                h.metadata[m.key()] = m.value().get<std::string>();
            }
            continue;
        }
        std::string where = label + ": tensor '" + name + "'";
        if (!v.is_object()) fail(where, " must be an object");
        TensorInfo t;
        t.name = name;
        std::string dt = json_get<std::string>(v, "dtype", where);
        if (!dtype_from_name(dt, &t.dtype)) fail(where, ": unsupported dtype '", dt, "'");
        const json& shape = json_get<json>(v, "shape", where);
        if (!shape.is_array()) fail(where, ": shape must be an array");
        if (shape.size() > 8) fail(where, ": shape has ", shape.size(), " dimensions (at most 8)");
        // numel * dtype_size must not overflow: bound it by the data size as we go.
        unsigned __int128 nbytes = dtype_size(t.dtype);
        for (const json& s : shape) {
            if (!s.is_number_unsigned() && !(s.is_number_integer() && s.get<int64_t>() >= 0))
                fail(where, ": shape entries must be non-negative integers, got ", s.dump());
            uint64_t d = s.get<uint64_t>();
            if (d > (uint64_t(1) << 62)) fail(where, ": shape entry ", d, " is too large");
            t.shape.push_back(int64_t(d));
            nbytes *= d;
            if (nbytes > (unsigned __int128)(data_size) && nbytes != 0) {
                // keep multiplying only to detect zeros later; overflow is impossible now
                nbytes = (unsigned __int128)(data_size) + 1;
            }
        }
        const json& off = json_get<json>(v, "data_offsets", where);
        if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
            fail(where, ": data_offsets must be [begin, end] with non-negative integers");
        t.begin = off[0].get<uint64_t>();
        t.end = off[1].get<uint64_t>();
        if (t.begin > t.end) fail(where, ": data_offsets begin ", t.begin, " > end ", t.end);
        if (t.end > data_size)
            fail(where, ": data_offsets [", t.begin, ", ", t.end, "] lie outside the file's data section (", data_size,
                 " bytes)");
        if ((unsigned __int128)(t.end - t.begin) != nbytes) {
            fail(where, ": dtype ", dt, " and shape ", shape_str(t.shape),
                 " need a different byte count than data_offsets [", t.begin, ", ", t.end, "] hold (", t.end - t.begin,
                 " bytes)");
        }
        h.tensors.push_back(std::move(t));
    }
    std::sort(h.tensors.begin(), h.tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
        return a.begin < b.begin || (a.begin == b.begin && a.end < b.end);
    });
    for (size_t i = 1; i < h.tensors.size(); ++i) {
        const TensorInfo& a = h.tensors[i - 1];
        const TensorInfo& b = h.tensors[i];
        if (b.begin < a.end && b.end > b.begin)
            fail(label, ": tensors '", a.name, "' and '", b.name, "' have overlapping data_offsets");
    }
    return h;
}

SafetensorsFile SafetensorsFile::open(const std::string& path) {
    SafetensorsFile f;
    f.file_ = MappedFile::open(path);
    f.header_ = parse_safetensors_header(f.file_.data(), f.file_.size(), f.file_.size(), path);
    for (size_t i = 0; i < f.header_.tensors.size(); ++i) f.index_[f.header_.tensors[i].name] = i;
    return f;
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
    auto it = index_.find(name);
    return it == index_.end() ? nullptr : &header_.tensors[it->second];
}

void write_safetensors(const std::string& path, const std::vector<TensorBlob>& tensors,
                       const std::map<std::string, std::string>& metadata) {
    json header = json::object();
    if (!metadata.empty()) header["__metadata__"] = metadata;
    uint64_t offset = 0;
    for (const TensorBlob& t : tensors) {
        int64_t numel = 1;
        for (int64_t s : t.shape) numel *= s;
        if (size_t(numel) * dtype_size(t.dtype) != t.nbytes)
            fail(path, ": tensor '", t.name, "' has ", t.nbytes, " bytes, its shape and dtype need ",
                 size_t(numel) * dtype_size(t.dtype));
        if (header.contains(t.name)) fail(path, ": tensor '", t.name, "' written twice");
        header[t.name] = {
            {"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.nbytes}}};
        offset += t.nbytes;
    }
    std::string text = header.dump();
    while ((8 + text.size()) % 8 != 0) text += ' ';
    uint8_t len[8];
    uint64_t n = text.size();
    for (int i = 0; i < 8; ++i) len[i] = uint8_t(n >> (8 * i));
    AtomicFileWriter w(path);
    w.write(len, 8);
    w.write(text.data(), text.size());
    for (const TensorBlob& t : tensors) w.write(t.data, t.nbytes);
    w.commit();
}

std::map<std::string, std::string> parse_safetensors_index(const std::string& text, const std::string& index) {
    json j = parse_json(text, index);
    if (!j.is_object()) fail(index, ": must be a JSON object");
    const json& map = json_get<json>(j, "weight_map", index);
    if (!map.is_object() || map.empty()) fail(index, ": weight_map must be a non-empty object");
    std::map<std::string, std::string> out;
    for (auto it = map.begin(); it != map.end(); ++it) {
        if (!it.value().is_string()) fail(index, ": weight_map['", it.key(), "'] must be a file name");
        std::string shard = it.value();
        if (shard.empty() || shard.find('/') != std::string::npos || shard == "." || shard == ".." ||
            shard.find('\0') != std::string::npos)
            fail(index, ": weight_map['", it.key(), "'] names '", shard,
                 "', which is not a plain file name in the model folder");
        out[it.key()] = shard;
    }
    return out;
}

}  // namespace lincat
