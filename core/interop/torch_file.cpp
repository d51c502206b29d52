#include "interop/torch_file.h"

#include <caffe2/serialize/inline_container.h>

#include <filesystem>
#include <map>

#include "interop/torch_pickle.h"
#include "util/error.h"
#include "util/file.h"

namespace lincat {

// The storage dtype names of interop/torch_pickle.h and their torch types: one table, both ways.
static const std::vector<std::pair<std::string, torch::Dtype>>& dtypes() {
    static const std::vector<std::pair<std::string, torch::Dtype>> t = {
        {"float32", torch::kFloat32},   {"float64", torch::kFloat64}, {"float16", torch::kFloat16},
        {"bfloat16", torch::kBFloat16}, {"int64", torch::kInt64},     {"int32", torch::kInt32},
        {"int16", torch::kInt16},       {"int8", torch::kInt8},       {"uint8", torch::kUInt8},
        {"bool", torch::kBool}};
    return t;
}

static torch::Dtype torch_dtype(const std::string& name, const std::string& path) {
    for (auto& [n, d] : dtypes())
        if (n == name) return d;
    fail(path, ": storage dtype ", name, " is not supported");
}

static std::string dtype_name(torch::Dtype dtype) {
    for (auto& [n, d] : dtypes())
        if (d == dtype) return n;
    fail("dtype ", c10::toString(dtype), " cannot be written to a torch.save file");
}

NamedTensors read_torch_state_dict(const std::string& path, const std::string& key, int64_t* step) {
    if (!std::filesystem::is_regular_file(path)) fail(path, ": no such file");
    std::unique_ptr<caffe2::serialize::PyTorchStreamReader> zip;
    std::string pickle;
    try {
        zip = std::make_unique<caffe2::serialize::PyTorchStreamReader>(path);
        if (!zip->hasRecord("data.pkl")) fail("it has no data.pkl record");
        auto [data, size] = zip->getRecord("data.pkl");
        pickle.assign(static_cast<const char*>(data.get()), size);
    } catch (const c10::Error& e) {
        std::string what = e.what_without_backtrace();
        fail(path, ": not a torch.save zip file (", what.substr(0, what.find('\n')), ")");
    } catch (const std::exception& e) {
        fail(path, ": not a torch.save file: ", e.what());
    }
    PickleDocument doc = read_torch_pickle(pickle, path);
    using Kind = PickleNode::Kind;
    if (doc.at(doc.root).kind != Kind::Dict)
        fail(path, ": holds a ", pickle_kind_name(doc.at(doc.root).kind), ", not a dict with '", key, "'");
    const int dict = doc.find(doc.root, key);
    if (dict < 0) fail(path, ": the dict has no '", key, "' entry");
    if (doc.at(dict).kind != Kind::Dict)
        fail(path, ": '", key, "' is a ", pickle_kind_name(doc.at(dict).kind), ", not a dict of tensors");
    if (step) {
        int s = doc.find(doc.root, "step");
        if (s >= 0 && doc.at(s).kind == Kind::Int) *step = doc.at(s).integer;
    }

    std::map<std::string, torch::Tensor> storages;  // record key -> 1-D tensor over its bytes
    NamedTensors out;
    for (auto& [k, v] : doc.at(dict).entries) {
        if (doc.at(k).kind != Kind::String)
            fail(path, ": '", key, "' has a ", pickle_kind_name(doc.at(k).kind), " key");
        const std::string& name = doc.at(k).text;
        const PickleNode& t = doc.at(v);
        if (t.kind != Kind::Tensor) fail(path, ": '", name, "' is a ", pickle_kind_name(t.kind), ", not a tensor");
        const PickleNode& s = doc.at(t.storage);
        const torch::Dtype dtype = torch_dtype(s.dtype, path);
        auto it = storages.find(s.text);
        if (it == storages.end()) {
            const std::string record = "data/" + s.text;
            torch::Tensor bytes;
            try {
                if (!zip->hasRecord(record)) fail("missing");
                auto [data, size] = zip->getRecord(record);
                const int64_t need = s.numel * int64_t(c10::elementSize(dtype));
                if (int64_t(size) != need) fail(size, " bytes, its ", s.numel, " ", s.dtype, " values need ", need);
                bytes = torch::empty({s.numel}, torch::TensorOptions().dtype(dtype));
                std::memcpy(bytes.data_ptr(), data.get(), size);
            } catch (const c10::Error& e) {
                fail(path, ": storage record ", record, " of '", name, "' cannot be read");
            } catch (const std::exception& e) {
                fail(path, ": storage record ", record, " of '", name, "': ", e.what());
            }
            it = storages.emplace(s.text, bytes).first;
        }
        // Every element the sizes and strides reach must lie inside the storage.
        int64_t last = t.offset;
        bool empty = false;
        for (size_t d = 0; d < t.sizes.size(); ++d) {
            if (t.sizes[d] < 0 || t.strides[d] < 0 || t.sizes[d] > (int64_t(1) << 40) ||
                t.strides[d] > (int64_t(1) << 40))
                fail(path, ": '", name, "' has size ", shape_str(t.sizes), " and stride ", shape_str(t.strides));
            if (t.sizes[d] == 0)
                empty = true;
            else
                last += (t.sizes[d] - 1) * t.strides[d];
        }
        if (t.offset < 0 || (!empty && last >= s.numel))
            fail(path, ": '", name, "' (shape ", shape_str(t.sizes), ", offset ", t.offset,
                 ") reaches past its storage of ", s.numel, " values");
        out.push_back({name, it->second.as_strided(t.sizes, t.strides, t.offset).clone().contiguous()});
    }
    return out;
}

void write_torch_state_dict(const std::string& path, const std::string& key, const NamedTensors& tensors,
                            int64_t step) {
    // torch.save's layout: archive/data.pkl, one archive/data/<i> per storage, archive/version,
    // written by LibTorch's own zip writer into memory, then to disk atomically.
    std::string zip;
    caffe2::serialize::PyTorchStreamWriter writer([&](const void* data, size_t size) {
        zip.append(static_cast<const char*>(data), size);
        return size;
    });
    std::vector<PickledTensor> entries;
    std::vector<torch::Tensor> data;
    for (size_t i = 0; i < tensors.size(); ++i) {
        torch::Tensor t = tensors[i].second.detach().cpu().contiguous();
        entries.push_back({tensors[i].first, dtype_name(t.scalar_type()), std::to_string(i), t.sizes().vec()});
        data.push_back(t);
    }
    const std::string pickle = write_state_dict_pickle(key, entries, step);
    writer.writeRecord("data.pkl", pickle.data(), pickle.size());
    for (size_t i = 0; i < data.size(); ++i)
        writer.writeRecord("data/" + std::to_string(i), data[i].data_ptr(), size_t(data[i].nbytes()));
    writer.writeEndOfFile();
    write_file_atomic(path, zip);
}

}  // namespace lincat
